#include "config.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cctype>
#include <charconv>

namespace blindlist::certd {
namespace {

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char ch) { return static_cast<char>(std::tolower(ch)); });
  return s;
}

// The host part of "scheme://[userinfo@]host[:port][/...]", without brackets, lower case.
std::string UrlHost(const std::string& url) {
  std::size_t start = url.find("://");
  start = start == std::string::npos ? 0 : start + 3;
  std::size_t end = url.find_first_of("/?#", start);
  std::string authority = url.substr(start, end == std::string::npos ? end : end - start);
  if (std::size_t at = authority.rfind('@'); at != std::string::npos) authority.erase(0, at + 1);
  if (!authority.empty() && authority.front() == '[') {
    std::size_t close = authority.find(']');
    return Lower(authority.substr(1, close == std::string::npos ? close : close - 1));
  }
  if (std::size_t colon = authority.find(':'); colon != std::string::npos) authority.resize(colon);
  return Lower(authority);
}

// A dotted IPv4 address whose first byte is 127 (also "127.1" style short forms).
bool IsLoopbackV4(std::string_view host) {
  if (host.empty() || host.find_first_not_of("0123456789.") != std::string_view::npos) {
    return false;
  }
  unsigned first = 0;
  auto [ptr, ec] = std::from_chars(host.data(), host.data() + host.size(), first);
  return ec == std::errc() && first == 127 && (ptr == host.data() + host.size() || *ptr == '.');
}

}  // namespace

bool UrlPointsAtLoopback(const std::string& url) {
  std::string host = UrlHost(url);
  while (!host.empty() && host.back() == '.') host.pop_back();  // "localhost." is localhost
  if (host == "localhost" || (host.size() > 10 && host.ends_with(".localhost"))) return true;
  if (IsLoopbackV4(host)) return true;
  // IPv6: ::1 in any spelling, and IPv4-mapped loopback (::ffff:127.x.y.z).
  in6_addr v6{};
  if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    return IN6_IS_ADDR_LOOPBACK(&v6) || (IN6_IS_ADDR_V4MAPPED(&v6) && v6.s6_addr[12] == 127);
  }
  return false;
}

Result<Config> LoadConfig(const std::string& path) {
  BL_TRY_ASSIGN(api::ConfigFile file, api::ConfigFile::Load(path));
  Config c;
  BL_TRY_ASSIGN(c.common, file.Common("127.0.0.1:8444", ""));
  if (c.common.store_url.empty()) {
    return MakeError("bad-config",
                     path +
                         ": [store] url is required (groupd's database: sqlite:PATH or "
                         "postgresql://...)");
  }
  BL_TRY_ASSIGN(c.ca_certificate_file, file.String("ca", "certificate", ""));
  BL_TRY_ASSIGN(c.ca_private_key_file, file.String("ca", "private_key", ""));
  BL_TRY_ASSIGN(c.ca_passphrase_file, file.String("ca", "passphrase_file", ""));
  BL_TRY_ASSIGN(c.validity_hours, file.Int("certificates", "validity_hours", 24));
  BL_TRY_ASSIGN(c.crl_url, file.String("certificates", "crl_url", ""));
  BL_TRY_ASSIGN(c.allow_loopback_crl_url,
                file.Bool("certificates", "allow_loopback_crl_url", false));
  BL_TRY_ASSIGN(c.crl_next_update_seconds,
                file.Int("certificates", "crl_next_update_seconds", 3600));
  if (c.ca_certificate_file.empty() || c.ca_private_key_file.empty()) {
    return MakeError("bad-config", path + ": [ca] certificate and private_key are required");
  }
  if (c.validity_hours < 1 || c.validity_hours > std::int64_t{24} * 366) {
    return MakeError("bad-config", path + ": [certificates] validity_hours must be 1..8784");
  }
  if (c.crl_next_update_seconds < 60) {
    return MakeError("bad-config",
                     path + ": [certificates] crl_next_update_seconds must be at least 60");
  }
  if (!c.crl_url.empty() && !c.allow_loopback_crl_url && UrlPointsAtLoopback(c.crl_url)) {
    return MakeError("bad-config",
                     path + ": [certificates] crl_url \"" + c.crl_url +
                         "\" points at loopback: no relying party can fetch it; use the name "
                         "members reach certd by (allow_loopback_crl_url = true for a test)");
  }
  BL_TRY(file.CheckKnownKeys());
  return c;
}

}  // namespace blindlist::certd
