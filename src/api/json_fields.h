// The one way the daemons check the JSON fields of a request body: each field any
// endpoint reads has one JSON type, and a field of another type is the caller's
// mistake (400 malformed-request), never "absent" (which would pick a default) and
// never an exception from nlohmann::json's get<>() or value().
// Thread-safety: pure functions.
#pragma once

#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <span>
#include <string>

namespace blindlist::api {

enum class JsonType { kString, kBoolean, kInteger, kArray, kObject };

struct JsonField {
  const char* name;
  JsonType type;
};

// The message naming the first field of `body` (an object) that is present with another type
// than `fields` gives it; nullopt when every listed field is absent or of its type. Fields not
// listed are not looked at.
std::optional<std::string> WrongFieldType(const nlohmann::json& body,
                                          std::span<const JsonField> fields);

}  // namespace blindlist::api
