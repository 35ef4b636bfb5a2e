#include "api/metrics_access.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>

#include "api/member_auth.h"
#include "obs/log.h"

namespace blindlist::api {
namespace {

constexpr std::size_t kMaxFileBytes = 4096;

Error Bad(const std::string& path, const std::string& what) {
  return MakeError("bad-config", "[metrics] token_file " + path + ": " + what);
}

// RFC 6750 section 2.1: b64token = 1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="
bool IsB64Token(ByteView token) {
  std::size_t i = 0;
  for (; i < token.size(); ++i) {
    const std::uint8_t c = token[i];
    const bool plain = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                       c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/';
    if (!plain) break;
  }
  if (i == 0) return false;
  for (; i < token.size(); ++i) {
    if (token[i] != '=') return false;
  }
  return true;
}

// The file's first line, without its line ending, after checking what the file is.
Result<SecretBytes> ReadTokenFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOCTTY);
  if (fd < 0) return Bad(path, "cannot be read");
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    return Bad(path, "is not a regular file");
  }
  // 0600, or 0640 for a monitoring agent's group: nobody else reads it, only its owner writes.
  if ((st.st_mode & 07777 & ~static_cast<mode_t>(0640)) != 0) {
    ::close(fd);
    char mode[8];
    std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
    return Bad(path, std::string("has mode ") + mode + "; make it 0600 or 0640");
  }
  SecretBytes buf(kMaxFileBytes);
  std::size_t used = 0;
  while (used < buf.size()) {
    const ssize_t n = ::read(fd, buf.data() + used, buf.size() - used);
    if (n < 0) {
      ::close(fd);
      return Bad(path, "cannot be read");
    }
    if (n == 0) break;
    used += static_cast<std::size_t>(n);
  }
  ::close(fd);
  std::size_t end = 0;
  while (end < used && buf[end] != '\n') ++end;
  while (end > 0 && (buf[end - 1] == '\r' || buf[end - 1] == ' ' || buf[end - 1] == '\t')) --end;
  buf.resize(end);
  return buf;
}

}  // namespace

Status MetricsAccess::Load(const std::string& path) {
  if (path.empty()) {
    std::lock_guard<std::mutex> lock(mu_);
    digest_.reset();
    return Status::Ok();
  }
  BL_TRY_ASSIGN(SecretBytes token, ReadTokenFile(path));
  if (token.size() < kMinTokenLength) {
    return Bad(path, "the token (its first line) must be at least " +
                         std::to_string(kMinTokenLength) +
                         " characters, e.g. from `openssl rand -hex 32`");
  }
  if (!IsB64Token(token.view())) {
    return Bad(path, "the token may hold only letters, digits and - . _ ~ + / (then =)");
  }
  auto digest = std::make_shared<const SecretBytes>(ByteView(TokenHash(AsChars(token.view()))));
  std::lock_guard<std::mutex> lock(mu_);
  digest_ = std::move(digest);
  return Status::Ok();
}

void MetricsAccess::Reload(const std::string& path) {
  Status st = Load(path);
  if (!st.ok()) {
    net::Log(net::LogLevel::kError, "reload: keeping the metrics token in force",
             {{"error", st.error().message}});
  }
}

bool MetricsAccess::required() const {
  std::lock_guard<std::mutex> lock(mu_);
  return digest_ != nullptr;
}

std::optional<net::HttpResponse> MetricsAccess::Refusal(const net::HttpRequest& req) const {
  std::shared_ptr<const SecretBytes> expected;
  {
    std::lock_guard<std::mutex> lock(mu_);
    expected = digest_;
  }
  if (expected == nullptr) return std::nullopt;
  const std::string presented = BearerToken(req);
  // Digests of equal length whatever was sent: the comparison takes the same time for a
  // token of any length, and an empty one is compared too.
  const SecretBytes digest{ByteView(TokenHash(presented))};
  if (digest == *expected && !presented.empty()) return std::nullopt;
  net::HttpResponse r = net::HttpResponse::Error(
      401, "unauthenticated", "GET /metrics needs Authorization: Bearer and the metrics token");
  r.headers.emplace_back("WWW-Authenticate",
                         presented.empty() ? R"(Bearer realm="metrics")"
                                           : R"(Bearer realm="metrics", error="invalid_token")");
  return r;
}

}  // namespace blindlist::api
