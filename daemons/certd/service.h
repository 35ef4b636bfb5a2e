// certd's request handling: issue short-lived pseudonymous membership
// certificates to authenticated current members, and publish the CRL.
// Thread-safety: Handle() is called concurrently from the server's threads.
#pragma once

#include <memory>
#include <optional>

#include "api/audit_tally.h"
#include "api/rate_limiter.h"
#include "api/route_table.h"
#include "config.h"
#include "crypto/keys.h"
#include "net/https_server.h"
#include "obs/metrics.h"
#include "store/store.h"

namespace blindlist::certd {

class CertService {
 public:
  CertService(const Config& config, std::unique_ptr<store::Store> store,
              crypto::Certificate ca_cert, crypto::PrivateKey ca_key);

  net::HttpResponse Handle(const net::HttpRequest& request);
  // Counts a request the HTTPS layer refused (as groupd's GroupService::AuditRefusal).
  void AuditRefusal(const net::HttpRequest& request, const net::HttpResponse& response);
  void UpdateLimits(const Config& config) {
    limiter_.Update(config.common.rate_per_second, config.common.rate_burst);
    address_limiter_.Update(config.common.rate_per_second * config.common.address_rate_factor,
                            config.common.rate_burst * config.common.address_rate_factor);
  }
  store::Store& store() { return *store_; }

  struct Call;

 private:
  struct Handlers;  // one per endpoint, in the route table (service.cc)
  using RouteHandler = net::HttpResponse (*)(CertService&, const net::HttpRequest&, Call&,
                                             const std::vector<std::string>& params);
  static const api::RouteTable<RouteHandler>& Routes();
  net::HttpResponse Route(const net::HttpRequest& req, Call& call);
  net::HttpResponse Issue(const net::HttpRequest& req, Call& call, const std::string& group_name);
  net::HttpResponse Crl(Call& call);
  // Takes `cost` units from call.rate_key's bucket; the 429 if it cannot.
  std::optional<net::HttpResponse> Charge(Call& call, double cost);

  Config config_;
  std::unique_ptr<store::Store> store_;
  crypto::Certificate ca_cert_;
  crypto::PrivateKey ca_key_;
  api::RateLimiter limiter_;          // per caller: the verified member, else the address
  api::RateLimiter address_limiter_;  // per peer address, one unit per request, before auth
  api::AuditTally refusals_;          // 429s and transport refusals, in aggregate

 public:
  net::Metrics metrics;
};

}  // namespace blindlist::certd
