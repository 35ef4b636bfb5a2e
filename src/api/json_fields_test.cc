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

TEST(JsonFieldsTest, StringAndIntegerFieldsReadOnlyTheirOwnTypeAndNeverThrow) {
  const json reply = {{"text", "x"}, {"count", -3}, {"big", 18446744073709551615ULL}};
  EXPECT_EQ(StringField(reply, "text"), "x");
  EXPECT_EQ(IntegerField(reply, "count"), -3);
  EXPECT_EQ(IntegerField(json{{"count", INT64_MAX}}, "count"), INT64_MAX);
  EXPECT_FALSE(IntegerField(reply, "big"));  // beyond int64: refused, not wrapped
  EXPECT_FALSE(StringField(reply, "absent"));
  EXPECT_FALSE(IntegerField(reply, "absent"));
  const std::array<json, 6> others = {json(1.5),     json(true),     json(nullptr),
                                      json::array(), json::object(), json("5")};
  for (const auto& v : others) {
    EXPECT_FALSE(IntegerField(json{{"f", v}}, "f")) << v.dump();
    if (!v.is_string()) {
      EXPECT_FALSE(StringField(json{{"f", v}}, "f")) << v.dump();
    }
  }
  EXPECT_FALSE(StringField(json{{"f", 5}}, "f"));
  // Not an object at all (an array, a string, null): nullopt, where operator[] would throw.
  for (const auto& j : {json::array({"text"}), json("text"), json(nullptr)}) {
    EXPECT_FALSE(StringField(j, "text")) << j.dump();
    EXPECT_FALSE(IntegerField(j, "text")) << j.dump();
  }
}

}  // namespace
}  // namespace blindlist::api
