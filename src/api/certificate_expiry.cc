#include "api/certificate_expiry.h"

#include "crypto/keys.h"
#include "crypto/x509.h"

namespace blindlist::api {
namespace {

// A Prometheus label value: backslash, double quote and newline escaped.
std::string LabelValue(const std::string& v) {
  std::string out;
  for (char c : v) {
    if (c == '\\' || c == '"') out += '\\';
    if (c == '\n') {
      out += "\\n";
      continue;
    }
    out += c;
  }
  return out;
}

}  // namespace

std::string RenderCertificateExpiry(const std::string& prefix,
                                    const std::vector<WatchedCertificate>& certificates,
                                    std::int64_t now) {
  const std::string expiry = prefix + "_certificate_expiry_seconds";
  const std::string unreadable = prefix + "_certificate_unreadable";
  std::string values;
  std::string errors;
  for (const WatchedCertificate& w : certificates) {
    if (w.path.empty() && w.der.empty()) continue;
    auto cert =
        w.path.empty() ? crypto::Certificate::Load(w.der) : crypto::Certificate::LoadFile(w.path);
    const std::string labels = "{certificate=\"" + LabelValue(w.kind) + "\",name=\"" +
                               LabelValue(w.name.empty() ? w.path : w.name) + "\"}";
    if (!cert.ok()) {
      errors += unreadable + labels + " 1\n";
      continue;
    }
    const std::int64_t not_after = crypto::DescribeCertificate(*cert).not_after;
    values += expiry + labels + " " + std::to_string(not_after - now) + "\n";
  }
  std::string out;
  if (!values.empty()) {
    out += "# HELP " + expiry + " Seconds until the certificate's notAfter (negative: expired).\n";
    out += "# TYPE " + expiry + " gauge\n" + values;
  }
  if (!errors.empty()) {
    out += "# HELP " + unreadable + " 1 for a configured certificate that cannot be read.\n";
    out += "# TYPE " + unreadable + " gauge\n" + errors;
  }
  return out;
}

}  // namespace blindlist::api
