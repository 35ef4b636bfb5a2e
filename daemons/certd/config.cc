#include "config.h"

namespace blindlist::certd {

Result<Config> LoadConfig(const std::string& path) {
  BL_TRY_ASSIGN(api::ConfigFile file, api::ConfigFile::Load(path));
  Config c;
  BL_TRY_ASSIGN(c.common, file.Common("127.0.0.1:8444", "sqlite:/var/lib/blindlist/groupd.db"));
  BL_TRY_ASSIGN(c.ca_certificate_file, file.String("ca", "certificate", ""));
  BL_TRY_ASSIGN(c.ca_private_key_file, file.String("ca", "private_key", ""));
  BL_TRY_ASSIGN(c.ca_passphrase_file, file.String("ca", "passphrase_file", ""));
  BL_TRY_ASSIGN(c.validity_hours, file.Int("certificates", "validity_hours", 24));
  BL_TRY_ASSIGN(c.crl_url, file.String("certificates", "crl_url", ""));
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
  BL_TRY(file.CheckKnownKeys());
  return c;
}

}  // namespace blindlist::certd
