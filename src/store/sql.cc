#include "store/sql.h"

#include <utility>

#include "blindlist/error_codes.h"

namespace blindlist::store::sql {

Lease::~Lease() {
  if (pool_ != nullptr && connection_ != nullptr) pool_->Release(connection_);
}

std::string ForDialect(std::string_view sql, Dialect dialect) {
  struct Token {
    std::string_view name;
    std::string_view sqlite;
    std::string_view postgres;
  };
  static constexpr Token kTokens[] = {
      {"{BLOB}", "BLOB", "BYTEA"},
      {"{ID_PK}", "INTEGER PRIMARY KEY AUTOINCREMENT", "BIGSERIAL PRIMARY KEY"},
  };
  std::string out;
  out.reserve(sql.size());
  std::size_t i = 0;
  while (i < sql.size()) {
    bool replaced = false;
    if (sql[i] == '{') {
      for (const Token& t : kTokens) {
        if (sql.substr(i, t.name.size()) == t.name) {
          out += dialect == Dialect::kSqlite ? t.sqlite : t.postgres;
          i += t.name.size();
          replaced = true;
          break;
        }
      }
    }
    if (!replaced) out.push_back(sql[i++]);
  }
  return out;
}

namespace {

// Length of the well-formed UTF-8 sequence at s[i] (no overlongs, no
// surrogates, nothing above U+10FFFF, no NUL), or 0 if there is none.
std::size_t Utf8SequenceLength(std::string_view s, std::size_t i) {
  const auto byte = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = byte(i);
  if (c == 0) return 0;
  if (c < 0x80) return 1;
  struct Lead {
    unsigned char mask, value;
    std::size_t length;
    std::uint32_t min;
  };
  static constexpr Lead kLeads[] = {
      {0xE0, 0xC0, 2, 0x80}, {0xF0, 0xE0, 3, 0x800}, {0xF8, 0xF0, 4, 0x10000}};
  std::size_t n = 0;
  std::uint32_t cp = 0;
  std::uint32_t min = 0;
  for (const Lead& lead : kLeads) {
    if ((c & lead.mask) == lead.value) {
      n = lead.length;
      cp = c & static_cast<unsigned char>(~lead.mask);
      min = lead.min;
      break;
    }
  }
  if (n == 0) return 0;
  if (i + n > s.size()) return 0;
  for (std::size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (byte(i + k) & 0x3F);
  }
  if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return 0;
  return n;
}

}  // namespace

bool IsValidText(std::string_view s) {
  for (std::size_t i = 0; i < s.size();) {
    const std::size_t n = Utf8SequenceLength(s, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string SanitizeText(std::string_view s, std::size_t max_chars) {
  static constexpr std::string_view kReplacement = "\xEF\xBF\xBD";  // U+FFFD
  std::string out;
  out.reserve(s.size() < max_chars * 4 ? s.size() : max_chars * 4);
  std::size_t chars = 0;
  for (std::size_t i = 0; i < s.size() && chars < max_chars; ++chars) {
    const std::size_t n = Utf8SequenceLength(s, i);
    if (n == 0) {
      out += kReplacement;
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

Status CheckParams(const Params& params) {
  for (const Value& v : params) {
    if (const auto* text = std::get_if<std::string>(&v); text != nullptr && !IsValidText(*text)) {
      return MakeError("invalid-argument", "text is not valid UTF-8 or contains a NUL byte");
    }
  }
  return Status::Ok();
}

std::int64_t AsInt(const Value& v) {
  if (const auto* i = std::get_if<std::int64_t>(&v)) return *i;
  return 0;
}

std::string AsText(const Value& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  return {};
}

Bytes AsBlob(const Value& v) {
  if (const auto* b = std::get_if<Bytes>(&v)) return *b;
  if (const auto* s = std::get_if<std::string>(&v)) return ToBytes(*s);
  return {};
}

Error StoreError(std::string message) { return MakeError("store-error", std::move(message)); }

Error UnavailableError(std::string message) {
  return MakeError(std::string(errc::kStoreUnavailable), std::move(message));
}

Result<std::unique_ptr<ConnectionPool>> OpenPool(const std::string& url) {
  const std::string_view u = url;
  Result<std::unique_ptr<ConnectionPool>> pool =
      MakeError(std::string(errc::kBadUrl),
                "the store URL must start with sqlite:, postgresql:// or postgres://");
  if (u.starts_with("sqlite:")) {
    pool = OpenSqlitePool(std::string(u.substr(7)));
  } else if (u.starts_with("postgresql://") || u.starts_with("postgres://")) {
    // libpq reads the URL itself; it is never echoed, since it may carry a password.
    pool = OpenPostgresPool(url);
  }
  if (!pool.ok()) {
    const Error& e = pool.error();
    if (e.code == errc::kBadUrl || e.code == errc::kStoreUnavailable) return e;
    return UnavailableError(e.message);
  }
  return pool;
}

std::string AsciiLower(std::string_view s) {
  std::string out(s);
  for (char& ch : out) {
    if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
  }
  return out;
}

}  // namespace blindlist::store::sql
