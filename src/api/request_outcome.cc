#include "api/request_outcome.h"

namespace blindlist::api {

void RecordRequest(std::string_view daemon, RateLimiter& limiter, net::Metrics& metrics,
                   const std::string& peer, const RequestOutcome& outcome,
                   std::chrono::steady_clock::time_point start) {
  const std::string prefix(daemon);
  if (outcome.status == 401 || outcome.status == 403)
    (void)limiter.Acquire("fail:" + AddressBucket(peer));
  if (outcome.status == 429)
    metrics.Increment(prefix + "_rate_limited_total",
                      {{"bucket", std::string(outcome.limited_by)}});
  const double seconds =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  metrics.Increment(prefix + "_requests_total", {{"operation", std::string(outcome.operation)},
                                                 {"result", std::string(outcome.result)}});
  metrics.Observe(prefix + "_request_duration_seconds",
                  {{"operation", std::string(outcome.operation)}}, seconds);
}

}  // namespace blindlist::api
