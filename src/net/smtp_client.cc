// SmtpClient: blocking calls on top of Asio's asynchronous operations, driven by a private
// io_context one handler at a time, so that every read and write has a timeout and a
// pipelined command batch can be written while its replies are read (writing 10,000 RCPTs
// before reading any reply would deadlock once both socket buffers fill).

// The own header first: Boost 1.74's asio/awaitable.hpp needs <utility> included before it.
#include "net/smtp_client.h"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/write.hpp>
#include <cctype>
#include <optional>
#include <utility>

#include "blindlist/base64.h"
#include "net/openssl_error.h"
#include "net/smtp_protocol.h"

namespace blindlist::net {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using tcp = boost::asio::ip::tcp;
using error_code = boost::system::error_code;

constexpr std::size_t kReadChunk = std::size_t{16} * 1024;
// A reply line longer than this is not SMTP (RFC 5321 allows 512 bytes).
constexpr std::size_t kMaxReplyLine = std::size_t{64} * 1024;
constexpr int kMaxReplyLines = 1000;

Error Unavailable(std::string message) { return MakeError("smtp-unavailable", std::move(message)); }

// A whole (possibly multi-line) reply.
struct Reply {
  int code = 0;
  std::string enhanced;
  std::string text;                // the last line's text
  std::vector<std::string> lines;  // every line's text
  bool ok() const { return code >= 200 && code < 300; }
  std::string Describe() const {
    return std::to_string(code) + (enhanced.empty() ? "" : " " + enhanced) + " " + text;
  }
};

std::string Upper(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

}  // namespace

struct SmtpClient::Impl {
  explicit Impl(SmtpClientConfig c) : config(std::move(c)), socket(ioc) {}

  // Runs handlers until `done`; a gap of config.timeout without any handler is a timeout,
  // which closes the connection (and completes the pending operations with an error).
  Status RunUntil(const bool& done, std::string_view what) {
    while (!done) {
      if (ioc.stopped()) ioc.restart();
      if (ioc.run_one_for(config.timeout) == 0 && !done) {
        broken = true;
        error_code ignored;
        socket.close(ignored);
        ioc.restart();
        ioc.run();  // the aborted operations complete; nothing else is pending
        return Unavailable("timed out " + std::string(what) + " " + Where());
      }
    }
    return Status::Ok();
  }

  std::string Where() const { return config.host + ":" + std::to_string(config.port); }

  template <typename Buffer, typename Handler>
  void StartRead(const Buffer& buffer, Handler&& handler) {
    if (tls) {
      tls->async_read_some(buffer, std::forward<Handler>(handler));
    } else {
      socket.async_read_some(buffer, std::forward<Handler>(handler));
    }
  }
  template <typename Handler>
  void StartWrite(std::string_view data, Handler&& handler) {
    if (tls) {
      asio::async_write(*tls, asio::buffer(data.data(), data.size()),
                        std::forward<Handler>(handler));
    } else {
      asio::async_write(socket, asio::buffer(data.data(), data.size()),
                        std::forward<Handler>(handler));
    }
  }

  Status WriteAll(std::string_view data) {
    bool done = false;
    error_code ec;
    StartWrite(data, [&](const error_code& e, std::size_t) {
      ec = e;
      done = true;
    });
    BL_TRY(RunUntil(done, "writing to"));
    if (ec) {
      broken = true;
      return Unavailable("cannot write to " + Where() + ": " + ec.message());
    }
    return Status::Ok();
  }

  // A pipelined batch: starts writing `data`; it completes while replies are read.
  void StartBatchWrite(std::string_view data) {
    batch_done = false;
    batch_error = {};
    StartWrite(data, [this](const error_code& e, std::size_t) {
      batch_error = e;
      batch_done = true;
    });
  }
  Status FinishBatchWrite() {
    BL_TRY(RunUntil(batch_done, "writing to"));
    if (batch_error) {
      broken = true;
      return Unavailable("cannot write to " + Where() + ": " + batch_error.message());
    }
    return Status::Ok();
  }

  Result<std::string> ReadLine() {
    for (;;) {
      const std::size_t nl = in.find('\n', in_pos);
      if (nl != std::string::npos) {
        std::string line = in.substr(in_pos, nl - in_pos);
        in_pos = nl + 1;
        if (!line.empty() && line.back() == '\r') line.pop_back();
        return line;
      }
      if (in.size() - in_pos > kMaxReplyLine) {
        broken = true;
        return Unavailable("reply line too long from " + Where());
      }
      if (in_pos > 0) {
        in.erase(0, in_pos);
        in_pos = 0;
      }
      const std::size_t old = in.size();
      in.resize(old + kReadChunk);
      bool done = false;
      error_code ec;
      std::size_t n = 0;
      StartRead(asio::buffer(in.data() + old, kReadChunk),
                [&](const error_code& e, std::size_t got) {
                  ec = e;
                  n = got;
                  done = true;
                });
      Status run = RunUntil(done, "reading from");
      in.resize(old + n);
      if (!run.ok()) return run.error();
      if (ec) {
        broken = true;
        return Unavailable("connection to " + Where() + " lost: " + ec.message());
      }
    }
  }

  // A 421 means the server is closing: the caller must treat it as a connection failure.
  Result<Reply> ReadReply() {
    Reply reply;
    for (int i = 0;; ++i) {
      if (i >= kMaxReplyLines) {
        broken = true;
        return Unavailable("reply from " + Where() + " has too many lines");
      }
      BL_TRY_ASSIGN(std::string line, ReadLine());
      auto parsed = ParseReplyLine(line);
      if (!parsed.ok() || (reply.code != 0 && parsed->code != reply.code)) {
        broken = true;
        return Unavailable("malformed reply from " + Where() + ": " + line.substr(0, 200));
      }
      reply.code = parsed->code;
      reply.enhanced = parsed->enhanced;
      reply.text = parsed->text;
      reply.lines.push_back(parsed->text);
      if (parsed->last) break;
    }
    if (reply.code == 421) {
      broken = true;
      return Unavailable(Where() + " is closing the connection: " + reply.Describe());
    }
    return reply;
  }

  Result<Reply> Command(const std::string& line) {
    BL_TRY(WriteAll(line + "\r\n"));
    return ReadReply();
  }

  Status Hello() {
    const std::string verb = config.lmtp ? "LHLO " : "EHLO ";
    BL_TRY_ASSIGN(Reply reply, Command(verb + config.helo_name));
    if (!reply.ok() && !config.lmtp) {
      BL_TRY_ASSIGN(reply, Command("HELO " + config.helo_name));
    }
    if (!reply.ok()) return Unavailable(Where() + " refused our greeting: " + reply.Describe());
    pipelining = false;
    auth_mechanisms.clear();
    starttls_offered = false;
    size_offered = false;
    eight_bit = false;
    xverp = false;
    smtputf8 = false;
    for (std::size_t i = 1; i < reply.lines.size(); ++i) {
      const std::string line = Upper(reply.lines[i]);
      const std::string keyword = line.substr(0, line.find(' '));
      if (keyword == "PIPELINING") pipelining = true;
      if (keyword == "STARTTLS") starttls_offered = true;
      if (keyword == "SIZE") size_offered = true;
      if (keyword == "8BITMIME") eight_bit = true;
      if (keyword == "AUTH" || keyword.starts_with("AUTH=")) NoteAuthMechanisms(line);
      if (keyword == "XVERP") xverp = true;
      if (keyword == "SMTPUTF8") smtputf8 = true;
    }
    return Status::Ok();
  }

  // "AUTH PLAIN LOGIN" (RFC 4954) or the old "AUTH=PLAIN LOGIN" form.
  void NoteAuthMechanisms(const std::string& line) {
    std::size_t pos = 5;
    while (pos < line.size()) {
      std::size_t end = line.find(' ', pos);
      if (end == std::string::npos) end = line.size();
      if (end > pos) auth_mechanisms.push_back(line.substr(pos, end - pos));
      pos = end + 1;
    }
  }

  Status StartTls() {
    BL_TRY_ASSIGN(Reply reply, Command("STARTTLS"));
    if (reply.code != 220) {
      return Unavailable(Where() + " refused STARTTLS: " + reply.Describe());
    }
    if (in_pos != in.size()) {
      // Bytes after the 220 came in plaintext: a man in the middle (RFC 3207 sec. 5).
      broken = true;
      return Unavailable(Where() + " sent data after its STARTTLS reply");
    }
    ctx = std::make_unique<ssl::context>(ssl::context::tls_client);
    SSL_CTX* native = ctx->native_handle();
    ERR_clear_error();
    SSL_CTX_set_min_proto_version(native, TLS1_2_VERSION);
    if (!config.ca_file.empty()) {
      if (SSL_CTX_load_verify_locations(native, config.ca_file.c_str(), nullptr) != 1) {
        return MakeError("bad-config",
                         "cannot load CA file " + config.ca_file + ": " + OpenSslError());
      }
      SSL_CTX_set_verify(native, SSL_VERIFY_PEER, nullptr);
    } else {
      SSL_CTX_set_verify(native, SSL_VERIFY_NONE, nullptr);
    }
    tls = std::make_unique<ssl::stream<tcp::socket&>>(socket, *ctx);
    SSL* ssl_handle = tls->native_handle();
    error_code ec;
    (void)asio::ip::make_address(config.host, ec);
    const bool host_is_ip = !ec;
    if (!host_is_ip) SSL_set_tlsext_host_name(ssl_handle, config.host.c_str());
    if (!config.ca_file.empty()) {
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl_handle);
      const int set = host_is_ip ? X509_VERIFY_PARAM_set1_ip_asc(param, config.host.c_str())
                                 : X509_VERIFY_PARAM_set1_host(param, config.host.c_str(), 0);
      if (set != 1) return MakeError("bad-config", "cannot verify the name " + config.host);
    }
    bool done = false;
    tls->async_handshake(ssl::stream_base::client, [&](const error_code& e) {
      ec = e;
      done = true;
    });
    BL_TRY(RunUntil(done, "in the TLS handshake with"));
    if (ec) {
      broken = true;
      std::string reason = ec.message();
      const long verify = SSL_get_verify_result(ssl_handle);
      if (verify != X509_V_OK)
        reason += " (" + std::string(X509_verify_cert_error_string(verify)) + ")";
      return Unavailable("TLS handshake with " + Where() + " failed: " + reason);
    }
    in.clear();
    in_pos = 0;
    return Hello();
  }

  Status StreamMessage(std::string_view message) {
    DotStuffer stuffer;
    std::string buf;
    buf.reserve(kStreamChunkBytes + kStreamChunkBytes / 2 + 8);
    std::size_t pos = 0;
    do {
      buf.clear();
      const std::string_view piece = message.substr(pos, kStreamChunkBytes);
      pos += piece.size();
      stuffer.Stuff(piece, buf);
      if (pos >= message.size()) stuffer.Finish(buf);
      BL_TRY(WriteAll(buf));
    } while (pos < message.size());
    return Status::Ok();
  }

  SmtpClientConfig config;
  asio::io_context ioc;
  tcp::socket socket;
  std::unique_ptr<ssl::context> ctx;
  std::unique_ptr<ssl::stream<tcp::socket&>> tls;
  std::string in;
  std::size_t in_pos = 0;
  bool broken = false;
  bool pipelining = false;
  bool starttls_offered = false;
  bool size_offered = false;
  bool eight_bit = false;
  std::vector<std::string> auth_mechanisms;
  bool xverp = false;
  bool smtputf8 = false;  // RFC 6531
  bool batch_done = true;
  error_code batch_error;
  std::string batch_buffer;
};

SmtpClient::SmtpClient(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SmtpClient::~SmtpClient() {
  if (!impl_) return;
  error_code ignored;
  impl_->socket.close(ignored);
}

Result<std::unique_ptr<SmtpClient>> SmtpClient::Connect(const SmtpClientConfig& config) {
  if (config.starttls == SmtpClientConfig::StartTls::kRequired && config.ca_file.empty()) {
    return MakeError("bad-config", "STARTTLS required but no ca_file to verify the server with");
  }
  auto impl = std::make_unique<Impl>(config);
  Impl& s = *impl;

  tcp::resolver resolver(s.ioc);
  bool done = false;
  error_code ec;
  tcp::resolver::results_type endpoints;
  resolver.async_resolve(config.host, std::to_string(config.port),
                         [&](const error_code& e, tcp::resolver::results_type r) {
                           ec = e;
                           endpoints = std::move(r);
                           done = true;
                         });
  if (Status st = s.RunUntil(done, "resolving"); !st.ok()) {
    resolver.cancel();
    return st.error();
  }
  if (ec) return Unavailable("cannot resolve " + s.Where() + ": " + ec.message());
  done = false;
  asio::async_connect(s.socket, endpoints, [&](const error_code& e, const tcp::endpoint&) {
    ec = e;
    done = true;
  });
  BL_TRY(s.RunUntil(done, "connecting to"));
  if (ec) return Unavailable("cannot connect to " + s.Where() + ": " + ec.message());
  error_code ignored;
  s.socket.set_option(tcp::no_delay(true), ignored);

  BL_TRY_ASSIGN(Reply greeting, s.ReadReply());
  if (greeting.code != 220) {
    return Unavailable(s.Where() + " refused the connection: " + greeting.Describe());
  }
  BL_TRY(s.Hello());
  using StartTls = SmtpClientConfig::StartTls;
  if (config.starttls != StartTls::kNever && s.starttls_offered) {
    BL_TRY(s.StartTls());
  } else if (config.starttls == StartTls::kRequired) {
    return Unavailable(s.Where() + " does not offer STARTTLS, which is required");
  }
  return std::unique_ptr<SmtpClient>(new SmtpClient(std::move(impl)));
}

Result<SmtpSendResult> SmtpClient::Send(const std::string& mail_from,
                                        const std::vector<std::string>& recipients,
                                        std::string_view message, bool xverp) {
  Impl& s = *impl_;
  if (s.broken) return Unavailable("the connection to " + s.Where() + " is broken");
  if (xverp && !s.xverp) return MakeError("bad-config", s.Where() + " does not offer XVERP");
  // Our own arguments must not smuggle commands onto the wire.
  auto clean = [](std::string_view a) {
    return std::none_of(a.begin(), a.end(),
                        [](char c) { return c == '\r' || c == '\n' || c == '>'; });
  };
  if (!clean(mail_from) || !std::all_of(recipients.begin(), recipients.end(), clean)) {
    return MakeError("bad-address", "an address contains CR, LF or '>'");
  }
  SmtpSendResult result;
  result.recipients.reserve(recipients.size());
  for (const auto& r : recipients) result.recipients.push_back(SmtpRecipientResult{r, 0, "", ""});
  // RFC 6531: a UTF-8 address goes on the wire only with MAIL's SMTPUTF8 parameter, and only to
  // a server that offers it. Otherwise it is refused here, permanently (as Postfix refuses it:
  // 553 5.6.7), and the ASCII recipients are sent as usual.
  const auto ascii = [](std::string_view a) {
    return std::none_of(a.begin(), a.end(),
                        [](char c) { return (static_cast<unsigned char>(c) & 0x80) != 0; });
  };
  const bool utf8 = !ascii(mail_from) || !std::all_of(recipients.begin(), recipients.end(), ascii);
  if (utf8 && !s.smtputf8) {
    const auto refuse = [&](SmtpRecipientResult& r, const char* whose) {
      r.code = 553;
      r.enhanced = "5.6.7";
      r.text = std::string(whose) + " UTF-8 address (RFC 6531) cannot be sent: " + s.Where() +
               " does not offer SMTPUTF8";
    };
    if (!ascii(mail_from)) {
      for (auto& r : result.recipients) refuse(r, "the sender's");
      return result;
    }
    std::vector<std::string> plain;
    std::vector<std::size_t> where;
    for (std::size_t i = 0; i < recipients.size(); ++i) {
      if (ascii(recipients[i])) {
        plain.push_back(recipients[i]);
        where.push_back(i);
      } else {
        refuse(result.recipients[i], "the recipient's");
      }
    }
    if (!plain.empty()) {
      BL_TRY_ASSIGN(SmtpSendResult sent, Send(mail_from, plain, message, xverp));
      for (std::size_t k = 0; k < where.size(); ++k)
        result.recipients[where[k]] = std::move(sent.recipients[k]);
    }
    return result;
  }
  auto set = [](SmtpRecipientResult& r, const Reply& reply, bool data_phase = false) {
    r.code = reply.code;
    r.enhanced = reply.enhanced;
    r.text = reply.text;
    r.data_phase = data_phase;
  };
  if (recipients.empty()) return result;

  std::string mail = "MAIL FROM:<" + mail_from + ">";
  if (s.size_offered) mail += " SIZE=" + std::to_string(message.size());
  if (s.eight_bit && std::any_of(message.begin(), message.end(), [](char c) {
        return (static_cast<unsigned char>(c) & 0x80) != 0;
      })) {
    mail += " BODY=8BITMIME";
  }
  if (utf8) mail += " SMTPUTF8";
  if (xverp) mail += " XVERP=+=";
  mail += "\r\n";

  std::vector<std::size_t> accepted;  // indexes into recipients
  Reply mail_reply;
  std::optional<Reply> data_reply;
  if (s.pipelining) {
    // RFC 2920: MAIL, every RCPT and DATA in one batch; DATA is the last of the group.
    // The buffer lives in Impl: an error return may leave the write pending.
    std::string& batch = s.batch_buffer;
    batch = mail;
    for (const auto& r : recipients) batch += "RCPT TO:<" + r + ">\r\n";
    batch += "DATA\r\n";
    s.StartBatchWrite(batch);
    BL_TRY_ASSIGN(mail_reply, s.ReadReply());
    for (std::size_t i = 0; i < recipients.size(); ++i) {
      BL_TRY_ASSIGN(Reply rcpt, s.ReadReply());
      set(result.recipients[i], mail_reply.ok() ? rcpt : mail_reply);
      if (mail_reply.ok() && rcpt.ok()) accepted.push_back(i);
    }
    BL_TRY_ASSIGN(data_reply, s.ReadReply());
    BL_TRY(s.FinishBatchWrite());
  } else {
    BL_TRY(s.WriteAll(mail));
    BL_TRY_ASSIGN(mail_reply, s.ReadReply());
    if (!mail_reply.ok()) {
      for (auto& r : result.recipients) set(r, mail_reply);
      return result;
    }
    for (std::size_t i = 0; i < recipients.size(); ++i) {
      BL_TRY_ASSIGN(Reply rcpt, s.Command("RCPT TO:<" + recipients[i] + ">"));
      set(result.recipients[i], rcpt);
      if (rcpt.ok()) accepted.push_back(i);
    }
    if (!accepted.empty()) {
      BL_TRY_ASSIGN(data_reply, s.Command("DATA"));
    }
  }

  if (accepted.empty() || data_reply->code != 354) {
    if (data_reply && data_reply->code == 354) {
      // A server that starts DATA without a recipient: end it empty, then forget it.
      BL_TRY(s.WriteAll(".\r\n"));
      BL_TRY_ASSIGN(Reply ignored, s.ReadReply());
      (void)ignored;
    }
    if (data_reply) {
      for (std::size_t i : accepted) set(result.recipients[i], *data_reply, true);
    }
    if (mail_reply.ok()) {
      BL_TRY_ASSIGN(Reply rset, s.Command("RSET"));
      (void)rset;
    }
    return result;
  }

  BL_TRY(s.StreamMessage(message));
  if (s.config.lmtp) {
    for (std::size_t i : accepted) {
      BL_TRY_ASSIGN(Reply r, s.ReadReply());
      set(result.recipients[i], r);  // LMTP: this recipient's own answer
    }
  } else {
    BL_TRY_ASSIGN(Reply r, s.ReadReply());
    for (std::size_t i : accepted) set(result.recipients[i], r, true);
  }
  return result;
}

void SmtpClient::Quit() {
  Impl& s = *impl_;
  if (!s.broken && s.socket.is_open()) {
    const std::chrono::milliseconds saved = s.config.timeout;
    // Nobody waits long for a goodbye.
    s.config.timeout = std::min(saved, std::chrono::milliseconds(5000));
    if (s.WriteAll("QUIT\r\n").ok()) (void)s.ReadReply();
    s.config.timeout = saved;
  }
  s.broken = true;
  error_code ignored;
  s.socket.close(ignored);
}

namespace {

// Clears a string that held a credential before it is freed.
struct CleansedString {
  std::string value;
  CleansedString() = default;
  explicit CleansedString(std::string v) : value(std::move(v)) {}
  CleansedString(const CleansedString&) = delete;
  CleansedString& operator=(const CleansedString&) = delete;
  ~CleansedString() { OPENSSL_cleanse(value.data(), value.size()); }
};

}  // namespace

Status SmtpClient::Authenticate(std::string_view user, const SecretBytes& password) {
  Impl& s = *impl_;
  if (s.broken) return Unavailable("the connection to " + s.Where() + " is broken");
  if (!s.tls) {
    return MakeError("auth-needs-tls", "not sending a password to " + s.Where() +
                                           " without TLS: the server did not offer STARTTLS");
  }
  const auto offered = [&](std::string_view m) {
    return std::find(s.auth_mechanisms.begin(), s.auth_mechanisms.end(), m) !=
           s.auth_mechanisms.end();
  };
  const bool has_nul =
      std::find(user.begin(), user.end(), '\0') != user.end() ||
      std::find(password.view().begin(), password.view().end(), 0) != password.view().end();
  if (has_nul || user.find_first_of("\r\n") != std::string_view::npos) {
    return MakeError("bad-config", "the SMTP user name or password contains NUL, CR or LF");
  }
  Reply reply;
  if (offered("PLAIN")) {
    // RFC 4616: authzid NUL authcid NUL passwd; the empty authzid means "as the user".
    CleansedString plain;
    plain.value.reserve(user.size() + password.size() + 2);
    plain.value.push_back('\0');
    plain.value.append(user);
    plain.value.push_back('\0');
    plain.value.append(reinterpret_cast<const char*>(password.data()), password.size());
    CleansedString line;
    line.value.reserve(16 + 4 * plain.value.size() / 3 + 8);
    line.value = "AUTH PLAIN ";
    AppendBase64(line.value, AsBytes(plain.value));
    line.value += "\r\n";
    BL_TRY(s.WriteAll(line.value));
    BL_TRY_ASSIGN(reply, s.ReadReply());
  } else if (offered("LOGIN")) {
    BL_TRY_ASSIGN(reply, s.Command("AUTH LOGIN"));
    if (reply.code == 334) {
      std::string name;
      AppendBase64(name, AsBytes(user));
      BL_TRY_ASSIGN(reply, s.Command(name));
    }
    if (reply.code == 334) {
      CleansedString secret;
      secret.value.reserve(4 * password.size() / 3 + 8);
      AppendBase64(secret.value, password.view());
      secret.value += "\r\n";
      BL_TRY(s.WriteAll(secret.value));
      BL_TRY_ASSIGN(reply, s.ReadReply());
    }
  } else {
    return MakeError("auth-unsupported", s.Where() + " offers neither AUTH PLAIN nor AUTH LOGIN");
  }
  if (reply.code == 334) {
    // A challenge we did not expect: cancel the exchange (RFC 4954 section 4).
    BL_TRY_ASSIGN(reply, s.Command("*"));
    return MakeError("auth-refused", s.Where() + " sent an unexpected AUTH challenge");
  }
  if (reply.code != 235) {
    return MakeError("auth-refused", s.Where() + " refused the login: " + reply.Describe());
  }
  return Status::Ok();
}

const std::vector<std::string>& SmtpClient::auth_mechanisms() const {
  return impl_->auth_mechanisms;
}

bool SmtpClient::tls() const { return impl_->tls != nullptr; }
bool SmtpClient::pipelining() const { return impl_->pipelining; }
bool SmtpClient::xverp() const { return impl_->xverp; }

}  // namespace blindlist::net
