// The whole-message S/MIME rule (smime_shape.h, docs/wire-format.md).
//
// The walk keeps a stack of the open BER elements, each with the role it plays in a ContentInfo
// holding (Auth)EnvelopedData. Every element is checked to end inside its enclosing one. The
// fields of the EnvelopedData are kept byte for byte, except the EncryptedContentInfo, of which
// only the content type and algorithm are kept and the ciphertext is counted. At the end the
// kept fields are put together as a ContentInfo with an empty encryptedContent and parsed by
// crypto::Envelope::Parse, so the CMS rules live in one parser.

#include "mime/smime_shape.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <utility>

#include "blindlist/base64.h"
#include "blindlist/error_codes.h"
#include "crypto/der.h"
#include "mime/smime_common.h"

namespace blindlist::mime {
namespace {

constexpr std::string_view kEnvelopedDataOid = "1.2.840.113549.1.7.3";
constexpr std::string_view kAuthEnvelopedDataOid = "1.2.840.113549.1.9.16.1.23";
constexpr std::uint8_t kEndOfContents = 0x00;
constexpr std::uint8_t kEncryptedContentPrimitive = der::ContextPrimitive(0);
constexpr std::uint8_t kEncryptedContentConstructed = der::ContextConstructed(0);
constexpr std::uint8_t kOctetStringConstructed = der::kOctetString | der::kConstructedBit;
// Fields of an EnvelopedData: version, originatorInfo, recipientInfos, encryptedContentInfo and
// up to three attribute sets. More than this is malformed whatever they are.
constexpr int kMaxEnvelopedFields = 8;
// Base64 characters decoded at a time (a multiple of 4).
constexpr std::size_t kBase64Block = std::size_t{16} * 1024;

// What an element is in the ContentInfo.
enum class Role : std::uint8_t {
  kContentInfo,        // SEQUENCE { contentType, [0] content }
  kContentType,        // OID (kept)
  kContent,            // [0] EXPLICIT
  kEnveloped,          // the (Auth)EnvelopedData SEQUENCE
  kField,              // a field of it other than the EncryptedContentInfo (kept whole)
  kEncryptedInfo,      // EncryptedContentInfo SEQUENCE
  kEncryptedInfoPart,  // its contentType or contentEncryptionAlgorithm (kept whole)
  kEncryptedContent,   // [0] IMPLICIT OCTET STRING, primitive or constructed (counted)
  kSegment,            // an OCTET STRING segment of a constructed encryptedContent (counted)
  kInside,             // anything inside a kept element
};

struct Frame {
  Role role;
  bool indefinite;
  std::uint64_t end;  // offset just past the contents (definite lengths)
  int children = 0;
};

Error Fail(std::string code, std::string message) {
  return MakeError(std::move(code), std::move(message));
}

Error Malformed(const std::string& what) { return Fail("malformed-cms", "malformed CMS: " + what); }

std::string ContentTypeName(std::string_view oid_contents) {
  const CmsContentType* known = KnownContentType(oid_contents);
  if (known != nullptr) return std::string(known->name);
  return der::OidToString(AsBytes(oid_contents));
}

}  // namespace

struct CmsObjectCheck::State {
  SmimeShapeLimits limits;
  std::optional<Error> error;
  std::uint64_t offset = 0;  // bytes consumed
  bool started = false;
  bool done = false;  // the outer element is complete
  std::vector<Frame> stack;

  std::array<std::uint8_t, 6> header{};  // identifier and length octets being read
  std::size_t header_size = 0;

  bool in_contents = false;  // inside a primitive element's contents
  Role contents_role = Role::kInside;
  std::uint64_t contents_left = 0;

  // The element being kept (its stack level), and what was kept.
  std::optional<std::size_t> keep_level;
  Role keep_role = Role::kInside;
  Bytes kept;
  std::size_t kept_total = 0;
  Bytes content_type;              // the contentType TLV
  std::vector<Bytes> fields;       // the EnvelopedData's fields, in order
  std::optional<std::size_t> eci;  // where the EncryptedContentInfo goes among them
  Bytes encrypted_info_parts;      // its contentType and algorithm TLVs
  bool saw_encrypted_content = false;
  std::uint64_t encrypted_bytes = 0;

  Error Set(Error e) {
    if (!error) error = std::move(e);
    return *error;
  }
  Status Consume(ByteView bytes);
  Status ReadHeader();
  Result<Role> ChildRole(std::uint8_t tag);
  Status Keep(ByteView bytes);
  Status ElementDone(std::size_t level);
  Status PopFrame();
  Status CloseFinished();
  std::uint64_t Bound() const;
};

std::uint64_t CmsObjectCheck::State::Bound() const {
  for (auto it = stack.rbegin(); it != stack.rend(); ++it) {
    if (!it->indefinite) return it->end;
  }
  return UINT64_MAX;
}

Status CmsObjectCheck::State::Keep(ByteView bytes) {
  if (!keep_level) return Status::Ok();
  kept_total += bytes.size();
  if (kept_total > limits.max_kept_bytes) {
    return Fail("too-large",
                "the CMS fields around the encrypted content (RecipientInfos, "
                "attributes) are larger than " +
                    std::to_string(limits.max_kept_bytes) + " bytes");
  }
  kept.insert(kept.end(), bytes.begin(), bytes.end());
  return Status::Ok();
}

// An element at stack level `level` is complete.
Status CmsObjectCheck::State::ElementDone(std::size_t level) {
  if (keep_level && *keep_level == level) {
    switch (keep_role) {
      case Role::kContentType:
        content_type = std::move(kept);
        break;
      case Role::kField:
        fields.push_back(std::move(kept));
        break;
      default:
        encrypted_info_parts.insert(encrypted_info_parts.end(), kept.begin(), kept.end());
        break;
    }
    kept = Bytes();
    keep_level.reset();
  }
  if (level == 0) done = true;
  return Status::Ok();
}

Status CmsObjectCheck::State::PopFrame() {
  const Frame frame = stack.back();
  stack.pop_back();
  switch (frame.role) {
    case Role::kContentInfo:
      if (frame.children != 2) return Malformed("the ContentInfo has no content");
      break;
    case Role::kContent:
      if (frame.children != 1) return Malformed("the ContentInfo's [0] content is empty");
      break;
    case Role::kEncryptedInfo:
      if (!saw_encrypted_content) {
        return Fail("malformed-cms",
                    "the CMS object has no encrypted content (detached content is not a post)");
      }
      break;
    default:
      break;
  }
  return ElementDone(stack.size());
}

Status CmsObjectCheck::State::CloseFinished() {
  while (!stack.empty() && !stack.back().indefinite && offset == stack.back().end) {
    BL_TRY(PopFrame());
  }
  return Status::Ok();
}

Result<Role> CmsObjectCheck::State::ChildRole(std::uint8_t tag) {
  if (stack.empty()) {
    if (tag != der::kSequence) {
      return Fail("not-cms",
                  "the body does not decode to a CMS ContentInfo (no DER SEQUENCE at its start)");
    }
    return Role::kContentInfo;
  }
  Frame& parent = stack.back();
  const int index = parent.children++;
  switch (parent.role) {
    case Role::kContentInfo:
      if (index == 0) {
        if (tag != der::kOid) return Fail("not-cms", "the CMS ContentInfo has no content type");
        return Role::kContentType;
      }
      if (index == 1) {
        auto oid = der::ParseSingle(content_type, "contentType");
        if (!oid.ok()) return Malformed(oid.error().message);
        const std::string dotted = der::OidToString(oid->content);
        if (dotted != kEnvelopedDataOid && dotted != kAuthEnvelopedDataOid) {
          return Fail(std::string(errc::kNotEnveloped),
                      "the CMS object is " + ContentTypeName(AsChars(oid->content)) +
                          ", not envelopedData or authEnvelopedData");
        }
        if (tag != der::ContextConstructed(0)) return Malformed("the ContentInfo has no [0]");
        return Role::kContent;
      }
      return Malformed("the ContentInfo has elements after its content");
    case Role::kContent:
      if (index > 0) return Malformed("the ContentInfo's [0] holds more than one element");
      if (tag != der::kSequence) return Malformed("the EnvelopedData is not a SEQUENCE");
      return Role::kEnveloped;
    case Role::kEnveloped:
      if (index >= kMaxEnvelopedFields) return Malformed("the EnvelopedData has too many fields");
      if (tag == der::kSequence && !eci) {
        eci = fields.size();
        return Role::kEncryptedInfo;
      }
      return Role::kField;
    case Role::kEncryptedInfo:
      if (index < 2) return Role::kEncryptedInfoPart;
      if (index == 2 &&
          (tag == kEncryptedContentPrimitive || tag == kEncryptedContentConstructed)) {
        saw_encrypted_content = true;
        return Role::kEncryptedContent;
      }
      if (index == 2) return Malformed("the encryptedContent is not [0] IMPLICIT OCTET STRING");
      return Malformed("the EncryptedContentInfo has elements after the encrypted content");
    case Role::kEncryptedContent:
    case Role::kSegment:
      if (tag != der::kOctetString && tag != kOctetStringConstructed) {
        return Malformed("a segment of the encryptedContent is not an OCTET STRING");
      }
      return Role::kSegment;
    default:
      return Role::kInside;
  }
}

Status CmsObjectCheck::State::ReadHeader() {
  const std::uint8_t tag = header[0];
  const std::uint8_t first = header[1];
  const ByteView header_bytes(header.data(), header_size);
  if (tag == kEndOfContents) {
    if (first != 0) return Malformed("an element with tag 0");
    if (stack.empty() || !stack.back().indefinite) {
      return Malformed("an end-of-contents marker where no indefinite-length element is open");
    }
    BL_TRY(Keep(header_bytes));
    BL_TRY(PopFrame());
    return CloseFinished();
  }
  if ((tag & 0x1f) == 0x1f) return Malformed("a high tag number (not used in CMS)");
  const bool constructed = (tag & der::kConstructedBit) != 0;
  const bool indefinite = first == 0x80;
  if (indefinite && !constructed) return Malformed("indefinite length on a primitive element");
  std::uint64_t length = 0;
  if (first < 0x80) {
    length = first;
  } else if (!indefinite) {
    for (std::size_t i = 2; i < header_size; ++i) length = (length << 8) | header[i];
  }
  const std::uint64_t bound = Bound();
  if (offset > bound || (!indefinite && length > bound - offset)) {
    return Malformed("an element runs past the end of the element that holds it");
  }
  if (stack.size() >= static_cast<std::size_t>(der::kMaxDepth)) {
    return Malformed("nesting deeper than " + std::to_string(der::kMaxDepth));
  }
  BL_TRY_ASSIGN(Role role, ChildRole(tag));
  const std::size_t level = stack.size();
  if (!keep_level &&
      (role == Role::kContentType || role == Role::kField || role == Role::kEncryptedInfoPart)) {
    keep_level = level;
    keep_role = role;
    kept.clear();
  }
  BL_TRY(Keep(header_bytes));
  started = true;
  if (constructed) {
    stack.push_back(Frame{.role = role, .indefinite = indefinite, .end = offset + length});
    return CloseFinished();
  }
  if (length == 0) {
    BL_TRY(ElementDone(level));
    return CloseFinished();
  }
  in_contents = true;
  contents_role = role;
  contents_left = length;
  return Status::Ok();
}

Status CmsObjectCheck::State::Consume(ByteView bytes) {
  std::size_t i = 0;
  while (i < bytes.size()) {
    if (done) {
      return Fail("trailing-data", "trailing data after the CMS object, which ends at byte " +
                                       std::to_string(offset) + " of the decoded body");
    }
    if (in_contents) {
      const auto take = static_cast<std::size_t>(
          std::min<std::uint64_t>(contents_left, static_cast<std::uint64_t>(bytes.size() - i)));
      BL_TRY(Keep(bytes.subspan(i, take)));
      if (contents_role == Role::kEncryptedContent || contents_role == Role::kSegment) {
        encrypted_bytes += take;
      }
      i += take;
      offset += take;
      contents_left -= take;
      if (contents_left == 0) {
        in_contents = false;
        BL_TRY(ElementDone(stack.size()));
        BL_TRY(CloseFinished());
      }
      continue;
    }
    header[header_size++] = bytes[i++];
    ++offset;
    if (header_size < 2) continue;
    const std::uint8_t first = header[1];
    std::size_t needed = 2;
    if (first > 0x80) {
      const std::size_t octets = first & 0x7f;
      if (octets > 4) return Malformed("a length longer than 4 octets");
      needed += octets;
    }
    if (header_size < needed) continue;
    Status st = ReadHeader();
    header_size = 0;
    if (!st.ok()) return st;
  }
  return Status::Ok();
}

CmsObjectCheck::CmsObjectCheck(SmimeShapeLimits limits) : state_(std::make_unique<State>()) {
  state_->limits = limits;
}

CmsObjectCheck::~CmsObjectCheck() = default;

Status CmsObjectCheck::Feed(ByteView bytes) {
  State& s = *state_;
  if (s.error) return *s.error;
  Status st = s.Consume(bytes);
  if (!st.ok()) return s.Set(st.error());
  return st;
}

Result<CmsObjectShape> CmsObjectCheck::Finish() {
  State& s = *state_;
  if (s.error) return *s.error;
  if (!s.started && s.header_size == 0) {
    return s.Set(Fail("not-cms", "the body decodes to nothing"));
  }
  if (!s.done) {
    return s.Set(Fail("truncated", "the CMS object is cut short: its encoding ends after " +
                                       std::to_string(s.offset) + " bytes, inside an element"));
  }
  // The kept fields as a ContentInfo whose encryptedContent is empty, for the one CMS parser.
  Bytes body;
  const Bytes empty_content = {kEncryptedContentPrimitive, 0x00};
  for (std::size_t i = 0; i <= s.fields.size(); ++i) {
    if (s.eci && *s.eci == i) {
      const Bytes eci = der::Encode(der::kSequence, {s.encrypted_info_parts, empty_content});
      body.insert(body.end(), eci.begin(), eci.end());
    }
    if (i < s.fields.size()) body.insert(body.end(), s.fields[i].begin(), s.fields[i].end());
  }
  if (!s.eci) return s.Set(Malformed("the EnvelopedData has no EncryptedContentInfo"));
  const Bytes skeleton = der::Encode(
      der::kSequence,
      {s.content_type, der::Encode(der::ContextConstructed(0), der::Encode(der::kSequence, body))});
  auto env = crypto::Envelope::Parse(skeleton);
  if (!env.ok()) {
    if (env.error().code == errc::kNotEnveloped)
      return s.Set(Fail(std::string(errc::kNotEnveloped), env.error().message));
    return s.Set(Malformed(env.error().message));
  }
  if (s.encrypted_bytes == 0) return s.Set(Malformed("the encrypted content is empty"));
  if (env->cipher && !crypto::IsGcm(*env->cipher) && s.encrypted_bytes % 16 != 0) {
    return s.Set(Malformed("the CBC ciphertext is " + std::to_string(s.encrypted_bytes) +
                           " bytes, not a whole number of 16-byte blocks"));
  }
  CmsObjectShape shape;
  shape.auth_enveloped = env->auth_enveloped;
  shape.cipher = env->cipher;
  shape.cipher_oid = env->cipher_oid;
  shape.recipients = std::move(env->recipients);
  shape.cms_bytes = s.offset;
  shape.encrypted_content_bytes = s.encrypted_bytes;
  return shape;
}

namespace {

// Decodes a base64 body in blocks into `check`: only the alphabet and white space, '=' only at
// the very end, and nothing but white space after it.
Status DecodeBodyInto(std::string_view body, CmsObjectCheck& check) {
  std::string block;
  block.reserve(kBase64Block);
  Bytes decoded;
  int padding = 0;
  std::size_t characters = 0;
  for (std::size_t i = 0; i < body.size(); ++i) {
    const char c = body[i];
    if (IsLineSpace(c)) continue;
    if (c == '=') {
      if (++padding > 2) {
        return Fail("bad-base64", "the base64 body has more than two '=' pad characters");
      }
    } else if (IsBase64Alphabet(c)) {
      if (padding > 0) {
        return Fail("trailing-data",
                    "trailing data after the end of the base64 body (its '=' padding)");
      }
    } else {
      char hex[8];
      std::snprintf(hex, sizeof hex, "0x%02x",
                    static_cast<unsigned>(static_cast<unsigned char>(c)));
      return Fail("bad-base64", std::string("the body is not base64: character ") + hex +
                                    " at byte " + std::to_string(i) + " of the body");
    }
    block.push_back(c);
    ++characters;
    if (block.size() == kBase64Block && padding == 0) {
      if (!Base64Decode(block, decoded)) return Fail("bad-base64", "the base64 body is invalid");
      BL_TRY(check.Feed(decoded));
      block.clear();
    }
  }
  if (characters == 0) return Fail("not-cms", "the application/pkcs7-mime body is empty");
  if (characters % 4 != 0) {
    return Fail("bad-base64", "the base64 body is cut short or badly padded (" +
                                  std::to_string(characters) + " characters, not a multiple of 4)");
  }
  if (!block.empty()) {
    if (!Base64Decode(block, decoded)) {
      return Fail("bad-base64", "the base64 body ends with non-canonical padding");
    }
    BL_TRY(check.Feed(decoded));
  }
  return Status::Ok();
}

// Text from the message, quoted in an error that becomes an SMTP reply: printable ASCII only,
// bounded.
std::string Quoted(std::string_view text) {
  constexpr std::size_t kMax = 60;
  std::string out;
  for (char c : text.substr(0, kMax)) out += (c >= 0x21 && c <= 0x7e) ? c : '?';
  if (text.size() > kMax) out += "...";
  return out;
}

// Lines some mail readers split differently from RFC 5322: a line of only white space (which a
// reader may take for the end of the header, showing what follows as a plaintext body) and a CR
// not followed by LF (which a reader may take for a line break). Refused in an S/MIME post, so
// that every reader sees the header, and the body, where this check does.
Status CheckUnambiguousHeader(std::string_view header) {
  std::size_t line_start = 0;
  for (std::size_t i = 0; i < header.size(); ++i) {
    if (header[i] == '\r' && (i + 1 == header.size() || header[i + 1] != '\n')) {
      return Fail(std::string(errc::kMalformedMessage),
                  "the header section has a CR that does not end a line");
    }
    if (header[i] != '\n') continue;
    const std::string_view line = header.substr(line_start, i - line_start);
    line_start = i + 1;
    if (!line.empty() && line.find_first_not_of(" \t\r") == std::string_view::npos) {
      return Fail(std::string(errc::kMalformedMessage),
                  "the header section has a line of only white space, which readers may take "
                  "for its end");
    }
  }
  return Status::Ok();
}

struct TopFields {
  const RawField* content_type = nullptr;
  const RawField* transfer_encoding = nullptr;
  int content_types = 0;
  int transfer_encodings = 0;
};

TopFields FindTopFields(const RawHeaderSection& header) {
  TopFields top;
  for (const RawField& field : header.fields) {
    if (EqualsIgnoreCase(field.name, "Content-Type")) {
      ++top.content_types;
      if (top.content_type == nullptr) top.content_type = &field;
    } else if (EqualsIgnoreCase(field.name, "Content-Transfer-Encoding")) {
      ++top.transfer_encodings;
      if (top.transfer_encoding == nullptr) top.transfer_encoding = &field;
    }
  }
  return top;
}

}  // namespace

Result<MessageShape> CheckWholeMessage(std::string_view message, SmimeShapeLimits limits) {
  BL_TRY_ASSIGN(RawHeaderSection header,
                ParseHeaderSection(message, std::string(errc::kMalformedMessage)));
  const TopFields top = FindTopFields(header);
  if (top.content_types > 1) {
    return Fail(std::string(errc::kMalformedMessage),
                "the message has " + std::to_string(top.content_types) +
                    " Content-Type fields; a message has at most one");
  }
  MessageShape shape;
  if (top.content_type == nullptr) {
    shape.media_type = "text/plain";
    return shape;
  }
  const MediaType media = ParseMediaType(top.content_type->value);
  shape.media_type = media.type.empty() ? "an unreadable Content-Type" : Quoted(media.type);
  if (media.type != "application/pkcs7-mime" && media.type != "application/x-pkcs7-mime") {
    return shape;
  }
  BL_TRY(CheckUnambiguousHeader(message.substr(0, header.fields_end)));
  if (!media.smime_type.empty() && !EqualsIgnoreCase(media.smime_type, "enveloped-data") &&
      !EqualsIgnoreCase(media.smime_type, "authEnveloped-data")) {
    return Fail("not-one-entity", media.type + "; smime-type=" + Quoted(media.smime_type) +
                                      " is not an encrypted S/MIME message (enveloped-data or "
                                      "authEnveloped-data)");
  }
  if (top.transfer_encodings != 1) {
    return Fail("not-one-entity",
                top.transfer_encodings == 0
                    ? std::string("the S/MIME entity has no Content-Transfer-Encoding; it must be "
                                  "base64")
                    : "the message has " + std::to_string(top.transfer_encodings) +
                          " Content-Transfer-Encoding fields");
  }
  const std::string encoding = Lowercase(Unfold(top.transfer_encoding->value));
  if (encoding != "base64") {
    return Fail("not-one-entity", "the S/MIME entity's Content-Transfer-Encoding is " +
                                      Quoted(encoding) + ", not base64");
  }
  if (!header.has_separator) {
    return Fail("not-one-entity", "the message has no body (no blank line after the header)");
  }
  std::string_view body = message.substr(header.fields_end);
  body.remove_prefix(body.starts_with(kCrlf) ? 2 : 1);

  CmsObjectCheck check(limits);
  BL_TRY(DecodeBodyInto(body, check));
  BL_TRY_ASSIGN(shape.cms, check.Finish());
  shape.smime = true;
  return shape;
}

}  // namespace blindlist::mime
