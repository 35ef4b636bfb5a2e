// Encrypting a whole RFC 5322 message the way every blindlist command does:
// RFC 9788 header protection, then CMS to the certificates and secrets, then
// S/MIME. Shared by `encrypt` and `post`.
// Thread-safety: free functions.
#pragma once

#include <functional>
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

// The same, handing the S/MIME message to `sink` in pieces as it is made (bounded memory, no
// copy of the message). Every check of the message and the recipients comes before the first
// piece, so a refused message writes nothing.
using TextSink = std::function<Status(std::string_view)>;
Status EncryptMessageTo(std::string_view message, const std::vector<crypto::Certificate>& certs,
                        const std::vector<crypto::GroupSecret>& secrets,
                        const crypto::EncryptOptions& options, const TextSink& sink);

}  // namespace blindlist::cli
