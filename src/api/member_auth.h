// Who is calling, as groupd and certd both need to know: a member of a group,
// identified by a bearer token (stored hashed) or by the client certificate it
// registered (pinned by SHA-256 fingerprint; TLS proved possession of its key).
// Reads the roster on every call: nothing is cached.
// Thread-safety: free functions; the Store is thread-safe.
#pragma once

#include <optional>
#include <string>

#include "blindlist/bytes.h"
#include "net/https_server.h"
#include "store/store.h"

namespace blindlist::api {

struct MemberAuth {
  std::optional<store::Member> member;  // set on success
  // On failure: the HTTP status (401 no or bad credentials, 403 not a member of this
  // group, 503 store down), an error code and message for the JSON error.
  int status = 0;
  std::string code;
  std::string message;
  std::string caller;  // for the audit: the address, or what identifies a stranger
};

MemberAuth AuthenticateMember(store::Store& store, const net::HttpRequest& request,
                              const store::Group& group);

// The bearer token of an "Authorization: Bearer ..." header, or "".
std::string BearerToken(const net::HttpRequest& request);
// What the store keeps of a token: its SHA-256.
Bytes TokenHash(std::string_view token);
// Lowercase hex SHA-256 of a certificate's DER.
std::string CertificateFingerprint(ByteView der);

}  // namespace blindlist::api
