#include "threshold_dkg.h"

#include <algorithm>
#include <array>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "blindlist/base64.h"
#include "blindlist/error_codes.h"
#include "crypto/signature.h"
#include "crypto/threshold.h"
#include "crypto/x509.h"
#include "dkg_messages.h"
#include "obs/log.h"
#include "service_call.h"

namespace blindlist::groupd {

namespace {

namespace th = crypto::threshold;
using json = nlohmann::json;
using net::HttpRequest;
using net::HttpResponse;
using Call = GroupService::Call;
using Starts = std::map<std::uint8_t, dkg::StartAnswer>;

// How long a start round's sealed state opens: the command runs the four rounds at once.
constexpr std::int64_t kStateSeconds = 3600;

std::int64_t Now() { return static_cast<std::int64_t>(std::time(nullptr)); }

HttpResponse Fail(Call& call, int status, std::string_view code, std::string_view message) {
  call.result = std::string(code);
  return HttpResponse::Error(status, code, message);
}

HttpResponse Internal(Call& call, std::string_view what, const Error& e) {
  net::Log(net::LogLevel::kError, "internal error",
           {{"operation", call.operation}, {"what", std::string(what)}, {"error", e.message}});
  return Fail(call, 500, errc::kInternal, what);
}

HttpResponse Ok(const json& body) { return HttpResponse::Json(200, body.dump()); }

std::string NodeName(const dkg::Round& r, std::uint8_t index) {
  return "node " + std::to_string(index) + " (" + r.nodes[index - 1U] + ")";
}

// What every round starts with: the body, its round, a group this node does not hold yet, and
// the CA the other nodes' TLS certificates must come from.
struct RoundSetUp {
  dkg::Round round;
  std::optional<crypto::Certificate> node_ca;
};

std::optional<HttpResponse> SetUp(Call& call, const HttpRequest& req, const std::string& name,
                                  store::Store& store, const Config& config, json& body,
                                  RoundSetUp& out) {
  // The same administrator at every node, by a certificate each node lists: not a per-node token.
  if (!call.caller.starts_with("admin-cert:")) {
    return Fail(call, 403, "not-admin",
                "a key generation takes an administrator's client certificate (mTLS), not a token");
  }
  body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object())
    return Fail(call, 400, errc::kMalformedJson, "the request body is not a JSON object");
  if (!ValidAddress(name))
    return Fail(call, 400, "bad-address", "the group must be the list's email address");
  // The group certificate names the address as an rfc822Name, which is ASCII; and the rounds are
  // kept by the address with ASCII letters folded, which must be every spelling of it.
  if (!AsciiAddress(name)) {
    return Fail(call, 400, "bad-address",
                "a key generation's group address must be ASCII: the group certificate names it "
                "as an RFC 822 address");
  }
  if (auto wrong = dkg::ParseRound(body, out.round); !wrong.empty())
    return Fail(call, 400, errc::kMalformedRequest, wrong);
  call.reason = out.round.Reason();
  if (config.node_ca_certificate_file.empty()) {
    return Fail(call, 409, "no-node-ca",
                "this node has no [threshold] node_ca_certificate: it cannot check the other "
                "nodes, so it takes part in no key generation");
  }
  auto ca = crypto::Certificate::LoadFile(config.node_ca_certificate_file);
  if (!ca.ok()) return Internal(call, "the node CA certificate cannot be read", ca.error());
  out.node_ca = std::move(*ca);
  auto found = store.FindGroup(name);
  if (!found.ok()) {
    net::Log(net::LogLevel::kError, "store error", {{"error", found.error().message}});
    return Fail(call, 503, errc::kStoreUnavailable, "the store is unavailable; retry later");
  }
  if (*found) return Fail(call, 409, errc::kExists, "this node holds the group already");
  return std::nullopt;
}

// Every node's start answer: its certificate from the node CA and naming the URL this request
// gives for it, its signature over its round key and commitments. `400 bad-signature` names the
// first node that fails.
std::optional<HttpResponse> VerifiedStarts(Call& call, const std::string& name, const json& body,
                                           const RoundSetUp& u, Starts& out) {
  const dkg::Round& r = u.round;
  if (auto wrong = dkg::ParseStarts(body, r, out); !wrong.empty())
    return Fail(call, 400, errc::kMalformedRequest, wrong);
  // One node under two URL spellings would take two indices, so two shares.
  std::vector<std::pair<std::uint8_t, crypto::Certificate>> seen;
  for (const auto& [j, answer] : out) {
    auto cert = crypto::Certificate::Load(AsBytes(answer.certificate_pem));
    if (cert.ok()) {
      for (const auto& [other, known] : seen) {
        if (known.SameKey(*cert)) {
          return Fail(call, 400, "bad-signature",
                      NodeName(r, j) + " answers with the key of " + NodeName(r, other) +
                          ": one node cannot hold two indices");
        }
      }
      seen.emplace_back(j, *cert);
    }
    const auto host = dkg::UrlHost(r.nodes[j - 1U]);
    Status checked =
        cert.ok() ? crypto::VerifyServerCertificate(*cert, *u.node_ca, host.value_or(""), Now())
                  : Status(cert.error());
    if (!checked.ok()) {
      return Fail(call, 400, "bad-signature",
                  NodeName(r, j) + ": its certificate does not verify: " + checked.error().message);
    }
    const std::string message = th::DkgStartMessage(name, r.round, r.k, r.n, j, r.nodes[j - 1U],
                                                    answer.key, answer.commitments);
    if (!crypto::VerifyMessage(*cert, AsBytes(message), answer.signature)) {
      return Fail(call, 400, "bad-signature",
                  NodeName(r, j) + ": its round key and commitments are not signed by its TLS key");
    }
  }
  // No certificate may also name another node's host (spelled otherwise, on another port, by a
  // wildcard): its holder could then answer for that node's index and read the pieces dealt to
  // it. Each node's certificate names its own host and no other node's.
  for (const auto& [i, holder] : seen) {
    for (const auto& [j, other] : seen) {
      const auto host = dkg::UrlHost(r.nodes[j - 1U]);
      if (i != j &&
          crypto::VerifyServerCertificate(holder, *u.node_ca, host.value_or(""), Now()).ok()) {
        return Fail(call, 400, "bad-signature",
                    NodeName(r, i) + "'s certificate also names the host of " + NodeName(r, j) +
                        ": every node needs a certificate naming only its own host");
      }
    }
  }
  return std::nullopt;
}

// What deal, check and finish start with: SetUp, then every node's start verified.
std::optional<HttpResponse> SetUpWithStarts(Call& call, const HttpRequest& req,
                                            const std::string& name, store::Store& store,
                                            const Config& config, json& body, RoundSetUp& u,
                                            Starts& starts) {
  if (auto refusal = SetUp(call, req, name, store, config, body, u)) return refusal;
  return VerifiedStarts(call, name, body, u, starts);
}

// This node's pieces and round scalar from the request's "state": sealed by this node for this
// group, round, index and node list, not expired, and for the round key of its own start.
std::optional<HttpResponse> OpenedState(Call& call, const std::string& name, const json& body,
                                        const RoundSetUp& u, const GroupKeyRing& ring,
                                        const dkg::StartAnswer& own, dkg::State& out) {
  const dkg::Round& r = u.round;
  Bytes sealed;
  const auto text = body.find("state");
  if (text == body.end() || !text->is_string() || !Base64Decode(text->get<std::string>(), sealed))
    return Fail(call, 400, errc::kMalformedRequest, "missing \"state\" (from the start round)");
  auto plain = ring.UnsealRepairState(r.StateContext(name), sealed);
  if (!plain.ok()) {
    return Fail(call, 400, "bad-state",
                "\"state\" is not this node's for this group, round, index and node list");
  }
  auto state = dkg::ParseState(plain->view(), r.n);
  if (!state.ok()) return Fail(call, 400, "bad-state", state.error().message);
  if (Now() > state->expires)
    return Fail(call, 400, "bad-state", "\"state\" has expired: run the key generation again");
  auto point = th::PointOfScalar(state->round_scalar);
  const th::Share own_piece{r.index, static_cast<std::uint8_t>(r.k), static_cast<std::uint8_t>(r.n),
                            state->pieces[r.index - 1U]};
  if (!point.ok() || *point != own.key || !th::VerifyShare(own_piece, own.commitments).ok())
    return Fail(call, 400, "bad-state", "\"state\" is not for this node's start answer");
  out = std::move(*state);
  return std::nullopt;
}

// This node's TLS server certificate and key: what it signs its start and deal answers with.
struct TlsIdentity {
  std::optional<crypto::Certificate> certificate;
  std::optional<crypto::PrivateKey> key;
};

std::optional<HttpResponse> LoadTls(Call& call, const Config& config, TlsIdentity& out) {
  auto cert = crypto::Certificate::LoadFile(config.common.server.cert_file);
  auto key = crypto::PrivateKey::LoadFile(config.common.server.key_file);
  if (!cert.ok() || !key.ok() || !cert->Matches(*key)) {
    return Internal(call, "this node's TLS key cannot be read",
                    !cert.ok()
                        ? cert.error()
                        : (!key.ok() ? key.error() : MakeError("bad-key", "key and cert differ")));
  }
  out.certificate = std::move(*cert);
  out.key = std::move(*key);
  return std::nullopt;
}

std::string Until(std::int64_t when) {
  std::array<char, 32> text{};
  const std::time_t t = when;
  std::tm tm{};
  gmtime_r(&t, &tm);
  std::strftime(text.data(), text.size(), "%Y-%m-%d %H:%M:%S UTC", &tm);
  return text.data();
}

// Refuses a round this node does not keep as `r`: another round of the group in progress, the
// same round started with another node list, k or index, or none at all.
std::optional<HttpResponse> RecordRefusal(Call& call, const std::string& name, const dkg::Round& r,
                                          const std::optional<store::DkgRound>& kept) {
  if (!kept) {
    return Fail(call, 409, "dkg-no-round",
                "this node keeps no key generation round " + r.round + " for " + name +
                    " (never started here, finished, cancelled or expired): run the key "
                    "generation again");
  }
  if (kept->round != r.round) {
    return Fail(call, 409, "dkg-in-progress",
                "this node is in another key generation round for " + name + " (round " +
                    kept->round + ", until " + Until(kept->expires_at) +
                    "): one round per group at a time. The command that ran it cancels it when it "
                    "fails; otherwise it expires then. To end it now, with your --ca, "
                    "--client-cert and --client-key, run (the rest of this line): " +
                    dkg::CancelCommand(name, kept->round, kept->context));
  }
  if (kept->context != r.StateContext(name)) {
    return Fail(call, 409, "dkg-round-differs",
                "key generation round " + r.round +
                    " was started at this node with another node "
                    "list, threshold or index");
  }
  return std::nullopt;
}

std::optional<HttpResponse> KeptRound(Call& call, store::Store& store, const std::string& name,
                                      const dkg::Round& r, store::DkgRound& out) {
  auto kept = store.FindDkgRound(name);
  if (!kept.ok()) {
    net::Log(net::LogLevel::kError, "store error", {{"error", kept.error().message}});
    return Fail(call, 503, errc::kStoreUnavailable, "the store is unavailable; retry later");
  }
  if (auto refusal = RecordRefusal(call, name, r, *kept)) return refusal;
  out = std::move(**kept);
  return std::nullopt;
}

// The view this node is given: the start given for it must be the one it answered (its record),
// and the digest of every start (DkgViewDigest) is what it deals on and finishes with.
std::optional<HttpResponse> ViewOf(Call& call, const std::string& name, const dkg::Round& r,
                                   const Starts& starts, const store::DkgRound& kept,
                                   Bytes& digest) {
  const json own = json::parse(std::string(AsChars(kept.start_answer)), nullptr, false);
  const dkg::StartAnswer& given = starts.at(r.index);
  Bytes key;
  Bytes commitments;
  if (!own.is_object() || !own.contains("key") || !own.contains("commitments") ||
      !Base64Decode(own["key"].get<std::string>(), key) ||
      !Base64Decode(own["commitments"].get<std::string>(), commitments) || key != given.key ||
      commitments != th::EncodeCommitments(given.commitments)) {
    return Fail(call, 400, "dkg-view",
                "the start given for this node is not the one it answered in round " + r.round);
  }
  std::vector<std::string> messages;
  for (const auto& [j, answer] : starts) {
    messages.push_back(th::DkgStartMessage(name, r.round, r.k, r.n, j, r.nodes[j - 1U], answer.key,
                                           answer.commitments));
  }
  digest = th::DkgViewDigest(name, r.round, r.k, r.nodes, messages);
  return std::nullopt;
}

// Every dealer's signature over the view this node dealt on: a node that dealt on another view
// (or never dealt) is named.
std::optional<HttpResponse> VerifiedDeals(Call& call, const std::string& name, const json& body,
                                          const dkg::Round& r, const Starts& starts,
                                          const Bytes& digest) {
  std::map<std::uint8_t, Bytes> deals;
  if (auto wrong = dkg::ParseDeals(body, r, deals); !wrong.empty())
    return Fail(call, 400, errc::kMalformedRequest, wrong);
  for (const auto& [i, signature] : deals) {
    auto cert = crypto::Certificate::Load(AsBytes(starts.at(i).certificate_pem));
    const std::string message = th::DkgDealMessage(name, r.round, i, digest);
    if (!cert.ok() || !crypto::VerifyMessage(*cert, AsBytes(message), signature)) {
      return Fail(call, 400, "bad-signature",
                  NodeName(r, i) + " did not deal on this view of round " + r.round +
                      ": its deal signature does not verify");
    }
  }
  return std::nullopt;
}

// The pieces dealt to this node, opened and each checked against its dealer's commitments (the
// Feldman check), with this node's own piece: n shares of the one index, to be summed.
std::optional<HttpResponse> CheckedPieces(Call& call, const std::string& name, const json& body,
                                          const RoundSetUp& u, const Starts& starts,
                                          const Bytes& digest, dkg::State& state,
                                          std::vector<th::Share>& out) {
  const dkg::Round& r = u.round;
  std::map<std::uint8_t, Bytes> sealed;
  if (auto wrong = dkg::ParsePieces(body, r, sealed); !wrong.empty())
    return Fail(call, 400, errc::kMalformedRequest, wrong);
  const auto k = static_cast<std::uint8_t>(r.k);
  const auto n = static_cast<std::uint8_t>(r.n);
  out.push_back(th::Share{r.index, k, n, std::move(state.pieces[r.index - 1U])});
  for (const auto& [from, piece] : sealed) {
    auto opened = th::OpenBetween(state.round_scalar, starts.at(from).key,
                                  th::DkgPieceContext(name, r.round, from, r.index, digest), piece);
    if (!opened.ok()) {
      return Fail(call, 400, "bad-piece",
                  "the piece from " + NodeName(r, from) + " does not open: changed in transit?");
    }
    auto share = th::ParseShare(opened->view());
    if (!share.ok() || share->index != r.index || share->k != k || share->n != n ||
        !th::VerifyShare(*share, starts.at(from).commitments).ok()) {
      return Fail(call, 400, "bad-share",
                  NodeName(r, from) + " dealt a piece that does not match its commitments");
    }
    out.push_back(std::move(*share));
  }
  return std::nullopt;
}

Result<std::vector<Bytes>> SummedCommitments(const Starts& starts) {
  std::vector<std::vector<Bytes>> per_node;
  for (const auto& [j, answer] : starts) per_node.push_back(answer.commitments);
  return th::SumCommitments(per_node);
}

HttpResponse FailedRound(Call& call, const dkg::Round& r) {
  return Fail(call, 409, "dkg-failed",
              "this node found a piece off its dealer's commitments in key generation round " +
                  r.round +
                  ": it stores nothing for this round. Cancel it and run the key "
                  "generation again");
}

// The round this node keeps as `r`, the view of `starts` and the check that it is the one this
// node dealt on; a round this node failed is refused.
std::optional<HttpResponse> DealtView(Call& call, store::Store& store, const std::string& name,
                                      const dkg::Round& r, const Starts& starts,
                                      store::DkgRound& kept, Bytes& digest) {
  if (auto refusal = KeptRound(call, store, name, r, kept)) return refusal;
  if (auto refusal = ViewOf(call, name, r, starts, kept, digest)) return refusal;
  if (!kept.dealt || kept.view_digest != digest) {
    return Fail(call, 400, "dkg-view",
                kept.dealt ? "these starts are not the view this node dealt on in round " + r.round
                           : "this node has not dealt in round " + r.round + " yet");
  }
  if (kept.checked == store::DkgCheck::kFailed) return FailedRound(call, r);
  return std::nullopt;
}

}  // namespace

// Round 1: f_i drawn, its commitments and a fresh round key signed with this node's TLS key; once
// per round: a repeated start gets the first answer back, never new coefficients.
HttpResponse GroupService::DkgHandlers::Start(GroupService& s, const HttpRequest& req, Call& call,
                                              const Target& t) {
  const std::string& name = t.params[0];
  json body;
  RoundSetUp u;
  if (auto refusal = SetUp(call, req, name, *s.store_, s.config_, body, u)) return *refusal;
  const dkg::Round& r = u.round;
  TlsIdentity tls;
  if (auto refusal = LoadTls(call, s.config_, tls)) return *refusal;
  // The other nodes will check this node's certificate against the URL the operator gave: refuse
  // here already, where the operator can see why.
  Status own = crypto::VerifyServerCertificate(*tls.certificate, *u.node_ca,
                                               dkg::UrlHost(r.OwnUrl()).value_or(""), Now());
  if (!own.ok()) {
    return Fail(call, 400, "wrong-url",
                "this node's TLS certificate does not verify for " + r.OwnUrl() +
                    " under the node CA: " + own.error().message);
  }
  auto kept = s.store_->FindDkgRound(name);
  if (!kept.ok()) return Fail(call, 503, errc::kStoreUnavailable, "the store is unavailable");
  if (*kept) {
    if (auto refusal = RecordRefusal(call, name, r, *kept)) return *refusal;
    return HttpResponse::Json(200, std::string(AsChars((*kept)->start_answer)));
  }
  auto dealing = th::DealRandom(r.k, r.n);
  auto key = th::NewRoundKey();
  if (!dealing.ok() || !key.ok())
    return Internal(call, "dealing failed", !dealing.ok() ? dealing.error() : key.error());
  dkg::State state{Now() + kStateSeconds, key->scalar, {}};
  for (const auto& share : dealing->shares) state.pieces.push_back(share.scalar);
  auto sealed = s.ring_->SealRepairState(r.StateContext(name), dkg::EncodeState(state));
  const std::string message = th::DkgStartMessage(name, r.round, r.k, r.n, r.index, r.OwnUrl(),
                                                  key->point, dealing->commitments);
  auto signature = crypto::SignMessage(*tls.key, AsBytes(message));
  if (!sealed.ok() || !signature.ok())
    return Internal(call, "start failed", !sealed.ok() ? sealed.error() : signature.error());
  const std::string answer = json{
      {"index", r.index},
      {"key", Base64Encode(key->point)},
      {"commitments", Base64Encode(th::EncodeCommitments(dealing->commitments))},
      {"signature", Base64Encode(*signature)},
      {"certificate", crypto::ToPem("CERTIFICATE", tls.certificate->Der())},
      {"state",
       Base64Encode(*sealed)}}.dump();
  // Recorded before it is answered; a concurrent start of the same round gets the one recorded.
  auto begun = s.store_->BeginDkgRound(store::DkgRound{.group = name,
                                                       .round = r.round,
                                                       .context = r.StateContext(name),
                                                       .start_answer = ToBytes(answer),
                                                       .dealt = false,
                                                       .view_digest = {},
                                                       .deal_answer = {},
                                                       .checked = store::DkgCheck::kNone,
                                                       .check_answer = {},
                                                       .sealed_share = {},
                                                       .expires_at = state.expires});
  if (!begun.ok() && begun.error().code == errc::kExists)
    return Fail(call, 409, errc::kExists,
                "this node holds the group already: " + begun.error().message);
  if (!begun.ok() && begun.error().code == errc::kConflict) {
    return Fail(call, 409, "dkg-round-used",
                "key generation round " + r.round +
                    " was started at this node before and has ended (finished, cancelled or "
                    "expired), or is another group's: a round id is used once. Run the key "
                    "generation again: it starts a new round");
  }
  if (!begun.ok()) return Fail(call, 503, errc::kStoreUnavailable, "the store is unavailable");
  if (auto refusal = RecordRefusal(call, name, r, *begun)) return *refusal;
  return HttpResponse::Json(200, std::string(AsChars(begun->start_answer)));
}

// Round 2: every start checked, then f_i(j) sealed from this node to node j, for every j != i, on
// one view of the starts, signed. Once per round: the same view gets the same answer, another
// view is refused.
HttpResponse GroupService::DkgHandlers::Deal(GroupService& s, const HttpRequest& req, Call& call,
                                             const Target& t) {
  const std::string& name = t.params[0];
  json body;
  RoundSetUp u;
  Starts starts;
  if (auto refusal = SetUpWithStarts(call, req, name, *s.store_, s.config_, body, u, starts))
    return *refusal;
  const dkg::Round& r = u.round;
  dkg::State state;
  if (auto refusal = OpenedState(call, name, body, u, *s.ring_, starts.at(r.index), state))
    return *refusal;
  store::DkgRound kept;
  if (auto refusal = KeptRound(call, *s.store_, name, r, kept)) return *refusal;
  Bytes digest;
  if (auto refusal = ViewOf(call, name, r, starts, kept, digest)) return *refusal;
  const auto other_view = [&] {
    return Fail(call, 409, "dkg-other-view",
                "this node dealt key generation round " + r.round +
                    " on another view of the starts: it deals once per round");
  };
  if (kept.dealt) {
    if (kept.view_digest != digest) return other_view();
    return HttpResponse::Json(200, std::string(AsChars(kept.deal_answer)));
  }
  TlsIdentity tls;
  if (auto refusal = LoadTls(call, s.config_, tls)) return *refusal;
  json pieces = json::array();
  for (std::uint8_t j = 1; j <= r.n; ++j) {
    if (j == r.index) continue;
    const SecretBytes piece = th::EncodeShare(th::Share{
        j, static_cast<std::uint8_t>(r.k), static_cast<std::uint8_t>(r.n), state.pieces[j - 1U]});
    auto sealed =
        th::SealBetween(state.round_scalar, starts.at(j).key,
                        th::DkgPieceContext(name, r.round, r.index, j, digest), piece.view());
    if (!sealed.ok()) return Internal(call, "sealing a piece failed", sealed.error());
    pieces.push_back({{"to", j}, {"piece", Base64Encode(*sealed)}});
  }
  auto signature =
      crypto::SignMessage(*tls.key, AsBytes(th::DkgDealMessage(name, r.round, r.index, digest)));
  if (!signature.ok()) return Internal(call, "signing the deal failed", signature.error());
  const std::string answer = json{
      {"index", r.index},
      {"view", Base64Encode(digest)},
      {"signature", Base64Encode(*signature)},
      {"pieces", pieces}}.dump();
  auto dealt = s.store_->DealDkgRound(name, r.round, digest, ToBytes(answer));
  if (!dealt.ok()) {
    if (dealt.error().code == errc::kNotFound) return *RecordRefusal(call, name, r, std::nullopt);
    return Fail(call, 503, errc::kStoreUnavailable, "the store is unavailable");
  }
  if (dealt->view_digest != digest) return other_view();
  return HttpResponse::Json(200, std::string(AsChars(dealt->deal_answer)));
}

// Round 3: the pieces for this node opened and checked against their dealers' commitments, summed
// into d_i (sealed in the round record) and C = sum C_j; the check signed as an accept. A piece
// off its commitments fails the round here for good: this node never stores for it.
HttpResponse GroupService::DkgHandlers::Check(GroupService& s, const HttpRequest& req, Call& call,
                                              const Target& t) {
  const std::string& name = t.params[0];
  json body;
  RoundSetUp u;
  Starts starts;
  if (auto refusal = SetUpWithStarts(call, req, name, *s.store_, s.config_, body, u, starts))
    return *refusal;
  const dkg::Round& r = u.round;
  // The view this node dealt on, and every dealer's signature over it: every node that accepts
  // has summed the same commitments, so holds a share of the same key.
  store::DkgRound kept;
  Bytes digest;
  if (auto refusal = DealtView(call, *s.store_, name, r, starts, kept, digest)) return *refusal;
  if (kept.checked == store::DkgCheck::kAccepted)
    return HttpResponse::Json(200, std::string(AsChars(kept.check_answer)));
  if (auto refusal = VerifiedDeals(call, name, body, r, starts, digest)) return *refusal;
  dkg::State state;
  if (auto refusal = OpenedState(call, name, body, u, *s.ring_, starts.at(r.index), state))
    return *refusal;
  std::vector<th::Share> pieces;
  std::optional<HttpResponse> bad =
      CheckedPieces(call, name, body, u, starts, digest, state, pieces);
  std::optional<th::Share> share;
  std::optional<std::vector<Bytes>> commitments;
  if (!bad) {
    auto summed = th::SumShares(pieces);
    auto points = SummedCommitments(starts);
    if (summed.ok() && points.ok()) {
      share = std::move(*summed);
      commitments = std::move(*points);
    } else {
      bad = Fail(call, 400, "bad-share",
                 "the pieces sum to no usable share (a sum of 0, or commitments at infinity): run "
                 "the key generation again");
    }
  }
  if (bad) {
    // A dealer's piece off its commitments: this node will not store for this round, whatever
    // it is given later. The first check stands: if a concurrent one accepted already, this
    // answer is that accept, as any later check gets.
    if (call.result == "bad-share") {
      auto failed =
          s.store_->CheckDkgRound(name, r.round, digest, store::DkgCheck::kFailed, {}, {});
      if (!failed.ok()) {
        net::Log(net::LogLevel::kWarning, "key generation round not marked failed",
                 {{"error", failed.error().message}});
      } else if (failed->checked == store::DkgCheck::kAccepted) {
        call.result = "ok";
        return HttpResponse::Json(200, std::string(AsChars(failed->check_answer)));
      }
    }
    return *bad;
  }
  TlsIdentity tls;
  if (auto refusal = LoadTls(call, s.config_, tls)) return *refusal;
  auto sealed = s.ring_->SealRepairState(r.ShareContext(name), th::EncodeShare(*share));
  auto signature = crypto::SignMessage(
      *tls.key, AsBytes(th::DkgAcceptMessage(name, r.round, r.index, digest, *commitments)));
  if (!sealed.ok() || !signature.ok())
    return Internal(call, "accepting failed", !sealed.ok() ? sealed.error() : signature.error());
  const std::string answer = json{
      {"index", r.index},
      {"view", Base64Encode(digest)},
      {"key", Base64Encode((*commitments)[0])},
      {"signature",
       Base64Encode(*signature)}}.dump();
  auto checked = s.store_->CheckDkgRound(name, r.round, digest, store::DkgCheck::kAccepted,
                                         ToBytes(answer), *sealed);
  if (!checked.ok()) {
    if (checked.error().code == errc::kNotFound) return *RecordRefusal(call, name, r, std::nullopt);
    return Fail(call, 503, errc::kStoreUnavailable, "the store is unavailable");
  }
  if (checked->checked != store::DkgCheck::kAccepted) return FailedRound(call, r);
  return HttpResponse::Json(200, std::string(AsChars(checked->check_answer)));
}

// Round 4: stored only with every node's accept of this view and these commitments: every node
// has checked its pieces, so k of them hold shares of C_0 and no k - 1 can choose it. Stored as a
// dealer's creation stores it; index 1 issues the group certificate, the others get it.
HttpResponse GroupService::DkgHandlers::Finish(GroupService& s, const HttpRequest& req, Call& call,
                                               const Target& t) {
  const std::string& name = t.params[0];
  json body;
  RoundSetUp u;
  Starts starts;
  if (auto refusal = SetUpWithStarts(call, req, name, *s.store_, s.config_, body, u, starts))
    return *refusal;
  const dkg::Round& r = u.round;
  std::optional<std::string> certificate;
  if (const auto c = body.find("certificate"); c != body.end() && c->is_string())
    certificate = c->get<std::string>();
  if ((r.index == 1) == certificate.has_value()) {
    return Fail(call, 400, errc::kMalformedRequest,
                "node 1 issues the group certificate; every other node gets it as \"certificate\"");
  }
  store::DkgRound kept;
  Bytes digest;
  if (auto refusal = DealtView(call, *s.store_, name, r, starts, kept, digest)) return *refusal;
  if (kept.checked != store::DkgCheck::kAccepted) {
    return Fail(call, 409, "dkg-not-checked",
                "this node has not checked its pieces of round " + r.round +
                    " yet: it stores nothing before it has accepted them");
  }
  if (certificate && !dkg::SinglePemBlock(*certificate)) {
    return Fail(call, 400, errc::kMalformedRequest,
                "\"certificate\" must hold exactly one PEM block: the group certificate");
  }
  auto commitments = SummedCommitments(starts);
  if (!commitments.ok())
    return Internal(call, "summing the commitments failed", commitments.error());
  std::map<std::uint8_t, Bytes> accepts;
  if (auto wrong = dkg::ParseAccepts(body, r, accepts); !wrong.empty())
    return Fail(call, 400, errc::kMalformedRequest, wrong);
  for (const auto& [j, signature] : accepts) {
    auto cert = crypto::Certificate::Load(AsBytes(starts.at(j).certificate_pem));
    const std::string message = th::DkgAcceptMessage(name, r.round, j, digest, *commitments);
    if (!cert.ok() || !crypto::VerifyMessage(*cert, AsBytes(message), signature)) {
      return Fail(call, 400, "bad-signature",
                  NodeName(r, j) + " has not accepted this view and these commitments of round " +
                      r.round + ": its accept signature does not verify; nothing stored");
    }
  }
  auto plain = s.ring_->UnsealRepairState(r.ShareContext(name), kept.sealed_share);
  if (!plain.ok()) return Internal(call, "this node's share does not open", plain.error());
  auto share = th::ParseShare(plain->view());
  if (!share.ok()) return Internal(call, "this node's share does not parse", share.error());
  HttpResponse stored = s.StoreThresholdGroup(call, name, *share, *commitments, certificate);
  // Once stored, the group refuses every round (409 exists); the record goes with the round.
  if (stored.status == 201) {
    if (Status ended = s.store_->EndDkgRound(name, r.round, /*finished=*/true); !ended.ok())
      net::Log(net::LogLevel::kWarning, "key generation round not forgotten",
               {{"error", ended.error().message}});
  }
  return stored;
}

// A round's record forgotten at this node, by the command that ran it (when it fails) or by an
// operator naming the round as it was started (id, threshold, node list): the group can then take
// a new round, under a new id. An expired round is forgotten anyway. Either way the id stays used.
HttpResponse GroupService::DkgHandlers::Cancel(GroupService& s, const HttpRequest& req, Call& call,
                                               const Target& t) {
  const std::string& name = t.params[0];
  json body;
  RoundSetUp u;
  if (auto refusal = SetUp(call, req, name, *s.store_, s.config_, body, u)) return *refusal;
  // The round as it was started here: its id, threshold, node list and this node's index.
  store::DkgRound kept;
  if (auto refusal = KeptRound(call, *s.store_, name, u.round, kept)) return *refusal;
  Status ended = s.store_->EndDkgRound(name, u.round.round, /*finished=*/false);
  if (!ended.ok() && ended.error().code == errc::kNotFound)
    return *RecordRefusal(call, name, u.round, std::nullopt);
  if (!ended.ok()) return Fail(call, 503, errc::kStoreUnavailable, "the store is unavailable");
  return Ok({{"cancelled", u.round.round}});
}

}  // namespace blindlist::groupd
