//===- JsonTest.cpp - Tests of the JSON reader --------------------------===//

#include "runtime/Json.h"

#include <gtest/gtest.h>

using namespace kiln::rt;

TEST(JsonTest, ParsesNestedValues) {
  Expected<JsonValue> v = parseJson(
      R"( {"a": [1, 2.5e3, -0], "b": {"c": "x\"y\u00e9\ud83d\ude00"},
          "t": true, "f": false, "n": null, "big": 18446744073709551615} )");
  ASSERT_TRUE(v) << v.error().message();
  ASSERT_EQ(v->kind, JsonValue::Object);
  const JsonValue *a = v->find("a");
  ASSERT_NE(a, nullptr);
  ASSERT_EQ(a->elements.size(), 3u);
  EXPECT_EQ(a->elements[0].asUInt(), 1u);
  EXPECT_EQ(a->elements[1].asDouble(), 2500.0);
  EXPECT_EQ(a->elements[1].asUInt(), std::nullopt);
  EXPECT_EQ(v->find("b")->find("c")->text, "x\"y\xc3\xa9\xf0\x9f\x98\x80");
  EXPECT_TRUE(v->find("t")->boolean);
  EXPECT_EQ(v->find("n")->kind, JsonValue::Null);
  EXPECT_EQ(v->find("big")->asUInt(), UINT64_MAX);
}

TEST(JsonTest, RejectsMalformedText) {
  for (const char *bad :
       {"", "{", "{\"a\":1,}", "[1 2]", "{\"a\" 1}", "\"unterminated", "01",
        "1.", "-", "{\"a\":1}x", "{\"a\":1,\"a\":2}", "\"\\x\"", "\"\\ud800\"",
        "tru", "{'a':1}", "\"tab\there\""}) {
    Expected<JsonValue> v = parseJson(bad);
    EXPECT_FALSE(v) << "accepted: " << bad;
  }
  Expected<JsonValue> v = parseJson("{\"a\": [1, }");
  ASSERT_FALSE(v);
  EXPECT_NE(v.error().message().find("at byte 10"), std::string::npos)
      << v.error().message();
}

TEST(JsonTest, LimitsNesting) {
  EXPECT_FALSE(parseJson(std::string(10000, '[') + std::string(10000, ']')));
  EXPECT_TRUE(parseJson(std::string(20, '[') + std::string(20, ']')));
}

TEST(JsonTest, QuotesAndNumbers) {
  EXPECT_EQ(jsonQuote("a\"b\\c\n\x01"), "\"a\\\"b\\\\c\\n\\u0001\"");
  EXPECT_EQ(jsonNumber(0.5), "0.5");
  EXPECT_EQ(jsonNumber(NAN), "null");
  EXPECT_EQ(jsonNumber(INFINITY), "null");
}

TEST(JsonTest, ManyKeysParseInLinearTime) {
  // 200,000 keys (a checkpoint header's metadata): the duplicate-key check is
  // a hash lookup, not a scan of the keys so far (which took a minute).
  std::string text = "{";
  for (int i = 0; i < 200000; ++i)
    text +=
        (i ? ",\"k" : "\"k") + std::to_string(i) + "\":" + std::to_string(i);
  text += "}";
  Expected<JsonValue> v = parseJson(text);
  ASSERT_TRUE(v) << v.error().message();
  EXPECT_EQ(v->members.size(), 200000u);
  Expected<JsonValue> dup = parseJson("{\"a\":1,\"b\":2,\"a\":3}");
  ASSERT_FALSE(dup);
  EXPECT_NE(dup.error().message().find("duplicate key \"a\""),
            std::string::npos);
}
