// What groupd and certd do with every answer they give, whatever the route: a failed
// authentication is charged to the peer's address, a refusal for rate is counted by bucket, and
// every request is counted by operation and result and timed.
// Thread-safety: as RateLimiter and net::Metrics (safe concurrently).
#pragma once

#include <chrono>
#include <exception>
#include <string>
#include <string_view>

#include "api/rate_limiter.h"
#include "blindlist/error_codes.h"
#include "obs/log.h"
#include "obs/metrics.h"

namespace blindlist::api {

// route(), the answer to one request. Every field of a request is checked before it is read,
// so an exception is the daemon's own fault, never the caller's: it is logged with the
// operation (call.operation) and answered fail(call, 500, "internal", ...), the detail in the
// log only.
template <typename Call, typename RouteFn, typename FailFn>
auto AnswerOrInternalError(Call& call, RouteFn&& route, FailFn&& fail) -> decltype(route()) {
  try {
    return route();
  } catch (const std::exception& e) {
    net::Log(net::LogLevel::kError, "request failed",
             {{"operation", call.operation}, {"what", e.what()}});
    return fail(call, 500, errc::kInternal, "internal server error");
  }
}

struct RequestOutcome {
  int status = 0;
  std::string_view operation;
  std::string_view result;
  std::string_view limited_by;  // the bucket of a 429
};

// `daemon` names the metrics ("groupd" -> groupd_requests_total, groupd_rate_limited_total,
// groupd_request_duration_seconds). A 401 or 403 takes one unit of "fail:ADDRESS-BUCKET" from
// `limiter`, so fresh bogus credentials on every request cannot dodge the per-caller limit.
void RecordRequest(std::string_view daemon, RateLimiter& limiter, net::Metrics& metrics,
                   const std::string& peer, const RequestOutcome& outcome,
                   std::chrono::steady_clock::time_point start);

}  // namespace blindlist::api
