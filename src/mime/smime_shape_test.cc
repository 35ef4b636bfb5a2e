#include "mime/smime_shape.h"

#include <gtest/gtest.h>

#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "blindlist/base64.h"
#include "crypto/cms.h"
#include "crypto/keys.h"
#include "crypto/test_support.h"
#include "mime/smime.h"

namespace blindlist::mime {
namespace {

using crypto::testkit::Openssl;
using crypto::testkit::ReadFileBytes;
using crypto::testkit::RunCommand;
using crypto::testkit::ShellQuote;
using crypto::testkit::TempDir;
using crypto::testkit::WriteFileBytes;

constexpr std::size_t kLarge = std::size_t{1536} * 1024;  // over the old 1 MiB full-parse limit

std::string CmsVector(std::string_view name) {
  return (crypto::testkit::VectorDir() / name).string();
}

crypto::Certificate LoadCert(std::string_view name) {
  auto cert = crypto::Certificate::LoadFile(CmsVector(name));
  EXPECT_TRUE(cert.ok());
  return std::move(*cert);
}

// A MIME entity of about `size` bytes of printable text.
std::string Entity(std::size_t size, std::string_view marker = "secret") {
  std::string out = "Content-Type: text/plain; charset=us-ascii\r\n\r\n";
  out += marker;
  out += "\r\n";
  std::mt19937 rng(7);
  while (out.size() < size) {
    for (int i = 0; i < 72; ++i) out += static_cast<char>('a' + rng() % 26);
    out += "\r\n";
  }
  out.resize(std::max(size, out.find("\r\n\r\n") + 4));
  return out;
}

std::string Base64Lines(ByteView der) {
  const std::string b64 = Base64Encode(der);
  std::string out;
  for (std::size_t i = 0; i < b64.size(); i += 76) out += b64.substr(i, 76) + "\r\n";
  return out;
}

constexpr std::string_view kSmimeHeader =
    "From: alice@example.org\r\nTo: list@example.org\r\nSubject: [...]\r\nMIME-Version: 1.0\r\n"
    "Content-Type: application/pkcs7-mime; smime-type=enveloped-data; name=smime.p7m\r\n"
    "Content-Transfer-Encoding: base64\r\n\r\n";

// An RFC 5322 S/MIME message around `der`, as Thunderbird lays it out.
std::string Post(ByteView der, std::string_view header = kSmimeHeader) {
  return std::string(header) + Base64Lines(der);
}

// `openssl cms -encrypt` of `entity` to the rsa2048 vector certificate; DER output.
Bytes OpensslDer(const TempDir& dir, const std::string& entity, const std::string& cipher,
                 bool stream) {
  WriteFileBytes(dir.path() / "entity.txt", AsBytes(entity));
  const std::string out = dir.File("out.der");
  Openssl(dir, "cms -encrypt -binary -outform DER " + std::string(stream ? "-stream " : "") + "-" +
                   cipher + " -in " + ShellQuote(dir.File("entity.txt")) + " -out " +
                   ShellQuote(out) + " " + ShellQuote(CmsVector("rsa2048.cert.pem")));
  return ReadFileBytes(out);
}

// `openssl cms -encrypt` with its own S/MIME output (headers and base64), CRLF line endings.
std::string OpensslPost(const TempDir& dir, const std::string& entity, const std::string& cipher) {
  WriteFileBytes(dir.path() / "entity.txt", AsBytes(entity));
  const std::string out = dir.File("out.eml");
  Openssl(dir, "cms -encrypt -binary -" + cipher + " -from alice@example.org -to list@example.org" +
                   " -subject x -in " + ShellQuote(dir.File("entity.txt")) + " -out " +
                   ShellQuote(out) + " " + ShellQuote(CmsVector("rsa2048.cert.pem")));
  const Bytes lf = ReadFileBytes(out);
  std::string crlf;
  for (std::uint8_t c : lf) {
    if (c == '\n' && (crlf.empty() || crlf.back() != '\r')) crlf += '\r';
    crlf += static_cast<char>(c);
  }
  return crlf;
}

std::string BlindlistPost(const std::string& entity, crypto::ContentCipher cipher) {
  crypto::EncryptOptions options;
  options.cipher = cipher;
  auto cms = crypto::Encrypt(AsBytes(entity), {LoadCert("rsa2048.cert.pem")}, {}, options);
  EXPECT_TRUE(cms.ok()) << cms.error().message;
  SmimeEnvelope env;
  env.form = SmimeForm::kMime;
  env.outer_headers = "From: alice@example.org\r\nTo: list@example.org\r\nSubject: [...]\r\n";
  env.cms = std::move(*cms);
  return SerializeSmime(env, crypto::IsGcm(cipher));
}

void ExpectToListCert(const Result<MessageShape>& shape, bool auth_enveloped) {
  ASSERT_TRUE(shape.ok()) << shape.error().code << ": " << shape.error().message;
  EXPECT_TRUE(shape->smime);
  EXPECT_EQ(shape->cms.auth_enveloped, auth_enveloped);
  const crypto::Certificate cert = LoadCert("rsa2048.cert.pem");
  ASSERT_EQ(shape->cms.recipients.size(), 1u);
  EXPECT_TRUE(shape->cms.recipients[0].rid.Matches(cert));
  EXPECT_GT(shape->cms.encrypted_content_bytes, 0u);
}

std::string Code(const Result<MessageShape>& r) { return r.ok() ? "ok" : r.error().code; }

// ---------------------------------------------------------------------------------------------
// Accepted

TEST(SmimeShape, AcceptsOpensslPostsSmallAndLargeCbcAndGcm) {
  TempDir dir;
  for (std::size_t size : {std::size_t{2000}, kLarge}) {
    for (const std::string cipher : {"aes-256-gcm", "aes-256-cbc"}) {
      SCOPED_TRACE(cipher + " " + std::to_string(size));
      const bool gcm = cipher.ends_with("gcm");
      const std::string post = OpensslPost(dir, Entity(size), cipher);
      if (size == kLarge) {
        EXPECT_GT(post.size(), std::size_t{1} << 20);
      }
      auto shape = CheckWholeMessage(post);
      ExpectToListCert(shape, gcm);
      if (shape.ok()) {
        EXPECT_EQ(shape->cms.cipher,
                  gcm ? crypto::ContentCipher::kAes256Gcm : crypto::ContentCipher::kAes256Cbc);
      }
      // BER with indefinite lengths and a constructed encryptedContent (openssl -stream).
      ExpectToListCert(CheckWholeMessage(Post(OpensslDer(dir, Entity(size), cipher, true))), gcm);
    }
  }
}

TEST(SmimeShape, AcceptsBlindlistPostsSmallAndLarge) {
  for (std::size_t size : {std::size_t{500}, kLarge}) {
    for (auto cipher : {crypto::ContentCipher::kAes256Gcm, crypto::ContentCipher::kAes256Cbc}) {
      SCOPED_TRACE(std::string(crypto::ContentCipherName(cipher)) + " " + std::to_string(size));
      const std::string post = BlindlistPost(Entity(size), cipher);
      ExpectToListCert(CheckWholeMessage(post), crypto::IsGcm(cipher));
      // The same with LF line endings, as a local pipe may hand it over.
      std::string lf;
      for (char c : post) {
        if (c != '\r') lf += c;
      }
      ExpectToListCert(CheckWholeMessage(lf), crypto::IsGcm(cipher));
    }
  }
}

TEST(SmimeShape, AcceptsWhatNssSends) {
  // NSS (Thunderbird's engine), `cmsutil -E`: BER, indefinite lengths, chunked content.
  TempDir dir;
  const std::string db = "sql:" + dir.path().string();
  const auto run = [&](const std::string& command) {
    auto r = RunCommand(dir, command);
    ASSERT_EQ(r.exit_code, 0) << r.output;
  };
  run("certutil -N -d " + ShellQuote(db) + " --empty-password");
  run("certutil -A -d " + ShellQuote(db) + " -n list -t ,, -a -i " +
      ShellQuote(CmsVector("rsa2048.cert.pem")));
  WriteFileBytes(dir.path() / "entity.txt", AsBytes(Entity(40000)));
  run("cmsutil -E -d " + ShellQuote(db) + " -r list -i " + ShellQuote(dir.File("entity.txt")) +
      " -o " + ShellQuote(dir.File("nss.der")));
  const Bytes der = ReadFileBytes(dir.path() / "nss.der");
  ASSERT_EQ(der.at(1), 0x80) << "expected BER indefinite length from NSS";
  ExpectToListCert(CheckWholeMessage(Post(der)), false);
}

TEST(SmimeShape, AcceptsTheBerVectorAndOldHeaderForms) {
  const Bytes ber = ReadFileBytes(CmsVector("rsa-pkcs1-aes256cbc-ber.der"));
  ExpectToListCert(CheckWholeMessage(Post(ber)), false);
  // x-pkcs7-mime, no smime-type (RFC 8551 3.2.2: older agents), folded Content-Type.
  const std::string old_header =
      "From: alice@example.org\r\nContent-Type: application/x-pkcs7-mime;\r\n name=smime.p7m\r\n"
      "Content-Transfer-Encoding: BASE64\r\n\r\n";
  ExpectToListCert(CheckWholeMessage(Post(ber, old_header)), false);
}

TEST(SmimeShape, AnySplitOfTheStreamGivesTheSameAnswer) {
  TempDir dir;
  const Bytes ber = OpensslDer(dir, Entity(30000), "aes-256-gcm", true);
  const Bytes der = OpensslDer(dir, Entity(30000), "aes-128-cbc", false);
  for (const Bytes* input : {&ber, &der}) {
    CmsObjectCheck bytewise;
    for (std::uint8_t b : *input) ASSERT_TRUE(bytewise.Feed(ByteView(&b, 1)).ok());
    auto one = bytewise.Finish();
    ASSERT_TRUE(one.ok()) << one.error().message;
    std::mt19937 rng(11);
    CmsObjectCheck random;
    for (std::size_t pos = 0; pos < input->size();) {
      const std::size_t n = std::min<std::size_t>(1 + rng() % 5000, input->size() - pos);
      ASSERT_TRUE(random.Feed(ByteView(*input).subspan(pos, n)).ok());
      pos += n;
    }
    auto two = random.Finish();
    ASSERT_TRUE(two.ok()) << two.error().message;
    EXPECT_EQ(one->cms_bytes, input->size());
    EXPECT_EQ(two->cms_bytes, input->size());
    EXPECT_EQ(one->encrypted_content_bytes, two->encrypted_content_bytes);
    EXPECT_EQ(one->recipients.size(), 1u);
  }
}

// ---------------------------------------------------------------------------------------------
// Plaintext: not S/MIME at all; whether a list takes it is the list's rule.

TEST(SmimeShape, PlaintextIsNotSmime) {
  auto plain = CheckWholeMessage("From: a@example.org\r\nSubject: hi\r\n\r\nhello\r\n");
  ASSERT_TRUE(plain.ok());
  EXPECT_FALSE(plain->smime);
  EXPECT_EQ(plain->media_type, "text/plain");

  // The bypass: a multipart post whose first part is a real S/MIME prefix naming the list,
  // and whose second part is plaintext. It is a multipart message, never S/MIME.
  TempDir dir;
  const Bytes der = OpensslDer(dir, Entity(kLarge), "aes-256-gcm", false);
  const std::string multipart =
      "From: alice@example.org\r\nMIME-Version: 1.0\r\n"
      "Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\n"
      "Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n"
      "Content-Transfer-Encoding: base64\r\n\r\n" +
      Base64Lines(ByteView(der).first(4096)) +
      "\r\n--b\r\nContent-Type: text/plain\r\n\r\nTHE PLAINTEXT\r\n--b--\r\n";
  auto shape = CheckWholeMessage(multipart);
  ASSERT_TRUE(shape.ok()) << shape.error().message;
  EXPECT_FALSE(shape->smime);
  EXPECT_EQ(shape->media_type, "multipart/mixed");
}

// ---------------------------------------------------------------------------------------------
// Refused

class SmimeShapeRefusal : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    ber_ = new Bytes(OpensslDer(*dir_, Entity(5000), "aes-256-cbc", true));
    // GCM output grows with the entity byte by byte: one DER whose base64 ends in '=' padding,
    // and one whose length is a multiple of 3 (no padding at all).
    for (std::size_t size = 5000; size < 5006; ++size) {
      Bytes der = OpensslDer(*dir_, Entity(size), "aes-256-gcm", false);
      Bytes*& slot = der.size() % 3 == 0 ? aligned_ : der_;
      if (slot == nullptr) slot = new Bytes(std::move(der));
    }
    ASSERT_NE(der_, nullptr);
    ASSERT_NE(aligned_, nullptr);
  }
  static void TearDownTestSuite() {
    delete aligned_;
    delete der_;
    delete ber_;
    delete dir_;
  }
  static TempDir* dir_;
  static Bytes* der_;
  static Bytes* ber_;
  static Bytes* aligned_;
};
TempDir* SmimeShapeRefusal::dir_ = nullptr;
Bytes* SmimeShapeRefusal::der_ = nullptr;
Bytes* SmimeShapeRefusal::ber_ = nullptr;
Bytes* SmimeShapeRefusal::aligned_ = nullptr;

TEST_F(SmimeShapeRefusal, APkcs7HeaderOverAMultipartBody) {
  // Top-level type says S/MIME, but the body is a MIME multipart with a plaintext part.
  const std::string post = std::string(kSmimeHeader) + Base64Lines(ByteView(*der_).first(3000)) +
                           "--b\r\nContent-Type: text/plain\r\n\r\nTHE PLAINTEXT\r\n--b--\r\n";
  auto shape = CheckWholeMessage(post);
  EXPECT_EQ(Code(shape), "bad-base64");
}

TEST_F(SmimeShapeRefusal, TrailingDataInsideTheBase64) {
  for (const Bytes* cms : {der_, ber_}) {
    for (std::string_view extra : {std::string_view("\x00", 1), std::string_view("plaintext"),
                                   std::string_view("0\x03\x02\x01\x00")}) {
      Bytes with = *cms;
      with.insert(with.end(), extra.begin(), extra.end());
      auto shape = CheckWholeMessage(Post(with));
      EXPECT_EQ(Code(shape), "trailing-data");
      if (!shape.ok()) {
        EXPECT_NE(shape.error().message.find("trailing data after the CMS object"),
                  std::string::npos);
      }
    }
  }
}

TEST_F(SmimeShapeRefusal, TrailingDataAfterTheBase64Ends) {
  // After a valid padded end: more base64.
  const std::string padded = Post(*der_);
  ASSERT_EQ(Base64Encode(*der_).back(), '=');
  EXPECT_EQ(Code(CheckWholeMessage(padded + "SGVsbG8=\r\n")), "trailing-data");
  // No padding (3-byte aligned): a second base64 run decodes to bytes after the object.
  const std::string aligned = Post(*aligned_);
  ASSERT_NE(Base64Encode(*aligned_).back(), '=');
  EXPECT_EQ(Code(CheckWholeMessage(aligned)), "ok");
  EXPECT_EQ(Code(CheckWholeMessage(aligned + "QUJD\r\n")), "trailing-data");
  // Text after the body.
  EXPECT_EQ(Code(CheckWholeMessage(padded + "\r\nThe plaintext.\r\n")), "trailing-data");
  EXPECT_EQ(Code(CheckWholeMessage(aligned + "\r\n-- \r\nThe plaintext.\r\n")), "bad-base64");
  // White space after the end is fine.
  EXPECT_EQ(Code(CheckWholeMessage(padded + "\r\n\r\n  \r\n")), "ok");
}

TEST_F(SmimeShapeRefusal, ASecondCmsObject) {
  Bytes two = *der_;
  two.insert(two.end(), ber_->begin(), ber_->end());
  EXPECT_EQ(Code(CheckWholeMessage(Post(two))), "trailing-data");
  // Two base64 bodies one after the other (the first 3-byte aligned, so without padding).
  EXPECT_EQ(Code(CheckWholeMessage(Post(*aligned_) + Base64Lines(*der_))), "trailing-data");
}

TEST_F(SmimeShapeRefusal, ASecondContentTypeOrTransferEncoding) {
  const std::string second_type =
      "From: a@example.org\r\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n"
      "Content-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n";
  EXPECT_EQ(Code(CheckWholeMessage(Post(*der_, second_type))), "malformed-message");
  const std::string plain_first =
      "From: a@example.org\r\nContent-Type: text/plain\r\n"
      "Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n"
      "Content-Transfer-Encoding: base64\r\n\r\n";
  EXPECT_EQ(Code(CheckWholeMessage(Post(*der_, plain_first))), "malformed-message");
  const std::string two_encodings =
      "From: a@example.org\r\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n"
      "Content-Transfer-Encoding: base64\r\nContent-Transfer-Encoding: 8bit\r\n\r\n";
  EXPECT_EQ(Code(CheckWholeMessage(Post(*der_, two_encodings))), "not-one-entity");
  const std::string no_encoding =
      "From: a@example.org\r\nContent-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n"
      "\r\n";
  EXPECT_EQ(Code(CheckWholeMessage(Post(*der_, no_encoding))), "not-one-entity");
  const std::string signed_type =
      "From: a@example.org\r\nContent-Type: application/pkcs7-mime; smime-type=signed-data\r\n"
      "Content-Transfer-Encoding: base64\r\n\r\n";
  EXPECT_EQ(Code(CheckWholeMessage(Post(*der_, signed_type))), "not-one-entity");
  EXPECT_EQ(Code(CheckWholeMessage(
                std::string(kSmimeHeader).substr(0, std::string(kSmimeHeader).size() - 2))),
            "not-one-entity");
}

TEST_F(SmimeShapeRefusal, HeaderLinesReadersSplitDifferently) {
  // A reader that ends the header at a white-space-only line would show the lines after it,
  // Content-Type included, as a plaintext body.
  const std::string blank_line =
      "From: a@example.org\r\nSubject: x\r\n \r\nThe plaintext: hello\r\n"
      "Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n"
      "Content-Transfer-Encoding: base64\r\n\r\n";
  EXPECT_EQ(Code(CheckWholeMessage(Post(*der_, blank_line))), "malformed-message");
  const std::string lone_cr =
      "From: a@example.org\r\nSubject: x\rThe plaintext: hello\r\n"
      "Content-Type: application/pkcs7-mime; smime-type=enveloped-data\r\n"
      "Content-Transfer-Encoding: base64\r\n\r\n";
  EXPECT_EQ(Code(CheckWholeMessage(Post(*der_, lone_cr))), "malformed-message");
  // Ordinary folding is fine.
  const std::string folded =
      "From: a@example.org\r\nSubject: a long\r\n subject\r\n"
      "Content-Type: application/pkcs7-mime;\r\n\tsmime-type=enveloped-data\r\n"
      "Content-Transfer-Encoding: base64\r\n\r\n";
  EXPECT_EQ(Code(CheckWholeMessage(Post(*der_, folded))), "ok");
}

TEST_F(SmimeShapeRefusal, Base64WithGarbage) {
  std::string post = Post(*der_);
  post[std::string(kSmimeHeader).size() + 100] = '*';
  EXPECT_EQ(Code(CheckWholeMessage(post)), "bad-base64");
  std::string nul = Post(*der_);
  nul[std::string(kSmimeHeader).size() + 10] = '\0';
  EXPECT_EQ(Code(CheckWholeMessage(nul)), "bad-base64");
  // Three pad characters, padding in the middle, a length that is not a multiple of 4.
  EXPECT_EQ(Code(CheckWholeMessage(std::string(kSmimeHeader) + "MIIB===\r\n")), "bad-base64");
  EXPECT_EQ(Code(CheckWholeMessage(std::string(kSmimeHeader) + "MI==MIIB\r\n")), "trailing-data");
  EXPECT_EQ(Code(CheckWholeMessage(std::string(kSmimeHeader) + "MIIBA\r\n")), "bad-base64");
  EXPECT_EQ(Code(CheckWholeMessage(std::string(kSmimeHeader) + "\r\n")), "not-cms");
  // Data before the object: a decoded prefix that is not a ContentInfo.
  Bytes prefixed = ToBytes("hello");
  prefixed.insert(prefixed.end(), der_->begin(), der_->end());
  EXPECT_EQ(Code(CheckWholeMessage(Post(prefixed))), "not-cms");
}

TEST_F(SmimeShapeRefusal, SignedDataAndOtherContentTypes) {
  TempDir& dir = *dir_;
  WriteFileBytes(dir.path() / "signme.txt", AsBytes(Entity(2000)));
  Openssl(dir, "cms -sign -binary -nodetach -outform DER -in " +
                   ShellQuote(dir.File("signme.txt")) + " -signer " +
                   ShellQuote(CmsVector("rsa2048.cert.pem")) + " -inkey " +
                   ShellQuote(CmsVector("rsa2048.key.pem")) + " -out " +
                   ShellQuote(dir.File("signed.der")));
  auto shape = CheckWholeMessage(Post(ReadFileBytes(dir.path() / "signed.der")));
  ASSERT_EQ(Code(shape), "not-enveloped");
  EXPECT_NE(shape.error().message.find("signedData"), std::string::npos) << shape.error().message;
}

TEST_F(SmimeShapeRefusal, TruncatedCms) {
  for (const Bytes* cms : {der_, ber_}) {
    for (std::size_t cut : {std::size_t{1}, std::size_t{2}, std::size_t{100}, cms->size() - 10}) {
      SCOPED_TRACE(cut);
      Bytes shorter(cms->begin(), cms->end() - static_cast<std::ptrdiff_t>(cut));
      EXPECT_EQ(Code(CheckWholeMessage(Post(shorter))), "truncated");
    }
  }
}

TEST_F(SmimeShapeRefusal, LengthsThatRunPastTheirElement) {
  // The ContentInfo says 5 bytes, the OID inside says 9.
  const Bytes overrun = crypto::testkit::Hex(
      "3005"
      "06092a864886f70d010703");
  CmsObjectCheck check;
  EXPECT_EQ(crypto::testkit::ErrorCode(check.Feed(overrun)), "malformed-cms");
  // End-of-contents where nothing indefinite is open.
  CmsObjectCheck eoc;
  EXPECT_EQ(crypto::testkit::ErrorCode(eoc.Feed(crypto::testkit::Hex("300d0000"))),
            "malformed-cms");
  // Indefinite nesting past the depth limit inside a kept field.
  std::string deep_hex =
      "3080"
      "06092a864886f70d010703"
      "a080"
      "3080"
      "020100";
  for (int i = 0; i < 40; ++i) deep_hex += "3180";
  CmsObjectCheck deep;
  EXPECT_EQ(crypto::testkit::ErrorCode(deep.Feed(crypto::testkit::Hex(deep_hex))), "malformed-cms");
  // A long-form length of more than 4 octets.
  CmsObjectCheck huge;
  EXPECT_EQ(crypto::testkit::ErrorCode(huge.Feed(crypto::testkit::Hex("3088"))), "malformed-cms");
  // Errors stick.
  EXPECT_EQ(crypto::testkit::ErrorCode(huge.Finish()), "malformed-cms");
}

TEST_F(SmimeShapeRefusal, KeptFieldsAreBounded) {
  SmimeShapeLimits tiny;
  tiny.max_kept_bytes = 64;
  EXPECT_EQ(Code(CheckWholeMessage(Post(*der_), tiny)), "too-large");
}

}  // namespace
}  // namespace blindlist::mime
