#include "api/json_fields.h"

#include <nlohmann/json.hpp>

namespace blindlist::api {

namespace {
bool HasType(const nlohmann::json& v, JsonType type) {
  switch (type) {
    case JsonType::kString:
      return v.is_string();
    case JsonType::kBoolean:
      return v.is_boolean();
    case JsonType::kInteger:
      return v.is_number_integer();
    case JsonType::kArray:
      return v.is_array();
    case JsonType::kObject:
      return v.is_object();
  }
  return false;
}
}  // namespace

std::optional<std::string> WrongFieldType(const nlohmann::json& body,
                                          std::span<const JsonField> fields) {
  if (!body.is_object()) return std::string("the body is not a JSON object");
  for (const auto& field : fields) {
    auto it = body.find(field.name);
    if (it != body.end() && !HasType(*it, field.type))
      return std::string("\"") + field.name + "\" has the wrong type";
  }
  return std::nullopt;
}

}  // namespace blindlist::api
