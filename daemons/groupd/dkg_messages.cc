#include "dkg_messages.h"

#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <cstring>
#include <nlohmann/json.hpp>

#include "blindlist/base64.h"
#include "crypto/threshold.h"

namespace blindlist::groupd::dkg {

namespace th = crypto::threshold;
using json = nlohmann::json;

namespace {

constexpr std::size_t kMaxUrlChars = 255;
constexpr std::size_t kMaxCertificateChars = 16384;
constexpr std::uint8_t kStateVersion = 1;
constexpr std::size_t kStateHeader = 1 + 8;

bool IsLowerHex(const std::string& s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool ValidUrl(const std::string& url) {
  if (url.size() > kMaxUrlChars || !url.starts_with("https://")) return false;
  const bool clean = std::none_of(url.begin(), url.end(), [](char c) {
    return static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == ',';
  });
  return clean && UrlHost(url).has_value();
}

// A base64 field of `item` decoded into `out`; false if it is missing, not a string or not base64.
bool Base64Field(const json& item, const char* name, Bytes& out) {
  const auto it = item.find(name);
  return it != item.end() && it->is_string() && Base64Decode(it->get<std::string>(), out) &&
         !out.empty();
}

std::string ParseStart(const json& item, const Round& r, StartAnswer& out) {
  if (!item.is_object() || !item.contains("index") || !item["index"].is_number_integer())
    return "each of \"starts\" is a node's start answer with its \"index\"";
  const int index = item["index"].get<int>();
  if (index < 1 || index > r.n) return "a start answer's \"index\" is not in 1..n";
  out.index = static_cast<std::uint8_t>(index);
  const std::string which = "the start answer of node " + std::to_string(index);
  Bytes commitments;
  if (!Base64Field(item, "key", out.key) || !Base64Field(item, "signature", out.signature) ||
      !Base64Field(item, "commitments", commitments)) {
    return which + " lacks \"key\", \"signature\" or \"commitments\" (base64)";
  }
  auto normal = th::NormalizePoint(out.key);
  if (!normal.ok() || *normal != out.key) return which + ": \"key\" is not a compressed point";
  auto parsed = th::ParseCommitments(commitments, r.k);
  if (!parsed.ok()) return which + ": \"commitments\" are not k points";
  out.commitments = std::move(*parsed);
  const auto cert = item.find("certificate");
  if (cert == item.end() || !cert->is_string() || cert->get<std::string>().empty() ||
      cert->get<std::string>().size() > kMaxCertificateChars) {
    return which + " lacks its \"certificate\" (PEM)";
  }
  if (!SinglePemBlock(cert->get<std::string>()))
    return which + ": \"certificate\" must hold exactly one PEM block";
  out.certificate_pem = cert->get<std::string>();
  return "";
}

}  // namespace

bool SinglePemBlock(std::string_view pem) {
  constexpr std::string_view kBegin = "-----BEGIN";
  const auto first = pem.find(kBegin);
  return first != std::string_view::npos && pem.find(kBegin, first + 1) == std::string_view::npos;
}

std::string CancelCommand(std::string_view group, std::string_view round,
                          std::string_view state_context) {
  // " k=K " and " nodes=URL,..." (the last field) of the context; URLs hold no spaces.
  const auto field = [&](std::string_view name) -> std::string {
    const std::string key = " " + std::string(name) + "=";
    const auto at = state_context.find(key);
    if (at == std::string_view::npos) return "";
    const auto from = at + key.size();
    return std::string(state_context.substr(from, state_context.find(' ', from) - from));
  };
  std::string k = field("k");
  std::string nodes = field("nodes");
  // Each value as one shell word: a group name may hold $, `, ; and the like.
  const auto word = [](std::string_view value) {
    const bool plain = !value.empty() && std::all_of(value.begin(), value.end(), [](char c) {
      return std::isalnum(static_cast<unsigned char>(c)) != 0 ||
             std::string_view("@%+=:,./_-").find(c) != std::string_view::npos;
    });
    if (plain) return std::string(value);
    std::string quoted = "'";
    for (char c : value) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return quoted + "'";
  };
  return "blindlist admin group dkg-cancel " + word(group) + " --round " + word(round) +
         " --threshold " + (k.empty() ? "K" : word(k)) + " --nodes " +
         (nodes.empty() ? "URL,..." : word(nodes));
}

std::string Round::StateContext(std::string_view group) const {
  std::string list;
  for (const auto& url : nodes) list += (list.empty() ? "" : ",") + url;
  return "blindlist threshold-dkg-state v1 group=" + std::string(group) + " round=" + round +
         " k=" + std::to_string(k) + " n=" + std::to_string(n) + " index=" + std::to_string(index) +
         " nodes=" + list;
}

std::string Round::ShareContext(std::string_view group) const {
  constexpr std::string_view kStateTag = "blindlist threshold-dkg-state v1";
  std::string context = StateContext(group);
  return "blindlist threshold-dkg-share v1" + context.substr(kStateTag.size());
}

std::string Round::Reason() const {
  return "round:" + round + " index:" + std::to_string(index) + " k:" + std::to_string(k) +
         " n:" + std::to_string(n);
}

std::optional<std::string> UrlHost(std::string_view url) {
  constexpr std::string_view kScheme = "https://";
  if (!url.starts_with(kScheme)) return std::nullopt;
  std::string_view rest = url.substr(kScheme.size());
  if (rest.find_first_of("/?#") != std::string_view::npos) return std::nullopt;  // HOST[:PORT] only
  if (rest.find('@') != std::string_view::npos) return std::nullopt;             // no user info
  std::string_view host;
  std::string_view port;
  if (rest.starts_with("[")) {
    const auto close = rest.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = rest.substr(1, close - 1);
    const std::string_view after = rest.substr(close + 1);
    if (!after.empty() && !after.starts_with(":")) return std::nullopt;
    port = after.empty() ? after : after.substr(1);
  } else {
    const auto colon = rest.find(':');
    host = rest.substr(0, colon);
    port = colon == std::string_view::npos ? std::string_view() : rest.substr(colon + 1);
  }
  const bool digits =
      std::all_of(port.begin(), port.end(), [](char c) { return c >= '0' && c <= '9'; });
  if (host.empty() || !digits || port.size() > 5) return std::nullopt;
  // A host name's letters, digits, '-' and '.'; an IPv6 literal's hex digits, ':' and '.'. Nothing
  // a shell, a log or a certificate check could read otherwise.
  const bool bracketed = rest.starts_with("[");
  const bool clean = std::all_of(host.begin(), host.end(), [&](char c) {
    const bool hex = std::isxdigit(static_cast<unsigned char>(c)) != 0;
    if (bracketed) return hex || c == ':' || c == '.';
    return std::isalnum(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '.';
  });
  if (!clean) return std::nullopt;
  if (port.empty() != (rest.find(':', host.size()) == std::string_view::npos))
    return std::nullopt;  // "host:" with no port
  if (!port.empty() && (std::stoi(std::string(port)) < 1 || std::stoi(std::string(port)) > 65535))
    return std::nullopt;
  return std::string(host);
}

std::string HostKey(std::string_view host) {
  std::string key(host);
  std::transform(key.begin(), key.end(), key.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  while (key.ends_with(".")) key.pop_back();
  std::array<unsigned char, 16> address{};
  std::array<char, INET6_ADDRSTRLEN> text{};
  if (inet_pton(AF_INET, key.c_str(), address.data()) == 1) {
    if (inet_ntop(AF_INET, address.data(), text.data(), text.size()) != nullptr)
      return std::string(text.data());
  } else if (inet_pton(AF_INET6, key.c_str(), address.data()) == 1) {
    constexpr std::array<unsigned char, 12> kMapped = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    const bool mapped = std::equal(kMapped.begin(), kMapped.end(), address.begin());
    const int family = mapped ? AF_INET : AF_INET6;
    const unsigned char* from = mapped ? address.data() + kMapped.size() : address.data();
    if (inet_ntop(family, from, text.data(), text.size()) != nullptr)
      return std::string(text.data());
  }
  return key;
}

std::string ParseRound(const json& body, Round& out) {
  const auto round = body.find("round");
  if (round == body.end() || !round->is_string() || round->get<std::string>().size() != 32 ||
      !IsLowerHex(round->get<std::string>())) {
    return "\"round\" must be 32 lowercase hex digits";
  }
  out.round = round->get<std::string>();
  const auto nodes = body.find("nodes");
  if (nodes == body.end() || !nodes->is_array() || nodes->size() < 2 ||
      nodes->size() > static_cast<std::size_t>(th::kMaxNodes)) {
    return "\"nodes\" must be the array of the 2 to 16 node URLs, in index order";
  }
  for (const auto& url : *nodes) {
    if (!url.is_string() || !ValidUrl(url.get<std::string>()))
      return "each of \"nodes\" must be an https://HOST[:PORT] URL";
    if (std::find(out.nodes.begin(), out.nodes.end(), url.get<std::string>()) != out.nodes.end())
      return "\"nodes\" names a URL twice";
    // A certificate names hosts, not ports: two nodes on one host could each answer for the
    // other's index, and so learn the pieces dealt to it.
    const std::string host = HostKey(UrlHost(url.get<std::string>()).value_or(""));
    for (const std::string& other : out.nodes) {
      if (HostKey(UrlHost(other).value_or("")) == host)
        return "\"nodes\" names one host twice: every node needs a host name of its own";
    }
    out.nodes.push_back(url.get<std::string>());
  }
  out.n = static_cast<int>(out.nodes.size());
  const auto k = body.find("threshold");
  if (k == body.end() || !k->is_number_integer() || k->get<int>() < 2 || k->get<int>() > out.n)
    return "\"threshold\" must be a whole number with 2 <= threshold <= nodes";
  out.k = k->get<int>();
  // Feldman's checks bind a dealer's polynomial only where honest nodes hold pieces: with
  // n <= 2k - 2 the k - 1 other nodes are enough to fit commitments to a chosen group key (and
  // know d). Pedersen's key generation assumes fewer than half the nodes dishonest: n >= 2k - 1.
  if (out.n < 2 * out.k - 1) {
    return "a key generation needs at least 2 * threshold - 1 nodes (" +
           std::to_string(2 * out.k - 1) + " for threshold " + std::to_string(out.k) +
           "): with fewer, threshold - 1 colluding nodes could choose the group key";
  }
  const auto index = body.find("index");
  if (index == body.end() || !index->is_number_integer() || index->get<int>() < 1 ||
      index->get<int>() > out.n) {
    return "\"index\" (this node's) must be a whole number in 1..n";
  }
  out.index = static_cast<std::uint8_t>(index->get<int>());
  return "";
}

std::string ParseStarts(const json& body, const Round& r,
                        std::map<std::uint8_t, StartAnswer>& out) {
  const auto starts = body.find("starts");
  if (starts == body.end() || !starts->is_array() ||
      starts->size() != static_cast<std::size_t>(r.n)) {
    return "\"starts\" must hold the start answer of every node";
  }
  for (const auto& item : *starts) {
    StartAnswer answer;
    if (auto wrong = ParseStart(item, r, answer); !wrong.empty()) return wrong;
    if (out.contains(answer.index)) return "\"starts\" holds two answers for one index";
    out.emplace(answer.index, std::move(answer));
  }
  return "";
}

namespace {

// "deals" or "accepts": one {"index", "signature"} for each index 1..n.
std::string ParseSignatures(const json& body, const char* field, const Round& r,
                            std::map<std::uint8_t, Bytes>& out) {
  const std::string quoted = std::string("\"") + field + "\"";
  const auto items = body.find(field);
  if (items == body.end() || !items->is_array() || items->size() != static_cast<std::size_t>(r.n))
    return quoted + " must hold the signature of every node";
  for (const auto& item : *items) {
    Bytes signature;
    if (!item.is_object() || !item.contains("index") || !item["index"].is_number_integer() ||
        item["index"].get<int>() < 1 || item["index"].get<int>() > r.n ||
        out.contains(static_cast<std::uint8_t>(item["index"].get<int>())) ||
        !Base64Field(item, "signature", signature)) {
      return quoted + " must hold one {\"index\", \"signature\"} for every node";
    }
    out.emplace(static_cast<std::uint8_t>(item["index"].get<int>()), std::move(signature));
  }
  return "";
}

}  // namespace

std::string ParseDeals(const json& body, const Round& r, std::map<std::uint8_t, Bytes>& out) {
  return ParseSignatures(body, "deals", r, out);
}

std::string ParseAccepts(const json& body, const Round& r, std::map<std::uint8_t, Bytes>& out) {
  return ParseSignatures(body, "accepts", r, out);
}

std::string ParsePieces(const json& body, const Round& r, std::map<std::uint8_t, Bytes>& out) {
  const auto pieces = body.find("pieces");
  if (pieces == body.end() || !pieces->is_array())
    return "missing \"pieces\" (one from every other node)";
  for (const auto& item : *pieces) {
    Bytes sealed;
    if (!item.is_object() || !item.contains("from") || !item["from"].is_number_integer() ||
        item["from"].get<int>() < 1 || item["from"].get<int>() > r.n ||
        item["from"].get<int>() == r.index ||
        out.contains(static_cast<std::uint8_t>(item["from"].get<int>())) ||
        !Base64Field(item, "piece", sealed)) {
      return "\"pieces\" must hold one {\"from\", \"piece\"} from every other node";
    }
    out.emplace(static_cast<std::uint8_t>(item["from"].get<int>()), std::move(sealed));
  }
  if (out.size() != static_cast<std::size_t>(r.n - 1))
    return "\"pieces\" must hold one piece from every other node";
  return "";
}

SecretBytes EncodeState(const State& state) {
  SecretBytes out(kStateHeader + th::kScalarLen * (1 + state.pieces.size()));
  out[0] = kStateVersion;
  const auto expires = static_cast<std::uint64_t>(state.expires);
  for (std::size_t b = 0; b < 8; ++b)
    out[1 + b] = static_cast<std::uint8_t>(expires >> (8 * (7 - b)));
  std::size_t at = kStateHeader;
  auto put = [&](const SecretBytes& scalar) {
    if (scalar.size() == th::kScalarLen) std::memcpy(out.data() + at, scalar.data(), scalar.size());
    at += th::kScalarLen;
  };
  put(state.round_scalar);
  for (const auto& piece : state.pieces) put(piece);
  return out;
}

Result<State> ParseState(ByteView plaintext, int n) {
  if (n < 2 || n > th::kMaxNodes ||
      plaintext.size() != kStateHeader + th::kScalarLen * (1 + static_cast<std::size_t>(n)) ||
      plaintext[0] != kStateVersion) {
    return MakeError("bad-state", "the state is not a start round's for these nodes");
  }
  State state;
  std::uint64_t expires = 0;
  for (std::size_t b = 0; b < 8; ++b) expires = (expires << 8) | plaintext[1 + b];
  state.expires = static_cast<std::int64_t>(expires & 0x7fffffffffffffffULL);
  std::size_t at = kStateHeader;
  state.round_scalar = SecretBytes(plaintext.subspan(at, th::kScalarLen));
  for (int j = 0; j < n; ++j) {
    at += th::kScalarLen;
    state.pieces.emplace_back(plaintext.subspan(at, th::kScalarLen));
  }
  return state;
}

}  // namespace blindlist::groupd::dkg
