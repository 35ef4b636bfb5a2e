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

TEST(JsonFieldsTest, BoolArrayAndObjectFieldsReadOnlyTheirOwnTypeAndNeverThrow) {
  const json reply = {{"flag", false}, {"items", {1, 2}}, {"proof", {{"a", 1}}}};
  EXPECT_EQ(BoolField(reply, "flag"), false);
  EXPECT_EQ(BoolField(json{{"flag", true}}, "flag"), true);
  const json* items = ArrayField(reply, "items");
  ASSERT_NE(items, nullptr);
  EXPECT_EQ(items, &reply["items"]);  // points into the reply, no copy
  EXPECT_EQ(items->size(), 2U);
  const json* proof = ObjectField(reply, "proof");
  ASSERT_NE(proof, nullptr);
  EXPECT_EQ(IntegerField(*proof, "a"), 1);
  EXPECT_FALSE(BoolField(reply, "absent"));
  EXPECT_EQ(ArrayField(reply, "absent"), nullptr);
  EXPECT_EQ(ObjectField(reply, "absent"), nullptr);
  // Each of another type: 0 and 1 and "true" are no booleans, an object no array, and so on.
  const std::array<json, 7> others = {json(0),   json(1),       json("true"),  json(nullptr),
                                      json(1.5), json::array(), json::object()};
  for (const auto& v : others) {
    const json one = {{"f", v}};
    EXPECT_FALSE(BoolField(one, "f")) << v.dump();
    EXPECT_EQ(ArrayField(one, "f") != nullptr, v.is_array()) << v.dump();
    EXPECT_EQ(ObjectField(one, "f") != nullptr, v.is_object()) << v.dump();
  }
  // Not an object at all: an array holding the name, a string, null.
  for (const auto& j : {json::array({"flag"}), json("flag"), json(nullptr)}) {
    EXPECT_FALSE(BoolField(j, "flag")) << j.dump();
    EXPECT_EQ(ArrayField(j, "flag"), nullptr) << j.dump();
    EXPECT_EQ(ObjectField(j, "flag"), nullptr) << j.dump();
  }
}

}  // namespace
}  // namespace blindlist::api
