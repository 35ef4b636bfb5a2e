#include "service.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <cmath>
#include <ctime>
#include <map>
#include <nlohmann/json.hpp>
#include <unordered_map>
#include <variant>

#include "api/json_fields.h"
#include "api/member_auth.h"
#include "api/membership.h"
#include "api/request_outcome.h"
#include "api/route_table.h"
#include "blindlist/base64.h"
#include "blindlist/error_codes.h"
#include "crypto/blind.h"
#include "crypto/cms.h"
#include "crypto/signature.h"
#include "crypto/threshold.h"
#include "crypto/x509.h"
#include "obs/log.h"
#include "service_call.h"
#include "store/list_store.h"
#include "threshold_dkg.h"

namespace blindlist::groupd {

using json = nlohmann::json;
using net::HttpRequest;
using net::HttpResponse;

// The list address rules of `POST /v1/groups` (service_call.h): ASCII, and an address.
bool AsciiAddress(std::string_view a) {
  return std::none_of(a.begin(), a.end(), [](char c) { return (c & 0x80) != 0; });
}

bool ValidAddress(std::string_view a) {
  if (a.empty() || a.size() > 254) return false;
  auto at = a.find('@');
  if (at == std::string_view::npos || at == 0 || at + 1 == a.size() ||
      a.find('@', at + 1) != std::string_view::npos) {
    return false;
  }
  for (char c : a) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f || c == '/' || c == '"' || c == '<' ||
        c == '>') {
      return false;
    }
  }
  return true;
}

namespace {

constexpr std::size_t kMaxReasonChars = 200;
constexpr std::size_t kMaxBulk = 500;
// A per-member re-wrap (RewrapMembers): members in one request, and how many of them cost one
// rate-limit unit on top of the unit of the private-key operation.
constexpr std::size_t kMaxRewrapMembers = 1000;
constexpr double kMembersPerUnit = 100;
// Every failed unwrap gives exactly this, whatever went wrong inside.
constexpr std::string_view kUnwrapFailed = "cannot unwrap this RecipientInfo for this group";

std::int64_t Now() { return static_cast<std::int64_t>(std::time(nullptr)); }

// The first `max_chars` characters of `s`, cut before a UTF-8 lead byte so that a multi-byte
// character is kept whole or left out (the store replaces a broken sequence with U+FFFD).
std::string FirstChars(const std::string& s, std::size_t max_chars) {
  std::size_t chars = 0;
  for (std::size_t i = 0; i < s.size(); ++i) {
    const bool lead = (static_cast<unsigned char>(s[i]) & 0xC0U) != 0x80U;
    if (lead && ++chars > max_chars) return s.substr(0, i);
  }
  return s;
}

HttpResponse Fail(GroupService::Call& call, int status, std::string_view code,
                  std::string_view message) {
  call.result = std::string(code);
  return HttpResponse::Error(status, code, message);
}

// An internal error: a 500 whose detail goes to the log only.
HttpResponse Internal(GroupService::Call& call, std::string_view what, const Error& e) {
  net::Log(net::LogLevel::kError, "internal error",
           {{"operation", call.operation}, {"what", std::string(what)}, {"error", e.message}});
  return Fail(call, 500, errc::kInternal, what);
}

HttpResponse StoreDown(GroupService::Call& call, const Error& e) {
  net::Log(net::LogLevel::kError, "store error", {{"error", e.message}});
  return Fail(call, 503, errc::kStoreUnavailable, "the store is unavailable; retry later");
}

HttpResponse Ok(int status, const json& body) { return HttpResponse::Json(status, body.dump()); }

// A 429: counted, and audited in aggregate, so a flood of them writes nothing per request.
HttpResponse RateLimited(GroupService::Call& call, int retry, std::string_view bucket) {
  call.operation = "rate-limited";
  call.limited_by = std::string(bucket);
  call.tally = true;
  if (call.caller == "anonymous") call.caller = "ip:" + call.address;
  HttpResponse r = Fail(call, 429, errc::kRateLimited, "too many requests; retry later");
  r.headers.emplace_back("Retry-After", std::to_string(retry));
  return r;
}

using api::SplitPath;

using api::BearerToken;
using api::TokenHash;
std::string Fingerprint(ByteView der) { return api::CertificateFingerprint(der); }

std::string NewToken() {
  SecretBytes raw = crypto::RandomSecret(32);
  return "blt_" + ToHex(raw.view());
}

// Every field any endpoint reads, with its one JSON type: a field of another type is the
// caller's mistake, never "absent" (which would pick a default: an RSA group, a rotation).
constexpr std::array<api::JsonField, 21> kFieldTypes = {{
    {"recipient_info", api::JsonType::kString}, {"blinded", api::JsonType::kString},
    {"certificate", api::JsonType::kString},    {"rsa_padding", api::JsonType::kString},
    {"reason", api::JsonType::kString},         {"name", api::JsonType::kString},
    {"key_type", api::JsonType::kString},       {"what", api::JsonType::kString},
    {"passphrase", api::JsonType::kString},     {"address", api::JsonType::kString},
    {"csr", api::JsonType::kBoolean},           {"token", api::JsonType::kBoolean},
    {"version", api::JsonType::kInteger},       {"requests", api::JsonType::kArray},
    {"share", api::JsonType::kString},          {"commitments", api::JsonType::kString},
    {"key_version", api::JsonType::kInteger},   {"previous", api::JsonType::kString},
    {"members", api::JsonType::kArray},         {"content_cipher", api::JsonType::kString},
    {"points", api::JsonType::kArray},
}};
// The fields of one item of a bulk request (a request of its own is checked as a whole).
constexpr std::array<api::JsonField, 3> kItemFieldTypes = {{
    {"recipient_info", api::JsonType::kString},
    {"blinded", api::JsonType::kString},
    {"rsa_padding", api::JsonType::kString},
}};
constexpr std::string_view kBadPadding = "\"rsa_padding\" must be \"oaep\" or \"pkcs1\"";

bool ValidPadding(const json& j) {
  auto padding = j.find("rsa_padding");
  return padding == j.end() || *padding == "oaep" || *padding == "pkcs1";
}

// Parses the body as a JSON object; nullopt (and `error` set) if it is not one.
std::optional<json> ParseBody(const HttpRequest& req, GroupService::Call& call,
                              HttpResponse& error) {
  json body = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
  if (body.is_discarded() || !body.is_object()) {
    error = Fail(call, 400, errc::kMalformedJson, "the request body is not a JSON object");
    return std::nullopt;
  }
  if (auto wrong = api::WrongFieldType(body, kFieldTypes)) {
    error = Fail(call, 400, errc::kMalformedRequest, *wrong);
    return std::nullopt;
  }
  if (!ValidPadding(body)) {
    error = Fail(call, 400, errc::kMalformedRequest, kBadPadding);
    return std::nullopt;
  }
  return body;
}

std::optional<std::string> StringField(const json& j, const char* name) {
  auto it = j.find(name);
  if (it == j.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

// A base64 field that holds a secret (a share), decoded straight into SecretBytes; the JSON
// string is wiped whether or not it decodes.
bool SecretField(json& body, const char* name, SecretBytes& out) {
  auto it = body.find(name);
  if (it == body.end() || !it->is_string()) return false;
  auto& text = it->get_ref<std::string&>();
  const bool ok = Base64Decode(text, out) && !out.empty();
  crypto::threshold::WipeText(text);
  return ok;
}

// The request body of a route that carries a share, wiped once parsed. The server owns the
// request (a mutable object it lends as const) and reads nothing of it after the handler.
void WipeRequestBody(const HttpRequest& req) {
  crypto::threshold::WipeText(const_cast<std::string&>(req.body));  // NOLINT
}

json KeyStateJson(store::KeyState s) {
  switch (s) {
    case store::KeyState::kActive:
      return "active";
    case store::KeyState::kRetired:
      return "retired";
    case store::KeyState::kDestroyed:
      return "destroyed";
  }
  return "unknown";
}

}  // namespace

GroupService::GroupService(const Config& config, std::unique_ptr<store::Store> store,
                           GroupKeyRing* ring, std::optional<crypto::Certificate> ca_cert,
                           std::optional<crypto::PrivateKey> ca_key,
                           std::optional<crypto::Certificate> membership_ca)
    : config_(config),
      store_(std::move(store)),
      audit_(store_.get()),
      ring_(ring),
      ca_cert_(std::move(ca_cert)),
      ca_key_(std::move(ca_key)),
      membership_ca_(std::move(membership_ca)),
      limiter_(config.common.rate_per_second, config.common.rate_burst),
      address_limiter_(config.common.rate_per_second * config.common.address_rate_factor,
                       config.common.rate_burst * config.common.address_rate_factor),
      refusals_("groupd",
                std::chrono::milliseconds(
                    static_cast<std::int64_t>(config.common.refusal_audit_seconds * 1000)),
                [this](std::vector<store::AuditRecord> records) {
                  for (auto& r : records) {
                    audit_.AppendAsync(std::move(r), [](const Status& st) {
                      if (!st.ok()) {
                        net::Log(net::LogLevel::kError, "refusal audit write failed",
                                 {{"error", st.error().message}});
                      }
                    });
                  }
                  return Status::Ok();
                }) {}

GroupService::~GroupService() {
  refusals_.Stop();  // its last records go through the audit writer, which drains next
  audit_.Stop();
}

void GroupService::Handle(const HttpRequest& req, net::HttpResponder respond) {
  auto start = std::chrono::steady_clock::now();
  Call call;
  HttpResponse resp = api::AnswerOrInternalError(
      call, [&] { return Route(req, call); }, Fail);
  if (call.tally) {
    refusals_.Count(call.caller, call.group, call.operation, call.result);
    Finish(call, std::move(resp), req.peer_address, start, respond);
    return;
  }
  if (!call.audit) {
    Finish(call, std::move(resp), req.peer_address, start, respond);
    return;
  }
  // The answer waits for the request's record to be committed, but no thread waits with it.
  std::vector<store::AuditRecord> records;
  records.push_back(AuditRecordOf(call));
  records.back().members = std::move(call.audit_members);
  call.audit_members = {};
  audit_.AppendAsync(
      std::move(records), [this, call, resp = std::move(resp), peer = req.peer_address, start,
                           respond = std::move(respond)](const Status& st) mutable {
        if (!st.ok()) {
          net::Log(net::LogLevel::kError, "audit write failed", {{"error", st.error().message}});
          // An operation that cannot be audited must not succeed.
          if (resp.status < 300) {
            resp = Fail(call, 503, errc::kStoreUnavailable, "the audit log is unavailable");
          }
        }
        Finish(call, std::move(resp), peer, start, respond);
      });
}

void GroupService::Finish(const Call& call, HttpResponse resp, const std::string& peer,
                          std::chrono::steady_clock::time_point start,
                          const net::HttpResponder& respond) {
  api::RecordRequest("groupd", limiter_, metrics, peer,
                     {.status = resp.status,
                      .operation = call.operation,
                      .result = call.result,
                      .limited_by = call.limited_by},
                     start);
  respond(std::move(resp));
}

store::AuditRecord GroupService::AuditRecordOf(const Call& call) {
  store::AuditRecord rec;
  rec.time = Now();
  rec.daemon = "groupd";
  rec.caller = call.caller;
  rec.group = call.group;
  rec.key_version = call.key_version;
  rec.operation = call.operation;
  rec.result = call.result;
  rec.reason = FirstChars(call.reason, kMaxReasonChars);
  return rec;
}

Status GroupService::WriteAudit(const Call& call) {
  Status st = audit_.Append(AuditRecordOf(call));
  if (!st.ok())
    net::Log(net::LogLevel::kError, "audit write failed", {{"error", st.error().message}});
  return st;
}

void GroupService::AuditRefusal(const HttpRequest& req, const HttpResponse& resp) {
  std::string group;
  std::string operation = "refused";
  std::vector<std::string> parts = SplitPath(req.path);
  if (parts.size() >= 3 && parts[0] == "v1" && parts[1] == "groups") group = parts[2];
  if (parts.size() >= 4) {
    // "rewrap/certificate" -> "rewrap-certificate": the operation names of Route().
    operation = parts[3];
    for (std::size_t i = 4; i < parts.size(); ++i) operation += "-" + parts[i];
  }
  json body = json::parse(resp.body, nullptr, false);
  std::string result = body.is_object() && body.contains("error") && body["error"].is_string()
                           ? body["error"].get<std::string>()
                           : "http-" + std::to_string(resp.status);
  refusals_.Count("ip:" + api::AddressBucket(req.peer_address), group, operation, result);
  // Labels the server chose (the error code), never the caller's path: bounded series.
  metrics.Increment("groupd_requests_total", {{"operation", "refused"}, {"result", result}});
  metrics.Increment("groupd_refused_total", {{"result", result}});
}

std::optional<HttpResponse> GroupService::Charge(Call& call, double cost) {
  int retry = limiter_.Acquire(call.rate_key, cost);
  if (retry == 0) return std::nullopt;
  return RateLimited(call, retry, "caller");
}

namespace {

// The outcome of authenticating a caller: who, or the response refusing it.
struct Auth {
  std::optional<store::Member> member;
  std::optional<HttpResponse> refusal;
};

Auth AuthenticateMember(store::Store& st, const HttpRequest& req, GroupService::Call& call,
                        const store::Group& group) {
  api::MemberAuth a = api::AuthenticateMember(st, req, group);
  call.caller = a.caller;
  if (a.member && !a.member->cert_fingerprint.empty() && !req.peer_certificate_der.empty()) {
    // The exploder's certificate stored as a member's (registration refuses it; a clash from
    // before that, or written around it): the exploder must not authenticate as that member.
    auto ex = st.FindExploder(group.id);
    if (!ex.ok()) return {std::nullopt, StoreDown(call, ex.error())};
    if (*ex && (*ex)->cert_fingerprint == a.member->cert_fingerprint &&
        Fingerprint(req.peer_certificate_der) == a.member->cert_fingerprint) {
      return {std::nullopt,
              Fail(call, 409, errc::kCertificateInUse,
                   "this certificate is the group's exploder's as well as a member's: the "
                   "member registers a certificate of its own")};
    }
  }
  if (a.member) {
    call.rate_key = "member:" + std::to_string(group.id) + ":" + a.member->address;
    return {std::move(a.member), std::nullopt};
  }
  return {std::nullopt, Fail(call, a.status, a.code, a.message)};
}

std::optional<HttpResponse> AuthenticateExploder(store::Store& st, const HttpRequest& req,
                                                 GroupService::Call& call,
                                                 const store::Group& group) {
  if (req.peer_certificate_der.empty()) {
    return Fail(call, 401, "unauthenticated",
                "the exploder authenticates with its client certificate");
  }
  auto ex = st.FindExploder(group.id);
  if (!ex.ok()) return StoreDown(call, ex.error());
  std::string fp = Fingerprint(req.peer_certificate_der);
  if (!*ex || (*ex)->cert_fingerprint.size() != fp.size() ||
      !ConstantTimeEqual(AsBytes((*ex)->cert_fingerprint), AsBytes(fp))) {
    call.caller = "cert-sha256:" + fp.substr(0, 16);
    return Fail(call, 403, "not-exploder", "not the registered exploder of this group");
  }
  call.caller = "exploder";
  call.rate_key = "exploder:" + std::to_string(group.id);
  return std::nullopt;
}

}  // namespace

namespace {

// A threshold group's key exists only as shares on k of n nodes: any path that needs one party
// to hold the unwrapped key (F, E, G, S, B, the single-node blind, export) cannot be served.
constexpr std::string_view kThresholdRefusal =
    "this is a threshold group: no single group server holds its key, so this path is refused; "
    "read with the threshold method (docs/threshold.md)";

bool HasThresholdKey(const std::vector<store::GroupKey>& keys) {
  return std::any_of(keys.begin(), keys.end(),
                     [](const store::GroupKey& k) { return k.key_type == kThresholdKeyType; });
}

}  // namespace

// What one operation needs besides its JSON item.
struct OperationContext {
  std::optional<store::Member> member;
  std::optional<crypto::Certificate> target;  // path G: the presented membership certificate
  // Read from the store at the first item that needs them, once per request.
  std::optional<std::vector<store::GroupKey>> keys;
  std::optional<std::vector<store::GroupSecretVersion>> secrets;
};

// One unwrap/rewrap/blind item's answer: its status and JSON body (the
// error body {"error", "message"} for a refusal), kept as JSON so that a bulk
// request assembles its answer without printing and re-reading each item.
// NOLINTNEXTLINE(bugprone-exception-escape): its implicit move is nlohmann::json's, noexcept
struct ItemOutcome {
  int status = 200;
  json body;
};

namespace {

ItemOutcome ItemFail(GroupService::Call& call, int status, std::string_view code,
                     std::string_view message) {
  call.result = std::string(code);
  return {status, {{"error", code}, {"message", message}}};
}

// An internal error of one item: a 500 whose detail goes to the log only.
ItemOutcome ItemInternal(GroupService::Call& call, const store::Group& group, std::string_view what,
                         const Error& e) {
  net::Log(net::LogLevel::kError, "internal error",
           {{"operation", call.operation},
            {"group", group.name},
            {"what", std::string(what)},
            {"error", e.message}});
  return ItemFail(call, 500, errc::kInternal, what);
}

// A refusal made as an HTTP response (rare: the store is down).
ItemOutcome ItemOf(const HttpResponse& r) {
  return {r.status, json::parse(r.body, nullptr, false)};
}

}  // namespace

namespace {

// Whether the request carries a fresh signature by `cert`'s key over its group, its
// RecipientInfos and its time (api::PossessionMessage): a copied certificate alone is worth
// nothing. For bulk, the RecipientInfos of every item, in order.
bool ProvesPossession(const json& body, const store::Group& group,
                      const crypto::Certificate& cert) {
  auto proof = body.find("proof");
  if (proof == body.end() || !proof->is_object()) return false;
  auto time = proof->find("time");
  auto signature_b64 = StringField(*proof, "signature");
  if (time == proof->end() || !time->is_number_integer() || !signature_b64) return false;
  const std::int64_t t = time->get<std::int64_t>();
  const std::int64_t now = Now();
  if (t < now - api::kPossessionWindowSeconds || t > now + api::kPossessionWindowSeconds)
    return false;
  std::vector<std::string> recipient_infos;
  auto items = body.find("requests");
  if (items != body.end() && items->is_array()) {
    for (const auto& item : *items) {
      recipient_infos.push_back(item.is_object() ? StringField(item, "recipient_info").value_or("")
                                                 : "");
    }
  } else {
    recipient_infos.push_back(StringField(body, "recipient_info").value_or(""));
  }
  Bytes signature;
  if (!Base64Decode(*signature_b64, signature)) return false;
  return crypto::VerifyMessage(cert, api::PossessionMessage(group.name, t, recipient_infos),
                               signature);
}

// Checks a membership certificate for path G; on success fills ctx.target and call.caller.
std::optional<HttpResponse> CheckMembershipCertificate(store::Store& st,
                                                       const std::optional<crypto::Certificate>& ca,
                                                       const json& body, GroupService::Call& call,
                                                       const store::Group& group,
                                                       OperationContext& ctx) {
  if (!ca)
    return Fail(call, 403, "path-disabled",
                "this group server does not accept membership certificates");
  auto pem = StringField(body, "certificate");
  if (!pem) return Fail(call, 400, errc::kMalformedRequest, "missing \"certificate\" (PEM)");
  auto cert = crypto::Certificate::Load(AsBytes(*pem));
  if (!cert.ok())
    return Fail(call, 400, "malformed-certificate", "\"certificate\" is not a certificate");
  crypto::CertificateInfo info = crypto::DescribeCertificate(*cert);
  call.caller = "cert:" + info.serial_hex;
  Status issued = crypto::VerifyIssuedBy(*cert, *ca, Now());
  if (!issued.ok()) {
    if (issued.error().code == errc::kExpired || issued.error().code == errc::kNotYetValid) {
      return Fail(call, 403, "expired-certificate", "the membership certificate is not valid now");
    }
    return Fail(call, 403, "foreign-certificate",
                "the certificate was not issued by the membership CA");
  }
  bool bound = false;
  for (const auto& uri : info.uris) bound = bound || uri == api::GroupUri(group.name);
  if (!bound)
    return Fail(call, 403, "wrong-group", "the membership certificate is for another group");
  // Before any store read: without the key, a certificate learns nothing, not even its state.
  if (!ProvesPossession(body, group, *cert)) {
    return Fail(call, 403, "no-proof-of-possession",
                "\"proof\" must be a fresh signature by the membership certificate's key");
  }
  // Fails closed: only a serial certd recorded for this group, unrevoked, whose member is still
  // on the roster. A certificate signed but never recorded (a stolen CA signature, or certd
  // stopped between signing and recording) is worth nothing.
  auto issued_record = st.FindIssuedCertificate(info.serial_hex);
  if (!issued_record.ok()) return StoreDown(call, issued_record.error());
  if (!*issued_record || (*issued_record)->record.group_id != group.id) {
    return Fail(call, 403, "unknown-certificate",
                "no membership certificate with this serial was issued for this group");
  }
  if ((*issued_record)->record.revoked || !(*issued_record)->member_current)
    return Fail(call, 403, "revoked-certificate", "the membership certificate has been revoked");
  ctx.target = std::move(*cert);
  return std::nullopt;
}

}  // namespace

HttpResponse GroupService::Operation(const HttpRequest& req, Call& call, const store::Group& group,
                                     const std::string& op) {
  HttpResponse error;
  auto body = ParseBody(req, call, error);
  if (!body) return error;
  if (auto reason = StringField(*body, "reason")) call.reason = *reason;
  OperationContext ctx;
  if (op == "rewrap-exploder") {
    if (auto refusal = AuthenticateExploder(*store_, req, call, group)) return *refusal;
  } else if (op == "rewrap-certificate") {
    if (auto refusal =
            CheckMembershipCertificate(*store_, membership_ca_, *body, call, group, ctx)) {
      return *refusal;
    }
  } else {
    Auth auth = AuthenticateMember(*store_, req, call, group);
    if (auth.refusal) return *auth.refusal;
    ctx.member = std::move(auth.member);
  }
  // Path G stays charged to the address: its certificate names no one.
  if (auto limited = Charge(call, 1)) return *limited;
  ItemOutcome outcome = RunItem(call, group, op, *body, ctx);
  return HttpResponse::Json(outcome.status,
                            outcome.body.dump(-1, ' ', false, json::error_handler_t::replace));
}

namespace {

// Where a re-wrap goes: a certificate (rewrap, rewrap-certificate) or the current group secret
// (rewrap-secret, rewrap-exploder).
struct WrapTarget {
  std::optional<crypto::Certificate> certificate;
  std::optional<crypto::GroupSecret> secret;
  int secret_version = 0;
};

// The answer to an implicit unwrap's error. Each is a public property of the request (or our own
// failure), never of the padding: those never fail (crypto::UnwrapCekImplicit).
ItemOutcome UnwrapRefusal(GroupService::Call& call, const store::Group& group, const Error& e) {
  if (e.code == errc::kBadPoint) return ItemFail(call, 400, errc::kBadPoint, e.message);
  if (e.code == errc::kCrypto)
    return ItemInternal(call, group, "the unwrap failed on the server", e);
  return ItemFail(call, 400, errc::kUnwrapFailed, kUnwrapFailed);
}

}  // namespace

ItemOutcome GroupService::RunItem(Call& call, const store::Group& group, const std::string& op,
                                  const json& item, OperationContext& ctx) {
  if (auto wrong = api::WrongFieldType(item, kItemFieldTypes))
    return ItemFail(call, 400, errc::kMalformedRequest, *wrong);
  if (!ValidPadding(item)) return ItemFail(call, 400, errc::kMalformedRequest, kBadPadding);
  auto ri_b64 = StringField(item, "recipient_info");
  if (!ri_b64)
    return ItemFail(call, 400, errc::kMalformedRequest, "missing \"recipient_info\" (base64 DER)");
  Bytes ri_der;
  if (!Base64Decode(*ri_b64, ri_der))
    return ItemFail(call, 400, "malformed-base64", "\"recipient_info\" is not valid base64");
  auto ri = crypto::RecipientInfo::Parse(ri_der);
  if (!ri.ok())
    return ItemFail(call, 400, "malformed-der",
                    "\"recipient_info\" is not a RecipientInfo: " + ri.error().message);
  if (!ctx.keys) {  // once per request, however many items
    auto keys = store_->ListGroupKeys(group.id);
    if (!keys.ok()) return ItemOf(StoreDown(call, keys.error()));
    ctx.keys = std::move(*keys);
  }
  if (HasThresholdKey(*ctx.keys)) return ItemFail(call, 409, "threshold-group", kThresholdRefusal);
  // Which key version the RecipientInfo names is public (its identifier, not its padding).
  auto match = MatchRecipient(*ring_, *ctx.keys, *ri);
  if (!match) return ItemFail(call, 400, errc::kUnwrapFailed, kUnwrapFailed);
  call.key_version = match->key->version;
  auto key = ring_->PrivateKeyFor(group.name, *match->key);
  if (!key.ok()) {
    net::Log(net::LogLevel::kError, "cannot open group key",
             {{"group", group.name}, {"error", key.error().code}});
    return ItemFail(call, 400, errc::kUnwrapFailed, kUnwrapFailed);
  }
  json out = {{"key_version", match->key->version}};

  if (op == "blind") {
    // The raw private-key operation on the blinded value: no padding is looked at here, and
    // the only refusals are about the value itself (bad-point, out-of-range).
    auto blinded_b64 = StringField(item, "blinded");
    if (!blinded_b64)
      return ItemFail(call, 400, errc::kMalformedRequest, "missing \"blinded\" (base64)");
    Bytes blinded;
    if (!Base64Decode(*blinded_b64, blinded))
      return ItemFail(call, 400, "malformed-base64", "\"blinded\" is not valid base64");
    auto applied = crypto::ApplyBlind(*key, blinded);
    if (!applied.ok()) return ItemFail(call, 400, applied.error().code, applied.error().message);
    out["result"] = Base64Encode(*applied);
    return {200, std::move(out)};
  }

  // The re-wrap target first: whether it can be wrapped to depends on it alone, so no refusal
  // (no-certificate, wrap-failed, no-secret) can depend on what the RecipientInfo decrypts to.
  WrapTarget target;
  if (op == "rewrap") {
    if (!ctx.member || ctx.member->certificate_der.empty()) {
      return ItemFail(call, 400, "no-certificate", "no certificate is registered for this member");
    }
    auto cert = member_certificates_.Get(ctx.member->cert_fingerprint, ctx.member->certificate_der);
    if (!cert.ok())
      return ItemInternal(call, group, "the registered certificate cannot be read", cert.error());
    target.certificate = std::move(*cert);
  } else if (op == "rewrap-certificate") {
    target.certificate = *ctx.target;
  } else if (op != "unwrap") {  // rewrap-secret, rewrap-exploder: the current group secret
    if (!ctx.secrets) {
      auto secrets = store_->ListGroupSecrets(group.id);
      if (!secrets.ok()) return ItemOf(StoreDown(call, secrets.error()));
      ctx.secrets = std::move(*secrets);
    }
    if (ctx.secrets->empty())
      return ItemFail(call, 409, "no-secret", "this group has no group secret");
    const store::GroupSecretVersion& current = ctx.secrets->back();
    auto secret = ring_->SecretFor(group.name, current);
    if (!secret.ok())
      return ItemInternal(call, group, "the group secret cannot be opened", secret.error());
    target.secret = crypto::GroupSecret{current.key_id, std::move(*secret)};
    target.secret_version = current.version;
  }
  Status wrappable = target.certificate ? crypto::CheckWrapTarget(*target.certificate)
                     : target.secret    ? crypto::CheckWrapTarget(*target.secret)
                                        : Status::Ok();
  if (!wrappable.ok()) return ItemFail(call, 400, "wrap-failed", wrappable.error().message);

  // Implicit rejection: a RecipientInfo for this key version gives a key whether or not its
  // padding was valid (a synthetic one if not), and everything below runs the same for both.
  auto cek = crypto::UnwrapCekImplicit(*ri, *key, match->rek_index);
  if (!cek.ok()) return UnwrapRefusal(call, group, cek.error());
  if (op == "unwrap") {
    out["cek"] = Base64Encode(cek->view());
    return {200, std::move(out)};
  }
  crypto::RsaPadding padding = StringField(item, "rsa_padding").value_or("oaep") == "pkcs1"
                                   ? crypto::RsaPadding::kPkcs1v15
                                   : crypto::RsaPadding::kOaepSha256;
  Result<Bytes> wrapped = target.certificate ? crypto::WrapCek(*cek, *target.certificate, padding)
                                             : crypto::WrapCek(*cek, *target.secret);
  if (!wrapped.ok()) {
    // Checked above for every key length an unwrap gives: this is ours, not the caller's.
    return ItemInternal(call, group, "the re-wrap failed on the server", wrapped.error());
  }
  if (target.secret) out["secret_version"] = target.secret_version;
  out["recipient_info"] = Base64Encode(*wrapped);
  return {200, std::move(out)};
}

HttpResponse GroupService::Bulk(const HttpRequest& req, Call& call, const store::Group& group) {
  HttpResponse error;
  auto body = ParseBody(req, call, error);
  if (!body) return error;
  if (auto reason = StringField(*body, "reason")) call.reason = *reason;
  auto items = body->find("requests");
  if (items == body->end() || !items->is_array()) {
    return Fail(call, 400, errc::kMalformedRequest, "missing \"requests\" (array)");
  }
  // Each item is charged one unit (below), so a bulk call can be no larger than a full bucket.
  const auto max_items =
      std::min(kMaxBulk, static_cast<std::size_t>(std::max(1.0, limiter_.burst())));
  if (items->size() > max_items) {
    return Fail(call, 413, "too-many",
                "at most " + std::to_string(max_items) + " requests in one bulk call");
  }
  // One authentication for the whole batch: a member (or, for path G items, the certificate).
  OperationContext ctx;
  bool any_certificate = false;
  for (const auto& item : *items) {
    if (!item.is_object())
      return Fail(call, 400, errc::kMalformedRequest, "each request must be an object");
    any_certificate =
        any_certificate || StringField(item, "operation").value_or("") == "rewrap-certificate";
  }
  if (any_certificate) {
    if (auto refusal = CheckMembershipCertificate(*store_, membership_ca_, *body, call, group, ctx))
      return *refusal;
  } else {
    Auth auth = AuthenticateMember(*store_, req, call, group);
    if (auth.refusal) return *auth.refusal;
    ctx.member = std::move(auth.member);
  }
  // All or nothing, before any item runs: N private-key operations cost N units.
  if (auto limited = Charge(call, static_cast<double>(std::max<std::size_t>(1, items->size()))))
    return *limited;
  static const std::vector<std::string> kAllowed = {"unwrap", "rewrap", "rewrap-secret", "blind",
                                                    "rewrap-certificate"};
  json responses = json::array();
  int failures = 0;
  for (const auto& item : *items) {
    std::string op = StringField(item, "operation").value_or("");
    Call sub = call;
    ItemOutcome r;
    if (std::find(kAllowed.begin(), kAllowed.end(), op) == kAllowed.end() ||
        (any_certificate && op != "rewrap-certificate")) {
      r = ItemFail(sub, 400, "bad-operation",
                   "operation must be one of unwrap, rewrap, rewrap-secret, blind, "
                   "rewrap-certificate (alone)");
    } else {
      r = RunItem(sub, group, op, item, ctx);
    }
    r.body["status"] = r.status;
    if (r.status >= 300) ++failures;
    responses.push_back(std::move(r.body));
  }
  call.result = failures == 0 ? "ok" : "partial:" + std::to_string(failures);
  return Ok(200, {{"responses", responses}});
}

namespace {

// Parses the request's "recipient_info", finds the group key version it names and unwraps it
// (crypto::UnwrapCekImplicit): the CEK, or the response refusing the request.
std::variant<SecretBytes, HttpResponse> UnwrapGroupRecipient(store::Store& st, GroupKeyRing& ring,
                                                             GroupService::Call& call,
                                                             const store::Group& group,
                                                             const json& body) {
  auto ri_b64 = StringField(body, "recipient_info");
  if (!ri_b64)
    return Fail(call, 400, errc::kMalformedRequest, "missing \"recipient_info\" (base64 DER)");
  Bytes ri_der;
  if (!Base64Decode(*ri_b64, ri_der))
    return Fail(call, 400, "malformed-base64", "\"recipient_info\" is not valid base64");
  auto ri = crypto::RecipientInfo::Parse(ri_der);
  if (!ri.ok())
    return Fail(call, 400, "malformed-der",
                "\"recipient_info\" is not a RecipientInfo: " + ri.error().message);
  auto keys = st.ListGroupKeys(group.id);
  if (!keys.ok()) return StoreDown(call, keys.error());
  if (HasThresholdKey(*keys)) return Fail(call, 409, "threshold-group", kThresholdRefusal);
  auto match = MatchRecipient(ring, *keys, *ri);
  if (!match) return Fail(call, 400, errc::kUnwrapFailed, kUnwrapFailed);
  call.key_version = match->key->version;
  auto key = ring.PrivateKeyFor(group.name, *match->key);
  if (!key.ok()) {
    net::Log(net::LogLevel::kError, "cannot open group key",
             {{"group", group.name}, {"error", key.error().code}});
    return Fail(call, 400, errc::kUnwrapFailed, kUnwrapFailed);
  }
  auto cek = crypto::UnwrapCekImplicit(*ri, *key, match->rek_index);
  if (!cek.ok()) {
    ItemOutcome refusal = UnwrapRefusal(call, group, cek.error());
    return HttpResponse::Json(refusal.status, refusal.body.dump());
  }
  return std::move(*cek);
}

// One member's answer in a per-member re-wrap.
struct MemberTarget {
  std::string_view address;  // as the exploder named it (in the request's list of addresses)
  std::string status;        // "ok", "not-member", "no-certificate", "unusable-certificate"
  std::optional<crypto::WrapTarget> target;
};

// Appends `s` as a JSON string: what json::dump would write, without a json value per address.
void AppendJsonString(std::string& out, std::string_view s) {
  const bool plain = std::all_of(s.begin(), s.end(), [](char c) {
    return c != '"' && c != '\\' && static_cast<unsigned char>(c) >= 0x20 &&
           static_cast<unsigned char>(c) < 0x7f;
  });
  if (!plain) {
    out += json(std::string(s)).dump();
    return;
  }
  out += '"';
  out += s;
  out += '"';
}

// The addresses of a per-member re-wrap by status, in the order asked, as a JSON object
// ({"ok": [...], "not-member": [...], ...}; a status no address had is left out): the request's
// audit record names every member it wrapped to and every address it refused.
std::string AuditMembers(const std::vector<MemberTarget>& targets) {
  static constexpr std::array<std::string_view, 4> kStatuses = {
      "ok", errc::kNotMember, "no-certificate", "unusable-certificate"};
  std::string out = "{";
  for (std::string_view status : kStatuses) {
    bool first = true;
    for (const MemberTarget& t : targets) {
      if (t.status != status) continue;
      if (first) {
        if (out.size() > 1) out += ',';
        out += '"';
        out += status;
        out += "\":[";
        first = false;
      } else {
        out += ',';
      }
      AppendJsonString(out, t.address);
    }
    if (!first) out += ']';
  }
  return out + "}";
}

// Each named address as the roster has it now, with its certificate prepared for wrapping.
// The store gives only each member's certificate fingerprint; a certificate the cache holds
// under it is used as it is, and only the members whose certificate it lacks are read whole
// (their rows as they are then: a member removed meanwhile is not one, a certificate replaced
// meanwhile is the new one). Nothing about membership is kept across requests.
Result<std::vector<MemberTarget>> ResolveMembers(store::Store& st, MemberCertificateCache& cache,
                                                 std::int64_t group_id,
                                                 const std::vector<std::string>& asked,
                                                 const crypto::Certificate& exploder) {
  BL_TRY_ASSIGN(auto roster, st.FindMemberFingerprints(group_id, asked));
  std::unordered_map<std::string, const store::MemberFingerprint*> current;
  current.reserve(roster.size());
  for (const auto& m : roster) current.emplace(store::CanonicalMailbox(m.address), &m);
  std::vector<MemberTarget> targets;
  targets.reserve(asked.size());
  std::vector<std::size_t> misses;
  for (const std::string& address : asked) {
    MemberTarget t{.address = address, .status = "ok", .target = {}};
    auto it = current.find(store::CanonicalMailbox(address));
    if (it == current.end()) {
      t.status = std::string(errc::kNotMember);
    } else if (it->second->cert_fingerprint.empty()) {
      t.status = "no-certificate";
    } else if (auto hit = cache.FindWrapTarget(it->second->cert_fingerprint)) {
      t.target = std::move(*hit);
    } else {
      misses.push_back(targets.size());
    }
    targets.push_back(std::move(t));
  }
  if (!misses.empty()) {
    std::vector<std::string> missed;
    missed.reserve(misses.size());
    for (std::size_t i : misses) missed.emplace_back(targets[i].address);
    BL_TRY_ASSIGN(auto rows, st.FindMembers(group_id, missed));
    std::unordered_map<std::string, const store::Member*> whole;
    whole.reserve(rows.size());
    for (const auto& m : rows) whole.emplace(store::CanonicalMailbox(m.address), &m);
    for (std::size_t i : misses) {
      MemberTarget& t = targets[i];
      auto it = whole.find(store::CanonicalMailbox(t.address));
      if (it == whole.end()) {
        t.status = std::string(errc::kNotMember);
      } else if (it->second->certificate_der.empty()) {
        t.status = "no-certificate";
      } else {
        // Whether a certificate can be wrapped to is its own property (WrapTarget::Prepare
        // checks it), decided before the unwrap.
        auto target =
            cache.GetWrapTarget(it->second->cert_fingerprint, it->second->certificate_der);
        if (target.ok()) {
          t.target = std::move(*target);
        } else {
          t.status = "unusable-certificate";
        }
      }
    }
  }
  // The caller's own key: a member registered with it (a clash stored before registration
  // checked keys, or written around it) would give the exploder that member's copy to read.
  // Keys of two types are never the same key (EVP_PKEY_eq says so too, at a lock and a lookup
  // per member).
  for (MemberTarget& t : targets) {
    if (t.target && t.target->certificate().key_type() == exploder.key_type() &&
        t.target->certificate().SameKey(exploder)) {
      t.status = "unusable-certificate";
      t.target.reset();
    }
  }
  return targets;
}

}  // namespace

// POST /v1/groups/{group}/rewrap/members (docs/api.md): the exploder's per-member re-wrap. The
// group's RecipientInfo is unwrapped once (implicit rejection: every failure looks alike) and
// the key is wrapped to the registered certificate of each named address that is a member at
// this moment; the others are listed with why, and nothing else.
HttpResponse GroupService::RewrapMembers(const HttpRequest& req, Call& call,
                                         const store::Group& group) {
  HttpResponse error;
  auto body = ParseBody(req, call, error);
  if (!body) return error;
  if (auto reason = StringField(*body, "reason")) call.reason = *reason;
  if (auto refusal = AuthenticateExploder(*store_, req, call, group)) return *refusal;
  auto names = body->find("members");
  if (names == body->end())
    return Fail(call, 400, errc::kMalformedRequest, "missing \"members\" (array of addresses)");
  if (names->empty() || names->size() > kMaxRewrapMembers) {
    return Fail(call, 413, "too-many",
                "\"members\" must name 1 to " + std::to_string(kMaxRewrapMembers) + " addresses");
  }
  for (const auto& n : *names) {
    if (!n.is_string() || !ValidAddress(n.get_ref<const std::string&>()))
      return Fail(call, 400, "bad-address", "each of \"members\" must be an email address");
  }
  // One unit for the private-key operation, and one per kMembersPerUnit public-key wraps.
  const double cost = 1 + std::ceil(static_cast<double>(names->size()) / kMembersPerUnit);
  if (auto limited = Charge(call, cost)) return *limited;

  // Membership as it is now: the named addresses read from the roster, no cache.
  std::vector<std::string> asked;
  asked.reserve(names->size());
  for (const auto& n : *names) asked.push_back(n.get<std::string>());
  // Parsed once and kept with the members' (OpenSSL 3.0's decoder costs a few hundred µs).
  auto exploder =
      member_certificates_.Get(Fingerprint(req.peer_certificate_der), req.peer_certificate_der);
  if (!exploder.ok()) return Internal(call, "the exploder's certificate", exploder.error());
  auto resolved = ResolveMembers(*store_, member_certificates_, group.id, asked, *exploder);
  if (!resolved.ok()) return StoreDown(call, resolved.error());
  std::vector<MemberTarget>& targets = *resolved;

  // The unwrap, once, with the refusals of every other unwrap: each a public property of the
  // request, none of the padding (implicit rejection).
  auto cek = UnwrapGroupRecipient(*store_, *ring_, call, group, *body);
  if (std::holds_alternative<HttpResponse>(cek)) return std::get<HttpResponse>(cek);
  const crypto::RsaPadding padding = StringField(*body, "rsa_padding").value_or("oaep") == "pkcs1"
                                         ? crypto::RsaPadding::kPkcs1v15
                                         : crypto::RsaPadding::kOaepSha256;
  // One ephemeral key per curve for this request's P-256 and P-384 members (every member gets
  // the same post): crypto::CekWrapper, and docs/api.md for why that is sound.
  crypto::CekWrapper wrapper(std::get<SecretBytes>(cek), padding);
  // The answer is written directly, not built as a json tree: at 500 members a tree and its
  // dump cost as much as a tenth of the wraps. Addresses are escaped by json (they are the
  // caller's, checked by ValidAddress); statuses and base64 never need escaping.
  std::string out = "{\"key_version\":" + std::to_string(call.key_version) + ",\"members\":[";
  // Room for an RSA-3072 member's answer (base64 of its key and more): one allocation.
  out.reserve(out.size() + targets.size() * 1024);
  std::size_t wrapped_count = 0;
  for (MemberTarget& t : targets) {
    if (&t != targets.data()) out += ',';
    out += "{\"address\":";
    AppendJsonString(out, t.address);
    out += ",\"status\":\"";
    out += t.status;
    out += '"';
    if (t.target) {
      auto wrapped = wrapper.Wrap(*t.target);
      if (!wrapped.ok()) {
        // Checked above (CheckWrapTarget): this is ours, not the caller's.
        return Internal(call, "the re-wrap failed on the server", wrapped.error());
      }
      out += ",\"recipient_info\":\"";
      AppendBase64(out, *wrapped);
      out += '"';
      ++wrapped_count;
    }
    out += '}';
  }
  out += "]}";
  call.audit_members = AuditMembers(targets);
  call.result = "ok";
  call.reason = (call.reason.empty() ? "" : call.reason + "; ") +
                "members:" + std::to_string(targets.size()) +
                " wrapped:" + std::to_string(wrapped_count);
  return HttpResponse::Json(200, std::move(out));
}

HttpResponse GroupService::Secrets(const HttpRequest& req, Call& call, const store::Group& group) {
  Auth auth = AuthenticateMember(*store_, req, call, group);
  if (auth.refusal) return *auth.refusal;
  if (auto limited = Charge(call, 1)) return *limited;
  call.reason = req.Query("reason");
  auto keys = store_->ListGroupKeys(group.id);
  if (!keys.ok()) return StoreDown(call, keys.error());
  if (HasThresholdKey(*keys)) return Fail(call, 409, "threshold-group", kThresholdRefusal);
  auto secrets = store_->ListGroupSecrets(group.id);
  if (!secrets.ok()) return StoreDown(call, secrets.error());
  std::string wanted = req.Query("version");
  json out = json::array();
  for (const auto& row : *secrets) {
    if (!wanted.empty() && wanted != std::to_string(row.version)) continue;
    auto secret = ring_->SecretFor(group.name, row);
    if (!secret.ok()) return Internal(call, "the group secret cannot be opened", secret.error());
    out.push_back({{"version", row.version},
                   {"key_id", ToHex(row.key_id)},
                   {"secret", Base64Encode(secret->view())}});
    call.key_version = row.version;
  }
  if (!wanted.empty() && out.empty())
    return Fail(call, 404, "unknown-version", "no such secret version");
  return Ok(200, {{"secrets", out}});
}

HttpResponse GroupService::PublicCertificate(Call& call, const std::string& group_name) {
  call.operation = "certificate";
  call.group = group_name;
  auto group = store_->FindGroup(group_name);
  if (!group.ok()) return StoreDown(call, group.error());
  if (!*group) return Fail(call, 404, "unknown-group", "no such group");
  auto keys = store_->ListGroupKeys((*group)->id);
  if (!keys.ok()) return StoreDown(call, keys.error());
  for (auto it = keys->rbegin(); it != keys->rend(); ++it) {
    if (it->state == store::KeyState::kActive && !it->certificate_der.empty()) {
      call.key_version = it->version;
      HttpResponse r;
      r.content_type = "application/pem-certificate-chain";
      r.body = crypto::ToPem("CERTIFICATE", it->certificate_der);
      r.headers.emplace_back("X-Blindlist-Key-Version", std::to_string(it->version));
      // What the members can read (docs/api.md): senders follow it (blindlist post).
      r.headers.emplace_back("X-Blindlist-Content-Cipher", (*group)->content_cipher);
      return r;
    }
  }
  return Fail(call, 404, "no-certificate", "this group has no certificate yet");
}

// ---- administration ----

// An admin token, or an admin client certificate listed in the config; then the caller's charge.
std::optional<HttpResponse> GroupService::AuthenticateAdmin(const HttpRequest& req, Call& call) {
  std::string token = BearerToken(req);
  if (!token.empty()) {
    auto admin = store_->FindAdminToken(TokenHash(token));
    if (!admin.ok()) return StoreDown(call, admin.error());
    if (!*admin) return Fail(call, 401, "bad-token", "the bearer token is not an administrator's");
    call.caller = "admin:" + (*admin)->name;
    call.rate_key = call.caller;
  } else if (!req.peer_certificate_der.empty()) {
    std::string fp = Fingerprint(req.peer_certificate_der);
    bool known = false;
    for (const auto& allowed : config_.admin_cert_fingerprints) {
      known = known ||
              (allowed.size() == fp.size() && ConstantTimeEqual(AsBytes(allowed), AsBytes(fp)));
    }
    if (!known) return Fail(call, 403, "not-admin", "this certificate is not an administrator's");
    call.caller = "admin-cert:" + fp.substr(0, 16);
    call.rate_key = "admin-cert:" + fp;
  } else {
    return Fail(call, 401, "unauthenticated",
                "administration needs a bearer token or a client certificate");
  }
  return Charge(call, 1);
}

// The route table's handlers: one per endpoint, each with the group its route looked up.
struct GroupService::Handlers {
  static HttpResponse Healthz(GroupService& s, const HttpRequest& /*req*/, Call& call,
                              const Target& /*t*/) {
    auto version = s.store_->SchemaVersion();
    if (!version.ok()) return Fail(call, 503, errc::kStoreUnavailable, "the store is unavailable");
    return Ok(200, {{"status", "ok"}, {"store", s.store_->BackendName()}});
  }

  static HttpResponse Metrics(GroupService& s, const HttpRequest& req, Call& call,
                              const Target& /*t*/) {
    if (auto refused = s.metrics_access.Refusal(req)) {
      call.result = "unauthenticated";
      return *refused;
    }
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4";
    r.body = s.metrics.Render() + s.CertificateMetrics();
    return r;
  }

  static HttpResponse Certificate(GroupService& s, const HttpRequest& /*req*/, Call& call,
                                  const Target& t) {
    return s.PublicCertificate(call, t.params[0]);
  }

  static HttpResponse Operation(GroupService& s, const HttpRequest& req, Call& call,
                                const Target& t) {
    return s.Operation(req, call, *t.group, call.operation);
  }

  static HttpResponse Threshold(GroupService& s, const HttpRequest& req, Call& call,
                                const Target& t) {
    return s.ThresholdEvaluate(req, call, *t.group, false);
  }

  static HttpResponse ThresholdBulk(GroupService& s, const HttpRequest& req, Call& call,
                                    const Target& t) {
    return s.ThresholdEvaluate(req, call, *t.group, true);
  }

  static HttpResponse ThresholdRefresh(GroupService& s, const HttpRequest& req, Call& call,
                                       const Target& t) {
    return s.RefreshShare(req, call, *t.group);
  }

  static HttpResponse RepairKey(GroupService& s, const HttpRequest& req, Call& call,
                                const Target& t) {
    return s.RepairKey(req, call, *t.group);
  }

  static HttpResponse RepairSplit(GroupService& s, const HttpRequest& req, Call& call,
                                  const Target& t) {
    return s.RepairSplit(req, call, *t.group);
  }

  static HttpResponse RepairSum(GroupService& s, const HttpRequest& req, Call& call,
                                const Target& t) {
    return s.RepairSum(req, call, *t.group);
  }

  static HttpResponse Enroll(GroupService& s, const HttpRequest& req, Call& call,
                             const Target& /*t*/) {
    return s.EnrollStart(req, call);
  }

  static HttpResponse GroupDelete(GroupService& s, const HttpRequest& /*req*/, Call& call,
                                  const Target& t) {
    return s.DeleteGroup(call, *t.group);
  }

  static HttpResponse Bulk(GroupService& s, const HttpRequest& req, Call& call, const Target& t) {
    return s.Bulk(req, call, *t.group);
  }

  static HttpResponse RewrapMembers(GroupService& s, const HttpRequest& req, Call& call,
                                    const Target& t) {
    return s.RewrapMembers(req, call, *t.group);
  }

  static HttpResponse Secrets(GroupService& s, const HttpRequest& req, Call& call,
                              const Target& t) {
    return s.Secrets(req, call, *t.group);
  }

  // The addresses of the group's current members, for its registered exploder (listd's roster
  // sync): nothing else about them (no certificate, no token state).
  static HttpResponse Roster(GroupService& s, const HttpRequest& req, Call& call, const Target& t) {
    if (auto refusal = AuthenticateExploder(*s.store_, req, call, *t.group)) return *refusal;
    if (auto limited = s.Charge(call, 1)) return *limited;
    auto members = s.store_->ListMembers(t.group->id);
    if (!members.ok()) return StoreDown(call, members.error());
    json out = json::array();
    for (const auto& m : *members) out.push_back(m.address);
    call.reason = "members:" + std::to_string(members->size());
    return Ok(200, {{"group", t.group->name}, {"members", out}});
  }

  static HttpResponse CreateGroup(GroupService& s, const HttpRequest& req, Call& call,
                                  const Target& /*t*/) {
    return s.CreateGroup(req, call);
  }

  // Each group with its current key (type and version) and its member count.
  static HttpResponse GroupList(GroupService& s, const HttpRequest& /*req*/, Call& call,
                                const Target& /*t*/) {
    auto groups = s.store_->ListGroups();
    if (!groups.ok()) return StoreDown(call, groups.error());
    json out = json::array();
    for (const auto& g : *groups) {
      auto keys = s.store_->ListGroupKeys(g.id);
      if (!keys.ok()) return StoreDown(call, keys.error());
      auto members = s.store_->ListMembers(g.id);
      if (!members.ok()) return StoreDown(call, members.error());
      json jg = {{"name", g.name},
                 {"created_at", g.created_at},
                 {"key_type", nullptr},
                 {"key_version", nullptr},
                 {"members", members->size()}};
      for (const auto& k : *keys) {
        if (k.state != store::KeyState::kActive) continue;
        jg["key_type"] = k.key_type;
        jg["key_version"] = k.version;
      }
      out.push_back(std::move(jg));
    }
    return Ok(200, {{"groups", out}});
  }

  static HttpResponse GroupShow(GroupService& s, const HttpRequest& /*req*/, Call& call,
                                const Target& t) {
    const store::Group& group = *t.group;
    auto keys = s.store_->ListGroupKeys(group.id);
    auto secrets = s.store_->ListGroupSecrets(group.id);
    auto members = s.store_->ListMembers(group.id);
    auto exploder = s.store_->FindExploder(group.id);
    // Every key generation round this node started for the group's address (any spelling), kept
    // for good (no audit prune reaches them): one for a group made by `create --dkg` that no
    // relay restarted; each earlier one must be a creation the operators know of
    // (docs/threshold.md). Not windowed: a relay could finish and delete groups to move a window.
    auto started = s.store_->ListStartedDkgRounds(group.name);
    if (!keys.ok() || !secrets.ok() || !members.ok() || !exploder.ok() || !started.ok()) {
      return StoreDown(call, MakeError("store", "group show"));
    }
    json jkeys = json::array();
    for (const auto& k : *keys) {
      json jk = {{"version", k.version},
                 {"key_type", k.key_type},
                 {"state", KeyStateJson(k.state)},
                 {"has_certificate", !k.certificate_der.empty()},
                 {"created_at", k.created_at}};
      if (!k.certificate_der.empty()) {
        if (auto cert = crypto::Certificate::Load(k.certificate_der); cert.ok()) {
          auto info = crypto::DescribeCertificate(*cert);
          jk["serial"] = info.serial_hex;
          jk["not_after"] = info.not_after;
          jk["fingerprint"] = info.fingerprint_sha256;
        }
      }
      if (k.key_type == kThresholdKeyType && k.state != store::KeyState::kDestroyed) {
        // Public parts only: which share this node holds, and the commitments it checks.
        if (auto record = s.ring_->ShareFor(group.name, k); record.ok()) {
          auto public_share = crypto::threshold::PublicShareOf(record->share);
          jk["threshold"] = {
              {"index", record->share.index},
              {"k", record->share.k},
              {"n", record->share.n},
              {"commitments",
               Base64Encode(crypto::threshold::EncodeCommitments(record->commitments))},
              {"public_share", public_share.ok() ? Base64Encode(*public_share) : ""}};
        }
      }
      jkeys.push_back(jk);
    }
    json jsecrets = json::array();
    for (const auto& v : *secrets)
      jsecrets.push_back({{"version", v.version}, {"key_id", ToHex(v.key_id)}});
    // This group was stored from the last round finished since it was created.
    std::size_t current = started->size();
    for (std::size_t i = 0; i < started->size(); ++i) {
      if ((*started)[i].finished_at >= group.created_at) current = i;
    }
    json jrounds = json::array();
    for (std::size_t i = 0; i < started->size(); ++i) {
      const auto& r = (*started)[i];
      jrounds.push_back({{"round", r.round},
                         {"started_at", r.started_at},
                         {"finished", r.finished_at != 0},
                         {"current", i == current}});
    }
    return Ok(200, {{"name", group.name},
                    {"dkg_rounds", jrounds},
                    {"created_at", group.created_at},
                    {"keys", jkeys},
                    {"secrets", jsecrets},
                    {"members", members->size()},
                    {"content_cipher", group.content_cipher},
                    {"exploder", *exploder ? json((*exploder)->cert_fingerprint) : json(nullptr)}});
  }

  static HttpResponse Rotate(GroupService& s, const HttpRequest& req, Call& call, const Target& t) {
    const store::Group& group = *t.group;
    HttpResponse error;
    auto body = ParseBody(req, call, error);
    if (!body) return error;
    std::string kind = StringField(*body, "what").value_or("key");
    if (kind == "secret") {
      call.operation = "rotate-secret";
      return s.NewSecretVersion(call, group);
    }
    if (kind != "key")
      return Fail(call, 400, errc::kMalformedRequest, "\"what\" must be \"key\" or \"secret\"");
    call.operation = "rotate-key";
    auto keys = s.store_->ListGroupKeys(group.id);
    if (!keys.ok()) return StoreDown(call, keys.error());
    if (HasThresholdKey(*keys)) {
      return Fail(call, 409, "threshold-group",
                  "a threshold group gets new keys by a new dealing, not by rotation");
    }
    std::string key_type =
        StringField(*body, "key_type").value_or(keys->empty() ? "rsa3072" : keys->back().key_type);
    bool csr = body->value("csr", false);
    return s.NewKeyVersion(call, group, key_type, csr);  // retires the older versions with it
  }

  // The key version named in the path ("keys/{version}/..."): its row, or the refusal.
  static std::variant<const store::GroupKey*, HttpResponse> KeyVersion(
      const std::vector<store::GroupKey>& keys, Call& call, const std::string& text) {
    int version = 0;
    try {
      version = std::stoi(text);
    } catch (const std::exception&) {
      return Fail(call, 400, errc::kMalformedRequest, "bad key version");
    }
    call.key_version = version;
    const store::GroupKey* row = nullptr;
    for (const auto& k : keys) row = k.version == version ? &k : row;
    if (row == nullptr) return Fail(call, 404, "unknown-version", "no such key version");
    return row;
  }

  static HttpResponse KeyDestroy(GroupService& s, const HttpRequest& /*req*/, Call& call,
                                 const Target& t) {
    const store::Group& group = *t.group;
    auto keys = s.store_->ListGroupKeys(group.id);
    if (!keys.ok()) return StoreDown(call, keys.error());
    auto found = KeyVersion(*keys, call, t.params[0]);
    if (auto* refusal = std::get_if<HttpResponse>(&found)) return *refusal;
    const store::GroupKey* row = std::get<const store::GroupKey*>(found);
    int version = row->version;
    if (row->state == store::KeyState::kActive) {
      return Fail(call, 409, "key-active", "rotate before destroying the current key");
    }
    Status st = s.store_->DestroyGroupKey(group.id, version);
    if (!st.ok()) return StoreDown(call, st.error());
    s.ring_->Forget(group.id, version);  // out of this node's memory now; others prune on read
    return Ok(200, {{"destroyed", version}});
  }

  static HttpResponse KeyCertificate(GroupService& s, const HttpRequest& req, Call& call,
                                     const Target& t) {
    const store::Group& group = *t.group;
    auto keys = s.store_->ListGroupKeys(group.id);
    if (!keys.ok()) return StoreDown(call, keys.error());
    auto found = KeyVersion(*keys, call, t.params[0]);
    if (auto* refusal = std::get_if<HttpResponse>(&found)) return *refusal;
    const store::GroupKey* row = std::get<const store::GroupKey*>(found);
    int version = row->version;
    HttpResponse error;
    auto body = ParseBody(req, call, error);
    if (!body) return error;
    auto pem = StringField(*body, "certificate");
    if (!pem) return Fail(call, 400, errc::kMalformedRequest, "missing \"certificate\" (PEM)");
    auto cert = crypto::Certificate::Load(AsBytes(*pem));
    if (!cert.ok()) return Fail(call, 400, "malformed-certificate", cert.error().message);
    if (row->key_type == kThresholdKeyType) {
      return Fail(call, 409, "threshold-group",
                  "a threshold group's certificate comes with its dealing (docs/threshold.md)");
    }
    auto key = s.ring_->PrivateKeyFor(group.name, *row);
    if (!key.ok()) return Fail(call, 409, "key-destroyed", "this key version has no private key");
    if (!cert->Matches(*key))
      return Fail(call, 400, "wrong-certificate", "the certificate is not for this key version");
    Status st = s.store_->SetGroupKeyCertificate(group.id, version, cert->Der());
    if (!st.ok()) return StoreDown(call, st.error());
    return Ok(200, {{"key_version", version}});
  }

  static HttpResponse Export(GroupService& s, const HttpRequest& req, Call& call, const Target& t) {
    const store::Group& group = *t.group;
    HttpResponse error;
    auto body = ParseBody(req, call, error);
    if (!body) return error;
    if (auto reason = StringField(*body, "reason")) call.reason = *reason;
    auto pass = StringField(*body, "passphrase");
    if (!pass || pass->size() < 8)
      return Fail(call, 400, "weak-passphrase",
                  "\"passphrase\" of at least 8 characters is required");
    auto keys = s.store_->ListGroupKeys(group.id);
    if (!keys.ok()) return StoreDown(call, keys.error());
    int version = body->value("version", 0);
    const store::GroupKey* row = nullptr;
    for (const auto& k : *keys) {
      if ((version == 0 && k.state == store::KeyState::kActive) || k.version == version) row = &k;
    }
    if (row == nullptr) return Fail(call, 404, "unknown-version", "no such key version");
    call.key_version = row->version;
    if (HasThresholdKey(*keys)) return Fail(call, 409, "threshold-group", kThresholdRefusal);
    auto key = s.ring_->PrivateKeyFor(group.name, *row);
    auto cert = s.ring_->CertificateFor(*row);
    if (!key.ok() || !cert.ok())
      return Fail(call, 409, "not-exportable", "this key version has no key or certificate");
    auto p12 = crypto::ExportPkcs12(*key, *cert, group.name, *pass);
    if (!p12.ok()) return Fail(call, 500, errc::kInternal, "PKCS#12 export failed");
    return Ok(200, {{"key_version", row->version}, {"pkcs12", Base64Encode(*p12)}});
  }

  // One key is never both an exploder's and a member's, in any group: the exploder (listd)
  // would hold the key that member's per-member copies are wrapped to, and its client
  // certificate would authenticate as that member (path F). Either reads every post. Keys are
  // compared, not certificates: a second certificate for the exploder's key is the same key.
  static std::optional<HttpResponse> ExploderCertificateClash(GroupService& s, Call& call,
                                                              const crypto::Certificate& cert,
                                                              bool for_exploder) {
    const std::string fp = Fingerprint(cert.Der());
    auto groups = s.store_->ListGroups();
    if (!groups.ok()) return StoreDown(call, groups.error());
    for (const store::Group& g : *groups) {
      if (for_exploder) {
        auto members = s.store_->ListMembers(g.id);
        if (!members.ok()) return StoreDown(call, members.error());
        for (const store::Member& m : *members) {
          if (m.certificate_der.empty()) continue;
          auto theirs = s.member_certificates_.Get(m.cert_fingerprint, m.certificate_der);
          if (m.cert_fingerprint == fp || (theirs.ok() && theirs->SameKey(cert))) {
            return Fail(call, 409, errc::kCertificateInUse,
                        "a member's registered key (in " + g.name +
                            ") cannot be an exploder's: the exploder would read that member's "
                            "copies; give the exploder a key and certificate of its own");
          }
        }
        continue;
      }
      auto ex = s.store_->FindExploder(g.id);
      if (!ex.ok()) return StoreDown(call, ex.error());
      if (!*ex) continue;
      auto theirs = crypto::Certificate::Load((*ex)->certificate_der);
      if ((*ex)->cert_fingerprint == fp || (theirs.ok() && theirs->SameKey(cert))) {
        return Fail(call, 409, errc::kCertificateInUse,
                    "this is the exploder's key (of " + g.name +
                        "): the exploder would read this member's copies; a member registers a "
                        "key and certificate of its own");
      }
    }
    return std::nullopt;
  }

  static std::optional<HttpResponse> CertificateInUse(Call& call, const Status& st) {
    if (st.ok() || st.error().code != errc::kCertificateInUse) return std::nullopt;
    return Fail(call, 409, errc::kCertificateInUse,
                "another member of this group has registered this certificate");
  }

  // The roster entry `address` names: the domain compared without case (CanonicalMailbox), as
  // rewrap/members and listd compare it, so that the member an administrator removes or
  // changes is the one the exploder's lookups find. An empty address means none; `error` is
  // set if the store is down or several entries differ only in the domain's case (left from
  // before member-add refused that).
  static std::string RosterAddress(GroupService& s, Call& call, const Target& t,
                                   const std::string& address, std::optional<HttpResponse>& error) {
    auto rows = s.store_->FindMembers(t.group->id, {address});
    if (!rows.ok()) {
      error = StoreDown(call, rows.error());
      return "";
    }
    if (rows->empty()) return "";
    for (const store::Member& m : *rows) {
      if (m.address == address) return m.address;
    }
    if (rows->size() > 1) {
      error = Fail(call, 409, errc::kExists,
                   "several roster entries differ from this address only in the domain's case: "
                   "remove it (every spelling goes) and add it again");
      return "";
    }
    return (*rows)[0].address;
  }

  static HttpResponse MemberAdd(GroupService& s, const HttpRequest& req, Call& call,
                                const Target& t) {
    HttpResponse error;
    auto body = ParseBody(req, call, error);
    if (!body) return error;
    store::Member m;
    m.group_id = t.group->id;
    m.address = StringField(*body, "address").value_or("");
    if (!ValidAddress(m.address))
      return Fail(call, 400, "bad-address", "\"address\" must be an email address");
    if (auto pem = StringField(*body, "certificate")) {
      auto cert = crypto::Certificate::Load(AsBytes(*pem));
      if (!cert.ok()) return Fail(call, 400, "malformed-certificate", cert.error().message);
      m.certificate_der = cert->Der();
      m.cert_fingerprint = Fingerprint(m.certificate_der);
      if (auto clash = ExploderCertificateClash(s, call, *cert, false)) return *clash;
    }
    std::string member_token;
    if (body->value("token", false)) {
      member_token = NewToken();
      m.token_hash = TokenHash(member_token);
    }
    m.created_at = Now();
    // One roster entry per mailbox: a second spelling of the domain would stay a member (and
    // keep its copies) when the first is removed.
    auto same = s.store_->FindMembers(m.group_id, {m.address});
    if (!same.ok()) return StoreDown(call, same.error());
    if (!same->empty())
      return Fail(call, 409, errc::kExists, "already a member (as " + same->front().address + ")");
    Status st = s.store_->AddMember(m);
    if (!st.ok() && st.error().code == errc::kExists)
      return Fail(call, 409, errc::kExists, "already a member");
    if (auto refused = CertificateInUse(call, st)) return *refused;
    if (!st.ok()) return StoreDown(call, st.error());
    json out = {{"address", m.address}, {"certificate_fingerprint", m.cert_fingerprint}};
    if (!member_token.empty()) out["token"] = member_token;  // shown once; only its hash is kept
    return Ok(201, out);
  }

  static HttpResponse MemberList(GroupService& s, const HttpRequest& /*req*/, Call& call,
                                 const Target& t) {
    auto members = s.store_->ListMembers(t.group->id);
    if (!members.ok()) return StoreDown(call, members.error());
    json out = json::array();
    for (const auto& m : *members) {
      out.push_back({{"address", m.address},
                     {"certificate_fingerprint", m.cert_fingerprint},
                     {"has_token", !m.token_hash.empty()},
                     {"created_at", m.created_at}});
    }
    return Ok(200, {{"members", out}});
  }

  static HttpResponse MemberRemove(GroupService& s, const HttpRequest& /*req*/, Call& call,
                                   const Target& t) {
    const std::string& address = t.params[0];
    // Every entry the exploder's lookups would find under this address goes (the domain's case
    // aside): a removal must not leave a second spelling reading on.
    auto rows = s.store_->FindMembers(t.group->id, {address});
    if (!rows.ok()) return StoreDown(call, rows.error());
    if (rows->empty()) return Fail(call, 404, errc::kNotAMember, "no such member");
    for (const store::Member& m : *rows) {
      Status st = s.store_->RemoveMember(t.group->id, m.address);
      if (!st.ok() && st.error().code != errc::kNotFound) return StoreDown(call, st.error());
    }
    return Ok(200, {{"removed", address}});
  }

  // A renewed S/MIME certificate for a member: the roster entry, its token and its
  // membership certificates (path G) stay as they are.
  static HttpResponse MemberSetCertificate(GroupService& s, const HttpRequest& req, Call& call,
                                           const Target& t) {
    const std::string& address = t.params[0];
    HttpResponse error;
    auto body = ParseBody(req, call, error);
    if (!body) return error;
    auto pem = StringField(*body, "certificate");
    if (!pem) return Fail(call, 400, errc::kMalformedRequest, "missing \"certificate\" (PEM)");
    auto cert = crypto::Certificate::Load(AsBytes(*pem));
    if (!cert.ok()) return Fail(call, 400, "malformed-certificate", cert.error().message);
    const std::string fp = Fingerprint(cert->Der());
    if (auto clash = ExploderCertificateClash(s, call, *cert, false)) return *clash;
    std::optional<HttpResponse> lookup;
    const std::string entry = RosterAddress(s, call, t, address, lookup);
    if (lookup) return *lookup;
    if (entry.empty()) return Fail(call, 404, errc::kNotAMember, "no such member");
    Status st = s.store_->SetMemberCertificate(t.group->id, entry, cert->Der(), fp);
    if (!st.ok() && st.error().code == errc::kNotFound)
      return Fail(call, 404, errc::kNotAMember, "no such member");
    if (auto refused = CertificateInUse(call, st)) return *refused;
    if (!st.ok()) return StoreDown(call, st.error());
    call.reason = "cert-sha256:" + fp.substr(0, 16);
    return Ok(200, {{"address", address}, {"certificate_fingerprint", fp}});
  }

  // A new bearer token for a member; the old one fails from the next request on.
  static HttpResponse MemberNewToken(GroupService& s, const HttpRequest& /*req*/, Call& call,
                                     const Target& t) {
    const std::string& address = t.params[0];
    std::optional<HttpResponse> lookup;
    const std::string entry = RosterAddress(s, call, t, address, lookup);
    if (lookup) return *lookup;
    if (entry.empty()) return Fail(call, 404, errc::kNotAMember, "no such member");
    const std::string member_token = NewToken();
    Status st = s.store_->SetMemberTokenHash(t.group->id, entry, TokenHash(member_token));
    if (!st.ok() && st.error().code == errc::kNotFound)
      return Fail(call, 404, errc::kNotAMember, "no such member");
    if (!st.ok()) return StoreDown(call, st.error());
    return Ok(200, {{"address", address}, {"token", member_token}});  // shown once
  }

  // PUT /v1/groups/{g}/content-cipher {"content_cipher": "any" | "aes-cbc" | "aead"}.
  static HttpResponse ContentCipherSet(GroupService& s, const HttpRequest& req, Call& call,
                                       const Target& t) {
    HttpResponse error;
    auto body = ParseBody(req, call, error);
    if (!body) return error;
    auto cipher = StringField(*body, "content_cipher");
    if (!cipher || (*cipher != "any" && *cipher != "aes-cbc" && *cipher != "aead")) {
      return Fail(call, 400, errc::kMalformedRequest,
                  "\"content_cipher\" must be \"any\", \"aes-cbc\" or \"aead\"");
    }
    Status st = s.store_->SetGroupContentCipher(t.group->id, *cipher);
    if (!st.ok()) return StoreDown(call, st.error());
    call.reason = "content_cipher:" + *cipher;
    return Ok(200, {{"group", t.group->name}, {"content_cipher", *cipher}});
  }

  static HttpResponse ExploderSet(GroupService& s, const HttpRequest& req, Call& call,
                                  const Target& t) {
    HttpResponse error;
    auto body = ParseBody(req, call, error);
    if (!body) return error;
    auto pem = StringField(*body, "certificate");
    if (!pem) return Fail(call, 400, errc::kMalformedRequest, "missing \"certificate\" (PEM)");
    auto cert = crypto::Certificate::Load(AsBytes(*pem));
    if (!cert.ok()) return Fail(call, 400, "malformed-certificate", cert.error().message);
    store::Exploder ex{t.group->id, cert->Der(), Fingerprint(cert->Der())};
    if (auto clash = ExploderCertificateClash(s, call, *cert, true)) return *clash;
    Status st = s.store_->SetExploder(ex);
    if (!st.ok()) return StoreDown(call, st.error());
    return Ok(200, {{"exploder", ex.cert_fingerprint}});
  }

  static HttpResponse Audit(GroupService& s, const HttpRequest& req, Call& call, const Target& t) {
    return s.AuditLog(req, call, t.group->name);
  }

  // GET /v1/audit: every record of the store, of every group and of none (each audit prune, the
  // requests that named no group).
  static HttpResponse DeploymentAudit(GroupService& s, const HttpRequest& req, Call& call,
                                      const Target& /*t*/) {
    return s.AuditLog(req, call, "");
  }

  // POST /v1/audit/prune {"before": T}: deletes every group's records older than T (Unix
  // seconds). Its own record is written after the deletion, so it is never pruned by itself.
  static HttpResponse AuditPrune(GroupService& s, const HttpRequest& req, Call& call,
                                 const Target& /*t*/) {
    HttpResponse error;
    auto body = ParseBody(req, call, error);
    if (!body) return error;
    auto before = body->find("before");
    constexpr std::int64_t kMaxTime = std::int64_t{1} << 40;
    if (before == body->end() || !before->is_number_integer() || before->get<std::int64_t>() < 1 ||
        before->get<std::int64_t>() > kMaxTime) {
      return Fail(call, 400, errc::kMalformedRequest, "\"before\" must be a time in Unix seconds");
    }
    const std::int64_t t = before->get<std::int64_t>();
    if (t > Now()) return Fail(call, 400, errc::kMalformedRequest, "\"before\" is in the future");
    auto pruned = s.store_->PruneAudit(t);
    if (!pruned.ok()) return StoreDown(call, pruned.error());
    call.reason = "before:" + std::to_string(t) + " pruned:" + std::to_string(*pruned);
    return Ok(200, {{"pruned", *pruned}, {"before", t}});
  }
};

// GET /v1/groups/G/audit (or /v1/audit, group "": every record): newest first, paged backwards by
// record id or windowed by time.
HttpResponse GroupService::AuditLog(const HttpRequest& req, Call& call, const std::string& group) {
  call.operation = "audit";
  store::AuditQuery query{.group = group};
  // ?limit=N (1..10000, default 100), ?before=ID (older than that record: the next page),
  // ?since=T and ?until=T (Unix seconds: T <= time < T').
  const auto number = [&](const char* name, std::int64_t low, std::int64_t high,
                          std::int64_t& out) {
    std::string text = req.Query(name);
    if (text.empty()) return true;
    std::size_t used = 0;
    try {
      std::int64_t v = std::stoll(text, &used);
      if (used != text.size() || v < low || v > high) return false;
      out = v;
      return true;
    } catch (const std::exception&) {
      return false;
    }
  };
  std::int64_t limit = 100;
  constexpr std::int64_t kMaxTime = std::int64_t{1} << 40;
  if (!number("limit", 1, 10000, limit) || !number("before", 1, INT64_MAX, query.before_id) ||
      !number("since", 0, kMaxTime, query.since) || !number("until", 0, kMaxTime, query.until)) {
    return Fail(call, 400, errc::kMalformedRequest,
                "limit (1..10000), before (a record id), since and until (Unix seconds) "
                "must be whole numbers");
  }
  query.limit = static_cast<int>(limit);
  auto records = store_->ListAudit(query);
  if (!records.ok()) return StoreDown(call, records.error());
  json out = json::array();
  for (const auto& r : *records) {
    json rec = {{"id", r.id},
                {"time", r.time},
                {"daemon", r.daemon},
                {"caller", r.caller},
                {"group", r.group},
                {"key_version", r.key_version},
                {"operation", r.operation},
                {"result", r.result},
                {"reason", r.reason}};
    // A per-member re-wrap's addresses by status (groupd writes them as a JSON object).
    if (!r.members.empty()) {
      json members = json::parse(r.members, nullptr, false);
      rec["members"] = members.is_discarded() ? json(r.members) : std::move(members);
    }
    out.push_back(std::move(rec));
  }
  // A full page may have more behind it: ask again with ?before=next_before.
  json next =
      records->size() == static_cast<std::size_t>(limit) ? json(records->back().id) : json(nullptr);
  return Ok(200, {{"audit", out}, {"next_before", next}});
}

HttpResponse GroupService::CreateGroup(const HttpRequest& req, Call& call) {
  call.operation = "group-create";
  HttpResponse error;
  auto body = ParseBody(req, call, error);
  if (!body) return error;
  std::string name = StringField(*body, "name").value_or("");
  call.group = name;
  if (!ValidAddress(name))
    return Fail(call, 400, "bad-address", "\"name\" must be the list's email address");
  // Every group has a certificate naming its address as an rfc822Name, which is ASCII.
  if (!AsciiAddress(name)) {
    return Fail(call, 400, "bad-address",
                "a group's address must be ASCII: its certificate names it as an RFC 822 "
                "address, which cannot hold other characters");
  }
  std::string key_type = StringField(*body, "key_type").value_or("rsa3072");
  if (key_type == kThresholdKeyType) {
    WipeRequestBody(req);
    return CreateThresholdGroup(call, *body, name);
  }
  if (key_type != "rsa3072" && key_type != "p256")
    return Fail(call, 400, "bad-key-type", "\"key_type\" must be rsa3072, p256 or p256-threshold");
  bool csr = body->value("csr", false);
  if (!csr && (!ca_cert_ || !ca_key_)) {
    return Fail(call, 409, "no-ca",
                "no deployment CA is configured: create the group with \"csr\": true");
  }
  // Before the key generation, which costs: the transaction below still settles a race.
  auto found = store_->FindGroup(name);
  if (!found.ok()) return StoreDown(call, found.error());
  if (*found) return Fail(call, 409, errc::kExists, "the group already exists");
  // The group, its key version 1 and its secret version 1 are stored in one transaction, so a
  // failure leaves no group without keys behind.
  store::GroupKey key_row;
  json out;
  if (auto refusal = PrepareKeyVersion(call, name, key_type, csr, 1, key_row, out)) return *refusal;
  store::GroupSecretVersion secret_row;
  if (auto refusal = PrepareSecretVersion(call, name, secret_row)) return *refusal;
  auto group = store_->CreateGroupWithKeys(name, key_row, secret_row);
  // The store's word names the group as stored (it may differ from `name` in case only).
  if (!group.ok() && group.error().code == errc::kExists)
    return Fail(call, 409, errc::kExists, group.error().message);
  if (!group.ok()) return StoreDown(call, group.error());
  call.key_version = 1;
  out["key_version"] = 1;
  out["name"] = name;
  out["secret_version"] = 1;
  return Ok(201, out);
}

std::optional<HttpResponse> GroupService::PrepareKeyVersion(Call& call,
                                                            const std::string& group_name,
                                                            const std::string& key_type, bool csr,
                                                            int version, store::GroupKey& row,
                                                            json& out) {
  if (key_type != "rsa3072" && key_type != "p256")
    return Fail(call, 400, "bad-key-type", "\"key_type\" must be rsa3072 or p256");
  if (!csr && (!ca_cert_ || !ca_key_))
    return Fail(call, 409, "no-ca", "no deployment CA is configured");
  auto key = crypto::PrivateKey::Generate(
      key_type == "p256" ? crypto::KeyType::kEcP256 : crypto::KeyType::kRsa, 3072);
  if (!key.ok()) return Internal(call, "key generation failed", key.error());
  crypto::CertificateProfile profile;
  profile.common_name = group_name;
  profile.email = group_name;
  profile.validity_seconds = config_.group_cert_validity_days * 24 * 3600;
  row.key_type = key_type;
  row.state = store::KeyState::kActive;
  row.created_at = Now();
  if (csr) {
    auto req_der = crypto::MakeCsr(*key, profile);
    if (!req_der.ok()) return Internal(call, "CSR creation failed", req_der.error());
    row.csr_der = *req_der;
    out["csr"] = crypto::ToPem("CERTIFICATE REQUEST", *req_der);
  } else {
    auto cert = crypto::IssueCertificate(key->PublicKeyDer(), profile, *ca_cert_, *ca_key_);
    if (!cert.ok()) return Internal(call, "certificate issuance failed", cert.error());
    row.certificate_der = cert->Der();
    out["certificate"] = crypto::ToPem("CERTIFICATE", row.certificate_der);
  }
  // Sealed under the context of the version it will have (the store checks it gets it).
  auto sealed = ring_->SealKey(group_name, version, *key);
  if (!sealed.ok()) return Internal(call, "sealing failed", sealed.error());
  row.sealed_private_key = *sealed;
  return std::nullopt;
}

HttpResponse GroupService::NewKeyVersion(Call& call, const store::Group& group,
                                         const std::string& key_type, bool csr) {
  auto existing = store_->ListGroupKeys(group.id);
  if (!existing.ok()) return StoreDown(call, existing.error());
  int expected = existing->empty() ? 1 : existing->back().version + 1;
  store::GroupKey row;
  json out;
  if (auto refusal = PrepareKeyVersion(call, group.name, key_type, csr, expected, row, out))
    return *refusal;
  row.group_id = group.id;
  // One transaction: the new version, and the older active ones retired (they still unwrap old
  // posts; only the newest is handed to senders). If another node rotated at the same moment,
  // the blob is sealed for a version it cannot have: nothing is written, and the caller retries.
  auto version = store_->RotateGroupKey(row, expected);
  if (!version.ok() && version.error().code == errc::kConflict)
    return Fail(call, 409, errc::kConflict, "a concurrent rotation happened; retry");
  if (!version.ok()) return StoreDown(call, version.error());
  call.key_version = *version;
  out["key_version"] = *version;
  return Ok(201, out);
}

std::optional<HttpResponse> GroupService::PrepareSecretVersion(Call& call,
                                                               const std::string& group_name,
                                                               store::GroupSecretVersion& row) {
  // The key identifier is random, and it (not the version number, which the
  // store assigns) binds the sealed secret to its row, so concurrent rotations
  // on two nodes cannot leave a secret sealed under the wrong context.
  SecretBytes secret = crypto::RandomSecret(32);
  SecretBytes id_bytes = crypto::RandomSecret(12);
  row.key_id = ToBytes("blindlist:" + ToHex(id_bytes.view()));
  auto sealed = ring_->SealSecret(group_name, row.key_id, secret);
  if (!sealed.ok()) return Internal(call, "sealing failed", sealed.error());
  row.sealed_secret = *sealed;
  row.created_at = Now();
  return std::nullopt;
}

HttpResponse GroupService::NewSecretVersion(Call& call, const store::Group& group) {
  store::GroupSecretVersion row;
  if (auto refusal = PrepareSecretVersion(call, group.name, row)) return *refusal;
  row.group_id = group.id;
  auto version = store_->AddGroupSecret(row);
  if (!version.ok()) return StoreDown(call, version.error());
  return Ok(201, {{"secret_version", *version}});
}

// ---- threshold groups (docs/threshold.md) ----

// The share a threshold creation stores, with the commitments: the dealer's "share", or for a
// replacement node the one its "enrollment" (a repair round) gives.
std::optional<HttpResponse> GroupService::ThresholdShareOf(Call& call, json& body,
                                                           const std::string& name,
                                                           crypto::threshold::Share& share,
                                                           std::vector<Bytes>& commitments) {
  namespace th = crypto::threshold;
  Bytes commitment_bytes;
  if (!Base64Decode(StringField(body, "commitments").value_or(""), commitment_bytes) ||
      commitment_bytes.empty()) {
    return Fail(call, 400, errc::kMalformedRequest, "missing \"commitments\" (base64)");
  }
  const auto enrollment = body.find("enrollment");
  if (enrollment != body.end()) {
    const bool counts = enrollment->is_object() && enrollment->contains("threshold") &&
                        (*enrollment)["threshold"].is_number_integer() &&
                        enrollment->contains("nodes") && (*enrollment)["nodes"].is_number_integer();
    if (!counts) {
      return Fail(call, 400, errc::kMalformedRequest,
                  "\"enrollment\" must be an object with \"threshold\" and \"nodes\"");
    }
    const int k = (*enrollment)["threshold"].get<int>();
    const int n = (*enrollment)["nodes"].get<int>();
    if (k < 2 || k > n || n > th::kMaxNodes)
      return Fail(call, 400, errc::kMalformedRequest, "2 <= threshold <= nodes <= 16");
    if (!body.contains("certificate")) {
      return Fail(call, 400, errc::kMalformedRequest,
                  "a replacement node keeps the group certificate: pass \"certificate\"");
    }
    auto parsed = th::ParseCommitments(commitment_bytes, k);
    if (!parsed.ok()) return Fail(call, 400, "bad-commitments", parsed.error().message);
    commitments = std::move(*parsed);
    if (auto refusal = EnrolledShare(call, *enrollment, name, k, n, commitments, share))
      return refusal;
    if (!th::VerifyShare(share, commitments).ok()) {
      return Fail(call, 400, "bad-share",
                  "the repaired share does not match the commitments: a piece was wrong");
    }
    return std::nullopt;
  }
  SecretBytes share_secret;
  if (!SecretField(body, "share", share_secret))
    return Fail(call, 400, errc::kMalformedRequest, "missing \"share\" (base64)");
  auto parsed_share = th::ParseShare(share_secret.view());
  if (!parsed_share.ok()) return Fail(call, 400, "bad-share", parsed_share.error().message);
  share = std::move(*parsed_share);
  auto parsed = th::ParseCommitments(commitment_bytes, share.k);
  if (!parsed.ok()) return Fail(call, 400, "bad-commitments", parsed.error().message);
  commitments = std::move(*parsed);
  // Feldman: the share must lie on the committed polynomial, or this node would answer with a
  // share no proof can match.
  if (!th::VerifyShare(share, commitments).ok())
    return Fail(call, 400, "bad-share", "the share does not match the commitments");
  return std::nullopt;
}

HttpResponse GroupService::CreateThresholdGroup(Call& call, json& body, const std::string& name) {
  namespace th = crypto::threshold;
  th::Share share_value;
  std::vector<Bytes> commitment_list;
  if (auto refusal = ThresholdShareOf(call, body, name, share_value, commitment_list))
    return *refusal;
  return StoreThresholdGroup(call, name, share_value, commitment_list,
                             StringField(body, "certificate"));
}

HttpResponse GroupService::StoreThresholdGroup(Call& call, const std::string& name,
                                               const crypto::threshold::Share& share_ref,
                                               const std::vector<Bytes>& commitment_list,
                                               const std::optional<std::string>& certificate_pem) {
  namespace th = crypto::threshold;
  const th::Share* share = &share_ref;
  const std::vector<Bytes>* commitments = &commitment_list;
  auto found = store_->FindGroup(name);
  if (!found.ok()) return StoreDown(call, found.error());
  if (*found) return Fail(call, 409, errc::kExists, "the group already exists");
  // The group certificate: the one given (made by the first node), or issued here for C_0.
  store::GroupKey key_row;
  key_row.key_type = std::string(kThresholdKeyType);
  key_row.state = store::KeyState::kActive;
  key_row.created_at = Now();
  if (certificate_pem) {
    auto cert = crypto::Certificate::Load(AsBytes(*certificate_pem));
    if (!cert.ok()) return Fail(call, 400, "malformed-certificate", cert.error().message);
    auto point = th::PublicPointOf(*cert);
    if (!point.ok() || *point != (*commitments)[0]) {
      return Fail(call, 400, "wrong-certificate",
                  "the certificate's key is not the committed group key");
    }
    // Made by the first node for this group, under the deployment CA this node has (the nodes
    // share it): not any certificate a relay made for the group key.
    const crypto::CertificateInfo info = crypto::DescribeCertificate(*cert);
    bool names_group = false;
    for (const std::string& email : info.emails) {
      names_group =
          names_group ||
          std::equal(email.begin(), email.end(), name.begin(), name.end(), [](char a, char b) {
            return std::tolower(static_cast<unsigned char>(a)) ==
                   std::tolower(static_cast<unsigned char>(b));
          });
    }
    if (!names_group) {
      return Fail(call, 400, "wrong-certificate",
                  "the certificate does not name the group's address");
    }
    if (ca_cert_) {
      if (Status issued = crypto::VerifyIssuedBy(*cert, *ca_cert_, Now()); !issued.ok()) {
        return Fail(call, 400, "wrong-certificate",
                    "the certificate is not issued by this node's deployment CA: " +
                        issued.error().message);
      }
    }
    key_row.certificate_der = cert->Der();
  } else {
    if (!ca_cert_ || !ca_key_) {
      return Fail(call, 409, "no-ca",
                  "no deployment CA is configured: pass the group \"certificate\"");
    }
    auto spki = th::SpkiOfPoint((*commitments)[0]);
    if (!spki.ok()) return Internal(call, "public key encoding failed", spki.error());
    crypto::CertificateProfile profile;
    profile.common_name = name;
    profile.email = name;
    profile.validity_seconds = config_.group_cert_validity_days * 24 * 3600;
    auto cert = crypto::IssueCertificate(*spki, profile, *ca_cert_, *ca_key_);
    if (!cert.ok()) return Internal(call, "certificate issuance failed", cert.error());
    key_row.certificate_der = cert->Der();
  }
  auto sealed = ring_->SealShare(name, 1, *share, *commitments);
  if (!sealed.ok()) return Internal(call, "sealing failed", sealed.error());
  key_row.sealed_private_key = *sealed;
  // The group secret exists as for every group, but path S is refused for this one.
  store::GroupSecretVersion secret_row;
  if (auto refusal = PrepareSecretVersion(call, name, secret_row)) return *refusal;
  auto group = store_->CreateGroupWithKeys(name, key_row, secret_row);
  // The store's word names the group as stored (it may differ from `name` in case only).
  if (!group.ok() && group.error().code == errc::kExists)
    return Fail(call, 409, errc::kExists, group.error().message);
  if (!group.ok()) return StoreDown(call, group.error());
  call.key_version = 1;
  auto public_share = th::PublicShareOf(*share);
  if (!public_share.ok()) return Internal(call, "public share failed", public_share.error());
  return Ok(201, {{"name", name},
                  {"key_version", 1},
                  {"key_type", kThresholdKeyType},
                  {"index", share->index},
                  {"threshold", share->k},
                  {"nodes", share->n},
                  {"public_share", Base64Encode(*public_share)},
                  {"commitments", Base64Encode(th::EncodeCommitments(*commitments))},
                  {"certificate", crypto::ToPem("CERTIFICATE", key_row.certificate_der)}});
}

namespace {

// A threshold answer's fields about this node's share, the same in the single and bulk answers.
json ThresholdShareFields(const ThresholdShareRecord& record, int version) {
  return {{"key_version", version},
          {"index", record.share.index},
          {"threshold", record.share.k},
          {"nodes", record.share.n},
          {"commitments", Base64Encode(crypto::threshold::EncodeCommitments(record.commitments))}};
}

}  // namespace

// The threshold key version a read asks for (`key_version`, 0 or absent: the active one).
const store::GroupKey* GroupService::ThresholdRow(const std::vector<store::GroupKey>& keys,
                                                  const json& body, Call& call,
                                                  HttpResponse& refusal) {
  const auto wanted_field = body.find("key_version");
  const int wanted = wanted_field != body.end() && wanted_field->is_number_integer()
                         ? wanted_field->get<int>()
                         : 0;
  const store::GroupKey* row = nullptr;
  for (const auto& k : keys) {
    if (k.key_type != kThresholdKeyType || k.state == store::KeyState::kDestroyed) continue;
    if ((wanted == 0 && k.state == store::KeyState::kActive) || k.version == wanted) row = &k;
  }
  if (row == nullptr) {
    refusal = HasThresholdKey(keys)
                  ? Fail(call, 404, "unknown-version", "no such threshold key version")
                  : Fail(call, 409, "not-threshold-group", "this group is not a threshold group");
    return nullptr;
  }
  call.key_version = row->version;
  return row;
}

HttpResponse GroupService::ThresholdEvaluate(const HttpRequest& req, Call& call,
                                             const store::Group& group, bool bulk) {
  HttpResponse error;
  auto body = ParseBody(req, call, error);
  if (!body) return error;
  if (auto reason = StringField(*body, "reason")) call.reason = *reason;
  // Bulk: {"points": [base64, ...]}, at most as many items as one full bucket (like /bulk).
  const auto field = body->find(bulk ? "points" : "blinded");
  const std::size_t max_items =
      std::min(kMaxBulk, static_cast<std::size_t>(std::max(1.0, limiter_.burst())));
  if (bulk && (field == body->end() || !field->is_array() || field->empty()))
    return Fail(call, 400, errc::kMalformedRequest, "missing \"points\" (array of base64)");
  if (bulk && field->size() > max_items) {
    return Fail(call, 413, "too-many",
                "at most " + std::to_string(max_items) + " points in one bulk call");
  }
  // Bulk proofs: one per point ("each", the default) or one for the whole call ("batch").
  const auto proof_mode = body->find("proof");
  if (proof_mode != body->end() &&
      (!bulk || !proof_mode->is_string() || (*proof_mode != "each" && *proof_mode != "batch"))) {
    return Fail(call, 400, errc::kMalformedRequest,
                "\"proof\" (bulk only) must be \"each\" or \"batch\"");
  }
  const bool batch = proof_mode != body->end() && *proof_mode == "batch";
  // Every node checks the member itself: no node trusts another's decision.
  Auth auth = AuthenticateMember(*store_, req, call, group);
  if (auth.refusal) return *auth.refusal;
  // All or nothing, before any item runs: N evaluations cost N units.
  if (auto limited = Charge(call, bulk ? static_cast<double>(field->size()) : 1.0)) return *limited;
  auto keys = store_->ListGroupKeys(group.id);
  if (!keys.ok()) return StoreDown(call, keys.error());
  const store::GroupKey* row = ThresholdRow(*keys, *body, call, error);
  if (row == nullptr) return error;
  auto record = ring_->ShareFor(group.name, *row);
  if (!record.ok()) return Internal(call, "the share cannot be opened", record.error());
  // B is checked on the curve and not infinity; the answer is d_i·B, which with B = r·E for a
  // secret r says nothing about d_i·E.
  auto evaluate = [&](const json& item, json& out) -> int {
    Bytes blinded;
    if (!item.is_string() || !Base64Decode(item.get<std::string>(), blinded)) {
      out = {{"error", errc::kMalformedRequest}, {"message", "a blinded point is base64 SEC1"}};
      return 400;
    }
    auto evaluation = crypto::threshold::Evaluate(record->share, record->public_share, blinded);
    if (!evaluation.ok()) {
      const bool bad_point = evaluation.error().code == errc::kBadPoint;
      out = {{"error", bad_point ? std::string(errc::kBadPoint) : std::string(errc::kInternal)},
             {"message", bad_point ? evaluation.error().message : "the evaluation failed"}};
      return bad_point ? 400 : 500;
    }
    out = {{"result", Base64Encode(evaluation->point)}, {"proof", Base64Encode(evaluation->proof)}};
    return 200;
  };
  json answer = ThresholdShareFields(*record, row->version);
  if (!bulk) {
    json one;
    const json item = field == body->end() ? json() : *field;
    if (!item.is_string())
      return Fail(call, 400, errc::kMalformedRequest, "missing \"blinded\" (base64 SEC1 point)");
    const int status = evaluate(item, one);
    if (status == 500) {
      return Internal(call, "the threshold evaluation failed",
                      MakeError(std::string(errc::kInternal), one["message"].get<std::string>()));
    }
    if (status != 200) {
      return Fail(call, status, one["error"].get<std::string>(), one["message"].get<std::string>());
    }
    answer.update(one);
    return Ok(200, answer);
  }
  json results = json::array();
  int failures = 0;
  if (batch) {
    auto proof = BatchEvaluate(*field, *record, results, failures);
    if (!proof.ok()) return Internal(call, "the threshold evaluation failed", proof.error());
    if (!proof->empty()) answer["proof"] = *proof;
  } else {
    for (const auto& item : *field) {
      json one;
      one["status"] = evaluate(item, one);
      if (one["status"] != 200) ++failures;
      results.push_back(std::move(one));
    }
  }
  call.result = failures == 0 ? "ok" : "partial:" + std::to_string(failures);
  answer["results"] = std::move(results);
  return Ok(200, answer);
}

// A bulk call with "proof": "batch": each bad item answered on its own, as in the per-item
// answer, and every good one with its Z_m only, under one batch proof for all of them (base64;
// "" when no item was good).
Result<std::string> GroupService::BatchEvaluate(const json& items,
                                                const ThresholdShareRecord& record, json& results,
                                                int& failures) {
  std::vector<Bytes> valid;
  std::vector<std::size_t> where;
  for (const auto& item : items) {
    Bytes blinded;
    json one;
    if (!item.is_string() || !Base64Decode(item.get<std::string>(), blinded)) {
      one = {{"status", 400},
             {"error", errc::kMalformedRequest},
             {"message", "a blinded point is base64 SEC1"}};
    } else if (auto normal = crypto::threshold::NormalizePoint(blinded); !normal.ok()) {
      one = {{"status", 400}, {"error", errc::kBadPoint}, {"message", normal.error().message}};
    } else {
      where.push_back(results.size());
      valid.push_back(std::move(blinded));
    }
    if (!one.is_null()) ++failures;
    results.push_back(std::move(one));
  }
  if (valid.empty()) return std::string();
  BL_TRY_ASSIGN(auto batch,
                crypto::threshold::EvaluateBatch(record.share, record.public_share, valid));
  for (std::size_t m = 0; m < where.size(); ++m)
    results[where[m]] = {{"status", 200}, {"result", Base64Encode(batch.points[m])}};
  return Base64Encode(batch.proof);
}

// A refresh (docs/threshold.md): d_i' = d_i + delta_i, checked against the new commitments, whose
// C_0 must be the old one, from the commitments this node holds now (so every node refreshes
// from the same state); the row is replaced only if no other refresh got there first.
HttpResponse GroupService::RefreshShare(const HttpRequest& req, Call& call,
                                        const store::Group& group) {
  namespace th = crypto::threshold;
  HttpResponse error;
  auto body = ParseBody(req, call, error);
  WipeRequestBody(req);
  if (!body) return error;
  auto keys = store_->ListGroupKeys(group.id);
  if (!keys.ok()) return StoreDown(call, keys.error());
  const store::GroupKey* row = nullptr;
  for (const auto& k : *keys) {
    if (k.key_type == kThresholdKeyType && k.state == store::KeyState::kActive) row = &k;
  }
  if (row == nullptr)
    return Fail(call, 409, "not-threshold-group", "this group has no active threshold key");
  call.key_version = row->version;
  auto record = ring_->ShareFor(group.name, *row);
  if (!record.ok()) return Internal(call, "the share cannot be opened", record.error());
  Bytes previous;
  Bytes next;
  SecretBytes delta_secret;
  const bool has_share = SecretField(*body, "share", delta_secret);
  if (!Base64Decode(StringField(*body, "previous").value_or(""), previous) ||
      !Base64Decode(StringField(*body, "commitments").value_or(""), next) || !has_share) {
    return Fail(call, 400, errc::kMalformedRequest,
                "\"share\", \"previous\" and \"commitments\" (base64) are required");
  }
  if (previous != th::EncodeCommitments(record->commitments)) {
    return Fail(call, 409, errc::kConflict,
                "this node's commitments are not the ones the refresh starts from");
  }
  auto delta = th::ParseShare(delta_secret.view());
  if (!delta.ok()) return Fail(call, 400, "bad-share", delta.error().message);
  auto commitments = th::ParseCommitments(next, record->share.k);
  if (!commitments.ok()) return Fail(call, 400, "bad-commitments", commitments.error().message);
  if ((*commitments)[0] != record->commitments[0])
    return Fail(call, 400, "bad-commitments", "a refresh keeps the group key (C_0)");
  auto fresh = th::AddShare(record->share, *delta);
  if (!fresh.ok() || !th::VerifyShare(*fresh, *commitments).ok())
    return Fail(call, 400, "bad-share", "the refreshed share does not match the new commitments");
  auto sealed = ring_->SealShare(group.name, row->version, *fresh, *commitments);
  if (!sealed.ok()) return Internal(call, "sealing failed", sealed.error());
  Status replaced =
      store_->ReplaceSealedKey(group.id, row->version, row->sealed_private_key, *sealed);
  if (!replaced.ok() && replaced.error().code == errc::kConflict)
    return Fail(call, 409, errc::kConflict, "another refresh happened; start again");
  if (!replaced.ok()) return StoreDown(call, replaced.error());
  auto public_share = th::PublicShareOf(*fresh);
  if (!public_share.ok()) return Internal(call, "public share failed", public_share.error());
  return Ok(200, {{"key_version", row->version},
                  {"index", fresh->index},
                  {"public_share", Base64Encode(*public_share)}});
}

// ---- share repair: a new node gets its share from k helpers (docs/threshold.md) ----

namespace {

namespace th = crypto::threshold;

// One repair round as every request of it names it: the round (32 hex digits, chosen by the
// command), the index j repaired, the helpers' indices (ascending) and the new node's round key.
// Every sealed message and signature of the round binds all of it.
struct RepairRound {
  std::string round;
  std::uint8_t target = 0;
  std::vector<std::uint8_t> helpers;
  Bytes new_key;

  std::string Context(const std::string& group, const std::string& what) const {
    std::string list;
    for (std::uint8_t h : helpers) list += (list.empty() ? "" : ",") + std::to_string(h);
    return "blindlist threshold-repair v1 group=" + group + " round=" + round +
           " index=" + std::to_string(target) + " helpers=" + list + " new=" + ToHex(new_key) +
           " " + what;
  }
  std::string KeyMessage(const std::string& group, std::uint8_t of, ByteView key) const {
    return Context(group, "key of=" + std::to_string(of) + " key=" + ToHex(key));
  }
};

bool IsLowerHex(const std::string& s) {
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

// The round fields of a repair request; "" if they are fine, else what is wrong.
std::string ParseRound(const json& body, bool with_new_key, RepairRound& out) {
  const auto round = body.find("round");
  if (round == body.end() || !round->is_string() || round->get<std::string>().size() != 32 ||
      !IsLowerHex(round->get<std::string>())) {
    return "\"round\" must be 32 lowercase hex digits";
  }
  out.round = round->get<std::string>();
  const auto index = body.find("index");
  if (index == body.end() || !index->is_number_integer() || index->get<int>() < 1 ||
      index->get<int>() > th::kMaxNodes) {
    return "\"index\" (the index repaired) must be a whole number in 1..16; never 0, the key";
  }
  out.target = static_cast<std::uint8_t>(index->get<int>());
  const auto helpers = body.find("helpers");
  if (helpers == body.end() || !helpers->is_array() || helpers->size() < 2 ||
      helpers->size() > th::kMaxNodes) {
    return "\"helpers\" must be an array of 2 to 16 share indices";
  }
  for (const auto& h : *helpers) {
    if (!h.is_number_integer() || h.get<int>() < 1 || h.get<int>() > th::kMaxNodes ||
        (!out.helpers.empty() && h.get<int>() <= out.helpers.back())) {
      return "\"helpers\" must be distinct share indices in 1..16, ascending";
    }
    out.helpers.push_back(static_cast<std::uint8_t>(h.get<int>()));
  }
  if (std::find(out.helpers.begin(), out.helpers.end(), out.target) != out.helpers.end())
    return "the index repaired cannot be a helper's";
  if (!with_new_key) return "";
  Bytes key;
  if (!Base64Decode(StringField(body, "new_key").value_or(""), key)) return "missing \"new_key\"";
  auto normal = th::NormalizePoint(key);
  if (!normal.ok() || *normal != key) return "\"new_key\" must be a compressed P-256 point";
  out.new_key = std::move(key);
  return "";
}

// The helpers' round keys ("keys": [{"index", "key", "signature"}], one per helper), each checked
// against the signer's D_l from `commitments`: a relay cannot put its own key in a helper's place.
std::string VerifiedRoundKeys(const json& body, const RepairRound& r, const std::string& group,
                              const std::vector<Bytes>& commitments,
                              std::map<std::uint8_t, Bytes>& out) {
  const auto keys = body.find("keys");
  if (keys == body.end() || !keys->is_array()) return "missing \"keys\"";
  for (const auto& item : *keys) {
    if (!item.is_object() || !item.contains("index") || !item["index"].is_number_integer())
      return "each of \"keys\" is {\"index\", \"key\", \"signature\"}";
    const int l = item["index"].get<int>();
    Bytes key;
    Bytes signature;
    if (std::find(r.helpers.begin(), r.helpers.end(), l) == r.helpers.end() ||
        out.contains(static_cast<std::uint8_t>(l)) ||
        !Base64Decode(StringField(item, "key").value_or(""), key) ||
        !Base64Decode(StringField(item, "signature").value_or(""), signature)) {
      return "\"keys\" must hold one key and signature for each helper";
    }
    auto d_l = th::ExpectedPublicShare(commitments, static_cast<std::uint8_t>(l));
    const std::string message = r.KeyMessage(group, static_cast<std::uint8_t>(l), key);
    if (!d_l.ok() || !th::VerifyShareSignature(*d_l, AsBytes(message), signature).ok())
      return "the round key of helper " + std::to_string(l) + " is not signed by its share";
    out.emplace(static_cast<std::uint8_t>(l), std::move(key));
  }
  if (out.size() != r.helpers.size()) return "\"keys\" must hold one key for each helper";
  return "";
}

// The sealed messages of a step ("pieces" or "sums": [{"from", FIELD}]), one per helper.
std::string SealedFromEach(const json& body, const char* list, const char* field,
                           const RepairRound& r, std::map<std::uint8_t, Bytes>& out) {
  const auto items = body.find(list);
  if (items == body.end() || !items->is_array())
    return std::string("missing \"") + list + "\" (one from each helper)";
  for (const auto& item : *items) {
    Bytes sealed;
    if (!item.is_object() || !item.contains("from") || !item["from"].is_number_integer() ||
        std::find(r.helpers.begin(), r.helpers.end(), item["from"].get<int>()) == r.helpers.end() ||
        out.contains(static_cast<std::uint8_t>(item["from"].get<int>())) ||
        !Base64Decode(StringField(item, field).value_or(""), sealed)) {
      return std::string("\"") + list + "\" must hold one {\"from\", \"" + field +
             "\"} from each helper";
    }
    out.emplace(static_cast<std::uint8_t>(item["from"].get<int>()), std::move(sealed));
  }
  if (out.size() != r.helpers.size())
    return std::string("\"") + list + "\" must hold one from each helper";
  return "";
}

std::string RepairReason(const RepairRound& r) {
  std::string list;
  for (std::uint8_t h : r.helpers) list += (list.empty() ? "" : ",") + std::to_string(h);
  return "round:" + r.round.substr(0, 8) + " index:" + std::to_string(r.target) +
         " helpers:" + list + " new-key:" + ToHex(crypto::Sha256(r.new_key)).substr(0, 16);
}

}  // namespace

// What every helper step starts with: the round, this node's active share (it must be one of the
// helpers, the round within its k and n), and for the later steps its round key from `state`.
std::optional<HttpResponse> GroupService::RepairHelperSetUp(const json& body, Call& call,
                                                            const store::Group& group,
                                                            RepairHelper& out) {
  auto keys = store_->ListGroupKeys(group.id);
  if (!keys.ok()) return StoreDown(call, keys.error());
  const store::GroupKey* row = nullptr;
  for (const auto& k : *keys) {
    if (k.key_type == kThresholdKeyType && k.state == store::KeyState::kActive) row = &k;
  }
  if (row == nullptr)
    return Fail(call, 409, "not-threshold-group", "this group has no active threshold key");
  call.key_version = row->version;
  auto record = ring_->ShareFor(group.name, *row);
  if (!record.ok()) return Internal(call, "the share cannot be opened", record.error());
  out.record = std::move(*record);
  RepairRound r;
  if (auto wrong = ParseRound(body, true, r); !wrong.empty())
    return Fail(call, 400, errc::kMalformedRequest, wrong);
  call.reason = RepairReason(r);
  const th::Share& share = out.record.share;
  if (r.target > share.n || r.helpers.size() < share.k || r.helpers.back() > share.n)
    return Fail(call, 400, "bad-helpers", "a repair needs k helpers and indices in 1..n");
  if (std::find(r.helpers.begin(), r.helpers.end(), share.index) == r.helpers.end())
    return Fail(call, 400, "bad-helpers",
                "this node (index " + std::to_string(share.index) + ") is not one of the helpers");
  out.round = r.round;
  out.target = r.target;
  out.helpers = r.helpers;
  out.new_key = r.new_key;
  return std::nullopt;
}

// Step 1 at each helper: a fresh round key, signed with this node's share, its scalar sealed
// under this node's master key for this round only (the node keeps no state between steps).
HttpResponse GroupService::RepairKey(const HttpRequest& req, Call& call,
                                     const store::Group& group) {
  HttpResponse error;
  auto body = ParseBody(req, call, error);
  if (!body) return error;
  RepairHelper h;
  if (auto refusal = RepairHelperSetUp(*body, call, group, h)) return *refusal;
  const RepairRound r{h.round, h.target, h.helpers, h.new_key};
  auto key = th::NewRoundKey();
  if (!key.ok()) return Internal(call, "round key failed", key.error());
  const std::uint8_t i = h.record.share.index;
  auto state =
      ring_->SealRepairState(r.Context(group.name, "state of=" + std::to_string(i)), key->scalar);
  const std::string message = r.KeyMessage(group.name, i, key->point);
  auto signature = th::SignWithShare(h.record.share, h.record.public_share, AsBytes(message));
  if (!state.ok() || !signature.ok())
    return Internal(call, "round key failed", !state.ok() ? state.error() : signature.error());
  return Ok(200, {{"index", i},
                  {"key", Base64Encode(key->point)},
                  {"signature", Base64Encode(*signature)},
                  {"state", Base64Encode(*state)}});
}

// This helper's round key scalar from the request's "state", checked against its listed key,
// and every helper's round key verified; "commitments" must be the ones this node holds.
std::optional<HttpResponse> GroupService::RepairHelperKeys(json& body, Call& call,
                                                           const store::Group& group,
                                                           RepairHelper& h) {
  const RepairRound r{h.round, h.target, h.helpers, h.new_key};
  if (StringField(body, "commitments").value_or("") !=
      Base64Encode(th::EncodeCommitments(h.record.commitments))) {
    return Fail(call, 409, errc::kConflict,
                "this node's commitments are not the ones the repair starts from");
  }
  if (auto wrong = VerifiedRoundKeys(body, r, group.name, h.record.commitments, h.keys);
      !wrong.empty()) {
    return Fail(call, 400, "bad-signature", wrong);
  }
  const std::uint8_t i = h.record.share.index;
  Bytes sealed;
  if (!Base64Decode(StringField(body, "state").value_or(""), sealed))
    return Fail(call, 400, errc::kMalformedRequest, "missing \"state\" (from the key step)");
  auto scalar =
      ring_->UnsealRepairState(r.Context(group.name, "state of=" + std::to_string(i)), sealed);
  if (!scalar.ok())
    return Fail(call, 400, "bad-state", "\"state\" is not this node's for this round");
  auto point = th::PointOfScalar(*scalar);
  if (!point.ok() || *point != h.keys.at(i))
    return Fail(call, 400, "bad-state", "\"state\" is not for the round key listed for this node");
  h.round_scalar = std::move(*scalar);
  return std::nullopt;
}

// Step 2 at helper i: lambda_i(j)·d_i in k random pieces, piece l sealed from i to helper l.
HttpResponse GroupService::RepairSplit(const HttpRequest& req, Call& call,
                                       const store::Group& group) {
  HttpResponse error;
  auto body = ParseBody(req, call, error);
  if (!body) return error;
  RepairHelper h;
  if (auto refusal = RepairHelperSetUp(*body, call, group, h)) return *refusal;
  if (auto refusal = RepairHelperKeys(*body, call, group, h)) return *refusal;
  auto pieces = th::RepairPieces(h.record.share, h.helpers, h.target);
  if (!pieces.ok()) return Fail(call, 400, pieces.error().code, pieces.error().message);
  RepairRound r{h.round, h.target, h.helpers, h.new_key};
  const std::uint8_t i = h.record.share.index;
  json out = json::array();
  for (std::size_t n = 0; n < h.helpers.size(); ++n) {
    const std::uint8_t l = h.helpers[n];
    const std::string context =
        r.Context(group.name, "piece from=" + std::to_string(i) + " to=" + std::to_string(l));
    auto sealed = th::SealBetween(h.round_scalar, h.keys.at(l), context, (*pieces)[n].view());
    if (!sealed.ok()) return Internal(call, "sealing a piece failed", sealed.error());
    out.push_back({{"to", l}, {"piece", Base64Encode(*sealed)}});
  }
  return Ok(200, {{"index", i}, {"pieces", out}});
}

// Step 3 at helper l: the pieces sent to it, one from each helper, opened and added; the sum
// sealed from l to the new node's round key.
HttpResponse GroupService::RepairSum(const HttpRequest& req, Call& call,
                                     const store::Group& group) {
  HttpResponse error;
  auto body = ParseBody(req, call, error);
  if (!body) return error;
  RepairHelper h;
  if (auto refusal = RepairHelperSetUp(*body, call, group, h)) return *refusal;
  if (auto refusal = RepairHelperKeys(*body, call, group, h)) return *refusal;
  RepairRound r{h.round, h.target, h.helpers, h.new_key};
  std::map<std::uint8_t, Bytes> sealed;
  if (auto wrong = SealedFromEach(*body, "pieces", "piece", r, sealed); !wrong.empty())
    return Fail(call, 400, errc::kMalformedRequest, wrong);
  const std::uint8_t l = h.record.share.index;
  std::vector<SecretBytes> pieces;
  for (const auto& [from, piece] : sealed) {
    const std::string context =
        r.Context(group.name, "piece from=" + std::to_string(from) + " to=" + std::to_string(l));
    auto opened = th::OpenBetween(h.round_scalar, h.keys.at(from), context, piece);
    if (!opened.ok()) {
      return Fail(call, 400, "bad-piece",
                  "the piece from helper " + std::to_string(from) + " does not verify");
    }
    pieces.push_back(std::move(*opened));
  }
  auto sum = th::AddScalars(pieces);
  if (!sum.ok()) return Fail(call, 400, "bad-piece", sum.error().message);
  auto out = th::SealBetween(h.round_scalar, h.new_key,
                             r.Context(group.name, "sum from=" + std::to_string(l)), sum->view());
  if (!out.ok()) return Internal(call, "sealing the sum failed", out.error());
  return Ok(200, {{"index", l}, {"sum", Base64Encode(*out)}});
}

// The new node, before it holds the group: a fresh round key for the round, its scalar sealed
// under this node's master key. A node that holds the group already is refused.
HttpResponse GroupService::EnrollStart(const HttpRequest& req, Call& call) {
  HttpResponse error;
  auto body = ParseBody(req, call, error);
  if (!body) return error;
  const std::string name = StringField(*body, "name").value_or("");
  call.group = name;
  if (!ValidAddress(name))
    return Fail(call, 400, "bad-address", "\"name\" must be the list's email address");
  RepairRound r;
  if (auto wrong = ParseRound(*body, false, r); !wrong.empty())
    return Fail(call, 400, errc::kMalformedRequest, wrong);
  auto found = store_->FindGroup(name);
  if (!found.ok()) return StoreDown(call, found.error());
  if (*found) {
    return Fail(call, 409, errc::kExists,
                "this node holds the group already: a replacement node must not (delete the "
                "group here first if it is left from a failed attempt)");
  }
  auto key = th::NewRoundKey();
  if (!key.ok()) return Internal(call, "round key failed", key.error());
  r.new_key = key->point;
  call.reason = RepairReason(r);
  auto state = ring_->SealRepairState(r.Context(name, "state of=new"), key->scalar);
  if (!state.ok()) return Internal(call, "sealing failed", state.error());
  return Ok(200, {{"key", Base64Encode(key->point)}, {"state", Base64Encode(*state)}});
}

// The new node's share from an enrollment (`POST /v1/groups` with "enrollment"): every helper's
// round key checked against the commitments, every sum opened and added. The caller checks the
// result against the commitments (Feldman) before storing it.
std::optional<HttpResponse> GroupService::EnrolledShare(Call& call, json& enrollment,
                                                        const std::string& name, int k, int n,
                                                        const std::vector<Bytes>& commitments,
                                                        th::Share& out) {
  RepairRound r;
  if (auto wrong = ParseRound(enrollment, true, r); !wrong.empty())
    return Fail(call, 400, errc::kMalformedRequest, wrong);
  call.reason = RepairReason(r);
  if (r.target > n || static_cast<int>(r.helpers.size()) < k || r.helpers.back() > n)
    return Fail(call, 400, "bad-helpers", "a repair needs k helpers and indices in 1..n");
  Bytes sealed_state;
  if (!Base64Decode(StringField(enrollment, "state").value_or(""), sealed_state))
    return Fail(call, 400, errc::kMalformedRequest, "missing \"state\" (from the enroll step)");
  auto scalar = ring_->UnsealRepairState(r.Context(name, "state of=new"), sealed_state);
  if (!scalar.ok())
    return Fail(call, 400, "bad-state", "\"state\" is not this node's for this round");
  auto point = th::PointOfScalar(*scalar);
  if (!point.ok() || *point != r.new_key)
    return Fail(call, 400, "bad-state", "\"state\" is not for \"new_key\"");
  std::map<std::uint8_t, Bytes> keys;
  if (auto wrong = VerifiedRoundKeys(enrollment, r, name, commitments, keys); !wrong.empty())
    return Fail(call, 400, "bad-signature", wrong);
  std::map<std::uint8_t, Bytes> sealed;
  if (auto wrong = SealedFromEach(enrollment, "sums", "sum", r, sealed); !wrong.empty())
    return Fail(call, 400, errc::kMalformedRequest, wrong);
  std::vector<SecretBytes> sums;
  for (const auto& [from, sum] : sealed) {
    auto opened = th::OpenBetween(*scalar, keys.at(from),
                                  r.Context(name, "sum from=" + std::to_string(from)), sum);
    if (!opened.ok()) {
      return Fail(call, 400, "bad-piece",
                  "the sum from helper " + std::to_string(from) + " does not verify");
    }
    sums.push_back(std::move(*opened));
  }
  auto total = th::AddScalars(sums);
  if (!total.ok()) return Fail(call, 400, "bad-piece", total.error().message);
  out = th::Share{r.target, static_cast<std::uint8_t>(k), static_cast<std::uint8_t>(n),
                  std::move(*total)};
  return std::nullopt;
}

// DELETE /v1/groups/G: the group, its keys and shares (sealed rows, overwritten on SQLite by
// secure_delete), secrets, roster and exploder; its members' certificates are revoked. For the
// clean-up of a threshold creation that failed midway (docs/threshold.md). The audit stays.
HttpResponse GroupService::DeleteGroup(Call& call, const store::Group& group) {
  auto keys = store_->ListGroupKeys(group.id);
  if (!keys.ok()) return StoreDown(call, keys.error());
  for (const auto& k : *keys) ring_->Forget(group.id, k.version);
  Status deleted = store_->DeleteGroup(group.id);
  if (!deleted.ok() && deleted.error().code == errc::kNotFound)
    return Fail(call, 404, "unknown-group", "no such group");
  if (!deleted.ok()) return StoreDown(call, deleted.error());
  call.reason = "keys:" + std::to_string(keys->size());
  return Ok(200, {{"name", group.name}, {"deleted", true}});
}

// ---- routing ----

namespace {

using Access = api::Access;

}  // namespace

// Every endpoint (docs/api.md). Who may call decides what Route() does before the handler:
// kAdmin routes authenticate the administrator first; the reading operations find the group
// first, and their handlers authenticate the member, exploder or certificate.
const api::RouteTable<GroupService::RouteHandler>& GroupService::Routes() {
  using H = Handlers;
  static const api::RouteTable<RouteHandler> kTable({
      {"GET", "/healthz", "healthz", Access::kInfrastructure, &H::Healthz},
      {"GET", "/metrics", "metrics", Access::kInfrastructure, &H::Metrics},
      {"GET", "/v1/groups/{group}/certificate", "certificate", Access::kPublic, &H::Certificate},
      {"POST", "/v1/groups/{group}/unwrap", "unwrap", Access::kMember, &H::Operation},
      {"POST", "/v1/groups/{group}/rewrap", "rewrap", Access::kMember, &H::Operation},
      {"POST", "/v1/groups/{group}/rewrap/certificate", "rewrap-certificate", Access::kCertificate,
       &H::Operation},
      {"POST", "/v1/groups/{group}/rewrap/secret", "rewrap-secret", Access::kMember, &H::Operation},
      {"POST", "/v1/groups/{group}/rewrap/exploder", "rewrap-exploder", Access::kExploder,
       &H::Operation},
      {"POST", "/v1/groups/{group}/rewrap/members", "rewrap-members", Access::kExploder,
       &H::RewrapMembers},
      {"POST", "/v1/groups/{group}/blind", "blind", Access::kMember, &H::Operation},
      {"POST", "/v1/groups/{group}/threshold", "threshold", Access::kMember, &H::Threshold},
      {"POST", "/v1/groups/{group}/threshold/bulk", "threshold-bulk", Access::kMember,
       &H::ThresholdBulk},
      {"POST", "/v1/groups/{group}/threshold/refresh", "threshold-refresh", Access::kAdmin,
       &H::ThresholdRefresh},
      {"POST", "/v1/groups/{group}/threshold/repair/key", "threshold-repair-key", Access::kAdmin,
       &H::RepairKey},
      {"POST", "/v1/groups/{group}/threshold/repair/split", "threshold-repair-split",
       Access::kAdmin, &H::RepairSplit},
      {"POST", "/v1/groups/{group}/threshold/repair/sum", "threshold-repair-sum", Access::kAdmin,
       &H::RepairSum},
      {"POST", "/v1/threshold/enroll", "threshold-enroll", Access::kAdmin, &H::Enroll},
      {"POST", "/v1/groups/{group}/threshold/dkg/start", "threshold-dkg-start", Access::kAdmin,
       &DkgHandlers::Start},
      {"POST", "/v1/groups/{group}/threshold/dkg/deal", "threshold-dkg-deal", Access::kAdmin,
       &DkgHandlers::Deal},
      {"POST", "/v1/groups/{group}/threshold/dkg/check", "threshold-dkg-check", Access::kAdmin,
       &DkgHandlers::Check},
      {"POST", "/v1/groups/{group}/threshold/dkg/finish", "threshold-dkg-finish", Access::kAdmin,
       &DkgHandlers::Finish},
      {"POST", "/v1/groups/{group}/threshold/dkg/cancel", "threshold-dkg-cancel", Access::kAdmin,
       &DkgHandlers::Cancel},
      {"POST", "/v1/groups/{group}/bulk", "bulk", Access::kMember, &H::Bulk},
      {"GET", "/v1/groups/{group}/secrets", "secrets", Access::kMember, &H::Secrets},
      {"GET", "/v1/groups/{group}/roster", "roster", Access::kExploder, &H::Roster},
      {"GET", "/v1/groups", "group-list", Access::kAdmin, &H::GroupList},
      {"POST", "/v1/groups", "group-create", Access::kAdmin, &H::CreateGroup},
      {"GET", "/v1/groups/{group}", "group-show", Access::kAdmin, &H::GroupShow},
      {"DELETE", "/v1/groups/{group}", "group-delete", Access::kAdmin, &H::GroupDelete},
      {"POST", "/v1/groups/{group}/rotate", "rotate-key", Access::kAdmin, &H::Rotate},
      {"POST", "/v1/groups/{group}/keys/{version}/destroy", "key-destroy", Access::kAdmin,
       &H::KeyDestroy},
      {"POST", "/v1/groups/{group}/keys/{version}/certificate", "key-certificate", Access::kAdmin,
       &H::KeyCertificate},
      {"POST", "/v1/groups/{group}/export", "export-key", Access::kAdmin, &H::Export},
      {"GET", "/v1/groups/{group}/members", "member-list", Access::kAdmin, &H::MemberList},
      {"POST", "/v1/groups/{group}/members", "member-add", Access::kAdmin, &H::MemberAdd},
      {"DELETE", "/v1/groups/{group}/members/{member}", "member-remove", Access::kAdmin,
       &H::MemberRemove},
      {"PUT", "/v1/groups/{group}/members/{member}/certificate", "member-set-cert", Access::kAdmin,
       &H::MemberSetCertificate},
      {"POST", "/v1/groups/{group}/members/{member}/token", "member-new-token", Access::kAdmin,
       &H::MemberNewToken},
      {"PUT", "/v1/groups/{group}/exploder", "exploder-set", Access::kAdmin, &H::ExploderSet},
      {"PUT", "/v1/groups/{group}/content-cipher", "content-cipher-set", Access::kAdmin,
       &H::ContentCipherSet},
      {"GET", "/v1/groups/{group}/audit", "audit", Access::kAdmin, &H::Audit},
      {"POST", "/v1/audit/prune", "audit-prune", Access::kAdmin, &H::AuditPrune},
      {"GET", "/v1/audit", "audit", Access::kAdmin, &H::DeploymentAudit},
  });
  return kTable;
}

HttpResponse GroupService::Route(const HttpRequest& req, Call& call) {
  const auto found = Routes().Find(req.method, req.path);
  Target target;
  if (found.route != nullptr && found.route->access == Access::kInfrastructure) {
    call.audit = false;
    call.operation = std::string(found.route->operation);
    return found.route->handler(*this, req, call, target);
  }
  const auto* route = found.route != nullptr ? found.route : found.same_path;
  if (route == nullptr) {
    call.audit = false;
    call.operation = "not-found";
    return Fail(call, 404, errc::kNotFound, "no such endpoint");
  }
  call.audit = route->access != Access::kInfrastructure;

  // Rate limits (docs/api.md): first the peer address's bucket, one unit, before any
  // credential is looked up, so bogus credentials cannot make us search the store
  // without limit; then the caller's bucket, by the cost of the work, once a
  // credential is verified (or at once, charged to the address, where none is checked).
  // The group named in the path goes into the audit record, so a 429 shows in that group's audit.
  const bool has_group = route->pattern.starts_with("/v1/groups/{group}");
  if (has_group) call.group = found.params[0];
  call.address = api::AddressBucket(req.peer_address);
  call.rate_key = "ip:" + call.address;
  if (int retry = address_limiter_.Acquire("addr:" + call.address); retry > 0) {
    return RateLimited(call, retry, "address");
  }
  // An address that keeps failing to authenticate pauses before its next credentials are tried.
  bool presents_credentials = !BearerToken(req).empty() || !req.peer_certificate_der.empty();
  if (presents_credentials && limiter_.Exhausted("fail:" + call.address)) {
    return RateLimited(call, 1, "failures");
  }
  call.operation = std::string(route->operation);
  if (found.route == nullptr) return Fail(call, 405, "method-not-allowed", "use " + found.allowed);
  target.params = found.params;
  if (route->access == Access::kPublic) {
    if (auto limited = Charge(call, 1)) return *limited;
    return route->handler(*this, req, call, target);
  }
  if (route->access == Access::kAdmin) {
    // Refusals of administrators are audited as "admin", whatever they asked for.
    call.operation = "admin";
    if (auto refusal = AuthenticateAdmin(req, call)) return *refusal;
    call.operation = std::string(route->operation);
  }
  std::optional<store::Group> group;
  // A key generation's rounds make the group: its handlers look for it themselves.
  if (has_group && !route->pattern.starts_with("/v1/groups/{group}/threshold/dkg/")) {
    auto looked_up = store_->FindGroup(call.group);
    if (!looked_up.ok()) return StoreDown(call, looked_up.error());
    if (!*looked_up) return Fail(call, 404, "unknown-group", "no such group");
    group = std::move(**looked_up);
    target.group = &*group;
    target.params.erase(target.params.begin());
  }
  return route->handler(*this, req, call, target);
}

}  // namespace blindlist::groupd
