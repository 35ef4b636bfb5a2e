// Per-caller token buckets. A caller is a credential the daemon has verified (a
// member, an administrator, the exploder) or, before or without one, the peer
// address (AddressBucket). Never something the caller merely claims: a made-up
// token must not buy a fresh bucket.
// Thread-safety: all methods are safe to call concurrently.
#pragma once

#include <chrono>
#include <mutex>
#include <string>
#include <unordered_map>

namespace blindlist::api {

// The bucket name of a peer address: the address itself for IPv4, its /64 prefix
// for IPv6 (one host usually holds a whole /64, so single IPv6 addresses are free
// to an attacker). Anything that does not parse is returned as it is.
std::string AddressBucket(const std::string& peer_address);

class RateLimiter {
 public:
  RateLimiter(double per_second, double burst) : per_second_(per_second), burst_(burst) {}

  // Takes `cost` tokens for `caller`. Returns 0 if allowed, otherwise the
  // whole seconds after which the caller may retry (for Retry-After).
  int Acquire(const std::string& caller, double cost = 1) {
    auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(mu_);
    if (buckets_.size() > kMaxCallers) Prune(now);
    auto [it, inserted] = buckets_.try_emplace(caller, Bucket{burst_, now});
    Bucket& b = it->second;
    double elapsed = std::chrono::duration<double>(now - b.last).count();
    b.tokens = std::min(burst_, b.tokens + elapsed * per_second_);
    b.last = now;
    if (b.tokens >= cost) {
      b.tokens -= cost;
      return 0;
    }
    double wait = (cost - b.tokens) / per_second_;
    return static_cast<int>(wait) + 1;
  }

  // Whether `caller` has less than one token left, without taking any.
  bool Exhausted(const std::string& caller) {
    auto now = std::chrono::steady_clock::now();
    std::lock_guard lock(mu_);
    auto it = buckets_.find(caller);
    if (it == buckets_.end()) return false;
    double elapsed = std::chrono::duration<double>(now - it->second.last).count();
    return std::min(burst_, it->second.tokens + elapsed * per_second_) < 1;
  }

  // The most a single Acquire() can ever take: a larger cost is never granted.
  double burst() {
    std::lock_guard lock(mu_);
    return burst_;
  }

  void Update(double per_second, double burst) {
    std::lock_guard lock(mu_);
    per_second_ = per_second;
    burst_ = burst;
  }

 private:
  static constexpr std::size_t kMaxCallers = 100000;
  struct Bucket {
    double tokens;
    std::chrono::steady_clock::time_point last;
  };
  // Drops buckets that have refilled completely: they carry no state.
  void Prune(std::chrono::steady_clock::time_point now) {
    for (auto it = buckets_.begin(); it != buckets_.end();) {
      double elapsed = std::chrono::duration<double>(now - it->second.last).count();
      if (it->second.tokens + elapsed * per_second_ >= burst_) {
        it = buckets_.erase(it);
      } else {
        ++it;
      }
    }
  }

  std::mutex mu_;
  double per_second_;
  double burst_;
  std::unordered_map<std::string, Bucket> buckets_;
};

}  // namespace blindlist::api
