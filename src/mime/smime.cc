// S/MIME envelopes in and out, and RFC 9788 header protection (docs/header-protection.md).
//
// Content-Type and Content-Disposition parameters are read as GMime reads them (media_type.h),
// without linking GMime, so the envelope commands start fast. Header sections are split by hand:
// header protection must give back the original bytes, folds and line endings included.

#include "mime/smime.h"

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "blindlist/error_codes.h"
#include "mime/base64_lines.h"
#include "mime/media_type.h"
#include "mime/smime_common.h"

namespace blindlist::mime {
namespace {

// ---------------------------------------------------------------------------------------------
// Content-Type parameters, found in place so one can be removed without touching the others.

struct ParameterSpan {
  std::size_t begin = 0;  // offset of the ';' that introduces it, within the field value
  std::size_t end = 0;    // offset just past it (the next top-level ';' or the end of the value)
  std::string name;       // lowercased
  std::string value;      // unquoted
};

struct ParameterScan {
  bool balanced = true;  // every quoted string and comment is closed
  std::vector<ParameterSpan> parameters;
};

ParameterScan ScanParameters(std::string_view value) {
  ParameterScan scan;
  std::vector<std::size_t> semicolons;
  bool in_quotes = false;
  int comment_depth = 0;
  for (std::size_t i = 0; i < value.size(); ++i) {
    const char c = value[i];
    if (in_quotes) {
      if (c == '\\') {
        ++i;
      } else if (c == '"') {
        in_quotes = false;
      }
    } else if (comment_depth > 0) {
      if (c == '\\') {
        ++i;
      } else if (c == '(') {
        ++comment_depth;
      } else if (c == ')') {
        --comment_depth;
      }
    } else if (c == '"') {
      in_quotes = true;
    } else if (c == '(') {
      comment_depth = 1;
    } else if (c == ';') {
      semicolons.push_back(i);
    }
  }
  scan.balanced = !in_quotes && comment_depth == 0;
  for (std::size_t k = 0; k < semicolons.size(); ++k) {
    ParameterSpan span;
    span.begin = semicolons[k];
    span.end = k + 1 < semicolons.size() ? semicolons[k + 1] : value.size();
    std::string_view text = value.substr(span.begin + 1, span.end - span.begin - 1);
    while (!text.empty() && IsLineSpace(text.front())) text.remove_prefix(1);
    std::size_t i = 0;
    while (i < text.size() && text[i] != '=' && text[i] != '*' && text[i] != '(' &&
           !IsLineSpace(text[i])) {
      ++i;
    }
    span.name = Lowercase(text.substr(0, i));
    const std::size_t equals = text.find('=', i);
    if (equals != std::string_view::npos) {
      std::string_view rest = text.substr(equals + 1);
      while (!rest.empty() && IsLineSpace(rest.front())) rest.remove_prefix(1);
      if (!rest.empty() && rest.front() == '"') {
        for (std::size_t j = 1; j < rest.size() && rest[j] != '"'; ++j) {
          if (rest[j] == '\\' && j + 1 < rest.size()) ++j;
          span.value.push_back(rest[j]);
        }
      } else {
        std::size_t j = 0;
        while (j < rest.size() && !IsLineSpace(rest[j]) && rest[j] != '(') ++j;
        span.value = std::string(rest.substr(0, j));
      }
    }
    scan.parameters.push_back(std::move(span));
  }
  return scan;
}

std::optional<ParameterSpan> FindParameter(const ParameterScan& scan, std::string_view name) {
  for (const ParameterSpan& span : scan.parameters) {
    if (span.name == name) return span;
  }
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// Base64

// Strict: only the alphabet, line white space and final padding; a corrupted body is an error,
// not data.
Result<Bytes> DecodeBase64Strict(std::string_view text) { return DecodeBase64Lines(text); }

// `line_length` characters a line, each line ended by `eol`.
std::string EncodeBase64Lines(ByteView data, std::size_t line_length, std::string_view eol) {
  std::string out;
  AppendBase64Lines(data, line_length, eol, out);
  return out;
}

// The contentType OID of a ContentInfo (SEQUENCE { OID, [0] ... }), if it can be read.
std::optional<std::string_view> ContentInfoOid(std::string_view der) {
  if (der.size() < 2 || static_cast<unsigned char>(der[0]) != 0x30) return std::nullopt;
  std::size_t pos = 1;
  const auto length_octet = static_cast<unsigned char>(der[pos++]);
  if (length_octet > 0x84) return std::nullopt;         // longer than any message we could hold
  if (length_octet > 0x80) pos += length_octet & 0x7f;  // long form; 0x80 is BER indefinite
  if (pos + 2 > der.size() || der[pos] != 0x06) return std::nullopt;
  const auto oid_length = static_cast<unsigned char>(der[pos + 1]);
  if (oid_length >= 0x80 || pos + 2 + oid_length > der.size()) return std::nullopt;
  return der.substr(pos + 2, oid_length);
}

// Accepts bytes that start like an enveloped or authEnveloped ContentInfo; the CMS layer
// checks the rest. Looking at the OID turns "0 apples" or a signed message into a clear error.
Status CheckEncryptedContentInfo(ByteView cms, std::string_view where) {
  const auto oid = ContentInfoOid(AsChars(cms));
  if (!oid) {
    return MakeError("not-smime", std::string(where) +
                                      " is not a CMS ContentInfo (no DER SEQUENCE with a content "
                                      "type), so not S/MIME");
  }
  const CmsContentType* type = KnownContentType(*oid);
  if (!type) {
    return MakeError("not-smime", std::string(where) +
                                      " has a CMS content type other than envelopedData or "
                                      "authEnvelopedData");
  }
  if (!type->encrypted) {
    return MakeError("not-smime", std::string(where) + " is CMS " + std::string(type->name) +
                                      ", not envelopedData or authEnvelopedData");
  }
  return Status::Ok();
}

// ---------------------------------------------------------------------------------------------
// The three input forms. Each is first located (every check but the body's decoding and its
// content type), then decoded: into a copy (ParseSmime) or in place (ParseSmimeInPlace).

struct LocatedBody {
  SmimeForm form = SmimeForm::kMime;
  std::string outer_headers;
  std::string pem_label;
  std::string_view body;  // inside the input
  bool base64 = true;
  std::string_view where;  // what the body is, for errors
};

LocatedBody EnvelopeFromBase64(std::string_view text, std::string_view where) {
  return LocatedBody{.form = SmimeForm::kBase64,
                     .outer_headers = {},
                     .pem_label = {},
                     .body = text,
                     .base64 = true,
                     .where = where};
}

Result<LocatedBody> ParsePemArmored(std::string_view text) {
  constexpr std::string_view kBegin = "-----BEGIN ";
  const std::string_view first_line = FirstLine(text);
  const std::size_t label_end = first_line.find("-----", kBegin.size());
  if (label_end == std::string_view::npos) {
    return MakeError("bad-base64", "PEM armor line is not closed by -----");
  }
  const std::string_view label = first_line.substr(kBegin.size(), label_end - kBegin.size());
  if (label != "CMS" && label != "PKCS7") {
    return MakeError("not-smime",
                     "input is a PEM block labelled " + std::string(label) + ", not CMS or PKCS7");
  }
  const std::string end_marker = "-----END " + std::string(label) + "-----";
  const std::size_t body_begin = text.find('\n');
  const std::size_t end = text.find(end_marker);
  if (body_begin == std::string_view::npos || end == std::string_view::npos || end < body_begin) {
    return MakeError("bad-base64", "PEM armor has no " + end_marker + " line");
  }
  LocatedBody located =
      EnvelopeFromBase64(text.substr(body_begin + 1, end - body_begin - 1), "the PEM block");
  located.pem_label = std::string(label);
  return located;
}

std::string DispositionFilename(std::string_view value) {
  const ParsedDisposition disposition = ParseDispositionValue(Unfold(value));
  const MediaParameter* filename = FindMediaParameter(disposition.parameters, "filename");
  return filename ? filename->value : "";
}

Status CheckSmimeMediaType(const MediaType& media, std::string_view disposition_filename) {
  constexpr std::string_view kWanted = ", not S/MIME (application/pkcs7-mime)";
  if (media.type != "application/pkcs7-mime" && media.type != "application/x-pkcs7-mime") {
    return MakeError("not-smime", "input is " + media.type + std::string(kWanted));
  }
  if (media.smime_type.empty()) {
    // RFC 8551 3.2.2: older agents omit smime-type; the file name still says enveloped data.
    if (EqualsIgnoreCase(media.name, "smime.p7m") ||
        EqualsIgnoreCase(disposition_filename, "smime.p7m")) {
      return Status::Ok();
    }
    return MakeError("not-smime", "input is " + media.type +
                                      " without smime-type or name=smime.p7m, so not known to be "
                                      "enveloped-data");
  }
  if (!EqualsIgnoreCase(media.smime_type, "enveloped-data") &&
      !EqualsIgnoreCase(media.smime_type, "authEnveloped-data")) {
    return MakeError("not-smime", "input is " + media.type + "; smime-type=" + media.smime_type +
                                      ", not an encrypted S/MIME message (enveloped-data or "
                                      "authEnveloped-data)");
  }
  return Status::Ok();
}

Result<LocatedBody> ParseMimeMessage(std::string_view input) {
  BL_TRY_ASSIGN(RawHeaderSection header, ParseHeaderSection(input, "malformed-mime"));
  if (!header.has_separator) {
    return MakeError("malformed-mime", "message has no body (no blank line after the header)");
  }
  const RawField* content_type = nullptr;
  const RawField* transfer_encoding = nullptr;
  const RawField* disposition = nullptr;
  std::string outer_headers;
  for (const RawField& field : header.fields) {
    if (EqualsIgnoreCase(field.name, "Content-Type") && !content_type) content_type = &field;
    if (EqualsIgnoreCase(field.name, "Content-Transfer-Encoding") && !transfer_encoding) {
      transfer_encoding = &field;
    }
    if (EqualsIgnoreCase(field.name, "Content-Disposition") && !disposition) disposition = &field;
    if (!IsStructuralField(field.name)) outer_headers += field.bytes;
  }
  if (!content_type) {
    return MakeError("not-smime",
                     "input is a message without Content-Type (so text/plain), not S/MIME "
                     "(application/pkcs7-mime)");
  }
  BL_TRY(CheckSmimeMediaType(ParseMediaType(content_type->value),
                             disposition ? DispositionFilename(disposition->value) : ""));

  // The blank line that ends the header is not part of the body.
  std::string_view body = input.substr(header.fields_end);
  body.remove_prefix(body.starts_with(kCrlf) ? 2 : 1);
  const std::string encoding =
      transfer_encoding ? Lowercase(Unfold(transfer_encoding->value)) : std::string();
  bool is_base64 = false;
  if (encoding == "base64") {
    is_base64 = true;
  } else if (encoding == "binary" || encoding == "8bit") {
    is_base64 = false;
  } else if (encoding.empty() || encoding == "7bit") {
    // Some agents send DER without saying so; base64 text can never start with 0x30 ('0').
    is_base64 = body.empty() || static_cast<unsigned char>(body.front()) != 0x30;
  } else {
    return MakeError("malformed-mime",
                     "unsupported Content-Transfer-Encoding " + encoding + " for S/MIME");
  }
  return LocatedBody{.form = SmimeForm::kMime,
                     .outer_headers = std::move(outer_headers),
                     .pem_label = {},
                     .body = body,
                     .base64 = is_base64,
                     .where = "the application/pkcs7-mime body"};
}

Result<LocatedBody> LocateSmime(std::string_view input) {
  if (input.empty()) return MakeError("not-smime", "input is empty");
  if (static_cast<unsigned char>(input.front()) == 0x30) {
    return LocatedBody{.form = SmimeForm::kDer,
                       .outer_headers = {},
                       .pem_label = {},
                       .body = input,
                       .base64 = false,
                       .where = "the DER input"};
  }
  std::string_view text = input;
  while (!text.empty() && IsLineSpace(text.front())) text.remove_prefix(1);
  if (text.starts_with("-----BEGIN ")) return ParsePemArmored(text);

  const std::string_view first_line = FirstLine(input);
  if (LooksLikeHeaderField(first_line)) return ParseMimeMessage(input);

  // Base64 lines are single words; prose and other formats are not mistaken for broken base64.
  const std::string_view first_word = Trim(FirstLine(text));
  const bool one_word =
      !first_word.empty() && first_word.find_first_of(" \t:") == std::string_view::npos;
  if (one_word) return EnvelopeFromBase64(text, "the base64 input");
  return MakeError("not-smime",
                   "input is neither an RFC 5322 message, DER nor base64, so not S/MIME");
}

// ---------------------------------------------------------------------------------------------
// Header protection (RFC 9788)

constexpr std::string_view kObscuredSubject = "[...]";
constexpr std::string_view kHpOuter = "HP-Outer";
constexpr std::string_view kHpParameter = "; hp=\"cipher\"";
constexpr std::string_view kHpParameterFolded = " hp=\"cipher\"";  // after ";" and a line ending
// For a message without Content-Type (RFC 2045 default, made explicit to carry hp).
constexpr std::string_view kImpliedContentType =
    "Content-Type: text/plain; charset=us-ascii; hp=\"cipher\"";
constexpr std::size_t kFoldColumn = 78;  // RFC 5322 2.1.1 SHOULD

enum class HcpVerdict { kKeep, kObscure, kRemove };

// RFC 9788 hcp_baseline: the Subject is obscured, Keywords and Comments are removed,
// every other non-structural field goes out as it is.
HcpVerdict HcpBaseline(std::string_view name) {
  if (EqualsIgnoreCase(name, "Subject")) return HcpVerdict::kObscure;
  if (EqualsIgnoreCase(name, "Keywords") || EqualsIgnoreCase(name, "Comments")) {
    return HcpVerdict::kRemove;
  }
  return HcpVerdict::kKeep;
}

// The Content-Type field with hp="cipher" appended as its last parameter. It is folded onto its
// own line when the line would pass 78 columns, and also when the unfolded result would read
// exactly like kImpliedContentType: that spelling must mean "there was no Content-Type".
std::string WithHpParameter(const RawField& content_type) {
  const std::string_view head = WithoutLineEnding(content_type);
  const std::size_t last_line_begin =
      head.rfind('\n') == std::string_view::npos ? 0 : head.rfind('\n') + 1;
  const std::size_t last_line_length = head.size() - last_line_begin;
  std::string out(head);
  const bool fits = last_line_length + kHpParameter.size() <= kFoldColumn;
  if (fits && std::string(head) + std::string(kHpParameter) != kImpliedContentType) {
    out += kHpParameter;
  } else {
    out += ';';
    out += content_type.eol;
    out += kHpParameterFolded;
  }
  out += content_type.eol;
  return out;
}

bool IsHpOuterField(const RawField& field) { return EqualsIgnoreCase(field.name, kHpOuter); }

const RawField* FirstContentType(const RawHeaderSection& header) {
  for (const RawField& field : header.fields) {
    if (EqualsIgnoreCase(field.name, "Content-Type")) return &field;
  }
  return nullptr;
}

}  // namespace

// -----------------------------------------------------------------------------------------------

Result<SmimeEnvelope> ParseSmime(std::string_view input) {
  BL_TRY_ASSIGN(LocatedBody located, LocateSmime(input));
  Bytes cms;
  if (located.base64) {
    BL_TRY_ASSIGN(cms, DecodeBase64Strict(located.body));
  } else {
    const ByteView raw = AsBytes(located.body);
    cms.assign(raw.begin(), raw.end());
  }
  BL_TRY(CheckEncryptedContentInfo(cms, located.where));
  return SmimeEnvelope{.form = located.form,
                       .outer_headers = std::move(located.outer_headers),
                       .cms = std::move(cms),
                       .pem_label = std::move(located.pem_label)};
}

Result<SmimeEnvelopeView> ParseSmimeInPlace(std::span<char> input) {
  BL_TRY_ASSIGN(LocatedBody located, LocateSmime(std::string_view(input.data(), input.size())));
  auto* body =
      reinterpret_cast<std::uint8_t*>(  // NOLINT(cppcoreguidelines-pro-type-reinterpret-cast)
          input.data() + (located.body.data() - input.data()));
  std::size_t size = located.body.size();
  if (located.base64) {
    BL_TRY_ASSIGN(size, DecodeBase64LinesInPlace(located.body, body));
  }
  const ByteView cms(body, size);
  BL_TRY(CheckEncryptedContentInfo(cms, located.where));
  return SmimeEnvelopeView{.form = located.form,
                           .outer_headers = std::move(located.outer_headers),
                           .cms = cms,
                           .pem_label = std::move(located.pem_label)};
}

std::string SerializeSmime(const SmimeEnvelope& envelope, bool auth_enveloped) {
  switch (envelope.form) {
    case SmimeForm::kDer:
      return std::string(AsChars(envelope.cms));
    case SmimeForm::kBase64: {
      std::string body = EncodeBase64Lines(envelope.cms, 64, kLf);  // as PEM bodies are written
      if (envelope.pem_label.empty()) return body;
      if (!body.empty() && body.back() != '\n') body += "\n";
      return "-----BEGIN " + envelope.pem_label + "-----\n" + body + "-----END " +
             envelope.pem_label + "-----\n";
    }
    case SmimeForm::kMime:
      break;
  }
  const std::string_view eol = LineEndingOf(envelope.outer_headers);
  std::string out;
  out.reserve(envelope.outer_headers.size() + 256 + Base64LinesSize(envelope.cms.size(), 76, 2));
  out += SmimeHeaderSection(envelope.outer_headers, auth_enveloped);
  AppendBase64Lines(envelope.cms, 76, eol, out);
  return out;
}

std::string_view SmimeLineEnding(std::string_view header_section) {
  return LineEndingOf(header_section);
}

std::string SmimeHeaderSection(std::string_view outer_headers, bool auth_enveloped) {
  const std::string_view eol = LineEndingOf(outer_headers);
  std::string out(outer_headers);
  if (!out.empty() && out.back() != '\n') out += eol;
  const std::string_view smime_type = auth_enveloped ? "authEnveloped-data" : "enveloped-data";
  out += "MIME-Version: 1.0";
  out += eol;
  // Folded before name= to stay within 78 columns.
  out += "Content-Type: application/pkcs7-mime; smime-type=";
  out += smime_type;
  out += ";";
  out += eol;
  out += " name=\"smime.p7m\"";
  out += eol;
  out += "Content-Disposition: attachment; filename=\"smime.p7m\"";
  out += eol;
  out += "Content-Transfer-Encoding: base64";
  out += eol;
  out += eol;
  return out;
}

Result<ProtectedHeader> ProtectHeaderSection(std::string_view rfc5322_message) {
  if (rfc5322_message.empty())
    return MakeError(std::string(errc::kMalformedMessage), "message is empty");
  if (rfc5322_message.find('\0') != std::string_view::npos) {
    return MakeError(std::string(errc::kMalformedMessage), "message contains a NUL byte");
  }
  BL_TRY_ASSIGN(RawHeaderSection header,
                ParseHeaderSection(rfc5322_message, std::string(errc::kMalformedMessage)));

  const RawField* content_type = nullptr;
  for (const RawField& field : header.fields) {
    if (IsHpOuterField(field)) {
      return MakeError(std::string(errc::kMalformedMessage),
                       "message already carries HP-Outer header fields");
    }
    if (EqualsIgnoreCase(field.name, "Content-Type")) {
      if (content_type) {
        return MakeError(std::string(errc::kMalformedMessage),
                         "message has two Content-Type fields");
      }
      content_type = &field;
    }
  }
  if (content_type) {
    const ParameterScan scan = ScanParameters(content_type->value);
    // An open quote or comment would swallow the parameter we append.
    if (!scan.balanced) {
      return MakeError(std::string(errc::kMalformedMessage),
                       "Content-Type has an unterminated quoted string or comment");
    }
    if (FindParameter(scan, "hp")) {
      return MakeError(std::string(errc::kMalformedMessage),
                       "message already carries header protection (hp=)");
    }
  }

  std::string inner;
  std::string outer;
  std::string hp_outer;  // RFC 9788 HP-Outer: what went outside, recorded inside
  for (const RawField& field : header.fields) {
    inner += &field == content_type ? WithHpParameter(field) : std::string(field.bytes);
    if (IsStructuralField(field.name)) continue;
    switch (HcpBaseline(field.name)) {
      case HcpVerdict::kKeep:
        outer += field.bytes;
        hp_outer += std::string(kHpOuter) + ": " + std::string(field.name) + ":" +
                    std::string(field.value) + std::string(field.eol);
        break;
      case HcpVerdict::kObscure: {
        const std::string obscured =
            std::string(field.name) + ": " + std::string(kObscuredSubject) + std::string(field.eol);
        outer += obscured;
        hp_outer += std::string(kHpOuter) + ": " + obscured;
        break;
      }
      case HcpVerdict::kRemove:
        break;  // RFC 9788: a removed field gets no HP-Outer line
    }
  }
  if (!content_type) {
    inner += kImpliedContentType;
    inner += header.eol;
  }
  inner += hp_outer;

  // The round trip is the contract; a message it fails on is refused rather than altered.
  // UnprotectHeaders reads the inner header section up to its blank line and copies the rest
  // verbatim, so the section and that line (at most two bytes) decide the whole round trip.
  const std::string_view rest = rfc5322_message.substr(header.fields_end);
  const std::string_view blank_line = rest.substr(0, rest.starts_with(kCrlf) ? 2 : 1);
  auto restored = UnprotectHeaders(inner + std::string(blank_line), outer);
  if (!restored.ok() ||
      *restored != rfc5322_message.substr(0, header.fields_end + blank_line.size())) {
    return MakeError(std::string(errc::kMalformedMessage),
                     "header protection would not restore this message");
  }
  return ProtectedHeader{.inner_header = std::move(inner),
                         .body_offset = header.fields_end,
                         .outer_headers = std::move(outer)};
}

Result<ProtectedMessage> ProtectHeaders(std::string_view rfc5322_message) {
  BL_TRY_ASSIGN(ProtectedHeader header, ProtectHeaderSection(rfc5322_message));
  std::string inner = std::move(header.inner_header);
  inner += rfc5322_message.substr(header.body_offset);
  return ProtectedMessage{.inner = std::move(inner),
                          .outer_headers = std::move(header.outer_headers)};
}

Result<UnprotectedHeader> UnprotectHeaderSection(std::string_view inner,
                                                 std::string_view outer_headers) {
  if (inner.empty())
    return MakeError(std::string(errc::kMalformedMessage), "decrypted content is empty");
  std::optional<RawHeaderSection> outer;
  if (!outer_headers.empty()) {
    BL_TRY_ASSIGN(outer, ParseHeaderSection(outer_headers, std::string(errc::kMalformedMessage)));
    if (outer->has_separator) {
      return MakeError(std::string(errc::kMalformedMessage),
                       "outer header section contains a blank line");
    }
  }

  auto inner_header = ParseHeaderSection(inner, std::string(errc::kMalformedMessage));
  const RawField* content_type = inner_header.ok() ? FirstContentType(*inner_header) : nullptr;
  std::optional<ParameterSpan> hp;
  if (content_type) {
    hp = FindParameter(ScanParameters(content_type->value), "hp");
    // "clear" marks signed-only protection; its inner header section is just as authoritative.
    if (hp && !EqualsIgnoreCase(hp->value, "cipher") && !EqualsIgnoreCase(hp->value, "clear")) {
      hp.reset();
    }
  }

  if (!hp) {
    // Legacy: no header protection, so the header fields sent in the clear are the message's.
    if (!outer || outer->fields.empty()) return UnprotectedHeader{.head = {}, .body_offset = 0};
    std::string head(outer_headers);
    const bool inner_is_entity =
        inner_header.ok() || inner.starts_with(kCrlf) || inner.starts_with(kLf);
    if (!inner_is_entity) head += outer->eol;  // inner is bare text: make it the body
    return UnprotectedHeader{.head = std::move(head), .body_offset = 0};
  }

  // Protected: the inner header section is the message's; the outer one is ignored (RFC 9788).
  std::string message;
  for (const RawField& field : inner_header->fields) {
    if (IsHpOuterField(field)) continue;
    if (&field != content_type) {
      message += field.bytes;
      continue;
    }
    const std::string_view head = WithoutLineEnding(field);
    if (head == kImpliedContentType) continue;
    const auto value_offset = static_cast<std::size_t>(field.value.data() - field.bytes.data());
    message += head.substr(0, value_offset + hp->begin);
    message += head.substr(value_offset + hp->end);
    message += field.eol;
  }
  return UnprotectedHeader{.head = std::move(message), .body_offset = inner_header->fields_end};
}

Result<std::string> UnprotectHeaders(std::string_view inner, std::string_view outer_headers) {
  BL_TRY_ASSIGN(UnprotectedHeader header, UnprotectHeaderSection(inner, outer_headers));
  std::string message = std::move(header.head);
  message.reserve(message.size() + inner.size() - header.body_offset);
  message += inner.substr(header.body_offset);
  return message;
}

}  // namespace blindlist::mime
