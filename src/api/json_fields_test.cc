#include "api/json_fields.h"

#include <gtest/gtest.h>

#include <array>
#include <nlohmann/json.hpp>

namespace blindlist::api {
namespace {

using json = nlohmann::json;

constexpr std::array<JsonField, 5> kFields = {{
    {"text", JsonType::kString},
    {"flag", JsonType::kBoolean},
    {"count", JsonType::kInteger},
    {"items", JsonType::kArray},
    {"proof", JsonType::kObject},
}};

TEST(JsonFieldsTest, AcceptsAbsentFieldsAndTheirOwnTypes) {
  EXPECT_FALSE(WrongFieldType(json::object(), kFields));
  EXPECT_FALSE(WrongFieldType(json{{"text", "x"},
                                   {"flag", false},
                                   {"count", -3},
                                   {"items", json::array()},
                                   {"proof", json::object()},
                                   {"unlisted", 1.5}},
                              kFields));
  EXPECT_FALSE(WrongFieldType(json{{"count", 18446744073709551615ULL}}, kFields));
}

TEST(JsonFieldsTest, NamesTheFieldOfAnotherType) {
  const std::array<json, 7> wrong = {json(5),       json(1.5),      json(true), json(nullptr),
                                     json::array(), json::object(), json("5")};
  for (const auto& field : kFields) {
    for (const auto& v : wrong) {
      json body = {{field.name, v}};
      auto message = WrongFieldType(body, kFields);
      const bool own = (field.type == JsonType::kString && v.is_string()) ||
                       (field.type == JsonType::kBoolean && v.is_boolean()) ||
                       (field.type == JsonType::kInteger && v.is_number_integer()) ||
                       (field.type == JsonType::kArray && v.is_array()) ||
                       (field.type == JsonType::kObject && v.is_object());
      EXPECT_EQ(message.has_value(), !own) << field.name << " = " << v.dump();
      if (message) {
        EXPECT_EQ(*message, std::string("\"") + field.name + "\" has the wrong type");
      }
    }
  }
  EXPECT_TRUE(WrongFieldType(json::array(), kFields));  // not an object at all
}

}  // namespace
}  // namespace blindlist::api
