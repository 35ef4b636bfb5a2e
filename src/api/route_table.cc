#include "api/route_table.h"

namespace blindlist::api {

std::vector<std::string> SplitPath(std::string_view path) {
  std::vector<std::string> parts;
  while (!path.empty()) {
    auto slash = path.find('/');
    std::string_view part = path.substr(0, slash);
    if (!part.empty()) parts.emplace_back(part);
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return parts;
}

bool MatchPattern(std::string_view pattern, const std::vector<std::string>& parts,
                  std::vector<std::string>& params) {
  params.clear();
  std::size_t i = 0;
  for (const std::string& segment : SplitPath(pattern)) {
    if (i == parts.size()) return false;
    if (segment.size() >= 2 && segment.front() == '{' && segment.back() == '}') {
      params.push_back(parts[i]);
    } else if (segment != parts[i]) {
      return false;
    }
    ++i;
  }
  return i == parts.size();
}

}  // namespace blindlist::api
