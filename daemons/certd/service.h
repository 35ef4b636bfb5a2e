// certd's request handling: issue short-lived pseudonymous membership
// certificates to authenticated current members, and publish the CRL.
// Thread-safety: Handle() is called concurrently from the server's threads.
#pragma once

#include <memory>

#include "api/rate_limiter.h"
#include "config.h"
#include "crypto/keys.h"
#include "net/https_server.h"
#include "net/metrics.h"
#include "store/store.h"

namespace blindlist::certd {

class CertService {
 public:
  CertService(const Config& config, std::unique_ptr<store::Store> store,
              crypto::Certificate ca_cert, crypto::PrivateKey ca_key);

  net::HttpResponse Handle(const net::HttpRequest& request);
  void UpdateLimits(const Config& config) {
    limiter_.Update(config.common.rate_per_second, config.common.rate_burst);
  }
  store::Store& store() { return *store_; }

  struct Call;

 private:
  net::HttpResponse Route(const net::HttpRequest& req, Call& call);
  net::HttpResponse Issue(const net::HttpRequest& req, Call& call, const std::string& group_name);
  net::HttpResponse Crl(Call& call);

  Config config_;
  std::unique_ptr<store::Store> store_;
  crypto::Certificate ca_cert_;
  crypto::PrivateKey ca_key_;
  api::RateLimiter limiter_;

 public:
  net::Metrics metrics;
};

}  // namespace blindlist::certd
