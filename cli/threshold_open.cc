#include "threshold_open.h"

#include <algorithm>
#include <climits>
#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <span>

#include "api/json_fields.h"
#include "blindlist/base64.h"
#include "blindlist/error_codes.h"
#include "crypto/blind.h"
#include "crypto/threshold.h"

namespace blindlist::cli {
namespace {

using json = nlohmann::json;
namespace th = crypto::threshold;

struct NodeAnswer {
  std::string url;
  std::optional<Error> failure;  // set: this node is out, and why
  bool transient = false;        // the failure may pass with time (no answer, 5xx, 429)
  int index = 0;
  Bytes point;
  Bytes proof;
  bool verified = false;  // covered by a batch proof already checked
  Bytes commitments;
};

std::optional<Bytes> Base64Field(const json& j, const char* name) {
  auto text = api::StringField(j, name);
  Bytes out;
  if (!text || !Base64Decode(*text, out)) return std::nullopt;
  return out;
}

void Fail(NodeAnswer& a, std::string code, std::string message, bool transient = false) {
  a.failure = MakeError(std::move(code), std::move(message));
  a.transient = transient;
}

// The group certificate as most nodes give it; a node giving another one is out.
Result<crypto::Certificate> AgreedCertificate(std::vector<NodeAnswer>& nodes,
                                              const ThresholdRead& t) {
  // Keyed by hex: a map keyed by the octets trips a false GCC 12 overread warning.
  std::map<std::string, int> votes;
  std::vector<std::string> ders(nodes.size());
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    api::ApiCredentials creds = t.creds;
    creds.server = nodes[i].url;
    api::ApiClient client(creds);
    auto pem = client.GetText("/v1/groups/" + api::ApiClient::Segment(t.group) + "/certificate");
    if (!pem.ok()) {
      Fail(nodes[i], pem.error().code, pem.error().message,
           api::ApiClient::IsTransient(pem.error(), client.last_status()));
      continue;
    }
    auto cert = crypto::Certificate::Load(AsBytes(*pem));
    if (!cert.ok()) {
      Fail(nodes[i], std::string(errc::kBadReply), "its group certificate does not load");
      continue;
    }
    ders[i] = ToHex(cert->Der());
    ++votes[ders[i]];
  }
  if (votes.empty()) return MakeError("threshold-not-met", "no node gave the group certificate");
  auto best = std::max_element(votes.begin(), votes.end(),
                               [](const auto& a, const auto& b) { return a.second < b.second; });
  for (std::size_t i = 0; i < nodes.size(); ++i) {
    if (!nodes[i].failure && ders[i] != best->first)
      Fail(nodes[i], "lied", "its group certificate differs from the other nodes'");
  }
  Bytes der;
  if (!FromHex(best->first, der)) return MakeError(std::string(errc::kCrypto), "hex");
  return crypto::Certificate::Load(der);
}

// One node's answer for one blinded point.
struct ItemAnswer {
  std::optional<Error> failure;
  Bytes point;
  Bytes proof;            // empty under a batch proof
  bool verified = false;  // its batch proof checked
};

// One bulk call's batch proof, over the items [from, to) that have an answer.
struct BatchProof {
  std::size_t from = 0;
  std::size_t to = 0;
  Bytes proof;
};

// The node-level fields of an answer (index, commitments); false when malformed.
bool ReadShareFields(NodeAnswer& a, const json& reply) {
  auto commitments = Base64Field(reply, "commitments");
  auto index = api::IntegerField(reply, "index");
  // An index beyond the node count is refused later (CheckBatches); beyond int, here.
  if (!commitments || !index || *index < INT_MIN || *index > INT_MAX) return false;
  a.index = static_cast<int>(*index);
  a.commitments = std::move(*commitments);
  return true;
}

ItemAnswer ReadItem(const json& item, bool batch) {
  ItemAnswer out;
  auto point = Base64Field(item, "result");
  auto proof = batch ? std::optional<Bytes>(Bytes{}) : Base64Field(item, "proof");
  if (point && proof) {
    out.point = std::move(*point);
    out.proof = std::move(*proof);
  } else {
    out.failure =
        MakeError(api::StringField(item, "error").value_or(std::string(errc::kBadReply)),
                  api::StringField(item, "message").value_or("malformed answer (result, proof)"));
  }
  return out;
}

// Asks one node for every blinded point: the single route for one point, else the bulk route
// in chunks of kChunk (each chunk charged per point at the node), with one batch proof per chunk
// (`batches`) unless `each` asks for a proof per point. `items` gets one answer per point from
// `start` on; a node-level failure is set on `a`.
constexpr std::size_t kChunk = 100;

void AskNode(NodeAnswer& a, const ThresholdRead& t, std::span<const Bytes> blinded,
             std::vector<ItemAnswer>& items, std::vector<BatchProof>& batches, bool each = false,
             std::size_t start = 0) {
  api::ApiCredentials creds = t.creds;
  creds.server = a.url;
  api::ApiClient client(creds);
  const std::string base = "/v1/groups/" + api::ApiClient::Segment(t.group) + "/threshold";
  const bool batch = blinded.size() > 1 && !each;
  for (std::size_t from = 0; from < blinded.size(); from += kChunk) {
    const std::size_t to = std::min(blinded.size(), from + kChunk);
    json body = {{"reason", t.reason}};
    if (blinded.size() == 1) {
      body["blinded"] = Base64Encode(blinded[0]);
    } else {
      json list = json::array();
      for (std::size_t i = from; i < to; ++i) list.push_back(Base64Encode(blinded[i]));
      body["points"] = std::move(list);
      body["proof"] = batch ? "batch" : "each";
    }
    auto reply = client.Call("POST", blinded.size() == 1 ? base : base + "/bulk", body);
    if (!reply.ok()) {
      Fail(a, reply.error().code, reply.error().message,
           api::ApiClient::IsTransient(reply.error(), client.last_status()));
      return;
    }
    const std::string before = ToHex(a.commitments);
    const int index_before = a.index;
    if (!ReadShareFields(a, *reply) ||
        (from > 0 && (before != ToHex(a.commitments) || index_before != a.index))) {
      Fail(a, std::string(errc::kBadReply), "malformed answer (index, commitments)");
      return;
    }
    if (blinded.size() == 1) {
      items[start] = ReadItem(*reply, false);
      continue;
    }
    const json* results = api::ArrayField(*reply, "results");
    if (results == nullptr || results->size() != to - from) {
      Fail(a, std::string(errc::kBadReply), "malformed bulk answer (results)");
      return;
    }
    for (std::size_t i = 0; i < results->size(); ++i)
      items[start + from + i] = ReadItem((*results)[i], batch);
    if (batch)
      batches.push_back({start + from, start + to, Base64Field(*reply, "proof").value_or(Bytes{})});
  }
}

// Checks each batch proof of node `a` against its public share: the items it covers are
// verified; for a chunk whose proof fails, the node is asked again with a proof per point, so
// that the posts it lied about are named one by one (CombinePost checks those proofs).
void CheckBatches(NodeAnswer& a, const ThresholdRead& t, const std::vector<Bytes>& blinded,
                  const std::vector<Bytes>& commitments, std::vector<ItemAnswer>& items,
                  const std::vector<BatchProof>& batches) {
  auto expected = a.index >= 1 && a.index <= th::kMaxNodes
                      ? th::ExpectedPublicShare(commitments, static_cast<std::uint8_t>(a.index))
                      : Result<Bytes>(MakeError("lied", "index out of range"));
  for (const BatchProof& b : batches) {
    std::vector<Bytes> asked;
    std::vector<Bytes> answered;
    for (std::size_t i = b.from; i < b.to; ++i) {
      if (items[i].failure) continue;
      asked.push_back(blinded[i]);
      answered.push_back(items[i].point);
    }
    if (asked.empty()) continue;
    if (expected.ok() && th::VerifyBatch(*expected, asked, answered, b.proof).ok()) {
      for (std::size_t i = b.from; i < b.to; ++i) items[i].verified = !items[i].failure;
      continue;
    }
    std::vector<BatchProof> none;
    AskNode(a, t, std::span<const Bytes>(blinded).subspan(b.from, b.to - b.from), items, none, true,
            b.from);
    if (a.failure) return;
  }
}

// The commitments most nodes report whose C_0 is the certificate's key; the others are out.
std::optional<std::vector<Bytes>> AgreedCommitments(std::vector<NodeAnswer>& nodes,
                                                    const Bytes& group_point, int& k) {
  std::map<std::string, int> votes;
  std::map<std::string, std::pair<std::vector<Bytes>, int>> parsed;
  for (auto& a : nodes) {
    if (a.failure) continue;
    const int count = static_cast<int>(a.commitments.size() / th::kPointLen);
    auto c = th::ParseCommitments(a.commitments, count);
    if (!c.ok() || (*c)[0] != group_point) {
      Fail(a, "lied", "its commitments are not for the group certificate's key");
      continue;
    }
    ++votes[ToHex(a.commitments)];
    parsed[ToHex(a.commitments)] = {std::move(*c), count};
  }
  if (votes.empty()) return std::nullopt;
  auto best = std::max_element(votes.begin(), votes.end(),
                               [](const auto& a, const auto& b) { return a.second < b.second; });
  for (auto& a : nodes) {
    if (!a.failure && ToHex(a.commitments) != best->first)
      Fail(a, "lied", "its commitments differ from the other nodes'");
  }
  k = parsed[best->first].second;
  return parsed[best->first].first;
}

Error NotMet(const std::vector<NodeAnswer>& nodes, int valid, int k, bool filter) {
  std::string why;
  std::optional<std::string> common;
  bool all_same = true;
  bool all_transient = true;
  for (const auto& a : nodes) {
    if (!a.failure) continue;
    why += "; " + a.url + ": " + a.failure->code + " (" + a.failure->message + ")";
    if (!common) common = a.failure->code;
    all_same = all_same && *common == a.failure->code;
    all_transient = all_transient && a.transient;
  }
  const std::string message = "threshold read failed: " + std::to_string(valid) +
                              " valid answer(s), " + std::to_string(k) + " needed" + why;
  if (filter && all_transient) return MakeError(std::string(errc::kTempFail), message);
  if (valid == 0 && all_same && common && *common != "lied") return MakeError(*common, message);
  return MakeError("threshold-not-met", message);
}

}  // namespace

namespace {

// The post's KARI for the group certificate, blinded.
Result<crypto::BlindRequest> BlindPost(const ThresholdPost& post,
                                       const crypto::Certificate& group_cert) {
  for (std::size_t index : post.candidates) {
    const auto& c = post.env->recipients[index];
    if (c.kind != crypto::RecipientKind::kKeyAgree) continue;
    for (std::size_t k = 0; k < c.recipient_keys.size(); ++k) {
      if (c.recipient_keys[k].rid.Matches(group_cert))
        return crypto::BlindRequest::Create(c, group_cert, k);
    }
  }
  return MakeError(std::string(errc::kNoRecipient),
                   "no key agreement RecipientInfo for the threshold group's certificate");
}

// One post's answers from every node: check each proof, combine k valid ones, unblind.
Result<SecretBytes> CombinePost(std::vector<NodeAnswer> nodes,
                                const std::optional<std::vector<Bytes>>& commitments, int k,
                                const crypto::BlindRequest& req, const ThresholdRead& t,
                                std::vector<std::string>& notes, const std::string& label) {
  BL_TRY_ASSIGN(Bytes blinded, th::NormalizePoint(req.blinded()));
  std::vector<th::Partial> valid;
  if (commitments) {
    std::vector<int> seen;
    for (auto& a : nodes) {
      if (a.failure) continue;
      if (a.index < 1 || a.index > th::kMaxNodes ||
          std::find(seen.begin(), seen.end(), a.index) != seen.end()) {
        Fail(a, "lied",
             "it claims share index " + std::to_string(a.index) +
                 ", out of range or already answered by another node");
        continue;
      }
      auto expected = th::ExpectedPublicShare(*commitments, static_cast<std::uint8_t>(a.index));
      Status proof = !expected.ok() ? Status(expected.error())
                     : a.verified   ? Status::Ok()
                                    : th::VerifyEvaluation(*expected, blinded, a.point, a.proof);
      if (!proof.ok()) {
        Fail(a, "lied", "its DLEQ proof does not verify (" + proof.error().message + ")");
        continue;
      }
      seen.push_back(a.index);
      valid.push_back(th::Partial{static_cast<std::uint8_t>(a.index), a.point});
    }
  }
  for (const auto& a : nodes) {
    if (a.failure)
      notes.push_back(label + "node " + a.url + " excluded: " + a.failure->code + ": " +
                      a.failure->message);
  }
  if (!commitments || static_cast<int>(valid.size()) < k || k < 2)
    return NotMet(nodes, static_cast<int>(valid.size()), std::max(k, 2), t.filter);
  valid.resize(static_cast<std::size_t>(k));
  BL_TRY_ASSIGN(Bytes combined, th::CombinePartials(valid));
  BL_TRY_ASSIGN(Bytes x, th::XCoordinate(combined));
  return req.Finish(x);
}

}  // namespace

Result<SecretBytes> ThresholdUnwrap(const ThresholdRead& t, const crypto::Envelope& env,
                                    const std::vector<std::size_t>& candidates,
                                    std::vector<std::string>& notes) {
  const std::vector<ThresholdPost> posts{ThresholdPost{&env, candidates}};
  BL_TRY_ASSIGN(auto results, ThresholdUnwrapMany(t, posts, notes));
  return std::move(results.front());
}

Result<std::vector<Result<SecretBytes>>> ThresholdUnwrapMany(const ThresholdRead& t,
                                                             std::span<const ThresholdPost> posts,
                                                             std::vector<std::string>& notes) {
  if (t.servers.empty()) return MakeError("usage", "a threshold read needs --server for each node");
  std::vector<NodeAnswer> nodes;
  for (const auto& url : t.servers) {
    NodeAnswer a;
    a.url = url;
    nodes.push_back(std::move(a));
  }
  BL_TRY_ASSIGN(crypto::Certificate group_cert, AgreedCertificate(nodes, t));
  BL_TRY_ASSIGN(Bytes group_point, th::PublicPointOf(group_cert));
  std::vector<Result<SecretBytes>> out;
  std::vector<std::optional<crypto::BlindRequest>> requests;
  std::vector<Bytes> blinded;
  for (const auto& post : posts) {
    auto req = BlindPost(post, group_cert);
    if (!req.ok()) {
      out.emplace_back(req.error());
      requests.emplace_back();
      continue;
    }
    blinded.push_back(req->blinded());
    out.emplace_back(MakeError("pending", "not asked"));
    requests.emplace_back(std::move(*req));
  }
  if (blinded.empty()) return out;
  std::vector<std::vector<ItemAnswer>> items(nodes.size(), std::vector<ItemAnswer>(blinded.size()));
  std::vector<std::vector<BatchProof>> batches(nodes.size());
  for (std::size_t n = 0; n < nodes.size(); ++n) {
    if (!nodes[n].failure) AskNode(nodes[n], t, blinded, items[n], batches[n]);
  }
  int k = 0;
  auto commitments = AgreedCommitments(nodes, group_point, k);
  for (std::size_t n = 0; n < nodes.size() && commitments; ++n) {
    if (!nodes[n].failure) CheckBatches(nodes[n], t, blinded, *commitments, items[n], batches[n]);
  }
  std::size_t item = 0;
  for (std::size_t p = 0; p < posts.size(); ++p) {
    if (!requests[p]) continue;
    std::vector<NodeAnswer> per_post = nodes;
    for (std::size_t n = 0; n < nodes.size(); ++n) {
      if (per_post[n].failure) continue;
      const ItemAnswer& answer = items[n][item];
      if (answer.failure) {
        per_post[n].failure = answer.failure;
        continue;
      }
      per_post[n].point = answer.point;
      per_post[n].proof = answer.proof;
      per_post[n].verified = answer.verified;
    }
    ++item;
    const std::string label = posts.size() == 1 ? "" : "post " + std::to_string(p + 1) + ": ";
    out[p] = CombinePost(std::move(per_post), commitments, k, *requests[p], t, notes, label);
  }
  return out;
}

}  // namespace blindlist::cli
