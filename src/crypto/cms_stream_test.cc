// StreamEncryptor: its pieces make the ContentInfo that Envelope::Serialize writes for the same
// envelope (so Encrypt, built on it, is unchanged), for every cipher and recipient kind and for
// contents whose lengths need one to four length octets; and the result decrypts.
#include "crypto/cms_stream.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <string>

#include "crypto/keys.h"
#include "crypto/test_support.h"

namespace blindlist::crypto {
namespace {

struct Target {
  Certificate cert;
  PrivateKey key;
};

Target Load(const std::string& stem) {
  const auto dir = testkit::VectorDir();
  auto cert = Certificate::LoadFile((dir / (stem + ".cert.pem")).string());
  auto key = PrivateKey::LoadFile((dir / (stem + ".key.pem")).string());
  EXPECT_TRUE(cert.ok() && key.ok());
  return Target{std::move(*cert), std::move(*key)};
}

Bytes Content(std::size_t size) {
  Bytes b(size);
  for (std::size_t i = 0; i < size; ++i) b[i] = static_cast<std::uint8_t>(i * 131 + 7);
  return b;
}

TEST(StreamEncryptorTest, PiecesMakeTheSerializedEnvelope) {
  const Target rsa = Load("rsa2048");
  const Target ec = Load("p256");
  GroupSecret secret;
  secret.id = testkit::Hex("0102");
  secret.key = testkit::SecretHex(std::string(64, 'a'));
  for (ContentCipher cipher : {ContentCipher::kAes256Gcm, ContentCipher::kAes256Cbc}) {
    for (std::size_t size : {0UL, 1UL, 15UL, 16UL, 100UL, 200UL, 70000UL, (1UL << 24) + 3}) {
      EncryptOptions options;
      options.cipher = cipher;
      auto enc = StreamEncryptor::Start(size, {rsa.cert, ec.cert}, {secret}, options);
      ASSERT_TRUE(enc.ok()) << enc.error().message;
      const Bytes content = Content(size);
      Bytes out(enc->prefix().begin(), enc->prefix().end());
      // Uneven pieces, so CBC holds back partial blocks between them.
      std::size_t pos = 0;
      for (std::size_t piece = 7; pos < size; piece = piece * 3 + 1) {
        const std::size_t n = std::min(piece, size - pos);
        ASSERT_TRUE(enc->Update(ByteView(content.data() + pos, n), out).ok());
        pos += n;
      }
      ASSERT_TRUE(enc->Finish(out).ok());

      auto env = Envelope::Parse(out);
      ASSERT_TRUE(env.ok()) << env.error().message << " size " << size;
      EXPECT_EQ(env->Serialize(), out) << "size " << size;
      EXPECT_EQ(env->recipients.size(), 3U);
      for (const Target* t : {&rsa, &ec}) {
        auto cek = FindAndUnwrapCek(*env, t->key, &t->cert);
        ASSERT_TRUE(cek.ok()) << cek.error().message;
        auto plain = DecryptContent(*env, *cek);
        ASSERT_TRUE(plain.ok()) << plain.error().message;
        EXPECT_TRUE(
            std::equal(plain->view().begin(), plain->view().end(), content.begin(), content.end()));
      }
    }
  }
}

TEST(StreamEncryptorTest, ContentMustMatchItsAnnouncedSize) {
  const Target rsa = Load("rsa2048");
  auto enc = StreamEncryptor::Start(4, {rsa.cert}, {}, EncryptOptions{});
  ASSERT_TRUE(enc.ok());
  Bytes out;
  EXPECT_EQ(testkit::ErrorCode(enc->Update(Content(5), out)), "usage");
  ASSERT_TRUE(enc->Update(Content(3), out).ok());
  EXPECT_EQ(testkit::ErrorCode(enc->Finish(out)), "usage");
}

// In place, the plaintext is DecryptContent's; a segmented (BER) content is not located and is
// decrypted from its copy; a tampered GCM content fails the same way and leaves nothing readable.
TEST(DecryptInPlaceTest, SameAsDecryptContent) {
  const Target rsa = Load("rsa2048");
  for (ContentCipher cipher : {ContentCipher::kAes256Gcm, ContentCipher::kAes256Cbc}) {
    EncryptOptions options;
    options.cipher = cipher;
    const Bytes content = Content(100000);
    auto message = Encrypt(content, {rsa.cert}, {}, options);
    ASSERT_TRUE(message.ok());
    ContentLocation where;
    auto env = ParseEnvelopeForDecryption(*message, &where);
    ASSERT_TRUE(env.ok()) << env.error().message;
    ASSERT_TRUE(where.in_place);
    EXPECT_TRUE(env->ciphertext.empty());
    auto full = Envelope::Parse(*message);
    ASSERT_TRUE(full.ok());
    auto cek = FindAndUnwrapCek(*env, rsa.key, &rsa.cert);
    ASSERT_TRUE(cek.ok());
    auto expected = DecryptContent(*full, *cek);
    ASSERT_TRUE(expected.ok());

    Bytes buffer = *message;
    auto plain = DecryptContentInPlace(*env, buffer, where, *cek);
    ASSERT_TRUE(plain.ok()) << plain.error().message;
    EXPECT_TRUE(
        std::equal(plain->begin(), plain->end(), expected->view().begin(), expected->view().end()));

    if (cipher == ContentCipher::kAes256Gcm) {  // CBC has no integrity to fail
      Bytes tampered = *message;
      tampered[where.offset + 5000] ^= 1;
      auto refused = DecryptContentInPlace(*env, tampered, where, *cek);
      EXPECT_EQ(testkit::ErrorCode(refused), "tampered");
      // Everything decrypted before the tag check is cleansed.
      EXPECT_TRUE(std::all_of(tampered.begin() + static_cast<std::ptrdiff_t>(where.offset),
                              tampered.begin() + static_cast<std::ptrdiff_t>(where.offset + 4096),
                              [](std::uint8_t b) { return b == 0; }));
    }
  }
}

TEST(DecryptInPlaceTest, SegmentedContentIsCopied) {
  const Bytes ber = testkit::ReadFileBytes(testkit::VectorDir() / "rsa-pkcs1-aes256cbc-ber.der");
  ContentLocation where;
  auto env = ParseEnvelopeForDecryption(ber, &where);
  ASSERT_TRUE(env.ok()) << env.error().message;
  auto full = Envelope::Parse(ber);
  ASSERT_TRUE(full.ok());
  EXPECT_FALSE(where.in_place);  // its encryptedContent is a constructed OCTET STRING
  EXPECT_EQ(env->ciphertext, full->ciphertext);
  Bytes buffer = ber;
  EXPECT_EQ(testkit::ErrorCode(DecryptContentInPlace(*env, buffer, where, SecretBytes())), "usage");
}

}  // namespace
}  // namespace blindlist::crypto
