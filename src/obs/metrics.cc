
#include "obs/metrics.h"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <string_view>

namespace blindlist::net {
namespace {

// Upper bounds of the latency buckets, in seconds, and their le="..." spelling
// (spelled out so the labels stay stable and human-readable).
constexpr std::array<double, 14> kBucketBounds = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05,
                                                  0.1,    0.25,  0.5,    1,     2.5,  5,     10};
constexpr std::array<std::string_view, 14> kBucketLabels = {
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
    "0.1",    "0.25",  "0.5",    "1",     "2.5",  "5",     "10"};

// Metric and label names: [a-zA-Z_:][a-zA-Z0-9_:]* (label names without ':').
std::string SanitizeName(std::string_view name, bool allow_colon) {
  std::string out;
  out.reserve(name.size());
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' ||
              (allow_colon && c == ':') || (c >= '0' && c <= '9' && !out.empty());
    out += ok ? c : '_';
  }
  if (out.empty()) out = "_";
  return out;
}

std::string EscapeLabelValue(std::string_view v) {
  std::string out;
  out.reserve(v.size());
  for (char c : v) {
    switch (c) {
      case '\\':
        out += "\\\\";
        break;
      case '"':
        out += "\\\"";
        break;
      case '\n':
        out += "\\n";
        break;
      default:
        out += c;
    }
  }
  return out;
}

// The canonical label set: sorted by name, so {a,b} and {b,a} are one series.
// Rendered without braces: a="x",b="y".
std::string LabelKey(const std::vector<std::pair<std::string, std::string>>& labels) {
  std::vector<std::pair<std::string, std::string>> sorted = labels;
  std::sort(sorted.begin(), sorted.end());
  std::string out;
  for (const auto& [name, value] : sorted) {
    if (!out.empty()) out += ',';
    out += SanitizeName(name, false);
    out += "=\"";
    out += EscapeLabelValue(value);
    out += '"';
  }
  return out;
}

std::string FormatValue(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  if (v == std::floor(v) && std::fabs(v) < 1e15) {
    return std::to_string(static_cast<long long>(v));
  }
  char buf[64];
  auto [end, ec] = std::to_chars(buf, buf + sizeof buf, v);
  return std::string(buf, end);
}

std::string Braced(const std::string& key) { return key.empty() ? "" : "{" + key + "}"; }

void Header(std::string& out, const std::string& name, std::string_view type) {
  std::string help = name;
  std::replace(help.begin(), help.end(), '_', ' ');
  out += "# HELP " + name + " " + help + "\n";
  out += "# TYPE " + name + " ";
  out += type;
  out += "\n";
}

}  // namespace

void Metrics::Increment(const std::string& name,
                        const std::vector<std::pair<std::string, std::string>>& labels, double by) {
  std::string key = LabelKey(labels);
  std::lock_guard lock(mu_);
  counters_[SanitizeName(name, true)][key] += by;
}

void Metrics::Observe(const std::string& name,
                      const std::vector<std::pair<std::string, std::string>>& labels,
                      double seconds) {
  std::string key = LabelKey(labels);
  std::lock_guard lock(mu_);
  Histogram& h = histograms_[SanitizeName(name, true)][key];
  if (h.counts.empty()) h.counts.assign(kBucketBounds.size(), 0);
  // Stored per bucket (not cumulative); Render accumulates.
  for (std::size_t i = 0; i < kBucketBounds.size(); ++i) {
    if (seconds <= kBucketBounds[i]) {
      h.counts[i] += 1;
      break;
    }
  }
  h.sum += seconds;
  h.count += 1;
}

void Metrics::SetGauge(const std::string& name, double value) {
  std::lock_guard lock(mu_);
  gauges_[SanitizeName(name, true)] = value;
}

std::string Metrics::Render() const {
  std::lock_guard lock(mu_);
  std::string out;
  for (const auto& [name, series] : counters_) {
    Header(out, name, "counter");
    for (const auto& [key, value] : series) {
      out += name + Braced(key) + " " + FormatValue(value) + "\n";
    }
  }
  for (const auto& [name, value] : gauges_) {
    Header(out, name, "gauge");
    out += name + " " + FormatValue(value) + "\n";
  }
  for (const auto& [name, series] : histograms_) {
    Header(out, name, "histogram");
    for (const auto& [key, h] : series) {
      const std::string prefix = key.empty() ? "" : key + ",";
      double cumulative = 0;
      for (std::size_t i = 0; i < kBucketBounds.size(); ++i) {
        cumulative += i < h.counts.size() ? h.counts[i] : 0;
        out.append(name).append("_bucket{").append(prefix).append("le=\"").append(kBucketLabels[i]);
        out.append("\"} ").append(FormatValue(cumulative)).append("\n");
      }
      out.append(name).append("_bucket{").append(prefix).append("le=\"+Inf\"} ");
      out.append(FormatValue(h.count)).append("\n");
      out.append(name)
          .append("_sum")
          .append(Braced(key))
          .append(" ")
          .append(FormatValue(h.sum))
          .append("\n");
      out.append(name)
          .append("_count")
          .append(Braced(key))
          .append(" ")
          .append(FormatValue(h.count))
          .append("\n");
    }
  }
  return out;
}

}  // namespace blindlist::net
