#include "api/json_fields.h"

#include <cstdint>
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

std::optional<std::string> StringField(const nlohmann::json& j, const char* name) {
  if (!j.is_object()) return std::nullopt;
  auto it = j.find(name);
  if (it == j.end() || !it->is_string()) return std::nullopt;
  return it->get<std::string>();
}

std::optional<std::int64_t> IntegerField(const nlohmann::json& j, const char* name) {
  if (!j.is_object()) return std::nullopt;
  auto it = j.find(name);
  if (it == j.end() || !it->is_number_integer()) return std::nullopt;
  if (it->is_number_unsigned() && it->get<std::uint64_t>() > static_cast<std::uint64_t>(INT64_MAX))
    return std::nullopt;
  return it->get<std::int64_t>();
}

std::optional<bool> BoolField(const nlohmann::json& j, const char* name) {
  if (!j.is_object()) return std::nullopt;
  auto it = j.find(name);
  if (it == j.end() || !it->is_boolean()) return std::nullopt;
  return it->get<bool>();
}

const nlohmann::json* ArrayField(const nlohmann::json& j, const char* name) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(name);
  return it != j.end() && it->is_array() ? &*it : nullptr;
}

const nlohmann::json* ObjectField(const nlohmann::json& j, const char* name) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(name);
  return it != j.end() && it->is_object() ? &*it : nullptr;
}

}  // namespace blindlist::api
