// blindlist post: encrypt a message to a list's certificate and submit it over
// SMTP. The certificate comes from groupd's public endpoint and is pinned on
// first use (like ssh's known_hosts): a changed certificate is refused unless
// the user accepts it, since whoever can swap it could read every later post.
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "api/groupd_client.h"
#include "commands.h"
#include "crypto/x509.h"
#include "io.h"
#include "message_crypto.h"
#include "net/smtp_client.h"
#include "server_options.h"

namespace blindlist::cli {
namespace {

struct PostOptions {
  IoOptions io;
  api::ApiCredentials creds;
  std::string list;
  std::string group;
  std::string smtp = "127.0.0.1:25";
  std::string from;
  std::string known_lists;
  std::string smtp_ca;
  bool accept_new = false;
  bool require_tls = false;
  std::string cipher;  // empty: as the list's published policy says
};

std::string DefaultKnownLists() {
  if (const char* xdg = std::getenv("XDG_CONFIG_HOME"); xdg != nullptr && *xdg != '\0')
    return std::string(xdg) + "/blindlist/known_lists";
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0')
    return std::string(home) + "/.config/blindlist/known_lists";
  return "known_lists";
}

// Lines "LIST SHA256-HEX"; the last line for a list wins.
Result<std::string> PinnedFingerprint(const std::string& path, const std::string& list) {
  std::ifstream in(path);
  if (!in) return std::string();
  std::string line;
  std::string found;
  while (std::getline(in, line)) {
    std::istringstream fields(line);
    std::string name;
    std::string fp;
    if (!(fields >> name >> fp) || name[0] == '#') continue;
    if (name == list) found = fp;
  }
  return found;
}

Status Pin(const std::string& path, const std::string& list, const std::string& fingerprint) {
  std::size_t slash = path.rfind('/');
  if (slash != std::string::npos) {
    std::string dir = path.substr(0, slash);
    // mkdir -p for ~/.config/blindlist
    for (std::size_t i = 1; i <= dir.size(); ++i) {
      if (i == dir.size() || dir[i] == '/') ::mkdir(dir.substr(0, i).c_str(), 0700);
    }
  }
  std::ofstream out(path, std::ios::app);
  out << list << " " << fingerprint << "\n";
  out.flush();
  if (!out) return MakeError("io-error", path + ": cannot record the pinned certificate");
  return Status::Ok();
}

Status RunPost(PostOptions o) {
  BL_TRY(FinishServerOptions(o.creds));
  if (o.group.empty()) o.group = o.list;
  if (o.known_lists.empty()) o.known_lists = DefaultKnownLists();
  net::SmtpClientConfig smtp;
  {
    std::size_t colon = o.smtp.rfind(':');
    if (colon == std::string::npos) return MakeError("usage", "--smtp takes HOST:PORT");
    smtp.host = o.smtp.substr(0, colon);
    unsigned port = 0;
    const char* first = o.smtp.data() + colon + 1;
    const char* last = o.smtp.data() + o.smtp.size();
    auto [end, ec] = std::from_chars(first, last, port);
    if (ec != std::errc() || end != last || port == 0 || port > 65535)
      return MakeError("usage", "--smtp: bad port in " + o.smtp);
    smtp.port = static_cast<std::uint16_t>(port);
  }
  smtp.ca_file = o.smtp_ca;
  smtp.starttls = o.require_tls ? net::SmtpClientConfig::StartTls::kRequired
                                : net::SmtpClientConfig::StartTls::kIfOffered;

  BL_TRY_ASSIGN(std::string message, ReadInput(o.io.in));

  // The list certificate, checked against the pin.
  api::ApiClient client(o.creds);
  BL_TRY_ASSIGN(std::string pem,
                client.GetText("/v1/groups/" + api::ApiClient::Segment(o.group) + "/certificate"));
  BL_TRY_ASSIGN(crypto::Certificate cert, crypto::Certificate::Load(AsBytes(pem)));
  crypto::CertificateInfo info = crypto::DescribeCertificate(cert);
  if (!info.emails.empty() &&
      std::find(info.emails.begin(), info.emails.end(), o.list) == info.emails.end()) {
    return MakeError("wrong-certificate", "the certificate served for " + o.list + " is for " +
                                              info.emails.front() + "; not posting");
  }
  const std::string fingerprint = ToHex(crypto::Sha256(cert.Der()));
  BL_TRY_ASSIGN(std::string pinned, PinnedFingerprint(o.known_lists, o.list));
  if (pinned.empty()) {
    BL_TRY(Pin(o.known_lists, o.list, fingerprint));
    std::fprintf(stderr, "blindlist: pinned the certificate of %s (SHA-256 %s) in %s\n",
                 o.list.c_str(), fingerprint.c_str(), o.known_lists.c_str());
  } else if (pinned != fingerprint) {
    if (!o.accept_new) {
      return MakeError("certificate-changed",
                       "the certificate of " + o.list + " changed (pinned " + pinned + ", now " +
                           fingerprint +
                           "); if the list rotated its key, check and run again with "
                           "--accept-new-certificate");
    }
    BL_TRY(Pin(o.known_lists, o.list, fingerprint));
    std::fprintf(stderr, "blindlist: accepted the new certificate of %s (SHA-256 %s)\n",
                 o.list.c_str(), fingerprint.c_str());
  }

  // The list's published cipher policy (X-Blindlist-Content-Cipher): what its members can read.
  const std::string policy = client.last_header("x-blindlist-content-cipher");
  std::string cipher = o.cipher;
  if (cipher.empty()) cipher = policy == "aes-cbc" ? "aes-256-cbc" : "aes-256-gcm";
  if (policy == "aes-cbc" && cipher != "aes-256-cbc") {
    return MakeError("usage", o.list +
                                  " is read with NSS (Thunderbird), which opens only AES-CBC: "
                                  "post with --cipher aes-256-cbc (or without --cipher)");
  }
  if (policy == "aead" && cipher != "aes-256-gcm") {
    return MakeError("usage", o.list +
                                  " takes only authenticated encryption (AES-GCM): post with "
                                  "--cipher aes-256-gcm (or without --cipher)");
  }
  crypto::EncryptOptions options;
  options.cipher = cipher == "aes-256-cbc" ? crypto::ContentCipher::kAes256Cbc
                                           : crypto::ContentCipher::kAes256Gcm;
  BL_TRY_ASSIGN(std::string encrypted, EncryptMessage(message, {cert}, {}, options));

  const std::string& from = o.from;
  BL_TRY_ASSIGN(auto session, net::SmtpClient::Connect(smtp));
  BL_TRY_ASSIGN(net::SmtpSendResult sent, session->Send(from, {o.list}, encrypted));
  session->Quit();
  const net::SmtpRecipientResult& r = sent.recipients.at(0);
  if (r.code / 100 != 2) {
    return MakeError("refused",
                     o.list + ": " + std::to_string(r.code) + " " + r.enhanced + " " + r.text);
  }
  std::fprintf(stderr, "blindlist: posted to %s: %d %s %s\n", o.list.c_str(), r.code,
               r.enhanced.c_str(), r.text.c_str());
  return Status::Ok();
}

}  // namespace

void AddPostCommand(CLI::App& app, Action* chosen) {
  auto o = std::make_shared<PostOptions>();
  auto* cmd = app.add_subcommand(
      "post",
      "Encrypt a message to a list's certificate (pinned on first use) and send it by SMTP");
  cmd->add_option("-i,--in", o->io.in, "The message (RFC 5322); default standard input");
  cmd->add_option("--list", o->list, "The list address")->required();
  cmd->add_option("--group", o->group,
                  "The list's group name on groupd (default: the list address)");
  AddServerOptions(cmd, o->creds, /*server_required=*/true);
  cmd->add_option("--smtp", o->smtp, "Where to submit: HOST:PORT (listd or your MTA)");
  cmd->add_option("--from", o->from, "Envelope sender (a member's address)")->required();
  cmd->add_option("--known-lists", o->known_lists,
                  "Pinned list certificates (default ~/.config/blindlist/known_lists)");
  cmd->add_flag("--accept-new-certificate", o->accept_new,
                "Accept and pin a list certificate that differs from the pinned one");
  cmd->add_flag("--require-tls", o->require_tls, "Refuse to submit without STARTTLS");
  cmd->add_option("--smtp-ca", o->smtp_ca, "CA certificate(s) that verify the SMTP server (PEM)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--cipher", o->cipher,
                  "aes-256-gcm or aes-256-cbc (default: as the list publishes with its "
                  "certificate: aes-256-cbc for lists read with NSS/Thunderbird, else aes-256-gcm)")
      ->check(CLI::IsMember({"aes-256-gcm", "aes-256-cbc"}));
  cmd->callback([chosen, o] { *chosen = [o] { return RunPost(*o); }; });
}

}  // namespace blindlist::cli
