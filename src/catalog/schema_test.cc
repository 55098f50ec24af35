#include "catalog/schema.h"

#include <gtest/gtest.h>

namespace tw::catalog {
namespace {

TEST(SchemaTest, ChecksTheSubsetToolSchemasUse) {
  const char* schema = R"({
    "type": "object",
    "properties": {
      "repo": {"type": "string", "pattern": "^[a-z]+/[a-z]+$", "maxLength": 20},
      "count": {"type": "integer", "minimum": 1, "maximum": 100},
      "mode": {"enum": ["fast", "safe"]},
      "tags": {"type": "array", "items": {"type": "string", "minLength": 1}, "maxItems": 3},
      "owner": {"type": "object", "properties": {"id": {"type": "integer"}}, "required": ["id"]},
      "ratio": {"type": "number", "exclusiveMaximum": 1}
    },
    "required": ["repo"],
    "additionalProperties": false
  })";
  struct Case {
    const char* value;
    const char* want;  // nullptr: conforms; else a part of the violation's text
  };
  const Case cases[] = {
      {R"({"repo":"a/b"})", nullptr},
      {R"({"repo":"a/b","count":100,"mode":"safe","tags":["x"],"owner":{"id":3},"ratio":0.5})", nullptr},
      {R"({"repo":"a/b","count":5.0})", nullptr},  // an integral number is an integer
      {R"({})", "arguments: lacks the required property \"repo\""},
      {R"({"repo":"A/B"})", "arguments.repo: must match the pattern"},
      {R"({"repo":"a/b","count":0})", "arguments.count: must be at least 1"},
      {R"({"repo":"a/b","count":101})", "arguments.count: must be at most 100"},
      {R"({"repo":"a/b","count":1.5})", "arguments.count: must be integer, not a number"},
      {R"({"repo":"a/b","count":"5"})", "arguments.count: must be integer, not a string"},
      {R"({"repo":"a/b","mode":"reckless"})", "arguments.mode: must be one of the listed values"},
      {R"({"repo":"a/b","tags":["x",""]})", "arguments.tags[1]: must be at least 1 characters"},
      {R"({"repo":"a/b","tags":["a","b","c","d"]})", "arguments.tags: must have at most 3 items"},
      {R"({"repo":"a/b","owner":{}})", "arguments.owner: lacks the required property \"id\""},
      {R"({"repo":"a/b","owner":{"id":"x"}})", "arguments.owner.id: must be integer"},
      {R"({"repo":"a/b","ratio":1})", "arguments.ratio: must be less than 1"},
      {R"({"repo":"a/b","extra":1})", "has the property \"extra\", which the tool does not take"},
      {R"({"repo":"a/b","Repo":"x"})", "has the property \"Repo\""},
  };
  auto compiled = Schema::Compile(json::parse(schema));
  EXPECT_TRUE(compiled->skipped().empty());
  for (const Case& c : cases) {
    SCOPED_TRACE(c.value);
    auto r = compiled->Check(json::parse(c.value));
    // A call's arguments are checked as an object, without a copy: the same verdict and words.
    EXPECT_EQ(compiled->Check(json::parse(c.value).as_object()), r);
    if (!c.want) {
      EXPECT_FALSE(r) << *r;
    } else {
      ASSERT_TRUE(r);
      EXPECT_NE(r->find(c.want), std::string::npos) << *r;
    }
  }
}

TEST(SchemaTest, CombinatorsReferencesAndConst) {
  const char* schema = R"({
    "$defs": {"node": {"type": "object", "properties": {"next": {"$ref": "#/$defs/node"},
                                                         "v": {"const": 1}}}},
    "type": "object",
    "properties": {
      "list": {"$ref": "#/$defs/node"},
      "id": {"anyOf": [{"type": "string"}, {"type": "integer"}]},
      "one": {"oneOf": [{"type": "integer"}, {"type": "number"}]},
      "no": {"not": {"type": "null"}},
      "pair": {"type": "array", "prefixItems": [{"type": "string"}, {"type": "integer"}]},
      "set": {"type": "array", "uniqueItems": true}
    }
  })";
  auto s = Schema::Compile(json::parse(schema));
  EXPECT_FALSE(s->Check(json::parse(R"({"list":{"next":{"next":{"v":1}}}})")));
  // A root with combinators is checked as a whole value either way.
  auto rooted = Schema::Compile(json::parse(R"({"anyOf":[{"required":["a"]},{"required":["b"]}]})"));
  EXPECT_FALSE(rooted->Check(json::parse(R"({"b":1})").as_object()));
  EXPECT_TRUE(rooted->Check(json::parse(R"({"c":1})").as_object()));
  auto deep = s->Check(json::parse(R"({"list":{"next":{"next":{"v":2}}}})"));
  ASSERT_TRUE(deep);
  EXPECT_NE(deep->find("arguments.list.next.next.v: must be 1"), std::string::npos) << *deep;
  EXPECT_FALSE(s->Check(json::parse(R"({"id":"x"})")));
  EXPECT_TRUE(s->Check(json::parse(R"({"id":1.5})")));
  EXPECT_TRUE(s->Check(json::parse(R"({"one":3})")));  // integer and number both match
  EXPECT_FALSE(s->Check(json::parse(R"({"one":3.5})")));
  EXPECT_TRUE(s->Check(json::parse(R"({"no":null})")));
  EXPECT_FALSE(s->Check(json::parse(R"({"pair":["a",1,true]})")));
  EXPECT_TRUE(s->Check(json::parse(R"({"pair":[1,"a"]})")));
  EXPECT_TRUE(s->Check(json::parse(R"({"set":[1,1.0]})")));
}

TEST(SchemaTest, SelfReferenceIsCheckedWithADepthLimit) {
  auto s = Schema::Compile(json::parse(R"({"type":"array","items":{"$ref":"#"}})"));
  std::string deep;
  for (int i = 0; i < 100; ++i) deep += "[";
  for (int i = 0; i < 100; ++i) deep += "]";
  json::parse_options opt;
  opt.max_depth = 200;
  auto r = s->Check(json::parse(deep, {}, opt));
  ASSERT_TRUE(r);
  EXPECT_NE(r->find("nested too deeply"), std::string::npos);
  EXPECT_FALSE(s->Check(json::parse("[[[]]]")));
}

TEST(SchemaTest, WhatCannotBeCompiledIsNamedAndNeverDenies) {
  auto s = Schema::Compile(json::parse(
      R"({"type":"object","properties":{"a":{"pattern":"(?<=x)y"},"b":{"$ref":"http://x/y"},)"
      R"("c":{"format":"email","type":"string"}}})"));
  EXPECT_EQ(s->skipped().size(), 2u);
  EXPECT_FALSE(s->Check(json::parse(R"({"a":"zzz","b":1,"c":"not an email"})")));
  // A schema that is not an object accepts everything; `false` nothing.
  EXPECT_FALSE(Schema::Compile(json::parse("null"))->Check(json::parse("{}")));
  EXPECT_TRUE(Schema::Compile(json::parse("false"))->Check(json::parse("{}")));
}

TEST(SchemaTest, HostilePatternsRunInLinearTime) {
  // Exponential for a backtracking engine; RE2 answers at once.
  auto s = Schema::Compile(json::parse(R"({"properties":{"x":{"pattern":"^(a+)+$"}}})"));
  const std::string value = R"({"x":")" + std::string(5000, 'a') + "!\"}";
  EXPECT_TRUE(s->Check(json::parse(value)));
}

}  // namespace
}  // namespace tw::catalog
