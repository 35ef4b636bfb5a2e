// Prometheus metrics: counters by label set and latency histograms, rendered
// in the text exposition format for /metrics.
// Thread-safety: all methods are safe to call concurrently.
#pragma once

#include <map>
#include <mutex>
#include <string>
#include <vector>

namespace blindlist::net {

class Metrics {
 public:
  // Counter `name` (e.g. "groupd_requests_total") with labels (e.g.
  // {{"operation","unwrap"},{"result","ok"}}).
  void Increment(const std::string& name,
                 const std::vector<std::pair<std::string, std::string>>& labels, double by = 1);
  // Observes a latency in seconds into histogram `name` (buckets 0.5 ms .. 10 s).
  void Observe(const std::string& name,
               const std::vector<std::pair<std::string, std::string>>& labels, double seconds);
  void SetGauge(const std::string& name, double value);
  std::string Render() const;

 private:
  struct Histogram {
    std::vector<double> counts;  // per bucket, cumulative at render time
    double sum = 0;
    double count = 0;
  };
  mutable std::mutex mu_;
  std::map<std::string, std::map<std::string, double>> counters_;       // name -> labels -> value
  std::map<std::string, std::map<std::string, Histogram>> histograms_;  // name -> labels -> hist
  std::map<std::string, double> gauges_;
};

}  // namespace blindlist::net
