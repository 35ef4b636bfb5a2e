// certd's configuration: TOML file, then flags on top; passed down, no globals.
#pragma once

#include <cstdint>
#include <string>

#include "api/config_file.h"
#include "blindlist/result.h"

namespace blindlist::certd {

struct Config {
  api::CommonConfig common;          // [server], [limits], [store], [log]
  std::string ca_certificate_file;   // [ca] certificate: the membership CA (PEM)
  std::string ca_private_key_file;   // [ca] private_key: encrypted PKCS#8 PEM
  std::string ca_passphrase_file;    // [ca] passphrase_file; or env BLINDLIST_CA_PASSPHRASE
  std::int64_t validity_hours = 24;  // [certificates] validity_hours
  std::string crl_url;               // [certificates] crl_url, written into issued certificates
  // [certificates] allow_loopback_crl_url: a CRL URL on 127.0.0.0/8, ::1 or localhost is
  // refused at start-up (no relying party can fetch it) unless this test/demo switch is set.
  bool allow_loopback_crl_url = false;
  std::int64_t crl_next_update_seconds = 3600;
};

Result<Config> LoadConfig(const std::string& path);

// True when the URL's host is a loopback address (127.0.0.0/8, ::1, and their IPv4-mapped
// form) or the name localhost (or a name under .localhost). Only the text is looked at:
// start-up does not depend on the resolver.
bool UrlPointsAtLoopback(const std::string& url);

}  // namespace blindlist::certd
