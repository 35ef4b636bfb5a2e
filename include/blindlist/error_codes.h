// Error codes that one module gives and another compares (Error::code, and the
// "error" word of the HTTP API, docs/api.md). A code compared across modules is
// named here once, so a typo is a compile error instead of a branch never taken.
// Thread-safety: constants only.
#pragma once

#include <string_view>

namespace blindlist::errc {

// ---- the store (src/store) ----
inline constexpr std::string_view kExists = "exists";
inline constexpr std::string_view kNotFound = "not-found";
inline constexpr std::string_view kStoreUnavailable = "store-unavailable";
inline constexpr std::string_view kBadUrl = "bad-url";  // also the HTTPS client's (src/net)
inline constexpr std::string_view kNotAMember = "not-a-member";  // also an HTTP refusal (403)
inline constexpr std::string_view kConflict = "conflict";        // also an HTTP refusal (409)
// Another member of the group has registered this certificate (also an HTTP refusal, 409).
inline constexpr std::string_view kCertificateInUse = "certificate-in-use";

// ---- crypto (src/crypto) ----
inline constexpr std::string_view kCrypto = "crypto";  // an OpenSSL failure: ours, not the input's
inline constexpr std::string_view kMalformedDer = "malformed-der";
inline constexpr std::string_view kUnwrapFailed = "unwrap-failed";  // also an HTTP refusal (400)
inline constexpr std::string_view kNoRecipient = "no-recipient";
inline constexpr std::string_view kTampered = "tampered";
inline constexpr std::string_view kBadPoint = "bad-point";
inline constexpr std::string_view kExpired = "expired";
inline constexpr std::string_view kNotYetValid = "not-yet-valid";
inline constexpr std::string_view kBadSignature = "bad-signature";
inline constexpr std::string_view kUnsupportedKey = "unsupported-key";
// The CMS is another content type than (Auth)EnvelopedData (e.g. a signature).
inline constexpr std::string_view kNotEnveloped = "not-enveloped";

// ---- the network clients (src/net): a failure to reach a server, never its answer ----
inline constexpr std::string_view kConnectFailed = "connect-failed";
inline constexpr std::string_view kTimeout = "timeout";
inline constexpr std::string_view kTlsFailed = "tls-failed";

// ---- MIME (src/mime) and the spool (src/spool) ----
inline constexpr std::string_view kMalformedMessage = "malformed-message";
inline constexpr std::string_view kSpoolInvalidId = "spool-invalid-id";
inline constexpr std::string_view kSpoolAlreadyActive = "spool-already-active";

// ---- listd (daemons/listd): its intake and per-member planning ----
// The post itself is at fault (permanent), never a reason to wait and try again.
inline constexpr std::string_view kUnparseable = "unparseable";

// ---- the HTTP API (daemons, api::ApiClient) ----
inline constexpr std::string_view kInternal = "internal";  // 500: logged, never detailed
inline constexpr std::string_view kMalformedJson = "malformed-json";
inline constexpr std::string_view kMalformedRequest = "malformed-request";
inline constexpr std::string_view kRateLimited = "rate-limited";
inline constexpr std::string_view kBadReply = "bad-reply";  // a 2xx answer the client cannot use
// A member's status in groupd's rewrap/members answer (an address no longer on the roster).
inline constexpr std::string_view kNotMember = "not-member";

// ---- the blindlist command ----
inline constexpr std::string_view kTempFail = "tempfail";  // exit 75 (EX_TEMPFAIL): try later

}  // namespace blindlist::errc
