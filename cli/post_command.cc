// blindlist post: encrypt a message to a list's certificate and submit it over
// SMTP. The certificate comes from groupd's public endpoint and is pinned on
// first use (like ssh's known_hosts): a changed certificate is refused unless
// the user accepts it, since whoever can swap it could read every later post. With the
// deployment CA (--deployment-ca, pinned on first use too), a newer certificate for the same
// list signed by that CA is a key rotation and is accepted without asking. The certificate in
// use is cached, so posting keeps working while groupd is down. Submission may log in with
// SMTP AUTH, only over TLS.
#include <sys/stat.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <charconv>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <fstream>
#include <optional>
#include <sstream>

#include "api/groupd_client.h"
#include "blindlist/error_codes.h"
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
  std::string cache_dir;
  std::string deployment_ca;
  std::string smtp_user;
  std::string smtp_password_file;
  bool accept_new = false;
  bool require_tls = false;
  std::string cipher;  // empty: as the list's published policy says
};

// `leaf` under the XDG base directory `xdg_variable` names, else under ~/`home_dir`,
// else `fallback` (no HOME: the current directory).
std::string XdgPath(const char* xdg_variable, const char* home_dir, const char* leaf,
                    const char* fallback) {
  if (const char* xdg = std::getenv(xdg_variable); xdg != nullptr && *xdg != '\0')
    return std::string(xdg) + "/" + leaf;
  if (const char* home = std::getenv("HOME"); home != nullptr && *home != '\0')
    return std::string(home) + "/" + home_dir + "/" + leaf;
  return fallback;
}

std::string DefaultKnownLists() {
  return XdgPath("XDG_CONFIG_HOME", ".config", "blindlist/known_lists", "known_lists");
}

std::string DefaultCacheDir() {
  return XdgPath("XDG_CACHE_HOME", ".cache", "blindlist", ".blindlist-cache");
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

// mkdir -p for the directory holding `path` (~/.config/blindlist, ~/.cache/blindlist/lists).
void MakeParentDirs(const std::string& path) {
  std::size_t slash = path.rfind('/');
  if (slash == std::string::npos) return;
  std::string dir = path.substr(0, slash);
  for (std::size_t i = 1; i <= dir.size(); ++i) {
    if (i == dir.size() || dir[i] == '/') ::mkdir(dir.substr(0, i).c_str(), 0700);
  }
}

Status Pin(const std::string& path, const std::string& list, const std::string& fingerprint) {
  MakeParentDirs(path);
  std::ofstream out(path, std::ios::app);
  out << list << " " << fingerprint << "\n";
  out.flush();
  if (!out) return MakeError("io-error", path + ": cannot record the pinned certificate");
  return Status::Ok();
}

// The cache: CACHE/lists/LIST.pem (the certificate last used for LIST) and
// CACHE/lists/LIST.ca.pem (the deployment CA pinned for it). Written atomically.
std::string CachePath(const PostOptions& o, const std::string& suffix) {
  std::string name;
  for (char c : o.list) name += (c == '/' || c == '\0') ? '_' : c;
  return o.cache_dir + "/lists/" + name + suffix;
}

Status WriteCacheFile(const std::string& path, std::string_view text) {
  MakeParentDirs(path);
  const std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc | std::ios::binary);
    out << text;
    out.flush();
    if (!out) return MakeError("io-error", tmp + ": cannot write the certificate cache");
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0)
    return MakeError("io-error", path + ": cannot write the certificate cache");
  return Status::Ok();
}

// The deployment CA for this list: --deployment-ca, pinned on first use; later runs without
// the option use the pinned one. A different CA than the pinned one is refused.
Result<std::optional<crypto::Certificate>> DeploymentCa(const PostOptions& o) {
  const std::string pinned_path = CachePath(o, ".ca.pem");
  auto pinned_pem = ReadInput(pinned_path, 1 << 20);
  if (o.deployment_ca.empty()) {
    if (!pinned_pem.ok()) return std::optional<crypto::Certificate>();
    BL_TRY_ASSIGN(crypto::Certificate ca, crypto::Certificate::Load(AsBytes(*pinned_pem)));
    return std::optional<crypto::Certificate>(std::move(ca));
  }
  BL_TRY_ASSIGN(std::string pem, ReadInput(o.deployment_ca, 1 << 20));
  BL_TRY_ASSIGN(crypto::Certificate ca, crypto::Certificate::Load(AsBytes(pem)));
  if (pinned_pem.ok()) {
    BL_TRY_ASSIGN(crypto::Certificate pinned, crypto::Certificate::Load(AsBytes(*pinned_pem)));
    if (pinned.Der() != ca.Der()) {
      return MakeError("deployment-ca-changed",
                       "the deployment CA given for " + o.list + " (" + o.deployment_ca +
                           ") is not the one pinned in " + pinned_path + "; not posting");
    }
  } else {
    BL_TRY(WriteCacheFile(pinned_path, pem));
  }
  return std::optional<crypto::Certificate>(std::move(ca));
}

// Failures that mean "groupd cannot answer now", where the cached certificate may be used.
// A refusal about the list itself (unknown-group, no-certificate) is never one of them.
bool GroupdUnreachable(const Error& e) {
  for (const char* code : {"connect-failed", "timeout", "tls-failed", "bad-reply",
                           "store-unavailable", "internal-error", "rate-limited"}) {
    if (e.code == code) return true;
  }
  return e.code.starts_with("http-5");
}

Status CheckNames(const crypto::Certificate& cert, const std::string& list) {
  crypto::CertificateInfo info = crypto::DescribeCertificate(cert);
  if (!info.emails.empty() &&
      std::find(info.emails.begin(), info.emails.end(), list) == info.emails.end()) {
    return MakeError("wrong-certificate", "the certificate served for " + list + " is for " +
                                              info.emails.front() + "; not posting");
  }
  return Status::Ok();
}

// The certificate groupd serves now, checked against the pin (and the deployment CA).
Result<crypto::Certificate> FetchPinned(PostOptions& o, const std::string& pem,
                                        const std::optional<crypto::Certificate>& ca,
                                        const std::string& pinned) {
  BL_TRY_ASSIGN(crypto::Certificate cert, crypto::Certificate::Load(AsBytes(pem)));
  BL_TRY(CheckNames(cert, o.list));
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  if (ca) {
    Status chained = crypto::VerifyIssuedBy(cert, *ca, now);
    if (!chained.ok()) {
      return MakeError("certificate-untrusted",
                       "the certificate served for " + o.list +
                           " is not a valid certificate of the pinned deployment CA (" +
                           chained.error().message + "); not posting");
    }
  }
  const std::string fingerprint = ToHex(crypto::Sha256(cert.Der()));
  if (pinned.empty()) {
    BL_TRY(Pin(o.known_lists, o.list, fingerprint));
    std::fprintf(stderr, "blindlist: pinned the certificate of %s (SHA-256 %s) in %s\n",
                 o.list.c_str(), fingerprint.c_str(), o.known_lists.c_str());
    return cert;
  }
  if (pinned == fingerprint) return cert;
  // A rotation: a newer certificate for the same list, signed by the pinned deployment CA.
  bool newer = false;
  if (ca) {
    auto cached_pem = ReadInput(CachePath(o, ".pem"), 1 << 20);
    auto cached = cached_pem.ok() ? crypto::Certificate::Load(AsBytes(*cached_pem))
                                  : Result<crypto::Certificate>(cached_pem.error());
    newer = cached.ok() && ToHex(crypto::Sha256(cached->Der())) == pinned &&
            crypto::DescribeCertificate(cert).not_before >=
                crypto::DescribeCertificate(*cached).not_before;
  }
  if (!newer && !o.accept_new) {
    return MakeError("certificate-changed",
                     "the certificate of " + o.list + " changed (pinned " + pinned + ", now " +
                         fingerprint +
                         (ca ? "; it is not a newer certificate of the pinned deployment CA" : "") +
                         "); if the list rotated its key, check and run again with "
                         "--accept-new-certificate");
  }
  BL_TRY(Pin(o.known_lists, o.list, fingerprint));
  std::fprintf(stderr, "blindlist: accepted the new certificate of %s (SHA-256 %s)%s\n",
               o.list.c_str(), fingerprint.c_str(),
               newer ? ": a newer certificate of the pinned deployment CA (key rotation)" : "");
  return cert;
}

// The list certificate to encrypt to, with the content cipher policy groupd publishes beside it
// (X-Blindlist-Content-Cipher: what the members' clients can read; empty when none).
struct ListKey {
  crypto::Certificate cert;
  std::string cipher_policy;
};

// The list certificate to encrypt to: groupd's, pinned and cached; the cached one when groupd
// cannot be reached (it must still match the pin and be valid).
Result<ListKey> ListCertificate(PostOptions& o) {
  BL_TRY_ASSIGN(std::optional<crypto::Certificate> ca, DeploymentCa(o));
  BL_TRY_ASSIGN(std::string pinned, PinnedFingerprint(o.known_lists, o.list));
  api::ApiClient client(o.creds);
  auto pem = client.GetText("/v1/groups/" + api::ApiClient::Segment(o.group) + "/certificate");
  if (pem.ok()) {
    BL_TRY_ASSIGN(crypto::Certificate cert, FetchPinned(o, *pem, ca, pinned));
    std::string policy = client.last_header("x-blindlist-content-cipher");
    BL_TRY(WriteCacheFile(CachePath(o, ".pem"), *pem));
    BL_TRY(WriteCacheFile(CachePath(o, ".cipher"), policy));
    return ListKey{std::move(cert), std::move(policy)};
  }
  if (!GroupdUnreachable(pem.error())) return pem.error();
  const std::string cache = CachePath(o, ".pem");
  auto cached_pem = ReadInput(cache, 1 << 20);
  if (!cached_pem.ok()) {
    return MakeError(pem.error().code, pem.error().message + " (and no cached certificate of " +
                                           o.list + " in " + cache + ")");
  }
  BL_TRY_ASSIGN(crypto::Certificate cert, crypto::Certificate::Load(AsBytes(*cached_pem)));
  const std::string fingerprint = ToHex(crypto::Sha256(cert.Der()));
  if (pinned.empty() || fingerprint != pinned) {
    return MakeError("certificate-changed",
                     cache + " does not hold the pinned certificate of " + o.list +
                         "; not posting (groupd: " + pem.error().message + ")");
  }
  const auto now = static_cast<std::int64_t>(std::time(nullptr));
  if (crypto::DescribeCertificate(cert).not_after < now) {
    return MakeError("expired",
                     "the cached certificate of " + o.list +
                         " has expired and groupd cannot be reached: " + pem.error().message);
  }
  std::fprintf(stderr,
               "blindlist: groupd cannot be reached (%s); using the cached certificate of %s "
               "(SHA-256 %s) from %s\n",
               pem.error().message.c_str(), o.list.c_str(), fingerprint.c_str(), cache.c_str());
  auto policy = ReadInput(CachePath(o, ".cipher"), 64);  // absent (older cache): no policy
  return ListKey{std::move(cert), policy.ok() ? *policy : std::string()};
}

Result<net::SmtpClientConfig> SmtpConfig(const PostOptions& o) {
  net::SmtpClientConfig smtp;
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
  smtp.ca_file = o.smtp_ca;
  // A login needs TLS: with --smtp-user, STARTTLS is required, not just taken when offered.
  smtp.starttls = o.require_tls || !o.smtp_user.empty()
                      ? net::SmtpClientConfig::StartTls::kRequired
                      : net::SmtpClientConfig::StartTls::kIfOffered;
  return smtp;
}

// The password file: its first line (a trailing CR/LF dropped), never a command-line argument.
Result<SecretBytes> ReadPassword(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    return MakeError("bad-config", path + ": cannot read the SMTP password file");
  if ((st.st_mode & 077) != 0) {
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return MakeError("bad-config", path + ": the SMTP password file has mode " + mode +
                                       ", open to group or others; chmod 600 it");
  }
  BL_TRY_ASSIGN(std::string text, ReadInput(path, 4096));
  std::size_t end = text.find_first_of("\r\n");
  if (end == std::string::npos) end = text.size();
  SecretBytes password(ByteView(reinterpret_cast<const std::uint8_t*>(text.data()), end));
  std::fill(text.begin(), text.end(), '\0');
  if (password.empty()) return MakeError("bad-config", path + ": the SMTP password is empty");
  return password;
}

Status RunPost(PostOptions o) {
  BL_TRY(FinishServerOptions(o.creds));
  if (o.group.empty()) o.group = o.list;
  if (o.known_lists.empty()) o.known_lists = DefaultKnownLists();
  if (o.cache_dir.empty()) o.cache_dir = DefaultCacheDir();
  if (o.smtp_user.empty()) {
    if (const char* u = std::getenv("BLINDLIST_SMTP_USER"); u != nullptr) o.smtp_user = u;
  }
  if (o.smtp_password_file.empty()) {
    if (const char* f = std::getenv("BLINDLIST_SMTP_PASSWORD_FILE"); f != nullptr)
      o.smtp_password_file = f;
  }
  if (o.smtp_user.empty() != o.smtp_password_file.empty())
    return MakeError("usage", "--smtp-user and --smtp-password-file go together");
  BL_TRY_ASSIGN(net::SmtpClientConfig smtp, SmtpConfig(o));
  std::optional<SecretBytes> password;
  if (!o.smtp_user.empty()) {
    if (o.smtp_ca.empty())
      return MakeError("usage",
                       "--smtp-user needs --smtp-ca: a password goes only to a verified "
                       "server");
    BL_TRY_ASSIGN(SecretBytes p, ReadPassword(o.smtp_password_file));
    password = std::move(p);
  }

  BL_TRY_ASSIGN(std::string message, ReadInput(o.io.in));
  BL_TRY_ASSIGN(ListKey key, ListCertificate(o));
  const crypto::Certificate& cert = key.cert;

  // The list's published cipher policy (X-Blindlist-Content-Cipher): what its members can read.
  const std::string& policy = key.cipher_policy;
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
  if (password) BL_TRY(session->Authenticate(o.smtp_user, *password));
  BL_TRY_ASSIGN(net::SmtpSendResult sent, session->Send(from, {o.list}, encrypted));
  session->Quit();
  if (sent.recipients.empty())  // one RCPT TO, so one answer; none is the server's fault
    return MakeError(std::string(errc::kBadReply),
                     o.list + ": the SMTP server gave no answer to RCPT TO");
  const net::SmtpRecipientResult& r = sent.recipients.front();
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
  cmd->add_option("--cache-dir", o->cache_dir,
                  "Where the list certificate is cached for use while groupd is down "
                  "(default $XDG_CACHE_HOME/blindlist, else ~/.cache/blindlist)");
  cmd->add_option("--deployment-ca", o->deployment_ca,
                  "The deployment CA that signs list certificates (pinned on first use): a "
                  "newer certificate it signs for the list is a key rotation, accepted")
      ->check(CLI::ExistingFile);
  cmd->add_option("--smtp-user", o->smtp_user,
                  "Log in to the submission server with SMTP AUTH (PLAIN or LOGIN), only over "
                  "verified STARTTLS (needs --smtp-ca); env BLINDLIST_SMTP_USER");
  cmd->add_option("--smtp-password-file", o->smtp_password_file,
                  "File (mode 0600) whose first line is the SMTP password; env "
                  "BLINDLIST_SMTP_PASSWORD_FILE");
  cmd->add_option("--cipher", o->cipher,
                  "aes-256-gcm or aes-256-cbc (default: as the list publishes with its "
                  "certificate: aes-256-cbc for lists read with NSS/Thunderbird, else aes-256-gcm)")
      ->check(CLI::IsMember({"aes-256-gcm", "aes-256-cbc"}));
  cmd->callback([chosen, o] { *chosen = [o] { return RunPost(*o); }; });
}

}  // namespace blindlist::cli
