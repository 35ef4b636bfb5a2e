#include "service.h"

#include <array>
#include <chrono>
#include <ctime>
#include <nlohmann/json.hpp>

#include "api/certificate_expiry.h"
#include "api/json_fields.h"
#include "api/member_auth.h"
#include "api/membership.h"
#include "api/request_outcome.h"
#include "api/route_table.h"
#include "blindlist/base64.h"
#include "blindlist/error_codes.h"
#include "crypto/x509.h"
#include "obs/log.h"

namespace blindlist::certd {

using json = nlohmann::json;
using net::HttpRequest;
using net::HttpResponse;

struct CertService::Call {
  std::string operation = "unknown";
  std::string caller = "anonymous";
  std::string group;
  std::string reason;
  std::string result = "ok";
  bool audit = true;
  std::string address;     // the peer's rate-limit bucket (api::AddressBucket)
  std::string rate_key;    // "ip:" + address until a member is authenticated
  std::string limited_by;  // for a 429: "address", "failures" or "caller"
  bool tally = false;      // audited in aggregate, not one record each
};

namespace {

std::int64_t Now() { return static_cast<std::int64_t>(std::time(nullptr)); }

HttpResponse Fail(CertService::Call& call, int status, std::string_view code,
                  std::string_view message) {
  call.result = std::string(code);
  return HttpResponse::Error(status, code, message);
}

HttpResponse StoreDown(CertService::Call& call, const Error& e) {
  net::Log(net::LogLevel::kError, "store error", {{"error", e.message}});
  return Fail(call, 503, errc::kStoreUnavailable, "the store is unavailable; retry later");
}

// An internal error: a 500 whose detail goes to the log only.
HttpResponse Internal(CertService::Call& call, std::string_view what, const Error& e) {
  net::Log(net::LogLevel::kError, "internal error",
           {{"operation", call.operation}, {"what", std::string(what)}, {"error", e.message}});
  return Fail(call, 500, errc::kInternal, what);
}

// Every field Issue reads, with its one JSON type (as groupd's ParseBody).
constexpr std::array<api::JsonField, 4> kIssueFields = {{
    {"csr", api::JsonType::kString},
    {"generate", api::JsonType::kBoolean},
    {"passphrase", api::JsonType::kString},
    {"key_type", api::JsonType::kString},
}};

using api::SplitPath;

// A 429: counted, and audited in aggregate, so a flood of them writes nothing per request.
HttpResponse RateLimited(CertService::Call& call, int retry, std::string_view bucket) {
  call.operation = "rate-limited";
  call.limited_by = std::string(bucket);
  call.tally = true;
  if (call.caller == "anonymous") call.caller = "ip:" + call.address;
  HttpResponse r = Fail(call, 429, errc::kRateLimited, "too many requests; retry later");
  r.headers.emplace_back("Retry-After", std::to_string(retry));
  return r;
}

// A subject that says nothing about who the member is.
std::string PseudonymousName() {
  SecretBytes r = crypto::RandomSecret(16);
  return "member-" + ToHex(r.view());
}

}  // namespace

CertService::CertService(const Config& config, std::unique_ptr<store::Store> store,
                         crypto::Certificate ca_cert, crypto::PrivateKey ca_key)
    : config_(config),
      store_(std::move(store)),
      ca_cert_(std::move(ca_cert)),
      ca_key_(std::move(ca_key)),
      limiter_(config.common.rate_per_second, config.common.rate_burst),
      address_limiter_(config.common.rate_per_second * config.common.address_rate_factor,
                       config.common.rate_burst * config.common.address_rate_factor),
      refusals_("certd",
                std::chrono::milliseconds(
                    static_cast<std::int64_t>(config.common.refusal_audit_seconds * 1000)),
                [this](const std::vector<store::AuditRecord>& records) {
                  return store_->AppendAuditBatch(records);
                }) {}

HttpResponse CertService::Handle(const HttpRequest& req) {
  auto start = std::chrono::steady_clock::now();
  Call call;
  HttpResponse resp = api::AnswerOrInternalError(
      call, [&] { return Route(req, call); }, Fail);
  if (call.tally) {
    refusals_.Count(call.caller, call.group, call.operation, call.result);
  } else if (call.audit) {
    store::AuditRecord rec;
    rec.time = Now();
    rec.daemon = "certd";
    rec.caller = call.caller;
    rec.group = call.group;
    rec.operation = call.operation;
    rec.result = call.result;
    rec.reason = call.reason;
    Status st = store_->AppendAudit(rec);
    if (!st.ok()) {
      net::Log(net::LogLevel::kError, "audit write failed", {{"error", st.error().message}});
      if (resp.status < 300)
        resp = Fail(call, 503, errc::kStoreUnavailable, "the audit log is unavailable");
    }
  }
  api::RecordRequest("certd", limiter_, metrics, req.peer_address,
                     {.status = resp.status,
                      .operation = call.operation,
                      .result = call.result,
                      .limited_by = call.limited_by},
                     start);
  return resp;
}

// The route table's handlers.
struct CertService::Handlers {
  static HttpResponse Healthz(CertService& s, const HttpRequest& /*req*/, Call& call,
                              const std::vector<std::string>& /*params*/) {
    if (!s.store_->SchemaVersion().ok())
      return Fail(call, 503, errc::kStoreUnavailable, "the store is unavailable");
    return HttpResponse::Json(200,
                              json{{"status", "ok"}, {"store", s.store_->BackendName()}}.dump());
  }

  static HttpResponse Metrics(CertService& s, const HttpRequest& req, Call& call,
                              const std::vector<std::string>& /*params*/) {
    if (auto refused = s.metrics_access.Refusal(req)) {
      call.result = "unauthenticated";
      return *refused;
    }
    HttpResponse r;
    r.content_type = "text/plain; version=0.0.4";
    r.body = s.metrics.Render() + api::RenderCertificateExpiry(
                                      "certd",
                                      {{"tls-server", "", s.config_.common.server.cert_file, {}},
                                       {"membership-ca", "", s.config_.ca_certificate_file, {}}},
                                      static_cast<std::int64_t>(std::time(nullptr)));
    return r;
  }

  static HttpResponse Crl(CertService& s, const HttpRequest& /*req*/, Call& call,
                          const std::vector<std::string>& /*params*/) {
    call.audit = false;  // public and frequent; nothing secret
    return s.Crl(call);
  }

  static HttpResponse Ca(CertService& s, const HttpRequest& /*req*/, Call& call,
                         const std::vector<std::string>& /*params*/) {
    call.audit = false;
    HttpResponse r;
    r.content_type = "application/pem-certificate-chain";
    r.body = crypto::ToPem("CERTIFICATE", s.ca_cert_.Der());
    return r;
  }

  static HttpResponse Issue(CertService& s, const HttpRequest& req, Call& call,
                            const std::vector<std::string>& params) {
    return s.Issue(req, call, params[0]);
  }
};

const api::RouteTable<CertService::RouteHandler>& CertService::Routes() {
  using H = Handlers;
  using api::Access;
  static const api::RouteTable<RouteHandler> kTable({
      {"GET", "/healthz", "healthz", Access::kInfrastructure, &H::Healthz},
      {"GET", "/metrics", "metrics", Access::kInfrastructure, &H::Metrics},
      {"GET", "/v1/crl", "crl", Access::kPublic, &H::Crl},
      {"GET", "/v1/ca", "ca", Access::kPublic, &H::Ca},
      {"POST", "/v1/groups/{group}/certificates", "issue", Access::kMember, &H::Issue},
  });
  return kTable;
}

HttpResponse CertService::Route(const HttpRequest& req, Call& call) {
  const auto found = Routes().Find(req.method, req.path);
  if (found.route != nullptr && found.route->access == api::Access::kInfrastructure) {
    call.audit = false;
    call.operation = std::string(found.route->operation);
    return found.route->handler(*this, req, call, found.params);
  }
  // Rate limits (docs/api.md): the peer address's bucket first, before any credential
  // is looked up; then the caller's: the member once authenticated (Issue), else the
  // address. A made-up token buys nothing. The group named in the path goes into the
  // audit record, so a 429 shows in that group's audit.
  const auto* route = found.route != nullptr ? found.route : found.same_path;
  if (route != nullptr && route->pattern.starts_with("/v1/groups/{group}")) {
    call.group = found.params[0];
  }
  call.address = api::AddressBucket(req.peer_address);
  call.rate_key = "ip:" + call.address;
  if (int retry = address_limiter_.Acquire("addr:" + call.address); retry > 0) {
    return RateLimited(call, retry, "address");
  }
  // Failed authentications are charged to the peer address (see Handle): an address
  // that keeps failing pauses before its next credentials are tried.
  bool presents_credentials = !api::BearerToken(req).empty() || !req.peer_certificate_der.empty();
  if (presents_credentials && limiter_.Exhausted("fail:" + call.address)) {
    return RateLimited(call, 1, "failures");
  }
  if (route == nullptr) {
    call.audit = false;
    call.operation = "not-found";
    return Fail(call, 404, errc::kNotFound, "no such endpoint");
  }
  call.operation = std::string(route->operation);
  if (found.route == nullptr) {
    call.audit = route->access == api::Access::kMember;
    return Fail(call, 405, "method-not-allowed", "use " + found.allowed);
  }
  // The issuing route authenticates the member itself (Issue), after finding the group.
  if (route->access == api::Access::kPublic) {
    if (auto limited = Charge(call, 1)) return *limited;
  }
  return route->handler(*this, req, call, found.params);
}

HttpResponse CertService::Issue(const HttpRequest& req, Call& call, const std::string& group_name) {
  json body = json::parse(req.body, nullptr, false);
  if (body.is_discarded() || !body.is_object()) {
    return Fail(call, 400, errc::kMalformedJson, "the request body is not a JSON object");
  }
  if (auto wrong = api::WrongFieldType(body, kIssueFields))
    return Fail(call, 400, errc::kMalformedRequest, *wrong);
  auto group = store_->FindGroup(group_name);
  if (!group.ok()) return StoreDown(call, group.error());
  if (!*group) return Fail(call, 404, "unknown-group", "no such group");
  api::MemberAuth auth = api::AuthenticateMember(*store_, req, **group);
  call.caller = auth.caller;
  if (!auth.member) return Fail(call, auth.status, auth.code, auth.message);
  call.rate_key = "member:" + std::to_string((*group)->id) + ":" + auth.member->address;
  if (auto limited = Charge(call, 1)) return *limited;

  std::optional<crypto::PrivateKey> generated;
  Bytes public_key;
  bool generate = body.value("generate", false);
  std::string passphrase;
  if (generate) {
    passphrase = body.value("passphrase", "");
    if (passphrase.size() < 8) {
      return Fail(call, 400, "weak-passphrase",
                  "\"passphrase\" of at least 8 characters protects the PKCS#12");
    }
    std::string key_type = body.value("key_type", "p256");
    if (key_type != "p256" && key_type != "rsa3072") {
      return Fail(call, 400, "unsupported-key", "\"key_type\" must be p256 or rsa3072");
    }
    auto key = crypto::PrivateKey::Generate(key_type == "p256" ? crypto::KeyType::kEcP256
                                                               : crypto::KeyType::kRsa);
    if (!key.ok()) return Internal(call, "key generation failed", key.error());
    public_key = key->PublicKeyDer();
    generated = std::move(*key);
  } else {
    if (!body.contains("csr")) {
      return Fail(call, 400, errc::kMalformedRequest, "send \"csr\" (PEM) or \"generate\": true");
    }
    auto csr = crypto::ParseCsr(AsBytes(api::StringField(body, "csr").value_or("")));
    if (!csr.ok()) {
      std::string code = csr.error().code;
      return Fail(call, 400, code,
                  code == errc::kBadSignature ? "the CSR's signature does not verify"
                  : code == errc::kUnsupportedKey
                      ? "the CSR's key type is not supported (use RSA or EC P-256/P-384)"
                      : "the CSR cannot be parsed");
    }
    // A CSR may claim nothing about groups but this one: certd decides what is bound.
    for (const auto& uri : csr->uris) {
      if (uri.rfind(api::kGroupUriPrefix, 0) == 0 && uri != api::GroupUri(group_name)) {
        return Fail(call, 400, "forged-group", "the CSR claims another group");
      }
    }
    public_key = csr->public_key_der;
  }

  crypto::CertificateProfile profile;
  profile.common_name = PseudonymousName();
  profile.uris = {api::GroupUri(group_name)};
  profile.validity_seconds = config_.validity_hours * 3600;
  profile.crl_url = config_.crl_url;
  auto cert = crypto::IssueCertificate(public_key, profile, ca_cert_, ca_key_);
  if (!cert.ok()) return Fail(call, 400, "issue-failed", cert.error().message);
  crypto::CertificateInfo info = crypto::DescribeCertificate(*cert);
  store::IssuedCertificate record{info.serial_hex, (*group)->id, auth.member->address,
                                  info.not_after,  false,        0};
  // Recorded in one transaction that re-checks the roster: a member removed since the check
  // above never gets this certificate (it is signed, but it leaves certd only after the commit,
  // and groupd refuses a serial that is not recorded).
  Status st = store_->RecordIssuedCertificate(record);
  if (!st.ok() && st.error().code == errc::kNotAMember) {
    call.reason = "removed while issuing";
    return Fail(call, 403, errc::kNotAMember, "not a member of this group");
  }
  if (!st.ok()) return StoreDown(call, st.error());
  // certd's audit links member and serial; groupd's audit for path G sees only the serial.
  call.reason = "serial:" + info.serial_hex;

  json out = {{"certificate", crypto::ToPem("CERTIFICATE", cert->Der())},
              {"serial", info.serial_hex},
              {"not_after", info.not_after}};
  if (generated) {
    auto p12 = crypto::ExportPkcs12(*generated, *cert, profile.common_name, passphrase);
    std::fill(passphrase.begin(), passphrase.end(), '\0');
    if (!p12.ok()) return Internal(call, "PKCS#12 export failed", p12.error());
    out["pkcs12"] = Base64Encode(*p12);
  }
  return HttpResponse::Json(201, out.dump());
}

std::optional<HttpResponse> CertService::Charge(Call& call, double cost) {
  int retry = limiter_.Acquire(call.rate_key, cost);
  if (retry == 0) return std::nullopt;
  return RateLimited(call, retry, "caller");
}

void CertService::AuditRefusal(const HttpRequest& req, const HttpResponse& resp) {
  std::vector<std::string> parts = SplitPath(req.path);
  std::string group;
  std::string operation = "refused";
  if (parts.size() == 4 && parts[0] == "v1" && parts[1] == "groups" && parts[3] == "certificates") {
    group = parts[2];
    operation = "issue";
  } else if (parts.size() == 2 && parts[0] == "v1" && (parts[1] == "crl" || parts[1] == "ca")) {
    operation = parts[1];
  }
  json body = json::parse(resp.body, nullptr, false);
  std::string result =
      api::StringField(body, "error").value_or("http-" + std::to_string(resp.status));
  refusals_.Count("ip:" + api::AddressBucket(req.peer_address), group, operation, result);
  metrics.Increment("certd_requests_total", {{"operation", "refused"}, {"result", result}});
  metrics.Increment("certd_refused_total", {{"result", result}});
}

HttpResponse CertService::Crl(Call& call) {
  auto revoked = store_->ListRevokedCertificates();
  if (!revoked.ok()) return StoreDown(call, revoked.error());
  std::vector<std::pair<std::string, std::int64_t>> entries;
  entries.reserve(revoked->size());
  for (const auto& r : *revoked) entries.emplace_back(r.serial_hex, r.revoked_at);
  auto crl = crypto::MakeCrl(ca_cert_, ca_key_, entries, config_.crl_next_update_seconds);
  if (!crl.ok()) return Internal(call, "CRL generation failed", crl.error());
  HttpResponse r;
  r.content_type = "application/pkix-crl";
  r.body.assign(AsChars(*crl));
  return r;
}

}  // namespace blindlist::certd
