// RFC 5322 / MIME in and out for S/MIME envelopes, and RFC 9788 header protection.
// The CMS layer (src/crypto) never sees MIME; this layer never sees keys.
// Thread-safety: free functions, no shared state.
#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>

#include "blindlist/bytes.h"
#include "blindlist/result.h"

namespace blindlist::mime {

// How an S/MIME envelope arrived, so an edited envelope goes back out the same way.
enum class SmimeForm {
  kMime,    // an RFC 5322 message whose body is application/pkcs7-mime (base64)
  kDer,     // raw DER (or BER) ContentInfo, as `openssl cms -outform DER` writes
  kBase64,  // bare base64 of the ContentInfo, no MIME header (`-outform PEM` without armor too)
};

struct SmimeEnvelope {
  SmimeForm form = SmimeForm::kMime;
  // kMime only: the outer header section exactly as received, minus the Content-*
  // and MIME-Version fields (those are regenerated), each field with its CRLF/LF.
  std::string outer_headers;
  Bytes cms;  // the ContentInfo bytes (BER or DER)
  // kBase64 only: the PEM label ("CMS", "PKCS7") when the input was armored, so the
  // output is armored the same way (`openssl cms -inform PEM` needs the armor).
  std::string pem_label;
};

// Recognises any of the three forms. Errors: "not-smime" (a MIME message whose
// type is not application/(x-)pkcs7-mime with an enveloped or authEnveloped
// smime-type), "bad-base64", "malformed-mime".
Result<SmimeEnvelope> ParseSmime(std::string_view input);

// ParseSmime without a copy, for an input read only to be decrypted: a base64 body is decoded
// in place (over the input, which it overwrites) and `cms` views the result inside the input.
struct SmimeEnvelopeView {
  SmimeForm form = SmimeForm::kMime;
  std::string outer_headers;
  ByteView cms;
  std::string pem_label;
};
Result<SmimeEnvelopeView> ParseSmimeInPlace(std::span<char> input);

// Writes the envelope back in its form. For kMime: outer_headers, then
// MIME-Version, Content-Type application/pkcs7-mime with smime-type
// authEnveloped-data or enveloped-data and name=smime.p7m, Content-Disposition
// attachment, Content-Transfer-Encoding base64, then the base64 body in 76-column lines.
// Line endings follow those of outer_headers (CRLF if it uses CRLF, LF otherwise).
std::string SerializeSmime(const SmimeEnvelope& envelope, bool auth_enveloped);
// The kMime form's header section, blank line included: what SerializeSmime writes before the
// base64 body (whose lines end as LineEndingOf(outer_headers) says), for writers that stream it.
std::string SmimeHeaderSection(std::string_view outer_headers, bool auth_enveloped);
// "\r\n" if the first line of `header_section` ends in CRLF, "\n" otherwise.
std::string_view SmimeLineEnding(std::string_view header_section);

// RFC 9788 header protection (hcp_baseline) of an RFC 5322 message before it is
// encrypted. `inner` is the MIME entity to encrypt: the message's header fields,
// with hp="cipher" added to its Content-Type, and its body unchanged.
// `outer_headers` is the header section to send in the clear: the same fields
// with Subject replaced by "[...]" as hcp_baseline says (and the fields
// hcp_baseline removes left out), without Content-* or MIME-Version.
struct ProtectedMessage {
  std::string inner;
  std::string outer_headers;
};
Result<ProtectedMessage> ProtectHeaders(std::string_view rfc5322_message);

// The same without copying the body, for posts of any size: the entity to encrypt is
// inner_header followed by rfc5322_message.substr(body_offset), unchanged.
struct ProtectedHeader {
  std::string inner_header;
  std::size_t body_offset = 0;
  std::string outer_headers;
};
Result<ProtectedHeader> ProtectHeaderSection(std::string_view rfc5322_message);

// The inverse, applied to the decrypted entity. If `inner` carries hp="cipher"
// the result is the original message: its header fields from inside, byte for
// byte, with the hp parameter (and any HP-Outer fields) taken out. If it carries no
// header protection (a legacy client or `openssl cms -encrypt`), the result is
// `outer_headers` followed by `inner` when outer_headers has fields, and `inner`
// alone otherwise.
Result<std::string> UnprotectHeaders(std::string_view inner, std::string_view outer_headers);

// The same without copying the body: the message is head followed by inner.substr(body_offset).
struct UnprotectedHeader {
  std::string head;
  std::size_t body_offset = 0;
};
Result<UnprotectedHeader> UnprotectHeaderSection(std::string_view inner,
                                                 std::string_view outer_headers);

}  // namespace blindlist::mime
