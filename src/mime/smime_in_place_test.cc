// The copy-free forms of the S/MIME reader and of header protection give what the copying ones
// give: ParseSmimeInPlace as ParseSmime (every input form, and the same errors),
// ProtectHeaderSection as ProtectHeaders, UnprotectHeaderSection as UnprotectHeaders.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "mime/base64_lines.h"
#include "mime/smime.h"

namespace blindlist::mime {
namespace {

// A syntactically enveloped ContentInfo: SEQUENCE { OID envelopedData, [0] { ... } }.
Bytes FakeEnvelopedData() {
  Bytes der = {0x30, 0x13, 0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01,
               0x07, 0x03, 0xa0, 0x06, 0x30, 0x04, 0x02, 0x01, 0x00, 0x31, 0x00};
  return der;
}

std::string Base64(const Bytes& data, std::string_view eol) {
  std::string out;
  AppendBase64Lines(data, 76, eol, out);
  return out;
}

void ExpectSameParse(const std::string& input) {
  auto copied = ParseSmime(input);
  std::string buffer = input;
  auto in_place = ParseSmimeInPlace(std::span<char>(buffer.data(), buffer.size()));
  ASSERT_EQ(copied.ok(), in_place.ok()) << input;
  if (!copied.ok()) {
    EXPECT_EQ(copied.error().code, in_place.error().code);
    EXPECT_EQ(copied.error().message, in_place.error().message);
    return;
  }
  EXPECT_EQ(copied->form, in_place->form);
  EXPECT_EQ(copied->outer_headers, in_place->outer_headers);
  EXPECT_EQ(copied->pem_label, in_place->pem_label);
  EXPECT_EQ(copied->cms, Bytes(in_place->cms.begin(), in_place->cms.end()));
}

TEST(SmimeInPlaceTest, ParsesAsParseSmime) {
  const Bytes der = FakeEnvelopedData();
  const std::string mime =
      "From: a@example.org\r\nSubject: [...]\r\nContent-Type: application/pkcs7-mime; "
      "smime-type=enveloped-data; name=smime.p7m\r\nContent-Transfer-Encoding: base64\r\n\r\n" +
      Base64(der, "\r\n");
  const std::vector<std::string> inputs = {
      mime,
      std::string(AsChars(der)),
      Base64(der, "\n"),
      "-----BEGIN CMS-----\n" + Base64(der, "\n") + "-----END CMS-----\n",
      "",
      "hello world, not S/MIME\n",
      mime.substr(0, mime.size() - 10) + "*\r\n",
      "Content-Type: text/plain\n\nhello\n",
  };
  for (const std::string& input : inputs) ExpectSameParse(input);
}

TEST(SmimeInPlaceTest, HeaderSectionsAsWholeMessages) {
  const std::vector<std::string> messages = {
      "From: a@example.org\nSubject: hi\nContent-Type: text/plain\n\nbody\nmore\n",
      "From: a@example.org\r\nSubject: hi\r\n\r\nbody\r\n",
      "From: a@example.org\nSubject: no body\n",
      "Subject: folded\n over two lines\nKeywords: gone\n\n\nbody after a blank line\n",
  };
  for (const std::string& message : messages) {
    auto whole = ProtectHeaders(message);
    auto section = ProtectHeaderSection(message);
    ASSERT_EQ(whole.ok(), section.ok()) << message;
    if (!whole.ok()) continue;
    EXPECT_EQ(whole->inner, section->inner_header + message.substr(section->body_offset));
    EXPECT_EQ(whole->outer_headers, section->outer_headers);

    auto restored = UnprotectHeaders(whole->inner, whole->outer_headers);
    auto head = UnprotectHeaderSection(whole->inner, whole->outer_headers);
    ASSERT_TRUE(restored.ok() && head.ok());
    EXPECT_EQ(*restored, head->head + whole->inner.substr(head->body_offset));
    EXPECT_EQ(*restored, message);
  }
  // Without header protection (a legacy sender): the outer header section comes first.
  auto legacy = UnprotectHeaderSection("bare text\n", "From: a@example.org\n");
  ASSERT_TRUE(legacy.ok());
  EXPECT_EQ(legacy->head + std::string("bare text\n").substr(legacy->body_offset),
            *UnprotectHeaders("bare text\n", "From: a@example.org\n"));
}

}  // namespace
}  // namespace blindlist::mime
