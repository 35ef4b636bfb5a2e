// Endpoints as a table of (method, path pattern, operation, who may call, handler), never a
// chain of `if` on the path. A pattern is a path of segments: a literal, or "{name}" for any
// one non-empty segment, captured in order ("/v1/groups/{group}/members/{member}"). A path with
// an empty segment ("//v1", "/v1/groups/") matches no pattern: it is not a spelling of another.
// Thread-safety: a RouteTable is immutable once built; Find() may be called concurrently.
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace blindlist::api {

// The segments after the leading "/": "/a/b" -> {"a", "b"}, "/" and "" -> {}. Empty segments are
// kept ("/a//b/" -> {"a", "", "b", ""}) so that MatchPattern refuses them.
std::vector<std::string> SplitPath(std::string_view path);

// Whether `parts` (a split path) matches `pattern`; the "{...}" segments into `params`. An empty
// part matches nothing.
bool MatchPattern(std::string_view pattern, const std::vector<std::string>& parts,
                  std::vector<std::string>& params);

// Who may call a route: the daemon authenticates before the handler runs (kAdmin) or lets the
// handler do it (the rest), and decides what an unauthenticated caller learns.
enum class Access {
  kInfrastructure,  // /healthz, /metrics: no rate limit, no audit
  kPublic,          // anyone, rate-limited by address
  kMember,          // a member of the group in the path (token or registered certificate)
  kCertificate,     // a membership certificate from certd (path G)
  kExploder,        // the group's registered exploder (mTLS)
  kAdmin,           // an administrator's token or client certificate
};

template <typename Handler>
struct Route {
  std::string_view method;
  std::string_view pattern;
  std::string_view operation;  // the audit and metrics name
  Access access;
  Handler handler;
};

template <typename Handler>
struct RouteMatch {
  const Route<Handler>* route = nullptr;  // null: no route for this method and path
  std::vector<std::string> params;        // of `route`, else of `same_path`
  // With no route: the first route with this path (another method), and the methods the path
  // has ("GET, POST"); null and empty if the path has none.
  const Route<Handler>* same_path = nullptr;
  std::string allowed;
};

template <typename Handler>
class RouteTable {
 public:
  explicit RouteTable(std::vector<Route<Handler>> routes) : routes_(std::move(routes)) {}

  RouteMatch<Handler> Find(std::string_view method, std::string_view path) const {
    const std::vector<std::string> parts = SplitPath(path);
    RouteMatch<Handler> m;
    std::vector<std::string> params;
    for (const auto& route : routes_) {
      if (!MatchPattern(route.pattern, parts, params)) continue;
      if (route.method == method) {
        m.route = &route;
        m.params = std::move(params);
        m.same_path = nullptr;
        m.allowed.clear();
        return m;
      }
      if (m.same_path == nullptr) {
        m.same_path = &route;
        m.params = params;
      }
      if (m.allowed.find(route.method) == std::string::npos)
        m.allowed += (m.allowed.empty() ? "" : ", ") + std::string(route.method);
    }
    return m;
  }

  const std::vector<Route<Handler>>& routes() const { return routes_; }

 private:
  std::vector<Route<Handler>> routes_;
};

}  // namespace blindlist::api
