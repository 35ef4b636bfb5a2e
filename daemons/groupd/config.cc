#include "config.h"

namespace blindlist::groupd {

Result<Config> LoadConfig(const std::string& path) {
  BL_TRY_ASSIGN(api::ConfigFile file, api::ConfigFile::Load(path));
  Config c;
  BL_TRY_ASSIGN(c.common, file.Common("127.0.0.1:8443", ""));
  if (c.common.store_url.empty()) {
    return MakeError("bad-config",
                     path + ": [store] url is required (sqlite:PATH or postgresql://...)");
  }
  BL_TRY_ASSIGN(c.master_key_file, file.String("keys", "master_key_file", ""));
  BL_TRY_ASSIGN(c.ca_certificate_file, file.String("keys", "ca_certificate", ""));
  BL_TRY_ASSIGN(c.ca_private_key_file, file.String("keys", "ca_private_key", ""));
  BL_TRY_ASSIGN(c.membership_ca_certificate_file,
                file.String("keys", "membership_ca_certificate", ""));
  BL_TRY_ASSIGN(c.group_cert_validity_days, file.Int("keys", "group_certificate_days", 825));
  BL_TRY_ASSIGN(c.admin_cert_fingerprints, file.Strings("admin", "certificate_fingerprints"));
  BL_TRY_ASSIGN(c.node_ca_certificate_file, file.String("threshold", "node_ca_certificate", ""));
  if (c.ca_certificate_file.empty() != c.ca_private_key_file.empty()) {
    return MakeError("bad-config", path + ": [keys] ca_certificate and ca_private_key go together");
  }
  if (c.group_cert_validity_days < 1)
    return MakeError("bad-config", path + ": [keys] group_certificate_days must be positive");
  BL_TRY(file.CheckKnownKeys());
  return c;
}

}  // namespace blindlist::groupd
