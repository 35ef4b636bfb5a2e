// blindlist-certd: the certificate server.
//
// SECURITY. certd holds one secret, the membership CA's private key (an
// encrypted PKCS#8 file; the passphrase comes from a file or the environment).
// It trusts its configuration and the roster in the store it shares with groupd.
// It issues a short-lived certificate with a random, unlinkable subject and the
// group bound as a SAN URI, only to a caller who authenticates as a current
// member of that group; it never sees a member's private key when given a CSR.
// It refuses CSRs that do not verify, use unsupported keys or claim another
// group. Its audit links members to serials; groupd's audit of path G sees only
// serials (docs/threat-model.md says what collusion reveals). It refuses to start
// when the CA key, its passphrase file or its TLS key is open to group or others.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "api/config_file.h"
#include "api/daemon.h"
#include "api/daemon_flags.h"
#include "config.h"
#include "crypto/keys.h"
#include "crypto/x509.h"
#include "net/https_server.h"
#include "obs/log.h"
#include "obs/metrics.h"
#include "service.h"
#include "store/store.h"

namespace {

using namespace blindlist;  // NOLINT(google-build-using-namespace)

int Fatal(const Error& e) { return api::Fatal("blindlist-certd", e); }

Result<std::string> LoadPassphrase(const std::string& file) {
  std::string pass;
  if (!file.empty()) {
    BL_TRY(api::CheckSecretFileModes({file}));
    std::ifstream in(file);
    if (!in) return MakeError("bad-config", "cannot read the CA passphrase file " + file);
    std::getline(in, pass);
  } else if (const char* env = std::getenv("BLINDLIST_CA_PASSPHRASE"); env != nullptr) {
    pass = env;
    ::unsetenv("BLINDLIST_CA_PASSPHRASE");
  } else {
    return MakeError("bad-config",
                     "no CA passphrase: set [ca] passphrase_file or BLINDLIST_CA_PASSPHRASE");
  }
  while (!pass.empty() && (pass.back() == '\n' || pass.back() == '\r')) pass.pop_back();
  if (pass.size() < 8)
    return MakeError("bad-config", "the CA passphrase needs at least 8 characters");
  return pass;
}

// Creates `path` (O_CREAT|O_EXCL: never over an existing CA), gives it exactly `mode` whatever
// the caller's umask (a root shell's `umask 077` must not leave the public certificate unreadable
// by the daemons), writes `data` and syncs it. It is created 0600 and widened only by fchmod, so
// a secret file is never readable by others for a moment.
Status WriteNewFile(const std::string& path, std::string_view data, mode_t mode) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) return MakeError("io", "cannot create " + path + " (does it exist already?)");
  bool ok = ::fchmod(fd, mode) == 0;
  for (std::size_t done = 0; ok && done < data.size();) {
    ssize_t n = ::write(fd, data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    ok = n > 0;
    if (ok) done += static_cast<std::size_t>(n);
  }
  ok = ::fsync(fd) == 0 && ok;
  ok = ::close(fd) == 0 && ok;
  if (!ok) return MakeError("io", "cannot write " + path);
  return Status::Ok();
}

int InitCa(const certd::Config& config, const std::string& common_name) {
  auto pass = LoadPassphrase(config.ca_passphrase_file);
  if (!pass.ok()) return Fatal(pass.error());
  auto key = crypto::PrivateKey::Generate(crypto::KeyType::kEcP256);
  if (!key.ok()) return Fatal(key.error());
  auto cert = crypto::MakeCaCertificate(*key, common_name, 10LL * 365 * 24 * 3600);
  if (!cert.ok()) return Fatal(cert.error());
  auto pem = key->ToEncryptedPem(*pass);
  std::fill(pass->begin(), pass->end(), '\0');
  if (!pem.ok()) return Fatal(pem.error());
  Status st = WriteNewFile(config.ca_private_key_file, AsChars(pem->view()), 0600);
  if (!st.ok()) return Fatal(st.error());
  st = WriteNewFile(config.ca_certificate_file, crypto::ToPem("CERTIFICATE", cert->Der()), 0644);
  if (!st.ok()) return Fatal(st.error());
  std::printf("membership CA written: %s (key: %s, encrypted)\n",
              config.ca_certificate_file.c_str(), config.ca_private_key_file.c_str());
  return 0;
}

}  // namespace

int Run(int argc, char** argv) {
  CLI::App app{"blindlist-certd: issues short-lived membership certificates (path G)"};
  api::DaemonFlags flags;
  api::AddDaemonFlags(app, flags);
  std::string ca_name = "blindlist membership CA";
  auto* init_ca =
      app.add_subcommand("init-ca", "Create the membership CA key (encrypted) and certificate");
  init_ca->add_option("--common-name", ca_name, "The CA's name")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  net::SetLogDaemonName("certd");
  auto loaded = certd::LoadConfig(flags.config_file);
  if (!loaded.ok()) return Fatal(loaded.error());
  certd::Config config = *loaded;
  if (Status st = api::ApplyDaemonFlags(flags, config); !st.ok()) return Fatal(st.error());
  if (init_ca->parsed()) return InitCa(config, ca_name);

  // Secrets nobody else on the host may read: refuse to start rather than serve with them.
  Status private_files =
      api::CheckSecretFileModes({config.ca_private_key_file, config.common.server.key_file});
  if (!private_files.ok()) return Fatal(private_files.error());
  auto pass = LoadPassphrase(config.ca_passphrase_file);
  if (!pass.ok()) return Fatal(pass.error());
  auto ca_key = crypto::PrivateKey::LoadFile(config.ca_private_key_file, *pass);
  std::fill(pass->begin(), pass->end(), '\0');
  if (!ca_key.ok()) return Fatal(ca_key.error());
  auto ca_cert = crypto::Certificate::LoadFile(config.ca_certificate_file);
  if (!ca_cert.ok()) return Fatal(ca_cert.error());
  if (!ca_cert->Matches(*ca_key))
    return Fatal(MakeError("bad-config", "[ca] private_key does not match certificate"));
  auto store = store::Store::Open(config.common.store_url);
  if (!store.ok()) return Fatal(store.error());

  api::BlockServerSignals();
  certd::CertService service(config, std::move(*store), std::move(*ca_cert), std::move(*ca_key));
  net::HttpsServer server(config.common.server,
                          [&service](const net::HttpRequest& r) { return service.Handle(r); });
  Status served =
      api::ServeService(server, service, config.common.server, config.common.metrics_token_file,
                        flags.port_file, [&] { return certd::LoadConfig(flags.config_file); });
  if (!served.ok()) return Fatal(served.error());
  return 0;
}

int main(int argc, char** argv) { return api::RunMain("blindlist-certd", Run, argc, argv); }
