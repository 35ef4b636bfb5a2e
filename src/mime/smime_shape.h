// The exploder's whole-message S/MIME rule (docs/wire-format.md, "What listd forwards"): a post
// is S/MIME only if the entire message is one application/pkcs7-mime entity whose entire body is
// the base64 of exactly one CMS EnvelopedData or AuthEnvelopedData, with nothing before or after
// it. One pass, bounded memory, whatever the size: the body is decoded in small blocks and the
// BER is walked as it arrives; only the CMS fields around the encrypted content (RecipientInfos,
// algorithm, attributes) are kept, never the encrypted content itself.
// Thread-safety: CheckWholeMessage is a free function; a CmsObjectCheck has one owner.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "blindlist/bytes.h"
#include "blindlist/result.h"
#include "crypto/cms.h"

namespace blindlist::mime {

struct SmimeShapeLimits {
  // The CMS fields kept while walking (content type, RecipientInfos, algorithm, attributes).
  // A post to a list names the list and a few others: 4 MiB is thousands of RecipientInfos.
  std::size_t max_kept_bytes = std::size_t{4} << 20;
};

// What one whole CMS object is, as far as the exploder's rules care.
struct CmsObjectShape {
  bool auth_enveloped = false;  // RFC 5083 AuthEnvelopedData, else RFC 5652 EnvelopedData
  std::optional<crypto::ContentCipher> cipher;  // nullopt: an algorithm crypto does not know
  std::string cipher_oid;
  std::vector<crypto::RecipientInfo> recipients;
  std::uint64_t cms_bytes = 0;                // the ContentInfo, decoded
  std::uint64_t encrypted_content_bytes = 0;  // the ciphertext, segments joined
};

// Checks that a byte stream is exactly one ContentInfo holding EnvelopedData or
// AuthEnvelopedData (BER or DER: indefinite lengths and constructed strings are accepted, as
// stock clients send them), fed in pieces of any size. Every length is checked against its
// enclosing element; the first byte after the outer element is "trailing-data". The fields
// around the encrypted content are then parsed by crypto::Envelope::Parse.
// Errors (sticky: after one, every call returns it): "not-cms", "not-enveloped",
// "malformed-cms", "truncated", "trailing-data", "too-large".
class CmsObjectCheck {
 public:
  explicit CmsObjectCheck(SmimeShapeLimits limits = {});
  ~CmsObjectCheck();
  CmsObjectCheck(const CmsObjectCheck&) = delete;
  CmsObjectCheck& operator=(const CmsObjectCheck&) = delete;

  Status Feed(ByteView bytes);
  // After the last byte: the object, or why the stream is not one.
  Result<CmsObjectShape> Finish();

 private:
  struct State;
  std::unique_ptr<State> state_;
};

struct MessageShape {
  // False: a plaintext message (its top-level type is not application/pkcs7-mime). Whether a
  // list takes it is the list's rule, not this check's.
  bool smime = false;
  std::string media_type;  // the top-level media type, lowercased ("text/plain" when absent)
  CmsObjectShape cms;      // when smime
};

// Classifies an RFC 5322 message and, when its top-level type is application/(x-)pkcs7-mime,
// checks it whole: exactly one Content-Type field, smime-type enveloped-data or
// authEnveloped-data or none, exactly one Content-Transfer-Encoding, base64; a body of only
// base64 characters and white space, padding only at its end, decoding to one CMS object as
// CmsObjectCheck says. Each error message says what is wrong, fit for an SMTP reply.
// Errors: "malformed-message" (the header section cannot be read, or has two Content-Type
// fields), "not-one-entity" (wrong smime-type or transfer encoding, no body), "bad-base64",
// and those of CmsObjectCheck.
Result<MessageShape> CheckWholeMessage(std::string_view message, SmimeShapeLimits limits = {});

}  // namespace blindlist::mime
