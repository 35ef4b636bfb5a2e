// Encrypting a CMS envelope as a stream, for posts of any size: the DER before the encrypted
// content, the encrypted content piece by piece, then the DER after it. The bytes are those
// Encrypt (cms.h) returns for the same key and IV: Encrypt is this class run over one piece.
// The content length is needed first, for the definite DER lengths around it.
// Thread-safety: one owner.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "blindlist/bytes.h"
#include "blindlist/result.h"
#include "crypto/cms.h"

namespace blindlist::crypto {

class StreamEncryptor {
 public:
  // A fresh CEK and IV, wrapped to each certificate and secret.
  static Result<StreamEncryptor> Start(std::uint64_t content_size,
                                       const std::vector<Certificate>& certs,
                                       const std::vector<GroupSecret>& secrets,
                                       const EncryptOptions& options);
  StreamEncryptor(StreamEncryptor&&) noexcept;
  StreamEncryptor& operator=(StreamEncryptor&&) noexcept;
  ~StreamEncryptor();

  // The DER of the ContentInfo up to the first encrypted content byte.
  [[nodiscard]] ByteView prefix() const;
  // Encrypts the next piece of content, appending the ciphertext to `out`. The pieces must add
  // up to content_size ("usage" error otherwise, at Finish).
  Status Update(ByteView plain, Bytes& out);
  // Appends the last ciphertext (CBC padding) and the DER after the encrypted content.
  Status Finish(Bytes& out);

 private:
  struct State;
  explicit StreamEncryptor(std::unique_ptr<State> state);
  std::unique_ptr<State> state_;
};

}  // namespace blindlist::crypto
