#include "blindlist/base64.h"

#include <array>

namespace blindlist {

namespace {
constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

constexpr std::array<int, 256> MakeReverse() {
  std::array<int, 256> r{};
  for (auto& v : r) v = -1;
  for (int i = 0; i < 64; ++i) r[static_cast<unsigned char>(kAlphabet[i])] = i;
  return r;
}
constexpr std::array<int, 256> kReverse = MakeReverse();

template <typename Out>
bool Decode(std::string_view text, Out& out) {
  out.clear();
  if (text.size() % 4 != 0) return false;
  std::size_t pad = 0;
  if (!text.empty() && text.back() == '=')
    pad = (text.size() >= 2 && text[text.size() - 2] == '=') ? 2 : 1;
  out.resize(text.size() / 4 * 3 - pad);
  std::size_t o = 0;
  for (std::size_t i = 0; i < text.size(); i += 4) {
    int v[4];
    for (int k = 0; k < 4; ++k) {
      char c = text[i + k];
      bool last_group = i + 4 == text.size();
      if (c == '=' && last_group && k >= 4 - static_cast<int>(pad)) {
        v[k] = 0;
        continue;
      }
      v[k] = kReverse[static_cast<unsigned char>(c)];
      if (v[k] < 0) {
        out.clear();
        return false;
      }
    }
    std::uint32_t triple = static_cast<std::uint32_t>(v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3]);
    std::uint8_t bytes[3] = {static_cast<std::uint8_t>(triple >> 16),
                             static_cast<std::uint8_t>(triple >> 8),
                             static_cast<std::uint8_t>(triple)};
    for (int k = 0; k < 3 && o < out.size(); ++k) out[o++] = bytes[k];
    // Non-canonical encodings (stray bits under the padding) are refused.
    if (i + 4 == text.size() && ((pad == 1 && (v[2] & 3)) || (pad == 2 && (v[1] & 15)))) {
      out.clear();
      return false;
    }
  }
  return true;
}
}  // namespace

std::string Base64Encode(ByteView data) {
  std::string out;
  out.reserve((data.size() + 2) / 3 * 4);
  std::size_t i = 0;
  for (; i + 3 <= data.size(); i += 3) {
    std::uint32_t t = static_cast<std::uint32_t>(data[i] << 16 | data[i + 1] << 8 | data[i + 2]);
    out.push_back(kAlphabet[t >> 18 & 63]);
    out.push_back(kAlphabet[t >> 12 & 63]);
    out.push_back(kAlphabet[t >> 6 & 63]);
    out.push_back(kAlphabet[t & 63]);
  }
  std::size_t rest = data.size() - i;
  if (rest > 0) {
    std::uint32_t t =
        static_cast<std::uint32_t>(data[i] << 16 | (rest == 2 ? data[i + 1] << 8 : 0));
    out.push_back(kAlphabet[t >> 18 & 63]);
    out.push_back(kAlphabet[t >> 12 & 63]);
    out.push_back(rest == 2 ? kAlphabet[t >> 6 & 63] : '=');
    out.push_back('=');
  }
  return out;
}

bool Base64Decode(std::string_view text, Bytes& out) { return Decode(text, out); }
bool Base64Decode(std::string_view text, SecretBytes& out) { return Decode(text, out); }

}  // namespace blindlist
