#include "owner_alias.h"

namespace blindlist::listd {
namespace {

constexpr std::string_view kSuffix = "-owner";

bool EndsWithIgnoringCase(std::string_view s, std::string_view suffix) {
  if (s.size() < suffix.size()) return false;
  const std::string_view tail = s.substr(s.size() - suffix.size());
  for (std::size_t i = 0; i < suffix.size(); ++i) {
    char c = tail[i];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    if (c != suffix[i]) return false;
  }
  return true;
}

}  // namespace

std::optional<std::string> OwnerAliasBase(std::string_view address) {
  const std::size_t at = address.rfind('@');
  if (at == std::string_view::npos) return std::nullopt;
  const std::string_view local = address.substr(0, at);
  if (local.size() <= kSuffix.size() || !EndsWithIgnoringCase(local, kSuffix)) return std::nullopt;
  return std::string(local.substr(0, local.size() - kSuffix.size())) +
         std::string(address.substr(at));
}

Result<std::optional<store::MailingList>> FindListByOwnerAlias(store::ListStore& lists,
                                                               const std::string& address) {
  auto base = OwnerAliasBase(address);
  if (!base) return std::optional<store::MailingList>();
  return lists.FindList(*base);
}

std::string OwnerTraceField(const std::string& alias) {
  return "X-Loop: " + store::CanonicalMailbox(alias);
}

}  // namespace blindlist::listd
