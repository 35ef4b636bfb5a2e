// The exploder's whole-message S/MIME check (mime/smime_shape.h) on untrusted posts.
// Invariants:
//  - streaming agrees with the whole-buffer parser: a message CheckWholeMessage takes as S/MIME
//    decodes (ParseSmime) to a ContentInfo that crypto::Envelope::Parse accepts, exactly as long
//    as the stream said, with the same kind, cipher, RecipientInfos and ciphertext length;
//  - the answer does not depend on how the bytes arrive: the whole input fed to CmsObjectCheck
//    at once, and in pieces of 1 to 61 bytes, gives the same result or the same error code.

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "blindlist/bytes.h"
#include "crypto/cms.h"
#include "fuzz_check.h"
#include "mime/smime.h"
#include "mime/smime_shape.h"

using blindlist::ByteView;
using blindlist::Result;
using blindlist::mime::CmsObjectCheck;
using blindlist::mime::CmsObjectShape;

namespace {

Result<CmsObjectShape> FeedInPieces(ByteView bytes, std::size_t piece) {
  CmsObjectCheck check;
  for (std::size_t pos = 0; pos < bytes.size(); pos += piece) {
    const std::size_t n = std::min(piece, bytes.size() - pos);
    if (!check.Feed(bytes.subspan(pos, n)).ok()) break;  // Finish reports the sticky error
  }
  return check.Finish();
}

void CheckAgainstFullParse(std::string_view message, const CmsObjectShape& shape) {
  auto smime = blindlist::mime::ParseSmime(message);
  // ParseSmime also wants smime-type or name=smime.p7m; the whole-message rule does not.
  if (!smime.ok()) {
    FUZZ_CHECK(smime.error().code == "not-smime", "ParseSmime refuses what the check took");
    return;
  }
  FUZZ_CHECK(smime->cms.size() == shape.cms_bytes, "the stream and the decoder disagree on length");
  auto env = blindlist::crypto::Envelope::Parse(smime->cms);
  FUZZ_CHECK(env.ok(), "Envelope::Parse refuses a CMS object the stream check took");
  FUZZ_CHECK(env->auth_enveloped == shape.auth_enveloped, "AuthEnvelopedData or not differs");
  FUZZ_CHECK(env->cipher == shape.cipher, "the cipher differs");
  FUZZ_CHECK(env->recipients.size() == shape.recipients.size(), "the RecipientInfos differ");
  for (std::size_t i = 0; i < shape.recipients.size(); ++i) {
    FUZZ_CHECK(env->recipients[i].der == shape.recipients[i].der, "a RecipientInfo differs");
  }
  FUZZ_CHECK(env->ciphertext.size() == shape.encrypted_content_bytes,
             "the ciphertext length differs");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const ByteView bytes(data, size);

  // The input as a post.
  auto shape = blindlist::mime::CheckWholeMessage(input);
  if (shape.ok() && shape->smime) CheckAgainstFullParse(input, shape->cms);
  if (shape.ok() && !shape->smime) FUZZ_CHECK(!shape->media_type.empty(), "no media type");

  // The input as the decoded body, whole and in pieces.
  auto whole = FeedInPieces(bytes, std::max<std::size_t>(size, 1));
  auto pieces = FeedInPieces(bytes, size % 61 + 1);
  FUZZ_CHECK(whole.ok() == pieces.ok(), "the answer depends on how the bytes arrive");
  if (whole.ok()) {
    FUZZ_CHECK(whole->cms_bytes == size, "an accepted object does not fill the input");
    FUZZ_CHECK(whole->cms_bytes == pieces->cms_bytes, "the length depends on the pieces");
    FUZZ_CHECK(whole->encrypted_content_bytes == pieces->encrypted_content_bytes,
               "the ciphertext length depends on the pieces");
    FUZZ_CHECK(whole->recipients.size() == pieces->recipients.size(),
               "the RecipientInfos depend on the pieces");
    auto env = blindlist::crypto::Envelope::Parse(bytes);
    FUZZ_CHECK(env.ok(), "Envelope::Parse refuses a CMS object the stream check took");
    FUZZ_CHECK(env->ciphertext.size() == whole->encrypted_content_bytes,
               "the ciphertext length differs from Envelope::Parse");
  } else {
    FUZZ_CHECK(whole.error().code == pieces.error().code,
               "the error depends on how the bytes arrive");
  }
  return 0;
}
