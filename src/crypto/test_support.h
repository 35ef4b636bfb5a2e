// Test-only helpers for the crypto unit tests: temporary directories, the
// openssl command line as an independent peer, hex and file helpers, and a
// throwaway PKI (an EC CA and RSA-2048, RSA-3072, P-256 and P-384 leaf
// certificates) made once per test binary, because RSA-3072 keygen is slow.
// Thread-safety: TestPki::Get() is initialised once (function-local static);
// everything else is plain values. Not for production code.
#pragma once

#include <gtest/gtest.h>
#include <stdlib.h>  // mkdtemp
#include <sys/wait.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "blindlist/bytes.h"
#include "blindlist/result.h"
#include "crypto/keys.h"

namespace blindlist::crypto::testkit {

namespace fs = std::filesystem;

// The repository root: $BLINDLIST_SOURCE_DIR under ctest, else derived from
// this header's own path (src/crypto/test_support.h) when a binary runs alone.
inline fs::path SourceDir() {
  const char* env = std::getenv("BLINDLIST_SOURCE_DIR");
  if (env != nullptr && *env != '\0') return fs::path(env);
  return fs::weakly_canonical(fs::path(__FILE__)).parent_path().parent_path().parent_path();
}

inline fs::path VectorDir() { return SourceDir() / "tests" / "vectors" / "cms"; }

inline Bytes ReadFileBytes(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error("cannot open " + path.string());
  std::ostringstream ss;
  ss << in.rdbuf();
  return ToBytes(ss.str());
}

inline void WriteFileBytes(const fs::path& path, ByteView data) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  if (!out) throw std::runtime_error("cannot write " + path.string());
}

inline Bytes Hex(std::string_view hex) {
  Bytes out;
  if (!FromHex(hex, out)) throw std::runtime_error("bad hex in test: " + std::string(hex));
  return out;
}

inline SecretBytes SecretHex(std::string_view hex) { return SecretBytes(Hex(hex)); }

// A public copy of secret bytes, for comparisons and byte searches in tests.
inline Bytes Exposed(const SecretBytes& s) { return Bytes(s.data(), s.data() + s.size()); }

// "ok", or the error code: makes EXPECT_EQ failures name what went wrong.
inline std::string ErrorCode(const Status& s) { return s.ok() ? "ok" : s.error().code; }
template <typename T>
std::string ErrorCode(const Result<T>& r) {
  return r.ok() ? "ok" : r.error().code;
}

// Whether `needle` occurs anywhere in `haystack` (empty needles never match).
inline bool Contains(ByteView haystack, ByteView needle) {
  if (needle.empty() || needle.size() > haystack.size()) return false;
  return std::search(haystack.begin(), haystack.end(), needle.begin(), needle.end()) !=
         haystack.end();
}

// A fresh directory under the system temp dir, removed with everything in it.
class TempDir {
 public:
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "blindlist-crypto-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
    path_ = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;

  const fs::path& path() const { return path_; }
  std::string File(std::string_view name) const { return (path_ / name).string(); }

 private:
  fs::path path_;
};

// Single-quotes `s` for /bin/sh.
inline std::string ShellQuote(std::string_view s) {
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

struct CommandResult {
  int exit_code = -1;
  std::string output;  // stdout and stderr together, for failure messages
};

// Runs `command` through /bin/sh with its output captured in `dir`.
inline CommandResult RunCommand(const TempDir& dir, const std::string& command) {
  static int counter = 0;
  std::string log = dir.File("cmd-" + std::to_string(++counter) + ".log");
  int status = std::system(("(" + command + ") >" + ShellQuote(log) + " 2>&1").c_str());
  CommandResult result;
  result.exit_code = (status != -1 && WIFEXITED(status)) ? WEXITSTATUS(status) : -1;
  std::error_code ec;
  if (fs::exists(log, ec)) {
    Bytes out = ReadFileBytes(log);
    result.output.assign(out.begin(), out.end());
  }
  result.output = "$ " + command + "\n" + result.output;
  return result;
}

// Runs `openssl <args>`; throws with the command's output when it fails.
inline std::string Openssl(const TempDir& dir, const std::string& args) {
  CommandResult r = RunCommand(dir, "openssl " + args);
  if (r.exit_code != 0) throw std::runtime_error("openssl failed:\n" + r.output);
  return r.output;
}

template <typename T>
T Unwrap(Result<T> r, std::string_view what) {
  if (!r.ok()) {
    throw std::runtime_error(std::string(what) + ": " + r.error().code + ": " + r.error().message);
  }
  return std::move(r).value();
}

// A key pair with its certificate, on disk for the openssl CLI and in memory.
struct Identity {
  std::string name;
  PrivateKey key;
  Certificate cert;
  std::string key_path;   // unencrypted PKCS#8 PEM
  std::string cert_path;  // PEM
};

// A throwaway CA and leaf certificates, created once per test binary.
class TestPki {
 public:
  static const TestPki& Get() {
    static const TestPki pki;
    return pki;
  }

  const TempDir& dir() const { return dir_; }
  const Identity& ca() const { return ca_; }
  const Identity& rsa2048() const { return rsa2048_; }
  // Same CA as rsa2048, other key, a serial with the high bit set (INTEGER contents 00 80 ...).
  const Identity& rsa2048b() const { return rsa2048b_; }
  const Identity& rsa3072() const { return rsa3072_; }
  const Identity& p256() const { return p256_; }
  const Identity& p384() const { return p384_; }

 private:
  TestPki() {
    WriteFileBytes(dir_.path() / "ext.cnf", AsBytes("[rsa]\n"
                                                    "basicConstraints=CA:FALSE\n"
                                                    "keyUsage=critical,keyEncipherment\n"
                                                    "extendedKeyUsage=emailProtection\n"
                                                    "subjectKeyIdentifier=hash\n"
                                                    "authorityKeyIdentifier=keyid\n"
                                                    "subjectAltName=email:list@example.org\n"
                                                    "[ec]\n"
                                                    "basicConstraints=CA:FALSE\n"
                                                    "keyUsage=critical,keyAgreement\n"
                                                    "extendedKeyUsage=emailProtection\n"
                                                    "subjectKeyIdentifier=hash\n"
                                                    "authorityKeyIdentifier=keyid\n"
                                                    "subjectAltName=email:list@example.org\n"));
    ca_.name = "ca";
    ca_.key = Unwrap(PrivateKey::Generate(KeyType::kEcP256), "CA keygen");
    ca_.key_path = WriteKey("ca", ca_.key);
    ca_.cert_path = dir_.File("ca.pem");
    Openssl(dir_, "req -x509 -new -key " + ShellQuote(ca_.key_path) +
                      " -subj '/O=blindlist tests/CN=Throwaway Test CA' -days 2 -sha256"
                      " -addext basicConstraints=critical,CA:TRUE"
                      " -addext keyUsage=critical,keyCertSign"
                      " -addext subjectKeyIdentifier=hash -out " +
                      ShellQuote(ca_.cert_path));
    ca_.cert = Unwrap(Certificate::LoadFile(ca_.cert_path), "CA cert");

    rsa2048_ = MakeLeaf("rsa2048", KeyType::kRsa, 2048, "0x1001", "rsa");
    rsa2048b_ = MakeLeaf("rsa2048b", KeyType::kRsa, 2048, "0x8000000000000002", "rsa");
    rsa3072_ = MakeLeaf("rsa3072", KeyType::kRsa, 3072, "0x1003", "rsa");
    p256_ = MakeLeaf("p256", KeyType::kEcP256, 0, "0x1004", "ec");
    p384_ = MakeLeaf("p384", KeyType::kEcP384, 0, "0x1005", "ec");
  }

  std::string WriteKey(const std::string& name, const PrivateKey& key) {
    SecretBytes pem = Unwrap(key.ToPem(), "key to PEM");
    std::string path = dir_.File(name + ".key.pem");
    WriteFileBytes(path, pem.view());
    return path;
  }

  Identity MakeLeaf(const std::string& name, KeyType type, int rsa_bits, const std::string& serial,
                    const std::string& ext_section) {
    Identity id;
    id.name = name;
    id.key = Unwrap(
        type == KeyType::kRsa ? PrivateKey::Generate(type, rsa_bits) : PrivateKey::Generate(type),
        name + " keygen");
    id.key_path = WriteKey(name, id.key);
    id.cert_path = dir_.File(name + ".cert.pem");
    std::string csr = dir_.File(name + ".csr");
    Openssl(dir_, "req -new -key " + ShellQuote(id.key_path) +
                      " -subj '/O=blindlist tests/CN=" + name + "' -out " + ShellQuote(csr));
    Openssl(dir_, "x509 -req -in " + ShellQuote(csr) + " -CA " + ShellQuote(ca_.cert_path) +
                      " -CAkey " + ShellQuote(ca_.key_path) + " -set_serial " + serial +
                      " -days 2 -sha256 -extfile " + ShellQuote(dir_.File("ext.cnf")) +
                      " -extensions " + ext_section + " -out " + ShellQuote(id.cert_path));
    id.cert = Unwrap(Certificate::LoadFile(id.cert_path), name + " cert");
    if (!id.cert.Matches(id.key)) throw std::runtime_error(name + ": certificate does not match");
    return id;
  }

  TempDir dir_;
  Identity ca_;
  Identity rsa2048_;
  Identity rsa2048b_;
  Identity rsa3072_;
  Identity p256_;
  Identity p384_;
};

}  // namespace blindlist::crypto::testkit
