// groupd's configuration: TOML file, then command-line flags on top. Built once
// at start (and again on SIGHUP for certificates and limits), passed down; no globals.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "api/config_file.h"
#include "blindlist/result.h"

namespace blindlist::groupd {

struct Config {
  api::CommonConfig common;         // [server], [limits], [store], [log]
  std::string master_key_file;      // 64 hex digits; or env BLINDLIST_MASTER_KEY
  std::string ca_certificate_file;  // deployment CA that signs group certificates
  std::string ca_private_key_file;
  std::string membership_ca_certificate_file;        // certd's CA, for path G
  std::vector<std::string> admin_cert_fingerprints;  // SHA-256 hex of admin client certs (mTLS)
  // [threshold] node_ca_certificate: the CA of the other nodes' TLS server certificates, which a
  // key generation checks their signed round keys against (docs/threshold.md). "": no key
  // generation at this node.
  std::string node_ca_certificate_file;
  std::int64_t group_cert_validity_days = 825;
};

Result<Config> LoadConfig(const std::string& path);

}  // namespace blindlist::groupd
