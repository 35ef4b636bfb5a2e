// The group server's request handling: routing, authentication, membership
// checks, the reading-path operations, administration, audit and rate limits.
// Every request reads the roster from the store: nothing about membership is
// cached, so a removal takes effect on the very next request, on every node.
// Audit records are group-committed (AuditWriter): a response waits for its own
// record's commit, shared with the records of concurrent requests, but no thread
// waits for it: the answer is sent from the commit's completion.
// Thread-safety: Handle() is called concurrently from the server's threads.
#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>

#include "api/audit_tally.h"
#include "api/metrics_access.h"
#include "api/rate_limiter.h"
#include "api/route_table.h"
#include "audit_writer.h"
#include "config.h"
#include "crypto/keys.h"
#include "key_ring.h"
#include "member_certificates.h"
#include "net/https_server.h"
#include "obs/metrics.h"
#include "store/store.h"

namespace blindlist::groupd {

struct OperationContext;
struct ItemOutcome;

class GroupService {
 public:
  // `ca_cert`/`ca_key`: the deployment CA that signs group certificates (absent:
  // groups can only be created with a CSR). `membership_ca`: certd's CA (absent: path G is off).
  GroupService(const Config& config, std::unique_ptr<store::Store> store, GroupKeyRing* ring,
               std::optional<crypto::Certificate> ca_cert, std::optional<crypto::PrivateKey> ca_key,
               std::optional<crypto::Certificate> membership_ca);
  // Commits the audit records still queued, answering their requests, while
  // everything their answers touch (metrics, limits) still exists.
  ~GroupService();
  GroupService(const GroupService&) = delete;
  GroupService& operator=(const GroupService&) = delete;

  // Answers through `respond` once the request's audit record is committed (on
  // the audit writer's thread), or at once for what is not audited.
  void Handle(const net::HttpRequest& request, net::HttpResponder respond);
  // Counts a request that the HTTPS layer refused before Handle() (413, 431, 400, too
  // many connections) in the metrics and the aggregated refusal audit. Cheap: it runs
  // on an I/O thread and writes nothing itself.
  void AuditRefusal(const net::HttpRequest& request, const net::HttpResponse& response);
  void UpdateLimits(const Config& config) {
    limiter_.Update(config.common.rate_per_second, config.common.rate_burst);
    address_limiter_.Update(config.common.rate_per_second * config.common.address_rate_factor,
                            config.common.rate_burst * config.common.address_rate_factor);
  }
  store::Store& store() { return *store_; }

  struct Call;    // one request in flight: who, what, for the audit
  struct Target;  // what a route found in its path: the group, the other parameters

 private:
  struct Handlers;     // one per endpoint, in the route table (service.cc)
  struct DkgHandlers;  // the key generation's rounds (threshold_dkg.h)
  using RouteHandler = net::HttpResponse (*)(GroupService&, const net::HttpRequest&, Call&,
                                             const Target&);
  static const api::RouteTable<RouteHandler>& Routes();

 private:
  net::HttpResponse Route(const net::HttpRequest& req, Call& call);
  // Takes `cost` units from the caller's bucket (call.rate_key: the verified
  // credential, else the peer address); the 429 refusing the request if it cannot.
  std::optional<net::HttpResponse> Charge(Call& call, double cost);
  Status WriteAudit(const Call& call);  // blocks until committed
  static store::AuditRecord AuditRecordOf(const Call& call);
  // /metrics: seconds until notAfter of the TLS, CA and current group certificates
  // (certificate_metrics.cc).
  std::string CertificateMetrics();
  // Charges failed authentications, records the metrics, answers.
  void Finish(const Call& call, net::HttpResponse resp, const std::string& peer,
              std::chrono::steady_clock::time_point start, const net::HttpResponder& respond);
  // Operations (paths in DESIGN.md)
  net::HttpResponse Operation(const net::HttpRequest& req, Call& call, const store::Group& group,
                              const std::string& op);
  ItemOutcome RunItem(Call& call, const store::Group& group, const std::string& op,
                      const nlohmann::json& item, OperationContext& ctx);
  net::HttpResponse Bulk(const net::HttpRequest& req, Call& call, const store::Group& group);
  // The exploder's per-member re-wrap: one unwrap, one RecipientInfo per current member.
  net::HttpResponse RewrapMembers(const net::HttpRequest& req, Call& call,
                                  const store::Group& group);
  net::HttpResponse Secrets(const net::HttpRequest& req, Call& call, const store::Group& group);
  net::HttpResponse PublicCertificate(Call& call, const std::string& group_name);
  // Threshold groups (docs/threshold.md): this node's d_i·B with its DLEQ proof (one point, or
  // `bulk`: an array of them, each answered as the single route would), and the creation of
  // the group on this node with its one share.
  net::HttpResponse ThresholdEvaluate(const net::HttpRequest& req, Call& call,
                                      const store::Group& group, bool bulk);
  const store::GroupKey* ThresholdRow(const std::vector<store::GroupKey>& keys,
                                      const nlohmann::json& body, Call& call,
                                      net::HttpResponse& refusal);
  Result<std::string> BatchEvaluate(const nlohmann::json& items, const ThresholdShareRecord& record,
                                    nlohmann::json& results, int& failures);
  net::HttpResponse RefreshShare(const net::HttpRequest& req, Call& call,
                                 const store::Group& group);
  net::HttpResponse CreateThresholdGroup(Call& call, nlohmann::json& body, const std::string& name);
  // What a threshold creation stores, from a dealer's share or a key generation's: the group with
  // its one key version (the share sealed with the commitments, and the group certificate: the
  // one given, whose key must be C_0, or else issued here for C_0) and its group secret.
  net::HttpResponse StoreThresholdGroup(Call& call, const std::string& name,
                                        const crypto::threshold::Share& share,
                                        const std::vector<Bytes>& commitments,
                                        const std::optional<std::string>& certificate_pem);
  std::optional<net::HttpResponse> ThresholdShareOf(Call& call, nlohmann::json& body,
                                                    const std::string& name,
                                                    crypto::threshold::Share& share,
                                                    std::vector<Bytes>& commitments);
  // Share repair (docs/threshold.md, "Node replacement"): the helpers' three steps, the new
  // node's first step, and its share from the enrollment that `POST /v1/groups` carries.
  struct RepairHelper {
    ThresholdShareRecord record;
    std::string round;
    std::uint8_t target = 0;
    std::vector<std::uint8_t> helpers;
    Bytes new_key;
    std::map<std::uint8_t, Bytes> keys;  // every helper's verified round key
    SecretBytes round_scalar;            // this node's, from "state"
  };
  std::optional<net::HttpResponse> RepairHelperSetUp(const nlohmann::json& body, Call& call,
                                                     const store::Group& group, RepairHelper& out);
  std::optional<net::HttpResponse> RepairHelperKeys(nlohmann::json& body, Call& call,
                                                    const store::Group& group, RepairHelper& h);
  net::HttpResponse RepairKey(const net::HttpRequest& req, Call& call, const store::Group& group);
  net::HttpResponse RepairSplit(const net::HttpRequest& req, Call& call, const store::Group& group);
  net::HttpResponse RepairSum(const net::HttpRequest& req, Call& call, const store::Group& group);
  net::HttpResponse EnrollStart(const net::HttpRequest& req, Call& call);
  std::optional<net::HttpResponse> EnrolledShare(Call& call, nlohmann::json& enrollment,
                                                 const std::string& name, int k, int n,
                                                 const std::vector<Bytes>& commitments,
                                                 crypto::threshold::Share& out);
  net::HttpResponse DeleteGroup(Call& call, const store::Group& group);
  // Administration
  std::optional<net::HttpResponse> AuthenticateAdmin(const net::HttpRequest& req, Call& call);
  net::HttpResponse CreateGroup(const net::HttpRequest& req, Call& call);
  net::HttpResponse AuditLog(const net::HttpRequest& req, Call& call, const std::string& group);
  // A rotation: the next key version, stored with the older ones retired in one transaction.
  net::HttpResponse NewKeyVersion(Call& call, const store::Group& group,
                                  const std::string& key_type, bool csr);
  net::HttpResponse NewSecretVersion(Call& call, const store::Group& group);
  // A key version made and sealed for `version` of group `group_name`, not stored yet: `row` and
  // `out` (the answer's "certificate" or "csr") filled in; or the response refusing it.
  std::optional<net::HttpResponse> PrepareKeyVersion(Call& call, const std::string& group_name,
                                                     const std::string& key_type, bool csr,
                                                     int version, store::GroupKey& row,
                                                     nlohmann::json& out);
  // A fresh group secret, sealed, not stored yet.
  std::optional<net::HttpResponse> PrepareSecretVersion(Call& call, const std::string& group_name,
                                                        store::GroupSecretVersion& row);

  Config config_;
  std::unique_ptr<store::Store> store_;
  AuditWriter audit_;  // after store_: destroyed (drained) before it
  MemberCertificateCache member_certificates_;
  GroupKeyRing* ring_;
  std::optional<crypto::Certificate> ca_cert_;
  std::optional<crypto::PrivateKey> ca_key_;
  std::optional<crypto::Certificate> membership_ca_;
  api::RateLimiter limiter_;          // per caller, charged by the cost of the work
  api::RateLimiter address_limiter_;  // per peer address, one unit per request, before auth
  api::AuditTally refusals_;          // after audit_: stopped (flushed into it) before it

 public:
  net::Metrics metrics;
  // Who may read /metrics ([metrics] token_file); loaded by main, at start and on SIGHUP.
  api::MetricsAccess metrics_access;
};

}  // namespace blindlist::groupd
