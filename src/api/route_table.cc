#include "api/route_table.h"

namespace blindlist::api {

std::vector<std::string> SplitPath(std::string_view path) {
  std::vector<std::string> parts;
  if (path.starts_with('/')) path.remove_prefix(1);
  if (path.empty()) return parts;
  for (;;) {
    const auto slash = path.find('/');
    parts.emplace_back(path.substr(0, slash));
    if (slash == std::string_view::npos) return parts;
    path.remove_prefix(slash + 1);
  }
}

bool MatchPattern(std::string_view pattern, const std::vector<std::string>& parts,
                  std::vector<std::string>& params) {
  params.clear();
  std::size_t i = 0;
  for (const std::string& segment : SplitPath(pattern)) {
    if (i == parts.size() || parts[i].empty()) {
      params.clear();
      return false;
    }
    if (segment.size() >= 2 && segment.front() == '{' && segment.back() == '}') {
      params.push_back(parts[i]);
    } else if (segment != parts[i]) {
      params.clear();
      return false;
    }
    ++i;
  }
  if (i == parts.size()) return true;
  params.clear();
  return false;
}

}  // namespace blindlist::api
