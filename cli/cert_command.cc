// blindlist cert request: a membership certificate from certd for path G.
// By default the key pair is made here and only a CSR leaves the machine.
#include <CLI/CLI.hpp>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "api/groupd_client.h"
#include "api/json_fields.h"
#include "blindlist/base64.h"
#include "blindlist/error_codes.h"
#include "commands.h"
#include "crypto/keys.h"
#include "crypto/x509.h"
#include "io.h"
#include "server_options.h"

namespace blindlist::cli {

using json = nlohmann::json;

namespace {

struct CertRequestOptions {
  api::ApiCredentials creds;
  std::string group;
  bool generate = false;
  std::string key_type = "p256";
  std::string out;
  std::string key_out;
  std::string passphrase_file;
};

Status RunCertRequest(CertRequestOptions& o) {
  BL_TRY(FinishServerOptions(o.creds));
  if (o.out.empty() || o.out == "-")
    return MakeError("usage", "give -o CERT.pem for the certificate");
  if (o.key_out.empty()) return MakeError("usage", "give --key-out KEY.pem for the private key");
  api::ApiClient client(o.creds);
  std::string path = "/v1/groups/" + api::ApiClient::Segment(o.group) + "/certificates";
  if (!o.generate) {
    BL_TRY_ASSIGN(crypto::PrivateKey key,
                  crypto::PrivateKey::Generate(o.key_type == "rsa3072" ? crypto::KeyType::kRsa
                                                                       : crypto::KeyType::kEcP256));
    crypto::CertificateProfile profile;  // certd sets the real subject and the group itself
    profile.common_name = "membership request";
    BL_TRY_ASSIGN(Bytes csr, crypto::MakeCsr(key, profile));
    BL_TRY_ASSIGN(json r,
                  client.Call("POST", path, {{"csr", crypto::ToPem("CERTIFICATE REQUEST", csr)}}));
    auto certificate = api::StringField(r, "certificate");
    auto serial = api::StringField(r, "serial");
    auto not_after = api::IntegerField(r, "not_after");
    if (!certificate || !serial || !not_after) {
      return MakeError(std::string(errc::kBadReply),
                       "certd's reply has no certificate, serial and not_after");
    }
    BL_TRY_ASSIGN(SecretBytes pem, key.ToPem());
    BL_TRY(WriteOutput(o.key_out, AsChars(pem.view())));
    BL_TRY(WriteOutput(o.out, *certificate, kPublicFileMode));
    std::fprintf(stderr, "membership certificate %s for %s, valid until %lld\n", serial->c_str(),
                 o.group.c_str(), static_cast<long long>(*not_after));
    return Status::Ok();
  }
  if (o.passphrase_file.empty()) {
    return MakeError(
        "usage", "--generate needs --passphrase-file (certd protects the key with it in transit)");
  }
  BL_TRY_ASSIGN(std::string pass, ReadInput(o.passphrase_file, 4096));
  while (!pass.empty() && (pass.back() == '\n' || pass.back() == '\r')) pass.pop_back();
  auto reply = client.Call("POST", path,
                           {{"generate", true}, {"key_type", o.key_type}, {"passphrase", pass}});
  if (!reply.ok()) {
    std::fill(pass.begin(), pass.end(), '\0');
    return reply.error();
  }
  Bytes p12;
  auto pkcs12 = api::StringField(*reply, "pkcs12");
  if (!pkcs12 || !Base64Decode(*pkcs12, p12)) {
    std::fill(pass.begin(), pass.end(), '\0');
    return MakeError(std::string(errc::kBadReply), "bad PKCS#12 in the reply");
  }
  auto opened = crypto::ImportPkcs12(p12, pass);
  std::fill(pass.begin(), pass.end(), '\0');
  if (!opened.ok()) return opened.error();
  BL_TRY_ASSIGN(SecretBytes pem, opened->key.ToPem());
  BL_TRY(WriteOutput(o.key_out, AsChars(pem.view())));
  return WriteOutput(o.out, crypto::ToPem("CERTIFICATE", opened->certificate.Der()),
                     kPublicFileMode);
}

}  // namespace

void AddCertCommand(CLI::App& app, Action* chosen) {
  auto o = std::make_shared<CertRequestOptions>();
  auto* cert =
      app.add_subcommand("cert", "Membership certificates from certd (anonymous reading, path G)");
  cert->require_subcommand(1);
  auto* request =
      cert->add_subcommand("request", "Get a short-lived membership certificate for a group");
  AddServerOptions(request, o->creds);
  request->add_option("--group", o->group, "The list address")->required();
  request->add_flag("--generate", o->generate,
                    "Let certd make the key pair (returned as PKCS#12 under --passphrase-file)");
  request->add_option("--key-type", o->key_type, "p256 or rsa3072")
      ->check(CLI::IsMember({"p256", "rsa3072"}))
      ->capture_default_str();
  request->add_option("-o,--out", o->out, "Where to write the certificate (PEM)")->required();
  request->add_option("--key-out", o->key_out, "Where to write the private key (PEM, mode 0600)")
      ->required();
  request->add_option("--passphrase-file", o->passphrase_file,
                      "With --generate: the PKCS#12 passphrase");
  request->callback([chosen, o] { *chosen = [o] { return RunCertRequest(*o); }; });
}

}  // namespace blindlist::cli
