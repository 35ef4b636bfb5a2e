// blindlist-groupd: the group server.
//
// SECURITY. This is the only process that holds group private keys and group
// secrets (sealed at rest under the master key, opened in memory on use) and
// the only authority on who is a member. It trusts: its configuration file, the
// master key, the store (which it shares with certd and other groupd nodes), the
// deployment CA key that signs group certificates, and certd's CA certificate
// for path G. It never accepts a message body: callers send one RecipientInfo
// and get back a key, a RecipientInfo or a blinded value. It refuses anyone not
// on the roster at the moment of the request, audits every call without key
// material, and never logs keys, tokens or secrets. It refuses to start when the
// master key, its TLS key or the deployment CA key is open to group or others.
#include <malloc.h>

#include <CLI/CLI.hpp>
#include <cstdio>

#include "api/config_file.h"
#include "api/daemon.h"
#include "api/daemon_flags.h"
#include "config.h"
#include "crypto/keys.h"
#include "crypto/x509.h"
#include "key_ring.h"
#include "net/https_server.h"
#include "obs/log.h"
#include "service.h"
#include "store/store.h"

namespace {
using namespace blindlist;  // NOLINT(google-build-using-namespace)
int Fatal(const Error& e) { return api::Fatal("blindlist-groupd", e); }
}  // namespace

int Run(int argc, char** argv) {
  CLI::App app{"blindlist-groupd: the group server (holds group keys and the roster)"};
  api::DaemonFlags flags;
  api::AddDaemonFlags(app, flags);
  std::string master_key_file;
  app.add_option("--master-key-file", master_key_file, "Override [keys] master_key_file");
  std::string token_name;
  auto* admin_token =
      app.add_subcommand("admin-token", "Create an administrator bearer token and print it once");
  admin_token->add_option("name", token_name, "A name for the token (who holds it)")->required();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  net::SetLogDaemonName("groupd");
  // A per-member re-wrap of 500 members allocates a few MB and frees it all; with glibc's
  // defaults the heap is trimmed after every request and the next one faults its pages in again
  // (a tenth of the request's CPU). Keep up to 64 MiB of freed heap, and serve blocks under
  // 32 MiB from it rather than from mmap.
  mallopt(M_TRIM_THRESHOLD, 64 << 20);
  mallopt(M_MMAP_THRESHOLD, 32 << 20);

  auto loaded = groupd::LoadConfig(flags.config_file);
  if (!loaded.ok()) return Fatal(loaded.error());
  groupd::Config config = *loaded;
  if (!master_key_file.empty()) config.master_key_file = master_key_file;
  if (Status st = api::ApplyDaemonFlags(flags, config); !st.ok()) return Fatal(st.error());

  auto store = store::Store::Open(config.common.store_url);
  if (!store.ok()) return Fatal(store.error());

  if (admin_token->parsed()) {
    SecretBytes raw = crypto::RandomSecret(32);
    std::string token = "bla_" + ToHex(raw.view());
    store::AdminToken row{token_name, crypto::Sha256(AsBytes(token)),
                          static_cast<std::int64_t>(std::time(nullptr))};
    Status st = (*store)->AddAdminToken(row);
    if (!st.ok()) return Fatal(st.error());
    std::printf("%s\n", token.c_str());
    std::fill(token.begin(), token.end(), '\0');
    return 0;
  }

  // Secrets nobody else on the host may read: refuse to start rather than serve with them.
  Status private_files = api::CheckSecretFileModes(
      {config.master_key_file, config.common.server.key_file, config.ca_private_key_file});
  if (!private_files.ok()) return Fatal(private_files.error());
  auto master = api::LoadMasterKey(config.master_key_file);
  if (!master.ok()) return Fatal(master.error());
  std::optional<crypto::Certificate> ca_cert;
  std::optional<crypto::PrivateKey> ca_key;
  if (!config.ca_certificate_file.empty()) {
    auto c = crypto::Certificate::LoadFile(config.ca_certificate_file);
    if (!c.ok()) return Fatal(c.error());
    auto k = crypto::PrivateKey::LoadFile(config.ca_private_key_file);
    if (!k.ok()) return Fatal(k.error());
    if (!c->Matches(*k))
      return Fatal(MakeError("bad-config", "[keys] ca_private_key does not match ca_certificate"));
    ca_cert = std::move(*c);
    ca_key = std::move(*k);
  }
  std::optional<crypto::Certificate> membership_ca;
  if (!config.membership_ca_certificate_file.empty()) {
    auto c = crypto::Certificate::LoadFile(config.membership_ca_certificate_file);
    if (!c.ok()) return Fatal(c.error());
    membership_ca = std::move(*c);
  }

  api::BlockServerSignals();
  groupd::GroupKeyRing ring(std::move(*master));
  groupd::GroupService service(config, std::move(*store), &ring, std::move(ca_cert),
                               std::move(ca_key), std::move(membership_ca));
  net::HttpsServer server(
      config.common.server,
      net::AsyncHttpHandler([&service](const net::HttpRequest& r, net::HttpResponder respond) {
        service.Handle(r, std::move(respond));
      }));
  Status served =
      api::ServeService(server, service, config.common.server, config.common.metrics_token_file,
                        flags.port_file, [&] { return groupd::LoadConfig(flags.config_file); });
  if (!served.ok()) return Fatal(served.error());
  return 0;
}

int main(int argc, char** argv) { return api::RunMain("blindlist-groupd", Run, argc, argv); }
