#include "crypto/x509.h"

#include <gtest/gtest.h>
#include <stdlib.h>  // mkdtemp
#include <sys/wait.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "crypto/signature.h"
#include "peer.h"

// The openssl and NSS command-line tools are the independent peers here: what
// they accept is what S/MIME clients and other PKIX code will accept.
namespace blindlist::crypto {
namespace {

namespace fs = std::filesystem;

// ---- test plumbing (self-contained so this binary does not track other tests' helpers) ----

class ScratchDir {
 public:
  ScratchDir() {
    std::string tmpl = (fs::temp_directory_path() / "blindlist-x509-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;

  std::string File(std::string_view name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

std::string Quote(std::string_view s) {
  std::string out = "'";
  for (char c : s) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

void WriteFile(const std::string& path, ByteView data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  if (!out) throw std::runtime_error("cannot write " + path);
}

Bytes ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ToBytes(ss.str());
}

struct RunResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr, prefixed with the command for failure messages
};

RunResult Shell(const ScratchDir& dir, const std::string& command) {
  static int counter = 0;
  std::string log = dir.File("cmd-" + std::to_string(++counter) + ".log");
  int status = std::system(("(" + command + ") >" + Quote(log) + " 2>&1").c_str());
  RunResult r;
  r.exit_code = (status != -1 && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
  std::error_code ec;
  if (fs::exists(log, ec)) {
    Bytes out = ReadFile(log);
    r.output.assign(out.begin(), out.end());
  }
  r.output = "$ " + command + "\n" + r.output;
  return r;
}

// Runs a command that must succeed and returns its output.
std::string MustRun(const ScratchDir& dir, const std::string& command) {
  RunResult r = Shell(dir, command);
  if (r.exit_code != 0) throw std::runtime_error("command failed:\n" + r.output);
  return r.output;
}

template <typename T>
T Must(Result<T> r, std::string_view what) {
  if (!r.ok()) {
    throw std::runtime_error(std::string(what) + ": " + r.error().code + ": " + r.error().message);
  }
  return std::move(r).value();
}

bool Has(const std::string& haystack, std::string_view needle) {
  return haystack.find(needle) != std::string::npos;
}

std::string Lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return s;
}

std::int64_t Now() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

// The value after "prefix" on its line of `output`, without colons, lowercase.
std::string FieldAfter(const std::string& output, std::string_view prefix) {
  std::size_t at = output.find(prefix);
  if (at == std::string::npos) return {};
  at += prefix.size();
  std::size_t end = output.find('\n', at);
  std::string value = output.substr(at, end == std::string::npos ? end : end - at);
  value.erase(std::remove(value.begin(), value.end(), ':'), value.end());
  return Lower(value);
}

// ---- shared keys and CAs, made once: RSA keygen is the slow part ----

struct Pki {
  Pki() {
    ca_key = Must(PrivateKey::Generate(KeyType::kEcP256), "CA key");
    ca = Must(MakeCaCertificate(ca_key, "blindlist test CA", 86400), "CA cert");
    ca_path = dir.File("ca.pem");
    WriteFile(ca_path, AsBytes(ToPem("CERTIFICATE", ca.Der())));
    rsa_ca_key = Must(PrivateKey::Generate(KeyType::kRsa, 2048), "RSA CA key");
    rsa_ca = Must(MakeCaCertificate(rsa_ca_key, "blindlist RSA test CA", 86400), "RSA CA");
    rsa_ca_path = dir.File("rsa-ca.pem");
    WriteFile(rsa_ca_path, AsBytes(ToPem("CERTIFICATE", rsa_ca.Der())));
    other_ca_key = Must(PrivateKey::Generate(KeyType::kEcP256), "other CA key");
    other_ca = Must(MakeCaCertificate(other_ca_key, "blindlist test CA", 86400), "other CA");
    ec_key = Must(PrivateKey::Generate(KeyType::kEcP256), "EC key");
    rsa_key = Must(PrivateKey::Generate(KeyType::kRsa, 2048), "RSA key");
    p384_key = Must(PrivateKey::Generate(KeyType::kEcP384), "P-384 key");
  }

  ScratchDir dir;
  PrivateKey ca_key;  // P-256
  Certificate ca;
  std::string ca_path;
  PrivateKey rsa_ca_key;  // RSA-2048
  Certificate rsa_ca;
  std::string rsa_ca_path;
  PrivateKey other_ca_key;  // P-256, same CN as `ca`
  Certificate other_ca;
  PrivateKey ec_key;   // P-256 leaf
  PrivateKey rsa_key;  // RSA-2048 leaf
  PrivateKey p384_key;
};

const Pki& Shared() {
  static const Pki pki;
  return pki;
}

CertificateProfile ListProfile() {
  CertificateProfile p;
  p.common_name = "list@example.org";
  p.email = "list@example.org";
  // The comma would split a config-string SAN; it must stay one URI.
  p.uris = {"urn:blindlist:group:list@example.org", "https://lists.example.org/g?a=1,b=2"};
  p.crl_url = "http://ca.example.org/crl,1.der";
  return p;
}

std::string SavePem(const ScratchDir& dir, const std::string& name, const Certificate& cert) {
  std::string path = dir.File(name);
  WriteFile(path, AsBytes(ToPem("CERTIFICATE", cert.Der())));
  return path;
}

std::string SaveKey(const ScratchDir& dir, const std::string& name, const PrivateKey& key) {
  std::string path = dir.File(name);
  SecretBytes pem = Must(key.ToPem(), "key PEM");
  WriteFile(path, pem.view());
  return path;
}

// A public key in a type we refuse, made by the openssl CLI.
Bytes OpensslPublicKeyDer(const ScratchDir& dir, const std::string& genpkey_args) {
  std::string key = dir.File("other.key");
  std::string pub = dir.File("other.pub.der");
  MustRun(dir, "openssl genpkey " + genpkey_args + " -out " + Quote(key));
  MustRun(dir, "openssl pkey -in " + Quote(key) + " -pubout -outform DER -out " + Quote(pub));
  return ReadFile(pub);
}

// ---- IssueCertificate ----

TEST(IssueCertificate, RsaLeafPassesOpensslSmimeEncryptPurpose) {
  const Pki& pki = Shared();
  ScratchDir dir;
  Certificate cert = Must(
      IssueCertificate(pki.rsa_key.PublicKeyDer(), ListProfile(), pki.ca, pki.ca_key), "issue");
  EXPECT_TRUE(cert.Matches(pki.rsa_key));
  std::string path = SavePem(dir, "leaf.pem", cert);

  RunResult verify = Shell(dir, "openssl verify -x509_strict -purpose smimeencrypt -CAfile " +
                                    Quote(pki.ca_path) + " " + Quote(path));
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  EXPECT_TRUE(Has(verify.output, ": OK")) << verify.output;

  std::string text = MustRun(dir, "openssl x509 -noout -text -in " + Quote(path));
  EXPECT_TRUE(Has(text, "Version: 3 (0x2)")) << text;
  EXPECT_TRUE(Has(text, "Signature Algorithm: ecdsa-with-SHA256")) << text;
  EXPECT_TRUE(Has(text, "Issuer: CN = blindlist test CA")) << text;
  EXPECT_TRUE(Has(text, "Subject: CN = list@example.org")) << text;
  EXPECT_TRUE(Has(text, "X509v3 Basic Constraints: critical\n                CA:FALSE")) << text;
  EXPECT_TRUE(Has(text, "X509v3 Key Usage: critical\n                Key Encipherment\n")) << text;
  EXPECT_TRUE(Has(text, "X509v3 Extended Key Usage: \n                E-mail Protection")) << text;
  EXPECT_TRUE(Has(text, "X509v3 Subject Key Identifier")) << text;
  EXPECT_TRUE(Has(text, "X509v3 Authority Key Identifier")) << text;
  EXPECT_TRUE(Has(text, "X509v3 Subject Alternative Name: \n")) << text;  // not critical
  EXPECT_TRUE(Has(text, "email:list@example.org")) << text;
  EXPECT_TRUE(Has(text, "URI:urn:blindlist:group:list@example.org")) << text;
  EXPECT_TRUE(Has(text, "URI:https://lists.example.org/g?a=1,b=2")) << text;
  EXPECT_TRUE(Has(text, "X509v3 CRL Distribution Points")) << text;
  EXPECT_TRUE(Has(text, "URI:http://ca.example.org/crl,1.der")) << text;

  // The AKI names the CA's SKI.
  std::string ca_text = MustRun(dir, "openssl x509 -noout -text -in " + Quote(pki.ca_path));
  std::string ski = FieldAfter(ca_text, "X509v3 Subject Key Identifier: \n                ");
  ASSERT_FALSE(ski.empty()) << ca_text;
  EXPECT_EQ(ToHex(*pki.ca.SubjectKeyId()), ski);
  EXPECT_TRUE(Has(Lower(text), ski.substr(0, 2) + ":" + ski.substr(2, 2))) << text;
}

TEST(IssueCertificate, EcLeafUsesKeyAgreementAndVerifies) {
  const Pki& pki = Shared();
  ScratchDir dir;
  Certificate cert =
      Must(IssueCertificate(pki.ec_key.PublicKeyDer(), ListProfile(), pki.ca, pki.ca_key), "issue");
  std::string path = SavePem(dir, "leaf.pem", cert);
  // RFC 5480 / RFC 8813 forbid keyEncipherment on EC keys. OpenSSL 3.0's
  // "smimeencrypt" purpose insists on keyEncipherment, so EC certificates are
  // checked against the S/MIME purpose without it: chain, EKU and strictness.
  RunResult verify =
      Shell(dir, "openssl verify -x509_strict -CAfile " + Quote(pki.ca_path) + " " + Quote(path));
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  std::string text = MustRun(dir, "openssl x509 -noout -text -in " + Quote(path));
  EXPECT_TRUE(Has(text, "X509v3 Key Usage: critical\n                Key Agreement\n")) << text;
  EXPECT_FALSE(Has(text, "Key Encipherment")) << text;
  EXPECT_TRUE(Has(text, "E-mail Protection")) << text;
}

TEST(IssueCertificate, RsaCaSignsWithSha256Rsa) {
  const Pki& pki = Shared();
  ScratchDir dir;
  CertificateProfile profile = ListProfile();
  profile.crl_url.clear();
  Certificate cert = Must(
      IssueCertificate(pki.p384_key.PublicKeyDer(), profile, pki.rsa_ca, pki.rsa_ca_key), "issue");
  std::string path = SavePem(dir, "leaf.pem", cert);
  RunResult verify = Shell(
      dir, "openssl verify -x509_strict -CAfile " + Quote(pki.rsa_ca_path) + " " + Quote(path));
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  std::string text = MustRun(dir, "openssl x509 -noout -text -in " + Quote(path));
  EXPECT_TRUE(Has(text, "Signature Algorithm: sha256WithRSAEncryption")) << text;
  EXPECT_FALSE(Has(text, "CRL Distribution Points")) << text;
  EXPECT_TRUE(VerifyIssuedBy(cert, pki.rsa_ca, Now()).ok());
}

// What certd issues for path G and what groupd publishes: an ordinary S/MIME recipient.
TEST(IssueCertificate, UsableAsOpensslCmsRecipient) {
  const Pki& pki = Shared();
  ScratchDir dir;
  WriteFile(dir.File("msg.txt"), AsBytes("a post to the list\n"));
  for (const PrivateKey* key : {&pki.rsa_key, &pki.ec_key}) {
    Certificate cert =
        Must(IssueCertificate(key->PublicKeyDer(), ListProfile(), pki.ca, pki.ca_key), "issue");
    std::string cert_path = SavePem(dir, "rcpt.pem", cert);
    std::string key_path = SaveKey(dir, "rcpt.key", *key);
    MustRun(dir, "openssl cms -encrypt -binary -aes256 -in " + Quote(dir.File("msg.txt")) +
                     " -out " + Quote(dir.File("msg.p7m")) + " " + Quote(cert_path));
    MustRun(dir, "openssl cms -decrypt -binary -in " + Quote(dir.File("msg.p7m")) + " -recip " +
                     Quote(cert_path) + " -inkey " + Quote(key_path) + " -out " +
                     Quote(dir.File("out.txt")));
    EXPECT_EQ(AsChars(ReadFile(dir.File("out.txt"))), "a post to the list\n")
        << KeyTypeName(key->type());
  }
}

TEST(IssueCertificate, RandomPositive128BitSerials) {
  const Pki& pki = Shared();
  std::vector<std::string> serials;
  for (int i = 0; i < 8; ++i) {
    Certificate cert = Must(
        IssueCertificate(pki.ec_key.PublicKeyDer(), ListProfile(), pki.ca, pki.ca_key), "issue");
    std::string hex = DescribeCertificate(cert).serial_hex;
    ASSERT_EQ(hex.size(), 32u) << hex;
    EXPECT_GE(hex[0], '8') << hex;  // top bit set: exactly 128 bits
    Bytes content = cert.SerialContent();
    ASSERT_EQ(content.size(), 17u);  // 00 || 16 bytes: positive
    EXPECT_EQ(content[0], 0);
    serials.push_back(hex);
  }
  std::sort(serials.begin(), serials.end());
  EXPECT_EQ(std::unique(serials.begin(), serials.end()), serials.end());
}

TEST(IssueCertificate, ValidityFollowsProfile) {
  const Pki& pki = Shared();
  CertificateProfile profile = ListProfile();
  profile.validity_seconds = 7200;
  profile.backdate_seconds = 600;
  std::int64_t before = Now();
  Certificate cert =
      Must(IssueCertificate(pki.ec_key.PublicKeyDer(), profile, pki.ca, pki.ca_key), "issue");
  std::int64_t after = Now();
  CertificateInfo info = DescribeCertificate(cert);
  EXPECT_GE(info.not_before, before - 600);
  EXPECT_LE(info.not_before, after - 600);
  EXPECT_EQ(info.not_after - info.not_before, 7800);
}

TEST(IssueCertificate, EmptySubjectMakesSanCritical) {
  const Pki& pki = Shared();
  ScratchDir dir;
  CertificateProfile profile;
  profile.email = "member-7f3a@members.example.org";
  Certificate cert =
      Must(IssueCertificate(pki.ec_key.PublicKeyDer(), profile, pki.ca, pki.ca_key), "issue");
  std::string path = SavePem(dir, "leaf.pem", cert);
  std::string text = MustRun(dir, "openssl x509 -noout -text -in " + Quote(path));
  EXPECT_TRUE(Has(text, "X509v3 Subject Alternative Name: critical")) << text;
  RunResult verify =
      Shell(dir, "openssl verify -x509_strict -CAfile " + Quote(pki.ca_path) + " " + Quote(path));
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
}

TEST(IssueCertificate, Errors) {
  const Pki& pki = Shared();
  ScratchDir dir;
  Bytes spki = pki.ec_key.PublicKeyDer();

  auto garbage = IssueCertificate(AsBytes("not a key"), ListProfile(), pki.ca, pki.ca_key);
  ASSERT_FALSE(garbage.ok());
  EXPECT_EQ(garbage.error().code, "bad-key");

  Bytes trailing = spki;
  trailing.push_back(0);
  auto trail = IssueCertificate(trailing, ListProfile(), pki.ca, pki.ca_key);
  ASSERT_FALSE(trail.ok());
  EXPECT_EQ(trail.error().code, "bad-key");

  Bytes ed25519 = OpensslPublicKeyDer(dir, "-algorithm ed25519");
  auto ed = IssueCertificate(ed25519, ListProfile(), pki.ca, pki.ca_key);
  ASSERT_FALSE(ed.ok());
  EXPECT_EQ(ed.error().code, "unsupported-key");

  Bytes rsa1024 = OpensslPublicKeyDer(dir, "-algorithm RSA -pkeyopt rsa_keygen_bits:1024");
  auto small = IssueCertificate(rsa1024, ListProfile(), pki.ca, pki.ca_key);
  ASSERT_FALSE(small.ok());
  EXPECT_EQ(small.error().code, "unsupported-key");
  EXPECT_TRUE(Has(small.error().message, "1024")) << small.error().message;

  auto mismatch = IssueCertificate(spki, ListProfile(), pki.ca, pki.other_ca_key);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.error().code, "key-mismatch");

  Certificate leaf = Must(IssueCertificate(spki, ListProfile(), pki.ca, pki.ca_key), "leaf");
  auto not_ca = IssueCertificate(spki, ListProfile(), leaf, pki.ec_key);
  ASSERT_FALSE(not_ca.ok());
  EXPECT_EQ(not_ca.error().code, "not-a-ca");

  CertificateProfile bad = ListProfile();
  bad.email = "list @example.org";
  auto bad_email = IssueCertificate(spki, bad, pki.ca, pki.ca_key);
  ASSERT_FALSE(bad_email.ok());
  EXPECT_EQ(bad_email.error().code, "bad-profile");

  bad = ListProfile();
  bad.uris = {"no-scheme"};
  EXPECT_EQ(IssueCertificate(spki, bad, pki.ca, pki.ca_key).error().code, "bad-profile");

  bad = ListProfile();
  bad.validity_seconds = 0;
  EXPECT_EQ(IssueCertificate(spki, bad, pki.ca, pki.ca_key).error().code, "bad-profile");

  bad = ListProfile();
  bad.common_name = std::string(65, 'x');  // ub-common-name is 64
  EXPECT_EQ(IssueCertificate(spki, bad, pki.ca, pki.ca_key).error().code, "bad-profile");

  CertificateProfile empty;
  EXPECT_EQ(IssueCertificate(spki, empty, pki.ca, pki.ca_key).error().code, "bad-profile");
}

// ---- MakeCaCertificate ----

TEST(MakeCaCertificate, SelfSignedCaWithCertAndCrlSigning) {
  const Pki& pki = Shared();
  ScratchDir dir;
  std::string text = MustRun(dir, "openssl x509 -noout -text -in " + Quote(pki.ca_path));
  EXPECT_TRUE(Has(text, "Version: 3 (0x2)")) << text;
  EXPECT_TRUE(Has(text, "Issuer: CN = blindlist test CA")) << text;
  EXPECT_TRUE(Has(text, "Subject: CN = blindlist test CA")) << text;
  EXPECT_TRUE(Has(text, "X509v3 Basic Constraints: critical\n                CA:TRUE")) << text;
  EXPECT_TRUE(Has(text, "X509v3 Key Usage: critical\n                Certificate Sign, CRL Sign"))
      << text;
  EXPECT_TRUE(Has(text, "X509v3 Subject Key Identifier")) << text;
  EXPECT_TRUE(pki.ca.SubjectKeyId().has_value());
  RunResult verify = Shell(
      dir, "openssl verify -x509_strict -CAfile " + Quote(pki.ca_path) + " " + Quote(pki.ca_path));
  EXPECT_EQ(verify.exit_code, 0) << verify.output;
  EXPECT_TRUE(VerifyIssuedBy(pki.ca, pki.ca, Now()).ok());
  EXPECT_TRUE(VerifyIssuedBy(pki.rsa_ca, pki.rsa_ca, Now()).ok());

  auto no_name = MakeCaCertificate(pki.ca_key, "", 3600);
  ASSERT_FALSE(no_name.ok());
  EXPECT_EQ(no_name.error().code, "bad-profile");
}

// ---- MakeCsr / ParseCsr ----

TEST(Csr, RoundTripAndOpensslReadsIt) {
  const Pki& pki = Shared();
  ScratchDir dir;
  Bytes csr = Must(MakeCsr(pki.rsa_key, ListProfile()), "csr");
  std::string path = dir.File("req.der");
  WriteFile(path, csr);
  std::string text =
      MustRun(dir, "openssl req -inform DER -in " + Quote(path) + " -verify -noout -text");
  EXPECT_TRUE(Has(text, "verify OK") || Has(text, "Certificate request self-signature verify OK"))
      << text;
  EXPECT_TRUE(Has(text, "Subject: CN = list@example.org")) << text;
  EXPECT_TRUE(Has(text, "email:list@example.org")) << text;
  EXPECT_TRUE(Has(text, "URI:https://lists.example.org/g?a=1,b=2")) << text;
  EXPECT_TRUE(Has(text, "sha256WithRSAEncryption")) << text;

  for (const Bytes& input : {csr, ToBytes(ToPem("CERTIFICATE REQUEST", csr))}) {
    CsrInfo info = Must(ParseCsr(input), "parse");
    EXPECT_EQ(info.key_type, KeyType::kRsa);
    EXPECT_EQ(info.public_key_der, pki.rsa_key.PublicKeyDer());
    EXPECT_EQ(info.common_name, "list@example.org");
    EXPECT_EQ(info.emails, std::vector<std::string>{"list@example.org"});
    EXPECT_EQ(info.uris, ListProfile().uris);
  }
}

TEST(Csr, ParsesOpensslCsrAndIssuesFromIt) {
  const Pki& pki = Shared();
  ScratchDir dir;
  std::string key = SaveKey(dir, "p384.key", pki.p384_key);
  std::string csr = dir.File("req.pem");
  MustRun(dir, "openssl req -new -utf8 -key " + Quote(key) +
                   " -subj '/O=Example/CN=M\xc3\xbcller' -addext "
                   "subjectAltName=email:a@example.org,email:b@example.org,URI:urn:x:1 -out " +
                   Quote(csr));
  CsrInfo info = Must(ParseCsr(ReadFile(csr)), "parse");
  EXPECT_EQ(info.key_type, KeyType::kEcP384);
  EXPECT_EQ(info.common_name, "M\xc3\xbcller");
  EXPECT_EQ(info.emails, (std::vector<std::string>{"a@example.org", "b@example.org"}));
  EXPECT_EQ(info.uris, std::vector<std::string>{"urn:x:1"});

  CertificateProfile profile;
  profile.common_name = info.common_name;
  profile.email = info.emails[0];
  Certificate cert =
      Must(IssueCertificate(info.public_key_der, profile, pki.ca, pki.ca_key), "issue");
  EXPECT_TRUE(cert.Matches(pki.p384_key));
  EXPECT_TRUE(VerifyIssuedBy(cert, pki.ca, Now()).ok());

  // No extension request at all.
  MustRun(dir, "openssl req -new -key " + Quote(key) + " -subj /CN=plain -out " + Quote(csr));
  CsrInfo plain = Must(ParseCsr(ReadFile(csr)), "parse plain");
  EXPECT_EQ(plain.common_name, "plain");
  EXPECT_TRUE(plain.emails.empty());
  EXPECT_TRUE(plain.uris.empty());
}

TEST(Csr, GarbageIsBadCsr) {
  const Pki& pki = Shared();
  Bytes csr = Must(MakeCsr(pki.ec_key, ListProfile()), "csr");
  Bytes truncated(csr.begin(), csr.begin() + static_cast<std::ptrdiff_t>(csr.size() / 2));
  Bytes trailing = csr;
  trailing.push_back(0);
  const Bytes inputs[] = {
      Bytes{},
      ToBytes("definitely not a CSR"),
      truncated,
      trailing,
      ToBytes("-----BEGIN CERTIFICATE REQUEST-----\n!!!!\n-----END CERTIFICATE REQUEST-----\n"),
      ToBytes(ToPem("CERTIFICATE", csr)),  // wrong label
  };
  for (const Bytes& input : inputs) {
    auto r = ParseCsr(input);
    ASSERT_FALSE(r.ok()) << AsChars(input);
    EXPECT_EQ(r.error().code, "bad-csr") << r.error().message;
  }
}

// A PEM text with a block whose headers are `headers` (e.g. "Proc-Type: 4,ENCRYPTED\n...").
std::string WithHeaders(const std::string& pem, std::string_view headers) {
  std::size_t eol = pem.find('\n');
  return pem.substr(0, eol + 1) + std::string(headers) + "\n" + pem.substr(eol + 1);
}

TEST(Csr, ExactlyOneCsrNothingAfterIt) {
  const Pki& pki = Shared();
  const Bytes csr = Must(MakeCsr(pki.ec_key, ListProfile()), "csr");
  const std::string pem = ToPem("CERTIFICATE REQUEST", csr);
  Bytes junk = csr;
  for (char c : std::string("junk")) junk.push_back(static_cast<std::uint8_t>(c));
  Bytes zero = csr;
  zero.push_back(0);
  Bytes twice = csr;
  twice.insert(twice.end(), csr.begin(), csr.end());
  struct Case {
    const char* name;
    std::string input;
    std::string_view message;
  };
  const Case refused[] = {
      // Bytes after the CSR inside the PEM body, as they would be in DER.
      {"pem-body-trailing-junk", ToPem("CERTIFICATE REQUEST", junk), "trailing bytes"},
      {"pem-body-trailing-zero", ToPem("CERTIFICATE REQUEST", zero), "trailing bytes"},
      {"pem-body-two-csrs", ToPem("CERTIFICATE REQUEST", twice), "trailing bytes"},
      {"der-two-csrs", std::string(AsChars(twice)), "trailing bytes"},
      // Text after the END line.
      {"text-after-end", pem + "trailing text\n", "after the END line"},
      {"text-after-end-no-newline", pem + "x", "after the END line"},
      {"bad-block-after", pem + "-----BEGIN X-----\n!!!!\n-----END X-----\n", "unreadable"},
      {"headers", WithHeaders(pem, "Comment: hello\n"), "headers"},
  };
  for (const Case& c : refused) {
    auto r = ParseCsr(AsBytes(c.input));
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_EQ(r.error().code, "bad-csr") << c.name << ": " << r.error().message;
    EXPECT_NE(r.error().message.find(c.message), std::string::npos)
        << c.name << ": " << r.error().message;
  }
  // Explanatory text before the block (RFC 7468), whitespace and other blocks after it, the old
  // label: still exactly one CSR.
  const std::string accepted[] = {
      pem,
      pem + "\n\n  \t\r\n",
      "Certificate Request:\n    Subject: CN = list@example.org\n" + pem,
      pem + "\n" + ToPem("CERTIFICATE", pki.ca.Der()),
      ToPem("NEW CERTIFICATE REQUEST", csr),
  };
  for (const std::string& input : accepted) {
    auto r = ParseCsr(AsBytes(input));
    EXPECT_TRUE(r.ok()) << input << ": " << r.error().message;
  }
}

TEST(CertificateLoad, ExactlyOneCertificateNothingAfterIt) {
  const Pki& pki = Shared();
  const Bytes der = pki.ca.Der();
  const std::string pem = ToPem("CERTIFICATE", der);
  Bytes junk = der;
  for (char c : std::string("junk")) junk.push_back(static_cast<std::uint8_t>(c));
  Bytes twice = der;
  twice.insert(twice.end(), der.begin(), der.end());
  struct Case {
    const char* name;
    std::string input;
    std::string_view message;
  };
  const Case refused[] = {
      {"der-trailing-junk", std::string(AsChars(junk)), "trailing bytes"},
      {"der-two-certificates", std::string(AsChars(twice)), "trailing bytes"},
      {"pem-body-trailing-junk", ToPem("CERTIFICATE", junk), "trailing bytes"},
      {"pem-body-two-certificates", ToPem("CERTIFICATE", twice), "trailing bytes"},
      {"text-after-end", pem + "trailing text\n", "after the END line"},
      {"text-between-blocks", pem + "junk\n" + pem, "after the END line"},
      {"bad-block-after", pem + "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n",
       "unreadable"},
      {"headers", WithHeaders(pem, "Proc-Type: 4,ENCRYPTED\nDEK-Info: AES-128-CBC,00\n"),
       "headers"},
      {"no-certificate-block", ToPem("X509 CRL", der), "no PEM block"},
  };
  for (const Case& c : refused) {
    auto r = Certificate::Load(AsBytes(c.input));
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_EQ(r.error().code, "bad-certificate") << c.name << ": " << r.error().message;
    EXPECT_NE(r.error().message.find(c.message), std::string::npos)
        << c.name << ": " << r.error().message;
  }
  // A chain file (the first certificate is the one), other blocks before it, explanatory text
  // before the first block, trailing whitespace, the old label.
  const std::string accepted[] = {
      pem,
      pem + "\r\n\r\n",
      pem + ToPem("CERTIFICATE", pki.rsa_ca.Der()),
      ToPem("X509 CRL", ToBytes("not read")) + "\n" + pem,
      "subject=CN = blindlist test CA\n" + pem,
      ToPem("X509 CERTIFICATE", der),
  };
  for (const std::string& input : accepted) {
    auto r = Certificate::Load(AsBytes(input));
    ASSERT_TRUE(r.ok()) << input << ": " << r.error().message;
    EXPECT_EQ(r->Der(), der) << input;
  }
}

TEST(Csr, TamperedCsrIsBadSignature) {
  const Pki& pki = Shared();
  for (const PrivateKey* key : {&pki.rsa_key, &pki.ec_key}) {
    Bytes csr = Must(MakeCsr(*key, ListProfile()), "csr");
    // The signature BIT STRING ends the DER: its last byte is signature.
    Bytes bad_sig = csr;
    bad_sig.back() ^= 0x01;
    auto r = ParseCsr(bad_sig);
    ASSERT_FALSE(r.ok());
    EXPECT_EQ(r.error().code, "bad-signature") << r.error().message;

    // A changed subject, signature untouched.
    Bytes bad_name = csr;
    std::string_view text = AsChars(bad_name);
    std::size_t at = text.find("list@example.org");
    ASSERT_NE(at, std::string_view::npos);
    bad_name[at] = 'L';
    auto r2 = ParseCsr(bad_name);
    ASSERT_FALSE(r2.ok());
    EXPECT_EQ(r2.error().code, "bad-signature") << r2.error().message;
  }
}

TEST(Csr, UnsupportedKeysAreRefused) {
  ScratchDir dir;
  struct Case {
    const char* genpkey;
    const char* name;
  };
  for (const Case& c : {Case{"-algorithm ed25519", "Ed25519"},
                        Case{"-algorithm RSA -pkeyopt rsa_keygen_bits:1024", "RSA-1024"},
                        Case{"-algorithm EC -pkeyopt ec_paramgen_curve:secp256k1", "secp256k1"}}) {
    std::string key = dir.File("k.pem");
    std::string csr = dir.File("req.pem");
    MustRun(dir, std::string("openssl genpkey ") + c.genpkey + " -out " + Quote(key));
    MustRun(dir, "openssl req -new -key " + Quote(key) + " -subj /CN=x -out " + Quote(csr));
    auto r = ParseCsr(ReadFile(csr));
    ASSERT_FALSE(r.ok()) << c.name;
    EXPECT_EQ(r.error().code, "unsupported-key") << c.name << ": " << r.error().message;
  }
}

// ---- VerifyIssuedBy ----

TEST(VerifyIssuedBy, ChecksSignatureAndValidityAtNow) {
  const Pki& pki = Shared();
  CertificateProfile profile = ListProfile();
  profile.validity_seconds = 3600;
  Certificate cert =
      Must(IssueCertificate(pki.ec_key.PublicKeyDer(), profile, pki.ca, pki.ca_key), "issue");
  CertificateInfo info = DescribeCertificate(cert);
  EXPECT_TRUE(VerifyIssuedBy(cert, pki.ca, Now()).ok());
  EXPECT_TRUE(VerifyIssuedBy(cert, pki.ca, info.not_before).ok());
  EXPECT_TRUE(VerifyIssuedBy(cert, pki.ca, info.not_after).ok());

  Status expired = VerifyIssuedBy(cert, pki.ca, info.not_after + 1);
  ASSERT_FALSE(expired.ok());
  EXPECT_EQ(expired.error().code, "expired");
  Status later = VerifyIssuedBy(cert, pki.ca, Now() + 365LL * 24 * 3600);
  ASSERT_FALSE(later.ok());
  EXPECT_EQ(later.error().code, "expired");

  Status early = VerifyIssuedBy(cert, pki.ca, info.not_before - 1);
  ASSERT_FALSE(early.ok());
  EXPECT_EQ(early.error().code, "not-yet-valid");
}

// A leaf for a fresh P-256 key with subject CN groupd1.example.org, signed by the shared CA by the
// openssl CLI with `extensions` (an -extfile): a TLS certificate as an operator's CA makes one.
Certificate OpensslLeaf(const ScratchDir& dir, const std::string& name,
                        const std::string& extensions) {
  const Pki& pki = Shared();
  const std::string ca_key = SaveKey(dir, "ca.key", pki.ca_key);
  const std::string ext = dir.File(name + ".ext");
  WriteFile(ext, AsBytes(extensions));
  MustRun(dir,
          "openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
          "-subj /CN=groupd1.example.org -keyout " +
              Quote(dir.File(name + ".key")) + " -out " + Quote(dir.File(name + ".csr")));
  MustRun(dir, "openssl x509 -req -in " + Quote(dir.File(name + ".csr")) + " -CA " +
                   Quote(pki.ca_path) + " -CAkey " + Quote(ca_key) + " -days 1 -extfile " +
                   Quote(ext) + " -out " + Quote(dir.File(name + ".pem")));
  return Must(Certificate::LoadFile(dir.File(name + ".pem")), "load leaf");
}

std::string CodeOf(const Status& s) { return s.ok() ? "ok" : s.error().code; }

TEST(VerifyServerCertificate, NamesHostsBySubjectAltNamesOnly) {
  const Pki& pki = Shared();
  ScratchDir dir;
  Certificate server = OpensslLeaf(dir, "server",
                                   "extendedKeyUsage=serverAuth\nsubjectAltName=DNS:groupd2."
                                   "example.org,DNS:*.nodes.example.org,IP:127.0.0.1,IP:::1\n");
  for (const char* host : {"groupd2.example.org", "a.nodes.example.org", "127.0.0.1", "::1"})
    EXPECT_EQ(CodeOf(VerifyServerCertificate(server, pki.ca, host, Now())), "ok") << host;
  // Not listed, a wildcard one label too deep, an address written as a name, nothing at all;
  // and the subject's CN (groupd1.example.org) is never taken for a name.
  for (const char* host : {"groupd3.example.org", "a.b.nodes.example.org", "127.0.0.2", "::2", "",
                           "groupd1.example.org"}) {
    EXPECT_EQ(CodeOf(VerifyServerCertificate(server, pki.ca, host, Now())), "wrong-host") << host;
  }
  // Another CA with the same name; a client certificate naming the host.
  EXPECT_EQ(CodeOf(VerifyServerCertificate(server, pki.other_ca, "groupd2.example.org", Now())),
            "bad-signature");
  Certificate client = OpensslLeaf(
      dir, "client", "extendedKeyUsage=clientAuth\nsubjectAltName=DNS:groupd2.example.org\n");
  EXPECT_EQ(CodeOf(VerifyServerCertificate(client, pki.ca, "groupd2.example.org", Now())),
            "wrong-purpose");
}

TEST(VerifyIssuedBy, OtherCaIsBadSignature) {
  const Pki& pki = Shared();
  Certificate cert =
      Must(IssueCertificate(pki.ec_key.PublicKeyDer(), ListProfile(), pki.ca, pki.ca_key), "issue");
  // Same subject name, other key: only the signature tells them apart.
  Status same_name = VerifyIssuedBy(cert, pki.other_ca, Now());
  ASSERT_FALSE(same_name.ok());
  EXPECT_EQ(same_name.error().code, "bad-signature");
  Status other_name = VerifyIssuedBy(cert, pki.rsa_ca, Now());
  ASSERT_FALSE(other_name.ok());
  EXPECT_EQ(other_name.error().code, "bad-signature");

  // A byte of the signed part changed.
  Bytes der = cert.Der();
  std::size_t at = AsChars(der).find("urn:blindlist");
  ASSERT_NE(at, std::string_view::npos);
  der[at] = 'U';
  Certificate tampered = Must(Certificate::Load(der), "load tampered");
  Status bad = VerifyIssuedBy(tampered, pki.ca, Now());
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.error().code, "bad-signature");
}

// ---- DescribeCertificate ----

TEST(DescribeCertificate, MatchesOpenssl) {
  const Pki& pki = Shared();
  ScratchDir dir;
  Certificate cert = Must(
      IssueCertificate(pki.rsa_key.PublicKeyDer(), ListProfile(), pki.ca, pki.ca_key), "issue");
  std::string path = SavePem(dir, "leaf.pem", cert);
  CertificateInfo info = DescribeCertificate(cert);
  std::string out =
      MustRun(dir, "openssl x509 -noout -serial -fingerprint -sha256 -in " + Quote(path));
  EXPECT_EQ(info.serial_hex, FieldAfter(out, "serial=")) << out;
  EXPECT_EQ(info.fingerprint_sha256, FieldAfter(out, "Fingerprint=")) << out;
  EXPECT_EQ(info.fingerprint_sha256, ToHex(Sha256(cert.Der())));
  EXPECT_EQ(info.emails, std::vector<std::string>{"list@example.org"});
  EXPECT_EQ(info.uris, ListProfile().uris);

  // Dates as openssl prints them, read back by the C library.
  std::string dates = MustRun(dir, "date -u -d \"$(openssl x509 -noout -enddate -in " +
                                       Quote(path) + " | cut -d= -f2)\" +end=%s");
  EXPECT_EQ(FieldAfter(dates, "\nend="), std::to_string(info.not_after)) << dates;
}

TEST(DescribeCertificate, SmallAndHighBitSerials) {
  const Pki& pki = Shared();
  ScratchDir dir;
  std::string ca_key = SaveKey(dir, "ca.key", pki.ca_key);
  std::string leaf_key = SaveKey(dir, "leaf.key", pki.ec_key);
  MustRun(dir, "openssl req -new -key " + Quote(leaf_key) + " -subj /CN=x -out " +
                   Quote(dir.File("x.csr")));
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"0x05", "05"}, {"0x8000000000000002", "8000000000000002"}, {"0x1001", "1001"}};
  for (const auto& [serial, expected] : cases) {
    std::string cert_path = dir.File("x.pem");
    MustRun(dir, "openssl x509 -req -in " + Quote(dir.File("x.csr")) + " -CA " +
                     Quote(pki.ca_path) + " -CAkey " + Quote(ca_key) + " -set_serial " + serial +
                     " -days 1 -out " + Quote(cert_path));
    Certificate cert = Must(Certificate::LoadFile(cert_path), "load");
    CertificateInfo info = DescribeCertificate(cert);
    EXPECT_EQ(info.serial_hex, expected);
    EXPECT_TRUE(info.emails.empty());
    EXPECT_EQ(info.not_after - info.not_before, 86400);
  }
}

// ---- MakeCrl ----

TEST(MakeCrl, OpensslVerifiesItAndSeesTheRevocation) {
  const Pki& pki = Shared();
  ScratchDir dir;
  Certificate revoked =
      Must(IssueCertificate(pki.rsa_key.PublicKeyDer(), ListProfile(), pki.ca, pki.ca_key), "a");
  Certificate good =
      Must(IssueCertificate(pki.ec_key.PublicKeyDer(), ListProfile(), pki.ca, pki.ca_key), "b");
  std::string revoked_path = SavePem(dir, "revoked.pem", revoked);
  std::string good_path = SavePem(dir, "good.pem", good);
  std::string revoked_serial = DescribeCertificate(revoked).serial_hex;
  std::int64_t now = Now();

  Bytes crl =
      Must(MakeCrl(pki.ca, pki.ca_key, {{revoked_serial, now - 60}, {"05", now - 3600}}, 7 * 86400),
           "crl");
  std::string crl_path = dir.File("crl.pem");
  WriteFile(crl_path, AsBytes(ToPem("X509 CRL", crl)));

  RunResult check = Shell(
      dir, "openssl crl -in " + Quote(crl_path) + " -CAfile " + Quote(pki.ca_path) + " -noout");
  EXPECT_EQ(check.exit_code, 0) << check.output;
  EXPECT_TRUE(Has(check.output, "verify OK")) << check.output;

  RunResult revoked_check =
      Shell(dir, "openssl verify -crl_check -CRLfile " + Quote(crl_path) + " -CAfile " +
                     Quote(pki.ca_path) + " " + Quote(revoked_path));
  EXPECT_NE(revoked_check.exit_code, 0) << revoked_check.output;
  EXPECT_TRUE(Has(revoked_check.output, "certificate revoked")) << revoked_check.output;

  RunResult good_check = Shell(dir, "openssl verify -crl_check -CRLfile " + Quote(crl_path) +
                                        " -CAfile " + Quote(pki.ca_path) + " " + Quote(good_path));
  EXPECT_EQ(good_check.exit_code, 0) << good_check.output;

  std::string text = MustRun(dir, "openssl crl -noout -text -in " + Quote(crl_path));
  EXPECT_TRUE(Has(text, "Version 2 (0x1)")) << text;
  EXPECT_TRUE(Has(text, "Signature Algorithm: ecdsa-with-SHA256")) << text;
  EXPECT_TRUE(Has(text, "X509v3 CRL Number")) << text;
  EXPECT_TRUE(Has(text, "X509v3 Authority Key Identifier")) << text;
  EXPECT_TRUE(Has(text, "Next Update")) << text;
  std::string upper = revoked_serial;
  std::transform(upper.begin(), upper.end(), upper.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  EXPECT_TRUE(Has(text, "Serial Number: " + upper)) << text;
  EXPECT_TRUE(Has(text, "Serial Number: 05")) << text;

  // The CRL number grows from one CRL to the next.
  std::string first = MustRun(dir, "openssl crl -noout -crlnumber -in " + Quote(crl_path));
  Bytes crl2 = Must(MakeCrl(pki.ca, pki.ca_key, {}, 3600), "crl2");
  WriteFile(crl_path, AsBytes(ToPem("X509 CRL", crl2)));
  std::string second = MustRun(dir, "openssl crl -noout -crlnumber -in " + Quote(crl_path));
  std::string n1 = FieldAfter(first, "crlNumber=0x");
  std::string n2 = FieldAfter(second, "crlNumber=0x");
  ASSERT_FALSE(n1.empty()) << first;
  EXPECT_TRUE(n2.size() > n1.size() || (n2.size() == n1.size() && n2 > n1)) << n1 << " " << n2;
}

TEST(MakeCrl, RsaCaAndErrors) {
  const Pki& pki = Shared();
  ScratchDir dir;
  Bytes crl = Must(MakeCrl(pki.rsa_ca, pki.rsa_ca_key, {{"0A", Now()}}, 3600), "crl");
  std::string crl_path = dir.File("crl.der");
  WriteFile(crl_path, crl);
  RunResult check = Shell(dir, "openssl crl -inform DER -in " + Quote(crl_path) + " -CAfile " +
                                   Quote(pki.rsa_ca_path) + " -noout");
  EXPECT_EQ(check.exit_code, 0) << check.output;

  for (const char* serial : {"", "xyz", "-5", "0x10"}) {
    auto r = MakeCrl(pki.ca, pki.ca_key, {{serial, Now()}}, 3600);
    ASSERT_FALSE(r.ok()) << serial;
    EXPECT_EQ(r.error().code, "bad-serial") << serial;
  }
  auto mismatch = MakeCrl(pki.ca, pki.rsa_ca_key, {}, 3600);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.error().code, "key-mismatch");
}

// ---- ExportPkcs12 ----

// Interop does not depend on the count; a small one keeps the test fast.
constexpr int kTestIterations = 10000;

// What `openssl pkcs12 -info` reports about the protection. `full`: also verify
// the MAC and decrypt the key bag (each derivation costs a full iteration count).
void ExpectProtection(const ScratchDir& dir, const std::string& p12_path, int iterations,
                      bool full) {
  std::string info = MustRun(
      dir, "openssl pkcs12 -info -noout " + std::string(full ? "" : "-nomacver -nokeys ") + "-in " +
               Quote(p12_path) + " -passin " + Quote("pass:correct horse, battery"));
  std::string iter = "Iteration " + std::to_string(iterations);
  EXPECT_TRUE(Has(info, "MAC: sha256, " + iter)) << info;
  EXPECT_TRUE(
      Has(info, "Shrouded Keybag: PBES2, PBKDF2, AES-256-CBC, " + iter + ", PRF hmacWithSHA256"))
      << info;
  EXPECT_TRUE(Has(
      info, "PKCS7 Encrypted data: PBES2, PBKDF2, AES-256-CBC, " + iter + ", PRF hmacWithSHA256"))
      << info;
}

void ExpectOpensslAndNssImport(const Certificate& cert, ByteView p12, int iterations) {
  ScratchDir dir;
  std::string p12_path = dir.File("f.p12");
  WriteFile(p12_path, p12);
  const std::string pass = "pass:correct horse, battery";
  ExpectProtection(dir, p12_path, iterations, true);

  std::string out = dir.File("out.pem");
  MustRun(dir, "openssl pkcs12 -in " + Quote(p12_path) + " -passin " + Quote(pass) +
                   " -nodes -out " + Quote(out));
  PrivateKey key = Must(PrivateKey::LoadFile(out), "extracted key");
  EXPECT_TRUE(cert.Matches(key));
  Bytes raw = ReadFile(out);
  std::string dump(AsChars(raw));
  EXPECT_TRUE(Has(dump, "friendlyName: list@example.org")) << dump;

  RunResult wrong = Shell(dir, "openssl pkcs12 -in " + Quote(p12_path) +
                                   " -passin pass:wrong -nodes -out " + Quote(dir.File("x.pem")));
  EXPECT_NE(wrong.exit_code, 0) << wrong.output;

  std::string db = "sql:" + dir.File("nssdb");
  fs::create_directory(dir.File("nssdb"));
  MustRun(dir, "certutil -N --empty-password -d " + Quote(db));
  MustRun(dir, "pk12util -i " + Quote(p12_path) + " -d " + Quote(db) +
                   " -W 'correct horse, battery' -K ''");
  std::string certs = MustRun(dir, "certutil -L -d " + Quote(db));
  EXPECT_TRUE(Has(certs, "list@example.org")) << certs;
  std::string keys = MustRun(dir, "certutil -K -d " + Quote(db));
  EXPECT_TRUE(Has(keys, "list@example.org")) << keys;
}

TEST(ExportPkcs12, OpensslAndNssImportRsaAndEc) {
  const Pki& pki = Shared();
  for (const PrivateKey* key : {&pki.rsa_key, &pki.ec_key}) {
    Certificate cert =
        Must(IssueCertificate(key->PublicKeyDer(), ListProfile(), pki.ca, pki.ca_key), "issue");
    Bytes p12 = Must(
        ExportPkcs12(*key, cert, "list@example.org", "correct horse, battery", kTestIterations),
        "p12");
    SCOPED_TRACE(KeyTypeName(key->type()));
    ExpectOpensslAndNssImport(cert, p12, kTestIterations);
  }
}

TEST(ExportPkcs12, DefaultIterationCount) {
  const Pki& pki = Shared();
  Certificate cert =
      Must(IssueCertificate(pki.ec_key.PublicKeyDer(), ListProfile(), pki.ca, pki.ca_key), "issue");
  Bytes p12 =
      Must(ExportPkcs12(pki.ec_key, cert, "list@example.org", "correct horse, battery"), "p12");
  // Only the protection parameters: each key derivation at this count costs about 0.3 s of CPU.
  ScratchDir dir;
  std::string p12_path = dir.File("f.p12");
  WriteFile(p12_path, p12);
  ExpectProtection(dir, p12_path, kPkcs12DefaultIterations, false);
}

TEST(ExportPkcs12, Errors) {
  const Pki& pki = Shared();
  Certificate cert =
      Must(IssueCertificate(pki.ec_key.PublicKeyDer(), ListProfile(), pki.ca, pki.ca_key), "issue");
  auto empty = ExportPkcs12(pki.ec_key, cert, "x", "", kTestIterations);
  ASSERT_FALSE(empty.ok());
  EXPECT_EQ(empty.error().code, "bad-passphrase");
  auto mismatch = ExportPkcs12(pki.rsa_key, cert, "x", "pw", kTestIterations);
  ASSERT_FALSE(mismatch.ok());
  EXPECT_EQ(mismatch.error().code, "key-mismatch");
}

// ---- PEM, PKCS#8, SHA-256 ----

TEST(Pem, RoundTripAndErrors) {
  const Pki& pki = Shared();
  Bytes der = pki.ca.Der();
  std::string pem = ToPem("CERTIFICATE", der);
  EXPECT_EQ(pem.rfind("-----BEGIN CERTIFICATE-----\n", 0), 0u) << pem;
  EXPECT_TRUE(Has(pem, "\n-----END CERTIFICATE-----\n")) << pem;
  std::istringstream lines(pem);
  for (std::string line; std::getline(lines, line);) EXPECT_LE(line.size(), 64u) << line;
  EXPECT_EQ(Must(FromPem(pem, "CERTIFICATE"), "from pem"), der);
  EXPECT_EQ(Must(Certificate::Load(AsBytes(pem)), "load").Der(), der);

  // The first block with the wanted label, past others.
  Bytes other = ToBytes("other");
  std::string two = ToPem("X509 CRL", other) + "junk between\n" + pem;
  EXPECT_EQ(Must(FromPem(two, "CERTIFICATE"), "second block"), der);
  EXPECT_EQ(Must(FromPem(two, "X509 CRL"), "first block"), other);

  for (const std::string& bad :
       {std::string(), std::string("no pem here"), pem.substr(0, pem.size() / 2),
        std::string("-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----\n")}) {
    auto r = FromPem(bad, "CERTIFICATE");
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.error().code, "bad-pem");
  }
  auto wrong_label = FromPem(pem, "PRIVATE KEY");
  ASSERT_FALSE(wrong_label.ok());
  EXPECT_EQ(wrong_label.error().code, "bad-pem");
}

TEST(PrivateKeyToDer, Pkcs8RoundTrip) {
  const Pki& pki = Shared();
  ScratchDir dir;
  for (const PrivateKey* key : {&pki.rsa_key, &pki.ec_key, &pki.p384_key}) {
    SecretBytes der = Must(PrivateKeyToDer(*key), "to der");
    ASSERT_GT(der.size(), 0u);
    EXPECT_EQ(der[0], 0x30);
    PrivateKey back = Must(PrivateKey::Load(der.view()), "load");
    EXPECT_EQ(back.PublicKeyDer(), key->PublicKeyDer());
    EXPECT_EQ(back.type(), key->type());
    // Unencrypted PKCS#8, as openssl reads it.
    std::string path = dir.File("k.der");
    WriteFile(path, der.view());
    MustRun(dir, "openssl pkey -inform DER -in " + Quote(path) + " -noout");
    RunResult asn1 = Shell(dir, "openssl asn1parse -inform DER -in " + Quote(path));
    EXPECT_TRUE(Has(asn1.output, key->type() == KeyType::kRsa ? "rsaEncryption" : "id-ecPublicKey"))
        << asn1.output;
  }
}

TEST(EncryptedPem, ScryptAes256CbcReadableByOpensslAndOldFilesStillLoad) {
  const Pki& pki = Shared();
  ScratchDir dir;
  const std::string pass = "correct horse, battery";
  SecretBytes pem = Must(pki.ec_key.ToEncryptedPem(pass), "encrypt");
  std::string path = dir.File("ca.key");
  WriteFile(path, pem.view());
  EXPECT_TRUE(Has(std::string(AsChars(pem.view())), "-----BEGIN ENCRYPTED PRIVATE KEY-----"));
  // PBES2 with scrypt (RFC 7914): N = 16384, r = 8, p = 5, a 16-byte salt; AES-256-CBC.
  RunResult asn1 = Shell(dir, "openssl asn1parse -in " + Quote(path));
  for (const char* part : {"PBES2", ":scrypt", "aes-256-cbc"}) {
    EXPECT_TRUE(Has(asn1.output, part)) << part << "\n" << asn1.output;
  }
  EXPECT_FALSE(Has(asn1.output, "PBKDF2")) << asn1.output;
  EXPECT_TRUE(Has(asn1.output, "INTEGER           :4000")) << asn1.output;  // N
  EXPECT_TRUE(Has(asn1.output, "INTEGER           :08")) << asn1.output;    // r
  EXPECT_TRUE(Has(asn1.output, "INTEGER           :05")) << asn1.output;    // p
  MustRun(dir, "openssl pkey -in " + Quote(path) + " -passin " + Quote("pass:" + pass) + " -noout");
  PrivateKey back = Must(PrivateKey::Load(pem.view(), pass), "load");
  EXPECT_EQ(back.PublicKeyDer(), pki.ec_key.PublicKeyDer());
  auto wrong = PrivateKey::Load(pem.view(), "not the passphrase");
  ASSERT_FALSE(wrong.ok());
  EXPECT_EQ(wrong.error().code, "bad-key");

  // A file written the old way (PBKDF2, 2048 iterations) still loads.
  std::string plain = dir.File("plain.key");
  WriteFile(plain, Must(pki.ec_key.ToPem(), "plain").view());
  std::string old = dir.File("old.key");
  MustRun(dir, "openssl pkcs8 -topk8 -v2 aes-256-cbc -iter 2048 -in " + Quote(plain) + " -out " +
                   Quote(old) + " -passout " + Quote("pass:" + pass));
  EXPECT_TRUE(Has(Shell(dir, "openssl asn1parse -in " + Quote(old)).output, "PBKDF2"));
  PrivateKey loaded = Must(PrivateKey::LoadFile(old, pass), "load old");
  EXPECT_EQ(loaded.PublicKeyDer(), pki.ec_key.PublicKeyDer());
}

TEST(SignMessage, EcdsaAndRsaPssVerifyHereAndWithOpenssl) {
  const Pki& pki = Shared();
  ScratchDir dir;
  const Bytes message = ToBytes("a domain-separated message");
  std::string msg_path = dir.File("msg");
  WriteFile(msg_path, message);
  for (const PrivateKey* key : {&pki.ec_key, &pki.rsa_key}) {
    SCOPED_TRACE(KeyTypeName(key->type()));
    Certificate cert =
        Must(IssueCertificate(key->PublicKeyDer(), ListProfile(), pki.ca, pki.ca_key), "issue");
    Bytes sig = Must(SignMessage(*key, message), "sign");
    EXPECT_TRUE(VerifyMessage(cert, message, sig));
    // openssl reads it as ECDSA-SHA256, or RSA-PSS with SHA-256, MGF1-SHA-256 and a 32-byte salt.
    std::string sig_path = dir.File("sig");
    std::string pub_path = dir.File("pub.pem");
    WriteFile(sig_path, sig);
    WriteFile(pub_path, AsBytes(ToPem("PUBLIC KEY", key->PublicKeyDer())));
    std::string pss = key->type() == KeyType::kRsa
                          ? " -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32 -sigopt "
                            "rsa_mgf1_md:sha256"
                          : "";
    MustRun(dir, "openssl dgst -sha256 -verify " + Quote(pub_path) + pss + " -signature " +
                     Quote(sig_path) + " " + Quote(msg_path));
    // And the other way round.
    std::string key_path = dir.File("key.pem");
    WriteFile(key_path, Must(key->ToPem(), "pem").view());
    MustRun(dir, "openssl dgst -sha256 -sign " + Quote(key_path) + pss + " -out " +
                     Quote(sig_path) + " " + Quote(msg_path));
    EXPECT_TRUE(VerifyMessage(cert, message, ReadFile(sig_path)));

    Bytes other_message = message;
    other_message.back() ^= 1;
    EXPECT_FALSE(VerifyMessage(cert, other_message, sig));
    Bytes flipped = sig;
    flipped[flipped.size() / 2] ^= 1;
    EXPECT_FALSE(VerifyMessage(cert, message, flipped));
    EXPECT_FALSE(VerifyMessage(cert, message, {}));
    EXPECT_FALSE(VerifyMessage(pki.ca, message, sig));  // another key
  }
}

TEST(Sha256, KnownAnswers) {
  EXPECT_EQ(ToHex(Sha256(AsBytes("abc"))),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  EXPECT_EQ(ToHex(Sha256({})), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

// ---- Seal / Unseal ----

SecretBytes Key(std::uint8_t fill) { return SecretBytes(Bytes(32, fill)); }

TEST(Seal, RoundTripAndFormat) {
  const std::string context = "group-key:list@example.org:3";
  for (std::size_t n : {std::size_t{0}, std::size_t{1}, std::size_t{32}, std::size_t{100000}}) {
    Bytes plaintext(n);
    for (std::size_t i = 0; i < n; ++i) plaintext[i] = static_cast<std::uint8_t>(i * 7);
    Bytes sealed = Must(Seal(Key(1), context, plaintext), "seal");
    ASSERT_EQ(sealed.size(), 1 + 12 + n + 16);
    EXPECT_EQ(sealed[0], 1);
    SecretBytes opened = Must(Unseal(Key(1), context, sealed), "unseal");
    EXPECT_EQ(Bytes(opened.data(), opened.data() + opened.size()), plaintext);
  }
  Bytes a = Must(Seal(Key(1), context, AsBytes("same")), "a");
  Bytes b = Must(Seal(Key(1), context, AsBytes("same")), "b");
  EXPECT_NE(Bytes(a.begin() + 1, a.begin() + 13), Bytes(b.begin() + 1, b.begin() + 13));
}

TEST(Seal, UnsealFailsClosed) {
  const std::string context = "group-key:list@example.org:3";
  Bytes sealed = Must(Seal(Key(1), context, AsBytes("the group private key")), "seal");
  auto expect_failed = [&](const SecretBytes& key, std::string_view ctx, const Bytes& blob,
                           const std::string& what) {
    auto r = Unseal(key, ctx, blob);
    ASSERT_FALSE(r.ok()) << what;
    EXPECT_EQ(r.error().code, "unseal-failed") << what;
  };
  expect_failed(Key(2), context, sealed, "wrong key");
  expect_failed(Key(1), "group-key:list@example.org:4", sealed, "other context");
  expect_failed(Key(1), "", sealed, "empty context");
  for (std::size_t i = 0; i < sealed.size(); ++i) {
    for (std::uint8_t bit : {std::uint8_t{0x01}, std::uint8_t{0x80}}) {
      Bytes flipped = sealed;
      flipped[i] ^= bit;
      expect_failed(Key(1), context, flipped, "flipped byte " + std::to_string(i));
    }
  }
  for (std::size_t len = 0; len < sealed.size(); ++len) {
    expect_failed(Key(1), context, Bytes(sealed.begin(), sealed.begin() + len),
                  "truncated to " + std::to_string(len));
  }
  Bytes longer = sealed;
  longer.push_back(0);
  expect_failed(Key(1), context, longer, "appended byte");
}

TEST(Seal, MasterKeyMustBe32Bytes) {
  for (std::size_t n : {std::size_t{0}, std::size_t{16}, std::size_t{31}, std::size_t{33}}) {
    SecretBytes key(n);
    auto sealed = Seal(key, "ctx", AsBytes("x"));
    ASSERT_FALSE(sealed.ok());
    EXPECT_EQ(sealed.error().code, "bad-key");
    auto opened = Unseal(key, "ctx", Bytes(40, 1));
    ASSERT_FALSE(opened.ok());
    EXPECT_EQ(opened.error().code, "bad-key");
  }
}

// The format in x509.h, checked both ways against an independent AES-GCM (pyca/cryptography).
TEST(Seal, FormatMatchesIndependentAesGcm) {
  ScratchDir dir;
  if (Shell(dir, "python3 -c 'import cryptography.hazmat.primitives.ciphers.aead'").exit_code !=
      0) {
    BL_PEER_MISSING("python3 with the cryptography package is not available");
  }
  const std::string context = "group-key:list@example.org:3";
  SecretBytes key = Key(0x42);
  Bytes sealed = Must(Seal(key, context, AsBytes("sealed at rest")), "seal");
  std::string script = dir.File("gcm.py");
  WriteFile(script, AsBytes(R"(import sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
key = bytes.fromhex(sys.argv[1]); aad = sys.argv[2].encode(); blob = bytes.fromhex(sys.argv[3])
assert blob[0] == 1
print("plain=" + AESGCM(key).decrypt(blob[1:13], blob[13:], aad).decode())
nonce = bytes(range(12))
print("theirs=" + (b"\x01" + nonce + AESGCM(key).encrypt(nonce, b"from python", aad)).hex())
)"));
  std::string out = MustRun(dir, "python3 " + Quote(script) + " " + ToHex(key.view()) + " " +
                                     Quote(context) + " " + ToHex(sealed));
  EXPECT_TRUE(Has(out, "plain=sealed at rest\n")) << out;
  Bytes theirs;
  ASSERT_TRUE(FromHex(FieldAfter(out, "theirs="), theirs)) << out;
  SecretBytes opened = Must(Unseal(key, context, theirs), "unseal python's");
  EXPECT_EQ(AsChars(opened.view()), "from python");
}

}  // namespace
}  // namespace blindlist::crypto
