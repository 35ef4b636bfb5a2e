// Encrypting and decrypting large CMS envelopes without copies. Encrypting as a stream, for posts
// of any size: the DER before the encrypted content, the encrypted content piece by piece, then the
// DER after it. The bytes are those Encrypt (cms.h) returns for the same key and IV: Encrypt is
// this class run over one piece. The content length is needed first, for the definite DER lengths
// around it. Thread-safety: one owner.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <span>
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

// Decrypting a large envelope without copying it: the encrypted content is located inside the
// ContentInfo rather than copied out, and decrypted where it lies.
struct ContentLocation {
  std::size_t offset = 0;  // of the first encrypted content octet in the ContentInfo
  std::size_t size = 0;
  bool in_place = false;  // false: a segmented (BER constructed) content, copied to ciphertext
};
// Envelope::Parse, except that a one-piece encryptedContent (DER, as blindlist, openssl and NSS
// write it) is located in `content` and left out of env.ciphertext, and env.encrypted_content_info
// is not kept (the result is for decryption, not for Serialize). Errors as Envelope::Parse.
Result<Envelope> ParseEnvelopeForDecryption(ByteView content_info, ContentLocation* content);
// DecryptContent over the located content, in place: the plaintext overwrites the ciphertext and
// the result views it. The caller owns the plaintext there and cleanses it. Nothing is valid
// unless this succeeds (the GCM tag or CBC padding is checked first); on failure the bytes
// written are cleansed. Errors as DecryptContent, and "usage" when content.in_place is false.
Result<std::span<std::uint8_t>> DecryptContentInPlace(const Envelope& env,
                                                      std::span<std::uint8_t> content_info,
                                                      const ContentLocation& content,
                                                      const SecretBytes& cek);

}  // namespace blindlist::crypto
