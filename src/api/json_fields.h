// The one way blindlist checks the JSON fields it reads. A request body: each field any
// endpoint reads has one JSON type, and a field of another type is the caller's
// mistake (400 malformed-request), never "absent" (which would pick a default) and
// never an exception from nlohmann::json's get<>() or value(). An answer or a file
// (a server's reply, a key file): each field is read with StringField, IntegerField,
// BoolField, ArrayField or ObjectField, so a missing or mistyped field is a value the reader
// refuses, never an exception.
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
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

// The string `j[name]`; nullopt when `j` is not an object, has no `name`, or holds another type.
std::optional<std::string> StringField(const nlohmann::json& j, const char* name);

// The integer `j[name]`; nullopt when `j` is not an object, has no `name`, holds another type
// (a fraction, a string of digits) or an integer outside int64.
std::optional<std::int64_t> IntegerField(const nlohmann::json& j, const char* name);

// The boolean `j[name]`; nullopt when `j` is not an object, has no `name`, or holds another type
// (0 and 1, "true").
std::optional<bool> BoolField(const nlohmann::json& j, const char* name);

// The array or object `j[name]`, pointing into `j`; nullptr when `j` is not an object, has no
// `name`, or holds another type. The pointer lives as long as `j` is not changed.
const nlohmann::json* ArrayField(const nlohmann::json& j, const char* name);
const nlohmann::json* ObjectField(const nlohmann::json& j, const char* name);

}  // namespace blindlist::api
