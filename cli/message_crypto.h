// Encrypting a whole RFC 5322 message the way every blindlist command does:
// RFC 9788 header protection, then CMS to the certificates and secrets, then
// S/MIME. Shared by `encrypt` and `post`.
// Thread-safety: a free function.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "blindlist/result.h"
#include "crypto/cms.h"
#include "crypto/keys.h"

namespace blindlist::cli {

Result<std::string> EncryptMessage(std::string_view message,
                                   const std::vector<crypto::Certificate>& certs,
                                   const std::vector<crypto::GroupSecret>& secrets,
                                   const crypto::EncryptOptions& options);

}  // namespace blindlist::cli
