#include "verp.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "crypto/keys.h"
#include "crypto/mac.h"

namespace blindlist::listd {
namespace {

constexpr std::size_t kMacBytes = 10;  // 80 bits, 16 base32 characters

Error SysError(const std::string& what) {
  return MakeError("io-error", what + ": " + std::strerror(errno));
}

std::string Base32(ByteView bytes) {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz234567";
  std::string out;
  std::uint32_t buffer = 0;
  int bits = 0;
  for (std::uint8_t b : bytes) {
    buffer = (buffer << 8) | b;
    bits += 8;
    while (bits >= 5) {
      out += kAlphabet[(buffer >> (bits - 5)) & 31U];
      bits -= 5;
    }
  }
  if (bits > 0) out += kAlphabet[(buffer << (5 - bits)) & 31U];
  return out;
}

// Length-prefixed, so no two inputs frame to the same bytes.
std::string Frame(std::string_view s) { return std::to_string(s.size()) + ":" + std::string(s); }

Result<SecretBytes> ReadSecret(int fd, const std::string& path) {
  struct stat st {};
  if (::fstat(fd, &st) != 0) return SysError("stat " + path);
  if ((st.st_mode & 077) != 0) {
    return MakeError("bad-config", path +
                                       " (the VERP key) may be read by group or others; "
                                       "chmod 600 it");
  }
  SecretBytes key(kVerpSecretBytes + 1);
  std::size_t got = 0;
  while (got < key.size()) {
    ssize_t n = ::read(fd, key.data() + got, key.size() - got);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return SysError("read " + path);
    if (n == 0) break;
    got += static_cast<std::size_t>(n);
  }
  if (got != kVerpSecretBytes) {
    return MakeError("bad-config", path + " (the VERP key) must hold exactly 32 bytes");
  }
  key.resize(kVerpSecretBytes);
  return key;
}

Status CreateSecret(const std::string& path) {
  const std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) return SysError("create " + tmp);
  SecretBytes key = crypto::RandomSecret(kVerpSecretBytes);
  bool ok =
      ::write(fd, key.data(), key.size()) == static_cast<ssize_t>(key.size()) && ::fsync(fd) == 0;
  ::close(fd);
  // link(2) fails if the name exists: whoever linked first made the key everyone uses.
  if (ok && ::link(tmp.c_str(), path.c_str()) != 0 && errno != EEXIST) ok = false;
  Error e = SysError("write " + path);
  ::unlink(tmp.c_str());
  if (!ok) return e;
  return Status::Ok();
}

}  // namespace

Result<SecretBytes> LoadVerpSecret(const std::string& path, bool create) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0 && errno == ENOENT && create) {
    BL_TRY(CreateSecret(path));
    fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  }
  if (fd < 0) return SysError("open " + path + " (the VERP key)");
  auto key = ReadSecret(fd, path);
  ::close(fd);
  return key;
}

Result<std::string> VerpSigner::Mac(char kind, std::string_view list, std::string_view id,
                                    std::string_view member) const {
  const std::string k(1, kind);
  const std::string a = Frame(list);
  const std::string b = Frame(id);
  const std::string c = Frame(member);
  BL_TRY_ASSIGN(Bytes mac, crypto::HmacSha256(key_, {AsBytes("blindlist-verp-1:"), AsBytes(k),
                                                     AsBytes(a), AsBytes(b), AsBytes(c)}));
  return Base32(ByteView(mac.data(), kMacBytes));
}

Result<std::string> VerpSigner::MemberSender(std::string_view bounce_address, char kind,
                                             std::string_view list, std::string_view id,
                                             std::string_view member) const {
  const std::size_t at = bounce_address.rfind('@');
  const std::size_t mat = member.rfind('@');
  if (at == std::string_view::npos || mat == std::string_view::npos)
    return MakeError("invalid-argument", "not an address");
  BL_TRY_ASSIGN(std::string mac, Mac(kind, list, id, member));
  return std::string(bounce_address.substr(0, at)) + "+" + kind + "." + std::string(id) + "." +
         mac + "+" + std::string(member.substr(0, mat)) + "=" +
         std::string(member.substr(mat + 1)) + std::string(bounce_address.substr(at));
}

Result<std::string> VerpSigner::BatchSender(std::string_view bounce_address, std::string_view list,
                                            std::string_view post_id) const {
  const std::size_t at = bounce_address.rfind('@');
  if (at == std::string_view::npos) return MakeError("invalid-argument", "not an address");
  BL_TRY_ASSIGN(std::string mac, Mac('x', list, post_id, ""));
  return std::string(bounce_address.substr(0, at)) + "+x." + std::string(post_id) + "." + mac +
         std::string(bounce_address.substr(at));
}

bool VerpSigner::Verify(std::string_view list, const VerpTag& tag) const {
  auto expected = Mac(tag.kind, list, tag.id, tag.kind == 'x' ? "" : tag.member);
  if (!expected.ok()) return false;
  return ConstantTimeEqual(AsBytes(*expected), AsBytes(tag.mac));
}

std::optional<TaggedAddress> SplitTag(std::string_view address) {
  const std::size_t at = address.rfind('@');
  if (at == std::string_view::npos) return std::nullopt;
  const std::size_t plus = address.find('+');
  if (plus == std::string_view::npos || plus > at) return std::nullopt;
  return TaggedAddress{std::string(address.substr(0, plus)) + std::string(address.substr(at)),
                       std::string(address.substr(plus + 1, at - plus - 1))};
}

std::optional<VerpTag> ParseTag(std::string_view tag) {
  // KIND "." ID "." MAC "+" LOCAL "=" DOMAIN; the id has no '+', the domain no '='.
  const std::size_t plus = tag.find('+');
  if (plus == std::string_view::npos || tag.size() < 4 || tag[1] != '.') return std::nullopt;
  VerpTag t;
  t.kind = tag[0];
  if (t.kind != 'm' && t.kind != 'x' && t.kind != 'p') return std::nullopt;
  const std::string_view head = tag.substr(2, plus - 2);
  const std::size_t dot = head.rfind('.');
  if (dot == std::string_view::npos || dot == 0) return std::nullopt;
  t.id = std::string(head.substr(0, dot));
  t.mac = std::string(head.substr(dot + 1));
  const std::string_view member = tag.substr(plus + 1);
  const std::size_t eq = member.rfind('=');
  if (eq == std::string_view::npos || eq == 0 || eq + 1 == member.size()) return std::nullopt;
  t.member = std::string(member.substr(0, eq)) + "@" + std::string(member.substr(eq + 1));
  return t;
}

}  // namespace blindlist::listd
