// An SMTP (RFC 5321) or LMTP (RFC 2033) server on Boost.Asio C++20 coroutines, for listd's
// intake. Extensions: PIPELINING, SIZE, 8BITMIME, ENHANCEDSTATUSCODES and STARTTLS (when a
// certificate is configured). LMTP answers DATA once per accepted recipient.
//
// Everything is bounded: line length, commands and bad commands per connection, recipients
// per transaction, message size, command and DATA timeouts, connections in total and per
// peer. Stop() drains: it stops accepting, lets a transaction in flight finish (up to
// drain_timeout), then answers 421 and closes. No Asio types appear here.
//
// Thread-safety: Start/Stop/Wait/ReloadCertificates may be called from any thread; the
// handler is called concurrently from `threads` threads and must be thread-safe. It may block.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "blindlist/result.h"
#include "net/smtp_protocol.h"  // SmtpReply, SmtpEnvelope

namespace blindlist::net {

class SmtpHandler {
 public:
  virtual ~SmtpHandler() = default;
  virtual SmtpReply OnMailFrom(const SmtpEnvelope& envelope) = 0;
  // e.g. 550 5.1.1 for an unknown list.
  virtual SmtpReply OnRcptTo(const SmtpEnvelope& envelope, const std::string& recipient) = 0;
  // The whole message, dot-unstuffed, line endings as received (CRLF). SMTP: return exactly
  // one reply. LMTP: one per accepted recipient, in order. (A wrong count is logged; missing
  // replies become 451 4.3.0, extra ones are dropped.)
  virtual std::vector<SmtpReply> OnData(const SmtpEnvelope& envelope, std::string message) = 0;
};

struct SmtpServerConfig {
  enum class Protocol { kSmtp, kLmtp } protocol = Protocol::kSmtp;
  std::string listen_address = "127.0.0.1";
  std::uint16_t port = 0;              // 0 = pick one; see port()
  std::string hostname = "localhost";  // greeting and EHLO name
  std::string cert_file, key_file;     // STARTTLS offered when both are set
  // Advertised in SIZE; larger -> 552 5.3.4 (at MAIL FROM if SIZE= says so, else after
  // reading DATA to the end without storing it).
  std::size_t max_message_bytes = std::size_t{25} << 20;
  std::size_t max_line_bytes = 4096;  // longer command -> 500 5.5.2 and close; text line -> 500
  int max_recipients = 1000;          // 452 4.5.3 beyond
  int max_commands = 1000;            // per connection, then 421 4.7.0 and close
  int max_errors = 10;                // bad commands before 421
  std::chrono::milliseconds command_timeout{300000};
  std::chrono::milliseconds data_timeout{600000};
  std::chrono::milliseconds drain_timeout{10000};
  int threads = 2;
  int max_connections = 256;
  int max_connections_per_peer = 32;
};

class SmtpServer {
 public:
  SmtpServer(SmtpServerConfig config, std::shared_ptr<SmtpHandler> handler);
  ~SmtpServer();
  SmtpServer(const SmtpServer&) = delete;
  SmtpServer& operator=(const SmtpServer&) = delete;

  // Loads the certificate (if any), binds and starts the threads. Errors name the file or
  // the address and port.
  Status Start();
  // The bound port (after Start).
  std::uint16_t port() const;
  // Stops accepting; sessions in a transaction finish it, up to drain_timeout; every session
  // then gets 421 4.3.2 and is closed. Returns when the threads are joined.
  void Stop();
  // Blocks until Stop() has completed.
  void Wait();
  // Re-reads cert_file/key_file for new STARTTLS handshakes. Keeps the old ones on error.
  Status ReloadCertificates();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace blindlist::net
