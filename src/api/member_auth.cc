#include "api/member_auth.h"

#include "blindlist/error_codes.h"
#include "crypto/x509.h"

namespace blindlist::api {

std::string BearerToken(const net::HttpRequest& req) {
  std::string auth = req.Header("authorization");
  constexpr std::string_view kPrefix = "Bearer ";
  if (auth.size() <= kPrefix.size() || auth.compare(0, kPrefix.size(), kPrefix) != 0) return "";
  return auth.substr(kPrefix.size());
}

Bytes TokenHash(std::string_view token) { return crypto::Sha256(AsBytes(token)); }

std::string CertificateFingerprint(ByteView der) { return ToHex(crypto::Sha256(der)); }

namespace {
MemberAuth Refuse(int status, std::string code, std::string message, std::string caller) {
  MemberAuth a;
  a.status = status;
  a.code = std::move(code);
  a.message = std::move(message);
  a.caller = std::move(caller);
  return a;
}
}  // namespace

MemberAuth AuthenticateMember(store::Store& st, const net::HttpRequest& req,
                              const store::Group& group) {
  std::string token = BearerToken(req);
  if (!token.empty()) {
    Bytes hash = TokenHash(token);
    auto m = st.FindMemberByTokenHash(group.id, hash);
    if (!m.ok())
      return Refuse(503, std::string(errc::kStoreUnavailable),
                    "the store is unavailable; retry later", "anonymous");
    if (*m) {
      MemberAuth a;
      a.member = **m;
      a.caller = a.member->address;
      return a;
    }
    // A valid token of another group is a member in the wrong place, not a stranger.
    if (auto groups = st.ListGroups(); groups.ok()) {
      for (const auto& other : *groups) {
        if (other.id == group.id) continue;
        auto om = st.FindMemberByTokenHash(other.id, hash);
        if (om.ok() && *om)
          return Refuse(403, std::string(errc::kNotAMember), "not a member of this group",
                        (*om)->address);
      }
    }
    return Refuse(401, "bad-token", "the bearer token is not valid", "anonymous");
  }
  if (!req.peer_certificate_der.empty()) {
    std::string fp = CertificateFingerprint(req.peer_certificate_der);
    auto m = st.FindMemberByCertFingerprint(group.id, fp);
    if (!m.ok())
      return Refuse(503, std::string(errc::kStoreUnavailable),
                    "the store is unavailable; retry later", "anonymous");
    if (*m) {
      MemberAuth a;
      a.member = **m;
      a.caller = a.member->address;
      return a;
    }
    return Refuse(403, std::string(errc::kNotAMember), "not a member of this group",
                  "cert-sha256:" + fp.substr(0, 16));
  }
  return Refuse(401, "unauthenticated", "authenticate with a bearer token or a client certificate",
                "anonymous");
}

}  // namespace blindlist::api
