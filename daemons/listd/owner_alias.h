// LIST-owner@DOMAIN: the address people write to a list's owner at. listd takes mail for it and
// forwards it, as received (it is not list traffic), to the owner address the list sets
// (`blindlist list set LIST --owner ADDR`); with none set it refuses it (550 5.1.1).
// Thread-safety: free functions; the store is used as its own contract says.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "blindlist/result.h"
#include "store/list_store.h"

namespace blindlist::listd {

// "LIST@DOMAIN" for "LIST-owner@DOMAIN" (the suffix compared without case), else nullopt.
std::optional<std::string> OwnerAliasBase(std::string_view address);

// The list whose owner alias `address` is (nullopt: none, or `address` is a list itself).
Result<std::optional<store::MailingList>> FindListByOwnerAlias(store::ListStore& lists,
                                                               const std::string& address);

// The trace field listd adds to each message it forwards to an owner, "X-Loop: ALIAS" (without
// its line end): a message that comes back with it is a loop (AlreadyExploded finds it).
std::string OwnerTraceField(const std::string& alias);

}  // namespace blindlist::listd
