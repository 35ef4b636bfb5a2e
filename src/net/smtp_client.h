// A blocking SMTP/LMTP client for one connection: listd's delivery workers (fan-out to a
// smarthost), `blindlist post`, and the benchmark baseline. It takes STARTTLS when offered
// (or insists on it), pipelines MAIL/RCPT/DATA when the server offers PIPELINING, and
// dot-stuffs the message while streaming it, so a large post is never copied whole.
// Thread-safety: one SmtpClient per thread; not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "blindlist/bytes.h"
#include "blindlist/result.h"

namespace blindlist::net {

struct SmtpClientConfig {
  std::string host = "127.0.0.1";
  std::uint16_t port = 25;
  std::string helo_name = "localhost";
  enum class StartTls { kIfOffered, kRequired, kNever } starttls = StartTls::kIfOffered;
  // Verify the server certificate against this (and its name against `host`) when set.
  // kRequired needs it: TLS without verification would not protect anything it promises.
  // kIfOffered without it is opportunistic TLS (RFC 7435): encrypted, unauthenticated.
  std::string ca_file;
  bool lmtp = false;                         // LHLO and per-recipient DATA replies
  std::chrono::milliseconds timeout{60000};  // per read/write, connect included
};

struct SmtpRecipientResult {
  std::string address;
  int code = 0;
  std::string enhanced;
  std::string text;
  // The reply is the DATA command's or the end of data's: about the message, not this
  // recipient (a 5xx there is a refusal of the message itself, never a member's bounce).
  bool data_phase = false;
};
// One per recipient passed in, in order: the RCPT refusal, or the DATA reply that applies
// to it. 2xx: delivered; 4xx: retry later; 5xx: bounce.
struct SmtpSendResult {
  std::vector<SmtpRecipientResult> recipients;
};

class SmtpClient {
 public:
  // Connects, reads the greeting, EHLO/LHLO, STARTTLS as configured. Errors:
  // "smtp-unavailable" (connect, greeting, TLS failure, 421) with the server's text;
  // "bad-config" (kRequired without ca_file, an unreadable ca_file).
  static Result<std::unique_ptr<SmtpClient>> Connect(const SmtpClientConfig& config);

  // One transaction. A connection-level failure (including a 421) returns an error
  // ("smtp-unavailable"): the caller retries everyone, on a new connection. MAIL FROM
  // refused -> every recipient gets that reply. No recipient accepted -> RSET, no DATA.
  // `message` is sent as is (CRLF line endings expected), dot-stuffed on the way.
  // A UTF-8 sender or recipient (RFC 6531) is sent with MAIL's SMTPUTF8 parameter when the
  // server offers SMTPUTF8; otherwise it never reaches the wire: 553 5.6.7 for that recipient
  // (for every recipient, when it is the sender), and the others are sent as usual.
  // `xverp`: ask the server (Postfix, which must offer XVERP) to give each recipient its own
  // envelope sender, mail_from's local part + "+" + local=domain of the recipient
  // ("MAIL FROM:<...> XVERP=+="). "bad-config" when the server does not offer it.
  Result<SmtpSendResult> Send(const std::string& mail_from,
                              const std::vector<std::string>& recipients, std::string_view message,
                              bool xverp = false);
  // SMTP AUTH (RFC 4954) with PLAIN (RFC 4616), or LOGIN when the server offers only that,
  // for a submission server (port 587, RFC 6409). Only on a TLS connection: the password never
  // crosses plaintext, whatever the server offers. Errors: "auth-needs-tls" (no TLS),
  // "auth-unsupported" (neither mechanism offered), "auth-refused" (535 and the like: the
  // server's reply), "smtp-unavailable" (connection failures).
  Status Authenticate(std::string_view user, const SecretBytes& password);
  // Best effort: QUIT, then close. The client is unusable afterwards.
  void Quit();
  bool tls() const;
  // What the server's EHLO offered.
  bool pipelining() const;
  bool xverp() const;
  // The SASL mechanisms of the server's (last) EHLO AUTH line, upper case.
  const std::vector<std::string>& auth_mechanisms() const;

  ~SmtpClient();
  SmtpClient(const SmtpClient&) = delete;
  SmtpClient& operator=(const SmtpClient&) = delete;

  // Bytes handed to one socket write while streaming a message (a test checks that Send
  // never buffers more than about this much of it).
  static constexpr std::size_t kStreamChunkBytes = std::size_t{64} * 1024;

 private:
  struct Impl;
  explicit SmtpClient(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace blindlist::net
