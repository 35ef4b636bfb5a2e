#include "mime/smime.h"

#include <gmime/gmime.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <string_view>
#include <vector>

#include "peer.h"

namespace blindlist::mime {
namespace {

namespace fs = std::filesystem;

// ---------------------------------------------------------------------------------------------
// Helpers

fs::path VectorDir() {
  const char* source_dir = std::getenv("BLINDLIST_SOURCE_DIR");
#ifdef BLINDLIST_SOURCE_DIR_DEFAULT
  if (source_dir == nullptr) source_dir = BLINDLIST_SOURCE_DIR_DEFAULT;
#endif
  if (source_dir == nullptr) source_dir = ".";
  return fs::path(source_dir) / "tests" / "vectors" / "mime";
}

std::string ReadFile(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  EXPECT_TRUE(in.good()) << "cannot open " << path;
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

void WriteFile(const fs::path& path, std::string_view bytes) {
  std::ofstream out(path, std::ios::binary);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string Vector(std::string_view name) { return ReadFile(VectorDir() / name); }

// Vectors are stored with LF; the CRLF form is made here so no checkout setting can alter it.
std::string ToCrlf(std::string_view lf_text) {
  std::string out;
  for (char c : lf_text) {
    if (c == '\n') out += '\r';
    out += c;
  }
  return out;
}

std::string Replace(std::string text, std::string_view from, std::string_view to) {
  const std::size_t pos = text.find(from);
  EXPECT_NE(pos, std::string::npos) << from;
  if (pos != std::string::npos) text.replace(pos, from.size(), to);
  return text;
}

Bytes BytesOf(std::string_view text) { return ToBytes(text); }

bool Contains(std::string_view haystack, std::string_view needle) {
  return haystack.find(needle) != std::string_view::npos;
}

// The GMime view of an entity, as a receiving MIME parser sees it.
struct GObjectUnref {
  void operator()(void* object) const { g_object_unref(object); }
};

class ParsedEntity {
 public:
  explicit ParsedEntity(std::string_view bytes) {
    static std::once_flag once;
    std::call_once(once, [] { g_mime_init(); });
    std::unique_ptr<GMimeStream, GObjectUnref> stream(
        g_mime_stream_mem_new_with_buffer(bytes.data(), bytes.size()));
    std::unique_ptr<GMimeParser, GObjectUnref> parser(g_mime_parser_new_with_stream(stream.get()));
    object_.reset(g_mime_parser_construct_part(parser.get(), nullptr));
  }
  bool ok() const { return object_ != nullptr; }
  std::string MimeType() const {
    char* type = g_mime_content_type_get_mime_type(g_mime_object_get_content_type(object_.get()));
    std::string out(type);
    g_free(type);
    return out;
  }
  std::string Parameter(const char* name) const {
    const char* value =
        g_mime_content_type_get_parameter(g_mime_object_get_content_type(object_.get()), name);
    return value ? value : "";
  }
  int PartCount() const {
    return GMIME_IS_MULTIPART(object_.get())
               ? g_mime_multipart_get_count(GMIME_MULTIPART(object_.get()))
               : -1;
  }

 private:
  std::unique_ptr<GMimeObject, GObjectUnref> object_;
};

void ExpectError(const Error& error, std::string_view code) {
  EXPECT_EQ(error.code, code) << error.message;
}

// ---------------------------------------------------------------------------------------------
// ParseSmime

TEST(ParseSmime, ReadsOpensslSmimeMessage) {
  auto envelope = ParseSmime(Vector("enveloped.eml"));
  ASSERT_TRUE(envelope.ok()) << envelope.error().message;
  EXPECT_EQ(envelope->form, SmimeForm::kMime);
  EXPECT_EQ(envelope->outer_headers,
            "To: crypto-list@lists.example.org\nFrom: alice@example.org\nSubject: [...]\n");
  EXPECT_EQ(envelope->cms, BytesOf(Vector("enveloped.der")));
}

TEST(ParseSmime, KeepsCrlfOuterHeadersExactly) {
  auto envelope = ParseSmime(ToCrlf(Vector("enveloped.eml")));
  ASSERT_TRUE(envelope.ok()) << envelope.error().message;
  EXPECT_EQ(envelope->outer_headers,
            "To: crypto-list@lists.example.org\r\nFrom: alice@example.org\r\nSubject: [...]\r\n");
  EXPECT_EQ(envelope->cms, BytesOf(Vector("enveloped.der")));
}

TEST(ParseSmime, KeepsFoldedOuterFieldsAndDropsEveryStructuralField) {
  const std::string message = Replace(Vector("enveloped.eml"), "Subject: [...]\n",
                                      "Subject: [...]\nX-Note: one\n two\nContent-ID: <x@y>\n"
                                      "mime-version: 1.0\n");
  auto envelope = ParseSmime(message);
  ASSERT_TRUE(envelope.ok()) << envelope.error().message;
  EXPECT_EQ(envelope->outer_headers,
            "To: crypto-list@lists.example.org\nFrom: alice@example.org\nSubject: [...]\n"
            "X-Note: one\n two\n");
}

TEST(ParseSmime, ReadsAuthEnvelopedData) {
  auto envelope = ParseSmime(Vector("auth-enveloped.eml"));
  ASSERT_TRUE(envelope.ok()) << envelope.error().message;
  EXPECT_EQ(envelope->form, SmimeForm::kMime);
  EXPECT_EQ(envelope->outer_headers, "");
  EXPECT_EQ(envelope->cms.at(0), 0x30);
}

TEST(ParseSmime, AcceptsXPkcs7MimeAndQuotedSmimeType) {
  const std::string message =
      Replace(Vector("enveloped.eml"), "application/pkcs7-mime; smime-type=enveloped-data",
              "application/x-pkcs7-mime; smime-type=\"enveloped-data\"");
  EXPECT_TRUE(ParseSmime(message).ok());
}

TEST(ParseSmime, AcceptsMissingSmimeTypeWhenNamedSmimeP7m) {
  const std::string message = Replace(Vector("enveloped.eml"), "smime-type=enveloped-data; ", "");
  auto envelope = ParseSmime(message);
  ASSERT_TRUE(envelope.ok()) << envelope.error().message;
  EXPECT_EQ(envelope->cms, BytesOf(Vector("enveloped.der")));
}

TEST(ParseSmime, RejectsMissingSmimeTypeWithoutTheName) {
  std::string message = Replace(Vector("enveloped.eml"), "smime-type=enveloped-data; ", "");
  message = Replace(message, "; name=\"smime.p7m\"", "");
  message = Replace(message, "Content-Disposition: attachment; filename=\"smime.p7m\"\n", "");
  auto envelope = ParseSmime(message);
  ASSERT_FALSE(envelope.ok());
  ExpectError(envelope.error(), "not-smime");
}

TEST(ParseSmime, ToleratesBinaryTransferEncoding) {
  const std::string header =
      "Subject: [...]\nMIME-Version: 1.0\n"
      "Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\n"
      "Content-Transfer-Encoding: binary\n\n";
  const std::string der = Vector("enveloped.der");
  auto envelope = ParseSmime(header + der);
  ASSERT_TRUE(envelope.ok()) << envelope.error().message;
  EXPECT_EQ(envelope->cms, BytesOf(der));
  EXPECT_EQ(envelope->outer_headers, "Subject: [...]\n");

  // Without any Content-Transfer-Encoding, DER is recognised by its first byte.
  auto undeclared = ParseSmime(Replace(header, "Content-Transfer-Encoding: binary\n", "") + der);
  ASSERT_TRUE(undeclared.ok()) << undeclared.error().message;
  EXPECT_EQ(undeclared->cms, BytesOf(der));
}

TEST(ParseSmime, ReadsDer) {
  const std::string der = Vector("enveloped.der");
  auto envelope = ParseSmime(der);
  ASSERT_TRUE(envelope.ok()) << envelope.error().message;
  EXPECT_EQ(envelope->form, SmimeForm::kDer);
  EXPECT_EQ(envelope->outer_headers, "");
  EXPECT_EQ(envelope->cms, BytesOf(der));
}

TEST(ParseSmime, ReadsPemArmorAndBareBase64) {
  const std::string pem = Vector("enveloped.pem");
  auto armored = ParseSmime(pem);
  ASSERT_TRUE(armored.ok()) << armored.error().message;
  EXPECT_EQ(armored->form, SmimeForm::kBase64);
  EXPECT_EQ(armored->cms, BytesOf(Vector("enveloped.der")));

  auto pkcs7 =
      ParseSmime(Replace(Replace(pem, "BEGIN CMS", "BEGIN PKCS7"), "END CMS", "END PKCS7"));
  ASSERT_TRUE(pkcs7.ok()) << pkcs7.error().message;

  std::string bare = Replace(pem, "-----BEGIN CMS-----\n", "");
  bare = Replace(bare, "-----END CMS-----\n", "");
  auto unarmored = ParseSmime(bare);
  ASSERT_TRUE(unarmored.ok()) << unarmored.error().message;
  EXPECT_EQ(unarmored->form, SmimeForm::kBase64);
  EXPECT_EQ(unarmored->cms, BytesOf(Vector("enveloped.der")));

  auto crlf = ParseSmime(ToCrlf(bare));
  ASSERT_TRUE(crlf.ok()) << crlf.error().message;
  EXPECT_EQ(crlf->cms, BytesOf(Vector("enveloped.der")));
}

TEST(ParseSmime, RejectsWhatIsNotSmime) {
  struct Case {
    std::string name;
    std::string input;
    std::string message_part;
  };
  const std::vector<Case> cases = {
      {"empty", "", "empty"},
      {"text/plain", Vector("text-plain.eml"),
       "input is text/plain, not S/MIME (application/pkcs7-mime)"},
      {"no Content-Type", Vector("no-content-type.eml"), "without Content-Type"},
      {"signed-data", Vector("signed-data.eml"), "smime-type=signed-data"},
      {"multipart/signed", Vector("multipart-signed.eml"), "multipart/signed"},
      {"signed DER", Vector("signed-data.der"), "signedData"},
      {"prose", "Hello Bob,\nthis is not encrypted.\n", "neither"},
      {"certificate PEM", "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n",
       "CERTIFICATE"},
      {"base64 of text", "aGVsbG8gd29ybGQ=\n", "not a CMS ContentInfo"},
      {"text starting with 0x30", "0 apples and 3 pears\n", "not a CMS ContentInfo"},
      {"DER of another type",
       std::string("\x30\x0d\x06\x09\x2a\x86\x48\x86\xf7\x0d\x01\x07\x07\x00\x00", 15),
       "other than envelopedData"},
  };
  for (const Case& c : cases) {
    auto envelope = ParseSmime(c.input);
    ASSERT_FALSE(envelope.ok()) << c.name;
    EXPECT_EQ(envelope.error().code, "not-smime") << c.name << ": " << envelope.error().message;
    EXPECT_TRUE(Contains(envelope.error().message, c.message_part))
        << c.name << ": " << envelope.error().message;
  }
}

TEST(ParseSmime, RejectsBrokenBase64) {
  const std::string message = Vector("enveloped.eml");
  const std::size_t body = message.find("\n\n") + 2;
  const std::string header = message.substr(0, body);
  const std::string base64 = message.substr(body);
  const std::string pem = Vector("enveloped.pem");

  const std::vector<std::pair<std::string, std::string>> cases = {
      {"invalid character", header + "MIIB*" + base64.substr(5)},
      {"truncated", header + base64.substr(0, base64.size() - 3)},
      {"too much padding", header + "MIIBuw===\n"},
      {"data after padding", header + "MIIBuw==AAAA\n"},
      {"empty body", header},
      {"bare, invalid character", "MIIB%wYJ\n"},
      {"pem, invalid character", Replace(pem, "MII", "M!I")},
      {"pem, no END line", pem.substr(0, pem.find("-----END"))},
  };
  for (const auto& [name, input] : cases) {
    auto envelope = ParseSmime(input);
    ASSERT_FALSE(envelope.ok()) << name;
    EXPECT_EQ(envelope.error().code, "bad-base64") << name << ": " << envelope.error().message;
  }
}

TEST(ParseSmime, RejectsMalformedHeaderSections) {
  const std::string message = Vector("enveloped.eml");
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"line without colon", Replace(message, "From: alice@example.org\n", "From alice\n")},
      {"NUL in header", Replace(message, "From: alice", std::string("From: al\0ice", 12))},
      {"no body", message.substr(0, message.find("\n\n") + 1)},
      {"quoted-printable", Replace(message, "Content-Transfer-Encoding: base64",
                                   "Content-Transfer-Encoding: quoted-printable")},
  };
  for (const auto& [name, input] : cases) {
    auto envelope = ParseSmime(input);
    ASSERT_FALSE(envelope.ok()) << name;
    EXPECT_EQ(envelope.error().code, "malformed-mime") << name << ": " << envelope.error().message;
  }
}

// ---------------------------------------------------------------------------------------------
// SerializeSmime

TEST(SerializeSmime, WritesTheMimeFormItDocuments) {
  SmimeEnvelope envelope{.form = SmimeForm::kMime,
                         .outer_headers = "From: a@example.org\nSubject: [...]\n",
                         .cms = BytesOf(Vector("enveloped.der")),
                         .pem_label = {}};
  const std::string out = SerializeSmime(envelope, /*auth_enveloped=*/false);
  EXPECT_TRUE(out.starts_with(
      "From: a@example.org\nSubject: [...]\nMIME-Version: 1.0\n"
      "Content-Type: application/pkcs7-mime; smime-type=enveloped-data;\n name=\"smime.p7m\"\n"
      "Content-Disposition: attachment; filename=\"smime.p7m\"\n"
      "Content-Transfer-Encoding: base64\n\nMII"))
      << out;
  EXPECT_FALSE(Contains(out, "\r"));
  const std::string body = out.substr(out.find("\n\n") + 2);
  std::istringstream lines(body);
  std::string line;
  while (std::getline(lines, line)) EXPECT_LE(line.size(), 76u);
  EXPECT_EQ(body.substr(0, 77).back(), '\n');  // full lines are exactly 76 columns

  auto reparsed = ParseSmime(out);
  ASSERT_TRUE(reparsed.ok()) << reparsed.error().message;
  EXPECT_EQ(reparsed->form, SmimeForm::kMime);
  EXPECT_EQ(reparsed->outer_headers, envelope.outer_headers);
  EXPECT_EQ(reparsed->cms, envelope.cms);

  EXPECT_TRUE(Contains(SerializeSmime(envelope, /*auth_enveloped=*/true),
                       "smime-type=authEnveloped-data;"));
}

TEST(SerializeSmime, FollowsCrlfOuterHeaders) {
  SmimeEnvelope envelope{.form = SmimeForm::kMime,
                         .outer_headers = "From: a@example.org\r\nSubject: [...]\r\n",
                         .cms = BytesOf(Vector("enveloped.der")),
                         .pem_label = {}};
  const std::string out = SerializeSmime(envelope, false);
  EXPECT_EQ(out.find("\n"), out.find("\r\n") + 1);
  std::size_t bare_lf = 0;
  for (std::size_t i = 0; i < out.size(); ++i) {
    if (out[i] == '\n' && (i == 0 || out[i - 1] != '\r')) ++bare_lf;
  }
  EXPECT_EQ(bare_lf, 0u);
  auto reparsed = ParseSmime(out);
  ASSERT_TRUE(reparsed.ok()) << reparsed.error().message;
  EXPECT_EQ(reparsed->outer_headers, envelope.outer_headers);
  EXPECT_EQ(reparsed->cms, envelope.cms);
}

TEST(SerializeSmime, WritesDerAndBase64Back) {
  const std::string der = Vector("enveloped.der");
  SmimeEnvelope envelope{
      .form = SmimeForm::kDer, .outer_headers = {}, .cms = BytesOf(der), .pem_label = {}};
  EXPECT_EQ(SerializeSmime(envelope, false), der);

  envelope.form = SmimeForm::kBase64;
  const std::string base64 = SerializeSmime(envelope, false);
  std::istringstream lines(base64);
  std::string line;
  while (std::getline(lines, line)) EXPECT_LE(line.size(), 64u);
  auto reparsed = ParseSmime(base64);
  ASSERT_TRUE(reparsed.ok()) << reparsed.error().message;
  EXPECT_EQ(reparsed->form, SmimeForm::kBase64);
  EXPECT_EQ(reparsed->cms, envelope.cms);
}

// ---------------------------------------------------------------------------------------------
// Header protection

const char* const kRoundTripVectors[] = {"plain.eml",           "no-content-type.eml",
                                         "multipart-mixed.eml", "folded.eml",
                                         "utf8-body.eml",       "comments-keywords.eml"};

TEST(HeaderProtection, RoundTripsEveryVectorByteForByteWithLfAndCrlf) {
  for (const char* name : kRoundTripVectors) {
    for (bool crlf : {false, true}) {
      const std::string message = crlf ? ToCrlf(Vector(name)) : Vector(name);
      SCOPED_TRACE(std::string(name) + (crlf ? " (CRLF)" : " (LF)"));
      auto protected_message = ProtectHeaders(message);
      ASSERT_TRUE(protected_message.ok()) << protected_message.error().message;
      auto restored = UnprotectHeaders(protected_message->inner, protected_message->outer_headers);
      ASSERT_TRUE(restored.ok()) << restored.error().message;
      EXPECT_EQ(*restored, message);

      // What a receiving MIME parser makes of the protected entity.
      ParsedEntity entity(protected_message->inner);
      ASSERT_TRUE(entity.ok());
      EXPECT_EQ(entity.Parameter("hp"), "cipher");
      EXPECT_TRUE(Contains(protected_message->inner, "HP-Outer: Subject: [...]"));

      // The outer header section: no real Subject, no structural fields.
      const std::string& outer = protected_message->outer_headers;
      EXPECT_TRUE(Contains(outer, "Subject: [...]" + std::string(crlf ? "\r\n" : "\n")));
      EXPECT_EQ(outer.find("Subject:"), outer.rfind("Subject:"));
      EXPECT_FALSE(Contains(outer, "Content-"));
      EXPECT_FALSE(Contains(outer, "MIME-Version"));
      EXPECT_FALSE(Contains(outer, "HP-Outer"));
      EXPECT_TRUE(Contains(outer, "From:"));
      EXPECT_TRUE(Contains(outer, "Message-ID:"));
      if (crlf) {
        EXPECT_EQ(protected_message->inner.find('\n'), protected_message->inner.find("\r\n") + 1);
      }
    }
  }
}

TEST(HeaderProtection, PlainMessageLooksLikeRfc9788Says) {
  auto protected_message = ProtectHeaders(Vector("plain.eml"));
  ASSERT_TRUE(protected_message.ok()) << protected_message.error().message;
  EXPECT_EQ(protected_message->outer_headers,
            "From: Alice Example <alice@example.org>\n"
            "To: List <crypto-list@lists.example.org>\n"
            "Subject: [...]\n"
            "Date: Wed, 11 Jan 2023 16:08:43 -0500\n"
            "Message-ID: <plain-1@example.org>\n");
  EXPECT_EQ(protected_message->inner,
            "From: Alice Example <alice@example.org>\n"
            "To: List <crypto-list@lists.example.org>\n"
            "Subject: Quarterly figures\n"
            "Date: Wed, 11 Jan 2023 16:08:43 -0500\n"
            "Message-ID: <plain-1@example.org>\n"
            "MIME-Version: 1.0\n"
            "Content-Type: text/plain; charset=\"us-ascii\"; hp=\"cipher\"\n"
            "Content-Transfer-Encoding: 7bit\n"
            "HP-Outer: From: Alice Example <alice@example.org>\n"
            "HP-Outer: To: List <crypto-list@lists.example.org>\n"
            "HP-Outer: Subject: [...]\n"
            "HP-Outer: Date: Wed, 11 Jan 2023 16:08:43 -0500\n"
            "HP-Outer: Message-ID: <plain-1@example.org>\n"
            "\n"
            "The figures are attached to the minutes.\n"
            "See you Thursday.\n");
}

TEST(HeaderProtection, MessageWithoutContentTypeGetsTheDefaultMadeExplicit) {
  auto protected_message = ProtectHeaders(Vector("no-content-type.eml"));
  ASSERT_TRUE(protected_message.ok()) << protected_message.error().message;
  EXPECT_TRUE(Contains(protected_message->inner,
                       "\nContent-Type: text/plain; charset=us-ascii; hp=\"cipher\"\n"));
  ParsedEntity entity(protected_message->inner);
  EXPECT_EQ(entity.MimeType(), "text/plain");
  EXPECT_EQ(entity.Parameter("charset"), "us-ascii");
}

TEST(HeaderProtection, ContentTypeSpelledLikeTheDefaultStillRoundTrips) {
  // Appending hp to this field would read exactly like the line added when there is none.
  const std::string message =
      "From: a@example.org\nSubject: Hi\nContent-Type: text/plain; charset=us-ascii\n\nBody\n";
  auto protected_message = ProtectHeaders(message);
  ASSERT_TRUE(protected_message.ok()) << protected_message.error().message;
  EXPECT_TRUE(Contains(protected_message->inner,
                       "Content-Type: text/plain; charset=us-ascii;\n hp=\"cipher\"\n"));
  auto restored = UnprotectHeaders(protected_message->inner, protected_message->outer_headers);
  ASSERT_TRUE(restored.ok()) << restored.error().message;
  EXPECT_EQ(*restored, message);
}

TEST(HeaderProtection, MultipartKeepsItsBoundaryAndParts) {
  auto protected_message = ProtectHeaders(Vector("multipart-mixed.eml"));
  ASSERT_TRUE(protected_message.ok()) << protected_message.error().message;
  EXPECT_TRUE(Contains(protected_message->inner,
                       "Content-Type: multipart/mixed; boundary=\"=-=-boundary-7f3a-=-=\"; "
                       "hp=\"cipher\"\n"));
  ParsedEntity entity(protected_message->inner);
  EXPECT_EQ(entity.MimeType(), "multipart/mixed");
  EXPECT_EQ(entity.Parameter("boundary"), "=-=-boundary-7f3a-=-=");
  EXPECT_EQ(entity.Parameter("hp"), "cipher");
  EXPECT_EQ(entity.PartCount(), 2);
}

TEST(HeaderProtection, FoldedFieldsAreRecordedWithTheirFolds) {
  auto protected_message = ProtectHeaders(Vector("folded.eml"));
  ASSERT_TRUE(protected_message.ok()) << protected_message.error().message;
  const std::string& inner = protected_message->inner;
  EXPECT_TRUE(
      Contains(inner,
               "HP-Outer: To: List <crypto-list@lists.example.org>,\n\tBob <bob@example.net>,"
               "\n Carol <carol@example.net>\n"));
  EXPECT_TRUE(Contains(inner,
                       "Content-Type: text/plain;\n charset=\"us-ascii\";\n format=flowed; "
                       "hp=\"cipher\"\n"));
  EXPECT_FALSE(Contains(protected_message->outer_headers, "folded it"));
  EXPECT_TRUE(
      Contains(protected_message->outer_headers, "From: Alice Example\n <alice@example.org>\n"));
  ParsedEntity entity(inner);
  EXPECT_EQ(entity.Parameter("format"), "flowed");
  EXPECT_EQ(entity.Parameter("hp"), "cipher");
}

TEST(HeaderProtection, KeywordsAndCommentsStayInside) {
  auto protected_message = ProtectHeaders(Vector("comments-keywords.eml"));
  ASSERT_TRUE(protected_message.ok()) << protected_message.error().message;
  const std::string& outer = protected_message->outer_headers;
  const std::string& inner = protected_message->inner;
  EXPECT_FALSE(Contains(outer, "Keywords"));
  EXPECT_FALSE(Contains(outer, "Comments"));
  EXPECT_FALSE(Contains(outer, "Merger"));
  EXPECT_TRUE(Contains(outer, "User-Agent: Sample MUA 1.0\n"));
  EXPECT_TRUE(Contains(inner, "Keywords: merger, confidential, project-blue\n"));
  EXPECT_TRUE(Contains(inner, "Comments: Draft two; do not forward\n"));
  // A removed field has no HP-Outer line: its absence records the removal (RFC 9788).
  EXPECT_FALSE(Contains(inner, "HP-Outer: Keywords"));
  EXPECT_FALSE(Contains(inner, "HP-Outer: Comments"));
  EXPECT_TRUE(Contains(inner, "HP-Outer: User-Agent: Sample MUA 1.0\n"));
}

TEST(HeaderProtection, LongContentTypeLineIsFoldedBeforeHp) {
  const std::string content_type =
      "Content-Type: multipart/alternative; boundary=\"----=_Part_0123456789_abcdefghijklmnop\"";
  const std::string message = "From: a@example.org\nSubject: Hi\n" + content_type + "\n\nbody\n";
  auto protected_message = ProtectHeaders(message);
  ASSERT_TRUE(protected_message.ok()) << protected_message.error().message;
  EXPECT_TRUE(Contains(protected_message->inner, content_type + ";\n hp=\"cipher\"\n"));
  auto restored = UnprotectHeaders(protected_message->inner, protected_message->outer_headers);
  ASSERT_TRUE(restored.ok());
  EXPECT_EQ(*restored, message);
}

TEST(HeaderProtection, OddButValidHeaderSectionsRoundTrip) {
  const std::vector<std::string> messages = {
      // Header only, no body.
      "From: a@example.org\nSubject: Only a header\n",
      // Obsolete white space before the colon, no space after it, trailing white space.
      "From : a@example.org\nSubject:tight\nContent-Type: text/plain (a comment; with semicolon)  "
      "\n"
      "\nbody",
      // Content-Type ending in a bare ';' and a quoted parameter containing ';'.
      "Subject: x\nContent-Type: text/plain; name=\"a;b\";\n\nbody\n",
      // Mixed line endings and a lowercase field name.
      "subject: mixed\r\nFrom: a@example.org\ncontent-type: text/plain\r\n\r\nbody\n",
      // Several Subject fields: all obscured.
      "Subject: one\nSubject: two\n\nbody\n",
  };
  for (const std::string& message : messages) {
    SCOPED_TRACE(message);
    auto protected_message = ProtectHeaders(message);
    ASSERT_TRUE(protected_message.ok()) << protected_message.error().message;
    EXPECT_FALSE(Contains(protected_message->outer_headers, "one"));
    EXPECT_FALSE(Contains(protected_message->outer_headers, "two"));
    EXPECT_FALSE(Contains(protected_message->outer_headers, "tight"));
    auto restored = UnprotectHeaders(protected_message->inner, protected_message->outer_headers);
    ASSERT_TRUE(restored.ok()) << restored.error().message;
    EXPECT_EQ(*restored, message);
  }
}

TEST(HeaderProtection, RejectsMalformedMessages) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"empty", ""},
      {"no header section", "\nJust a body.\n"},
      {"no header section, CRLF", "\r\nJust a body.\r\n"},
      {"line without colon", "From: a@example.org\nThis is not a field\n\nbody\n"},
      {"continuation first", " folded: x\nSubject: y\n\nbody\n"},
      {"NUL in header", std::string("Subject: a\0b\n\nbody\n", 16)},
      {"NUL in body", std::string("Subject: ab\n\nbo\0dy\n", 18)},
      {"cut short", "Subject: no line ending"},
      {"plain text", "Hello Bob, how are you?\n"},
      {"two Content-Type", "Content-Type: text/plain\nContent-Type: text/html\n\nx\n"},
      {"already hp", "Subject: x\nContent-Type: text/plain; hp=\"cipher\"\n\nx\n"},
      {"already HP-Outer", "Subject: x\nHP-Outer: Subject: [...]\n\nx\n"},
      {"open quote", "Subject: x\nContent-Type: text/plain; name=\"open\n\nx\n"},
  };
  for (const auto& [name, input] : cases) {
    auto protected_message = ProtectHeaders(input);
    ASSERT_FALSE(protected_message.ok()) << name;
    EXPECT_EQ(protected_message.error().code, "malformed-message")
        << name << ": " << protected_message.error().message;
  }
}

TEST(UnprotectHeaders, IgnoresTheOuterHeaderWhenTheInnerIsProtected) {
  auto protected_message = ProtectHeaders(Vector("plain.eml"));
  ASSERT_TRUE(protected_message.ok());
  auto restored = UnprotectHeaders(protected_message->inner,
                                   "From: mallory@example.net\nCc: mallory@example.net\n");
  ASSERT_TRUE(restored.ok()) << restored.error().message;
  EXPECT_EQ(*restored, Vector("plain.eml"));
}

TEST(UnprotectHeaders, StripsAnotherSendersHpParameterWhereverItIs) {
  const std::string inner =
      "Content-Type: text/plain; HP=cipher; charset=\"utf-8\"\n"
      "Subject: Real subject\n"
      "hp-outer: Subject: [...]\n"
      "HP-Outer: To: b@example.net,\n c@example.net\n"
      "\n"
      "body\n";
  auto restored = UnprotectHeaders(inner, "Subject: [...]\n");
  ASSERT_TRUE(restored.ok()) << restored.error().message;
  EXPECT_EQ(*restored,
            "Content-Type: text/plain; charset=\"utf-8\"\nSubject: Real subject\n\nbody\n");
}

TEST(UnprotectHeaders, SignedOnlyHpClearIsAlsoAuthoritative) {
  auto restored = UnprotectHeaders(
      "Subject: Real\nContent-Type: text/plain; hp=\"clear\"\n\nbody\n", "Subject: other\n");
  ASSERT_TRUE(restored.ok());
  EXPECT_EQ(*restored, "Subject: Real\nContent-Type: text/plain\n\nbody\n");
}

TEST(UnprotectHeaders, LegacyMessagesTakeTheirHeaderFromOutside) {
  const std::string outer = "From: a@example.org\r\nSubject: Hello\r\n";
  // A MIME entity without hp, as `openssl cms -encrypt` or a legacy client makes it.
  const std::string entity = "Content-Type: text/plain\r\n\r\nHi there\r\n";
  auto restored = UnprotectHeaders(entity, outer);
  ASSERT_TRUE(restored.ok()) << restored.error().message;
  EXPECT_EQ(*restored, outer + entity);

  // An entity with an empty header section.
  auto empty_header = UnprotectHeaders("\r\nHi there\r\n", outer);
  ASSERT_TRUE(empty_header.ok());
  EXPECT_EQ(*empty_header, outer + "\r\nHi there\r\n");

  // Bare text becomes the body.
  auto bare = UnprotectHeaders("Hi there, plain text\r\n", outer);
  ASSERT_TRUE(bare.ok());
  EXPECT_EQ(*bare, outer + "\r\nHi there, plain text\r\n");

  // No outer fields: the inner entity alone.
  auto alone = UnprotectHeaders(entity, "");
  ASSERT_TRUE(alone.ok());
  EXPECT_EQ(*alone, entity);
}

TEST(UnprotectHeaders, RejectsMalformedInput) {
  auto empty = UnprotectHeaders("", "Subject: x\n");
  ASSERT_FALSE(empty.ok());
  ExpectError(empty.error(), "malformed-message");

  auto bad_outer = UnprotectHeaders("Content-Type: text/plain\n\nx\n", "not a header\n");
  ASSERT_FALSE(bad_outer.ok());
  ExpectError(bad_outer.error(), "malformed-message");

  auto outer_with_body =
      UnprotectHeaders("Content-Type: text/plain\n\nx\n", "Subject: x\n\nbody\n");
  ASSERT_FALSE(outer_with_body.ok());
  ExpectError(outer_with_body.error(), "malformed-message");
}

TEST(UnprotectHeaders, InnerHeaderThatDoesNotParseIsLegacyContent) {
  const std::string inner = "Content-Type: text/plain; hp=cipher\nno colon\n\nx\n";
  auto restored = UnprotectHeaders(inner, "Subject: s\n");
  ASSERT_TRUE(restored.ok()) << restored.error().message;
  EXPECT_EQ(*restored, "Subject: s\n\n" + inner);
}

// ---------------------------------------------------------------------------------------------
// Interoperation with the openssl command line

class OpensslInterop : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (std::system("openssl version >/dev/null 2>&1") != 0) {
      missing_ = true;
      return;
    }
    std::string templ = (fs::temp_directory_path() / "blindlist-mime-XXXXXX").string();
    if (mkdtemp(templ.data()) == nullptr) return;
    dir_ = new fs::path(templ);
    // A throwaway key and certificate, made fresh for every run.
    if (Run("req -x509 -newkey rsa:2048 -nodes -keyout key.pem -out cert.pem -subj /CN=mime-test "
            "-days 1") != 0) {
      fs::remove_all(*dir_);
      delete dir_;
      dir_ = nullptr;
    }
  }
  static void TearDownTestSuite() {
    if (dir_) fs::remove_all(*dir_);
    delete dir_;
    dir_ = nullptr;
  }
  void SetUp() override {
    if (missing_) BL_PEER_MISSING("the openssl command is not installed");
    // openssl is there but the set-up failed: that is a failure, not a missing peer.
    ASSERT_NE(dir_, nullptr) << "set-up failed: `openssl req` could not make a test certificate";
  }

  static int Run(const std::string& openssl_args) {
    const std::string command =
        "cd '" + dir_->string() + "' && openssl " + openssl_args + " >>openssl.log 2>&1";
    return std::system(command.c_str());
  }
  static fs::path Path(const std::string& name) { return *dir_ / name; }
  static std::string Decrypt(const std::string& smime_file) {
    if (Run("cms -decrypt -binary -in " + smime_file + " -inkey key.pem -recip cert.pem -out " +
            smime_file + ".out") != 0) {
      return "<decrypt failed: " + ReadFile(Path("openssl.log")) + ">";
    }
    return ReadFile(Path(smime_file + ".out"));
  }

  static fs::path* dir_;
  static bool missing_;
};

fs::path* OpensslInterop::dir_ = nullptr;
bool OpensslInterop::missing_ = false;

TEST_F(OpensslInterop, ParseSerializeDecryptRoundTrip) {
  const std::string content = "Content-Type: text/plain\r\n\r\nInterop body\r\n";
  WriteFile(Path("content.txt"), content);
  struct Case {
    std::string cipher;
    bool auth_enveloped;
    bool crlf;
  };
  for (const Case& c : {Case{"-aes256", false, false}, Case{"-aes-256-gcm", true, false},
                        Case{"-aes256", false, true}, Case{"-aes-256-gcm", true, true}}) {
    SCOPED_TRACE(c.cipher + (c.crlf ? " CRLF" : " LF"));
    ASSERT_EQ(Run("cms -encrypt -binary " + c.cipher +
                  " -in content.txt -out enc.eml -to list@example.org -from a@example.org "
                  "-subject Visible cert.pem"),
              0);
    std::string wire = ReadFile(Path("enc.eml"));
    if (c.crlf) wire = ToCrlf(wire);
    auto envelope = ParseSmime(wire);
    ASSERT_TRUE(envelope.ok()) << envelope.error().message;
    EXPECT_EQ(envelope->form, SmimeForm::kMime);
    const std::string eol = c.crlf ? "\r\n" : "\n";
    EXPECT_EQ(envelope->outer_headers, "To: list@example.org" + eol + "From: a@example.org" + eol +
                                           "Subject: Visible" + eol);
    const std::string out = SerializeSmime(*envelope, c.auth_enveloped);
    EXPECT_TRUE(Contains(
        out, c.auth_enveloped ? "smime-type=authEnveloped-data" : "smime-type=enveloped-data"));
    WriteFile(Path("reserialized.eml"), out);
    EXPECT_EQ(Decrypt("reserialized.eml"), content);
  }
}

TEST_F(OpensslInterop, DerAndPemOutputs) {
  WriteFile(Path("content.txt"), "hello\n");
  ASSERT_EQ(Run("cms -encrypt -binary -aes256 -in content.txt -outform DER -out enc.der cert.pem"),
            0);
  const std::string der = ReadFile(Path("enc.der"));
  auto from_der = ParseSmime(der);
  ASSERT_TRUE(from_der.ok()) << from_der.error().message;
  EXPECT_EQ(from_der->form, SmimeForm::kDer);
  EXPECT_EQ(from_der->cms, BytesOf(der));
  WriteFile(Path("der-back.der"), SerializeSmime(*from_der, false));
  ASSERT_EQ(Run("cms -decrypt -binary -inform DER -in der-back.der -inkey key.pem -out der.out"),
            0);
  EXPECT_EQ(ReadFile(Path("der.out")), "hello\n");

  ASSERT_EQ(Run("cms -encrypt -binary -aes256 -in content.txt -outform PEM -out enc.pem cert.pem"),
            0);
  ASSERT_EQ(Run("cms -cmsout -inform PEM -in enc.pem -outform DER -out enc-pem.der"), 0);
  auto from_pem = ParseSmime(ReadFile(Path("enc.pem")));
  ASSERT_TRUE(from_pem.ok()) << from_pem.error().message;
  EXPECT_EQ(from_pem->form, SmimeForm::kBase64);
  EXPECT_EQ(from_pem->cms, BytesOf(ReadFile(Path("enc-pem.der"))));
}

TEST_F(OpensslInterop, SignedDataIsNotSmimeForUs) {
  WriteFile(Path("content.txt"), "signed\n");
  ASSERT_EQ(Run("cms -sign -nodetach -in content.txt -signer cert.pem -inkey key.pem -out s.eml"),
            0);
  ASSERT_EQ(Run("cms -sign -in content.txt -signer cert.pem -inkey key.pem -out ms.eml"), 0);
  ASSERT_EQ(Run("cms -sign -nodetach -in content.txt -signer cert.pem -inkey key.pem -outform DER "
                "-out s.der"),
            0);
  for (const char* file : {"s.eml", "ms.eml", "s.der"}) {
    auto envelope = ParseSmime(ReadFile(Path(file)));
    ASSERT_FALSE(envelope.ok()) << file;
    EXPECT_EQ(envelope.error().code, "not-smime") << file << ": " << envelope.error().message;
  }
}

// The whole sending and reading path: protect, encrypt the inner entity, send with the outer
// header section, decrypt, unprotect.
TEST_F(OpensslInterop, HeaderProtectedMessageSurvivesEncryptionAndDecryption) {
  for (const char* name : kRoundTripVectors) {
    for (bool crlf : {false, true}) {
      SCOPED_TRACE(std::string(name) + (crlf ? " CRLF" : " LF"));
      const std::string message = crlf ? ToCrlf(Vector(name)) : Vector(name);
      auto protected_message = ProtectHeaders(message);
      ASSERT_TRUE(protected_message.ok()) << protected_message.error().message;
      WriteFile(Path("inner.eml"), protected_message->inner);
      ASSERT_EQ(Run("cms -encrypt -binary -aes-256-gcm -in inner.eml -out enc.eml cert.pem"), 0);
      auto envelope = ParseSmime(ReadFile(Path("enc.eml")));
      ASSERT_TRUE(envelope.ok()) << envelope.error().message;
      envelope->outer_headers = protected_message->outer_headers;
      const std::string wire = SerializeSmime(*envelope, /*auth_enveloped=*/true);
      EXPECT_FALSE(Contains(wire, "Quarterly figures"));
      EXPECT_FALSE(Contains(wire, "Merger"));
      EXPECT_TRUE(Contains(wire, "Subject: [...]"));
      WriteFile(Path("wire.eml"), wire);

      auto received = ParseSmime(ReadFile(Path("wire.eml")));
      ASSERT_TRUE(received.ok()) << received.error().message;
      const std::string decrypted = Decrypt("wire.eml");
      auto restored = UnprotectHeaders(decrypted, received->outer_headers);
      ASSERT_TRUE(restored.ok()) << restored.error().message;
      EXPECT_EQ(*restored, message);
    }
  }
}

TEST_F(OpensslInterop, LegacyEncryptedMessageKeepsItsOuterHeader) {
  const std::string entity = "Content-Type: text/plain\r\n\r\nFrom a legacy client\r\n";
  WriteFile(Path("legacy.txt"), entity);
  ASSERT_EQ(Run("cms -encrypt -binary -aes256 -in legacy.txt -out legacy.eml -from a@example.org "
                "-subject Legacy cert.pem"),
            0);
  auto envelope = ParseSmime(ReadFile(Path("legacy.eml")));
  ASSERT_TRUE(envelope.ok()) << envelope.error().message;
  auto restored = UnprotectHeaders(Decrypt("legacy.eml"), envelope->outer_headers);
  ASSERT_TRUE(restored.ok()) << restored.error().message;
  EXPECT_EQ(*restored, "From: a@example.org\nSubject: Legacy\n" + entity);
}

}  // namespace
}  // namespace blindlist::mime
