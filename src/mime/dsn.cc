// DSN parsing: GMime finds the report and decodes the status part (any transfer encoding); the
// status fields themselves (RFC 3464 section 2) are read here, as they are not a message header.

#include "mime/dsn.h"

#include <gmime/gmime.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <ctime>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "mime/gmime_support.h"

namespace blindlist::mime {
namespace {

// A report with more recipient groups than this is refused rather than read.
constexpr std::size_t kMaxRecipients = 10'000;

char AsciiLower(char c) { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c; }

std::string Lowercase(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = AsciiLower(c);
  return out;
}

bool EqualsIgnoreCase(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (AsciiLower(a[i]) != AsciiLower(b[i])) return false;
  }
  return true;
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

std::string_view Trim(std::string_view text) {
  while (!text.empty() && IsSpace(text.front())) text.remove_prefix(1);
  while (!text.empty() && IsSpace(text.back())) text.remove_suffix(1);
  return text;
}

// The first whitespace- or comment-delimited token: "5.1.1 (unknown)" -> "5.1.1".
std::string_view FirstToken(std::string_view text) {
  text = Trim(text);
  const std::size_t end = text.find_first_of(" \t(");
  return text.substr(0, end);
}

// "rfc822; bob@example.net" -> "bob@example.net"; "smtp; 550 ..." -> "550 ...".
std::string_view AfterType(std::string_view value) {
  const std::size_t semi = value.find(';');
  return Trim(semi == std::string_view::npos ? value : value.substr(semi + 1));
}

Error NotADsn(std::string message) { return MakeError("not-a-dsn", std::move(message)); }
Error Malformed(std::string message) { return MakeError("malformed-dsn", std::move(message)); }

struct Field {
  std::string name;   // lowercased
  std::string value;  // unfolded, trimmed
};
using FieldGroup = std::vector<Field>;

// Splits the status part into blank-line separated groups of (unfolded) fields.
Result<std::vector<FieldGroup>> SplitGroups(std::string_view text) {
  std::vector<FieldGroup> groups(1);
  while (!text.empty()) {
    std::size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text = nl == std::string_view::npos ? std::string_view() : text.substr(nl + 1);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (Trim(line).empty()) {
      if (!groups.back().empty()) groups.emplace_back();
      if (groups.size() > kMaxRecipients + 2) return Malformed("too many recipient groups");
      continue;
    }
    if (line.front() == ' ' || line.front() == '\t') {
      if (groups.back().empty()) return Malformed("a continuation line with no field before it");
      std::string& value = groups.back().back().value;
      value.push_back(' ');
      value.append(Trim(line));
      continue;
    }
    const std::size_t colon = line.find(':');
    if (colon == std::string_view::npos || colon == 0) {
      return Malformed("status line without a field name: " + std::string(line.substr(0, 60)));
    }
    groups.back().push_back(
        Field{Lowercase(Trim(line.substr(0, colon))), std::string(Trim(line.substr(colon + 1)))});
  }
  if (groups.back().empty()) groups.pop_back();
  return groups;
}

const std::string* Find(const FieldGroup& group, std::string_view name) {
  for (const Field& f : group) {
    if (f.name == name) return &f.value;
  }
  return nullptr;
}

Result<DsnRecipient> ReadRecipient(const FieldGroup& group, std::size_t n) {
  const std::string which = "recipient group " + std::to_string(n);
  const std::string* final_recipient = Find(group, "final-recipient");
  if (final_recipient == nullptr) return Malformed(which + " has no Final-Recipient");
  const std::string* action = Find(group, "action");
  if (action == nullptr) return Malformed(which + " has no Action");

  DsnRecipient out;
  std::string_view address = AfterType(*final_recipient);
  if (address.size() >= 2 && address.front() == '<' && address.back() == '>') {
    address = Trim(address.substr(1, address.size() - 2));
  }
  if (address.empty()) return Malformed(which + " has an empty Final-Recipient");
  out.final_recipient = std::string(address);
  out.action = Lowercase(FirstToken(*action));
  if (out.action != "failed" && out.action != "delayed" && out.action != "delivered" &&
      out.action != "relayed" && out.action != "expanded") {
    return Malformed(which + " has an unknown Action '" + out.action + "'");
  }
  if (const std::string* status = Find(group, "status"))
    out.status = std::string(FirstToken(*status));
  if (const std::string* diag = Find(group, "diagnostic-code")) {
    out.diagnostic = std::string(AfterType(*diag));
  }
  return out;
}

// The decoded bytes of a leaf part.
Result<std::string> PartContent(GMimeObject* object) {
  if (!GMIME_IS_PART(object)) return Malformed("the delivery-status part is not a leaf part");
  GMimeDataWrapper* content = g_mime_part_get_content(GMIME_PART(object));
  if (content == nullptr) return std::string();
  GObjectPtr<GMimeStream> out(g_mime_stream_mem_new());
  if (g_mime_data_wrapper_write_to_stream(content, out.get()) < 0) {
    return Malformed("cannot decode the delivery-status part");
  }
  GByteArray* bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(out.get()));
  return std::string(reinterpret_cast<const char*>(bytes->data), bytes->len);
}

}  // namespace

Result<std::vector<DsnRecipient>> ParseDsn(std::string_view message) {
  EnsureGMimeInitialised();
  GObjectPtr<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(message.data(), message.size()));
  GObjectPtr<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
  g_mime_parser_set_format(parser.get(), GMIME_FORMAT_MESSAGE);
  GObjectPtr<GMimeMessage> parsed(g_mime_parser_construct_message(parser.get(), nullptr));
  if (!parsed) return NotADsn("not an RFC 5322 message");
  GMimeObject* body = g_mime_message_get_mime_part(parsed.get());
  if (body == nullptr) return NotADsn("the message has no body");

  GMimeContentType* type = g_mime_object_get_content_type(body);
  if (type == nullptr || !g_mime_content_type_is_type(type, "multipart", "report")) {
    return NotADsn("not a multipart/report");
  }
  const char* report_type = g_mime_content_type_get_parameter(type, "report-type");
  if (report_type == nullptr || (!EqualsIgnoreCase(report_type, "delivery-status") &&
                                 !EqualsIgnoreCase(report_type, "global-delivery-status"))) {
    return NotADsn(std::string("a report of type '") + (report_type == nullptr ? "" : report_type) +
                   "', not delivery-status");
  }
  if (!GMIME_IS_MULTIPART(body)) return Malformed("the report is not a multipart");

  GMimeMultipart* report = GMIME_MULTIPART(body);
  GMimeObject* status_part = nullptr;
  for (int i = 0; i < g_mime_multipart_get_count(report); ++i) {
    GMimeObject* part = g_mime_multipart_get_part(report, i);
    GMimeContentType* part_type = g_mime_object_get_content_type(part);
    if (part_type != nullptr &&
        (g_mime_content_type_is_type(part_type, "message", "delivery-status") ||
         g_mime_content_type_is_type(part_type, "message", "global-delivery-status"))) {
      status_part = part;
      break;
    }
  }
  if (status_part == nullptr) return Malformed("the report has no message/delivery-status part");

  BL_TRY_ASSIGN(const std::string text, PartContent(status_part));
  BL_TRY_ASSIGN(const std::vector<FieldGroup> groups, SplitGroups(text));
  // The first group is about the message (Reporting-MTA, ...); each later one is a recipient.
  // Some MTAs leave the message group out: then the first group is already a recipient.
  const std::size_t first =
      !groups.empty() && Find(groups[0], "final-recipient") != nullptr ? 0 : 1;
  if (groups.size() <= first) return Malformed("the delivery-status part names no recipient");
  std::vector<DsnRecipient> recipients;
  recipients.reserve(groups.size() - first);
  for (std::size_t i = first; i < groups.size(); ++i) {
    BL_TRY_ASSIGN(DsnRecipient r, ReadRecipient(groups[i], i));
    recipients.push_back(std::move(r));
  }
  return recipients;
}

namespace {

constexpr std::size_t kMaxReturnedHeaders = std::size_t{16} * 1024;
constexpr std::size_t kMaxFieldChars = 900;

// One line of printable ASCII: controls (CR, LF among them) become spaces, bytes >= 0x80 '?'.
std::string OneLine(std::string_view text) {
  std::string out;
  for (char c : text.substr(0, kMaxFieldChars)) {
    const auto u = static_cast<unsigned char>(c);
    out += u < 0x20 || u == 0x7f ? ' ' : (u >= 0x80 ? '?' : c);
  }
  return std::string(Trim(out));
}

bool IsStatusCode(std::string_view s) {
  // class "." subject "." detail, RFC 3463: 2/4/5, then 1-3 and 1-3 digits.
  if (s.size() < 5 || (s[0] != '2' && s[0] != '4' && s[0] != '5') || s[1] != '.') return false;
  std::size_t dots = 0;
  std::size_t digits = 0;
  for (std::size_t i = 2; i < s.size(); ++i) {
    if (s[i] == '.') {
      if (digits == 0 || digits > 3) return false;
      ++dots;
      digits = 0;
    } else if (s[i] >= '0' && s[i] <= '9') {
      ++digits;
    } else {
      return false;
    }
  }
  return dots == 1 && digits >= 1 && digits <= 3;
}

std::string RfcDate(std::int64_t when) {
  const std::time_t t = static_cast<std::time_t>(when);
  std::tm tm{};
  gmtime_r(&t, &tm);
  static constexpr const char* kDays[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
  static constexpr const char* kMonths[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                            "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  char buf[64];
  std::snprintf(buf, sizeof(buf), "%s, %02d %s %04d %02d:%02d:%02d +0000", kDays[tm.tm_wday],
                tm.tm_mday, kMonths[tm.tm_mon], tm.tm_year + 1900, tm.tm_hour, tm.tm_min,
                tm.tm_sec);
  return buf;
}

// The header section (up to the first empty line), whole lines only, CRLF.
std::string HeaderSection(std::string_view message) {
  std::string out;
  std::size_t pos = 0;
  while (pos < message.size()) {
    std::size_t nl = message.find('\n', pos);
    std::string_view line = message.substr(pos, nl == std::string_view::npos ? nl : nl - pos);
    pos = nl == std::string_view::npos ? message.size() : nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) break;
    if (out.size() + line.size() + 2 > kMaxReturnedHeaders) break;
    for (char c : line) out += c == '\r' ? ' ' : c;
    out += "\r\n";
  }
  return out;
}

std::atomic<std::uint64_t> boundary_counter{0};

}  // namespace

std::string MakeDsn(const DsnFailure& f) {
  const std::string headers = HeaderSection(f.original_message);
  std::string boundary;
  do {
    boundary = "=_dsn_" + std::to_string(f.date) + "_" + std::to_string(boundary_counter++);
  } while (headers.find(boundary) != std::string::npos);
  const std::string status = IsStatusCode(OneLine(f.status)) ? OneLine(f.status) : "5.0.0";
  const std::string date = RfcDate(f.date);
  std::string m;
  m += "From: " + OneLine(f.from) + "\r\n";
  m += "To: <" + OneLine(f.to) + ">\r\n";
  m += "Subject: Undelivered Mail Returned to Sender\r\n";
  m += "Date: " + date + "\r\n";
  m += "Auto-Submitted: auto-replied\r\n";
  m += "MIME-Version: 1.0\r\n";
  m += "Content-Type: multipart/report; report-type=delivery-status;\r\n boundary=\"" + boundary +
       "\"\r\n\r\n";
  m += "--" + boundary + "\r\nContent-Type: text/plain; charset=us-ascii\r\n\r\n";
  m += OneLine(f.explanation) + "\r\n\r\n";
  m += "--" + boundary + "\r\nContent-Type: message/delivery-status\r\n\r\n";
  m += "Reporting-MTA: dns; " + OneLine(f.reporting_mta) + "\r\n";
  m += "Arrival-Date: " + date + "\r\n\r\n";
  m += "Final-Recipient: rfc822; " + OneLine(f.final_recipient) + "\r\n";
  m += "Action: failed\r\n";
  m += "Status: " + status + "\r\n";
  if (!f.remote_mta.empty()) m += "Remote-MTA: dns; " + OneLine(f.remote_mta) + "\r\n";
  if (!f.diagnostic.empty()) m += "Diagnostic-Code: smtp; " + OneLine(f.diagnostic) + "\r\n";
  m += "\r\n--" + boundary + "\r\nContent-Type: text/rfc822-headers\r\n\r\n";
  m += headers;
  m += "\r\n--" + boundary + "--\r\n";
  return m;
}

}  // namespace blindlist::mime
