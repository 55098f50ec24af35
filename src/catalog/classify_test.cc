#include "catalog/classify.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>

#include "catalog/scaffold.h"

#include "catalog/labelled_set.h"

namespace tw::catalog {
namespace {

json::object Tool(std::string_view text) { return json::parse(text).as_object(); }

TEST(ClassifyTest, TheExamplesFromTheField) {
  struct Case {
    const char* name;
    const char* description;
    Category category;
    Risk risk;
  };
  const Case cases[] = {
      {"list_customers", "List customers", Category::kRead, Risk::kLow},
      {"create_issue", "Create a new issue in a repository", Category::kWrite, Risk::kMedium},
      {"retry_session", "Retry a failed session from the beginning or a specific task",
       Category::kExecute, Risk::kHigh},
      {"create_refund", "Refund a charge", Category::kFinancial, Risk::kCritical},
      {"transfer_funds", "Move money between accounts", Category::kFinancial, Risk::kCritical},
      {"delete_repository", "Delete a repository", Category::kDestructive, Risk::kCritical},
      {"drop_table", "Drop a table", Category::kDestructive, Risk::kCritical},
      {"terminate_instances", "Terminate EC2 instances", Category::kDestructive, Risk::kCritical},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Classification r = Classify(c.name, c.description);
    EXPECT_EQ(r.category, c.category) << CategoryName(r.category);
    EXPECT_EQ(r.risk, c.risk) << RiskName(r.risk);
    EXPECT_FALSE(r.signals.empty());
  }
}

TEST(ClassifyTest, WeighsAnnotationsInsteadOfTrustingThem) {
  // A destructive name that claims to be read-only: classified by its name, flagged, raised.
  Classification liar = Classify(Tool(
      R"({"name":"delete_repository","description":"Safe","annotations":{"readOnlyHint":true}})"));
  EXPECT_EQ(liar.category, Category::kDestructive);
  EXPECT_EQ(liar.risk, Risk::kCritical);
  EXPECT_NE(liar.signals.back().find("not trusted"), std::string::npos);
  // An honest read-only claim agrees with a read name.
  Classification honest = Classify(Tool(
      R"({"name":"get_file","description":"Read a file","annotations":{"readOnlyHint":true}})"));
  EXPECT_EQ(honest.category, Category::kRead);
  // A destructiveHint on a bland name raises it.
  Classification hinted = Classify(Tool(
      R"({"name":"update_table","annotations":{"readOnlyHint":false,"destructiveHint":true}})"));
  EXPECT_EQ(hinted.category, Category::kDestructive);
  // openWorldHint on a write: it reaches outside systems.
  EXPECT_EQ(Classify(Tool(R"({"name":"send_email","annotations":{"openWorldHint":true}})")).risk,
            Risk::kHigh);
}

TEST(ClassifyTest, CatchesDestructiveVerbsHiddenInDescriptionsAndNames) {
  EXPECT_EQ(Classify("sync_folder", "Makes the folder match; permanently deletes extra files")
                .category,
            Category::kDestructive);
  EXPECT_EQ(Classify("update_records", "Overwrites rows. This cannot be undone.").category,
            Category::kDestructive);
  EXPECT_EQ(Classify("bulkDeleteItems", "").category, Category::kDestructive);
  EXPECT_EQ(Classify("list_deleted_items", "List items in the trash").category, Category::kRead);
}

TEST(ClassifyTest, FlagsUnicodeLookAlikes) {
  // "dеlete_file" with a Cyrillic е: folded, classified, flagged.
  Classification r = Classify("d\u0435lete_file", "Remove a file");
  EXPECT_EQ(r.category, Category::kDestructive);
  EXPECT_NE(r.signals.front().find("non-ASCII"), std::string::npos);
  Classification read = Classify("g\u0435t_file", "Read a file");
  EXPECT_EQ(read.category, Category::kRead);
  EXPECT_GE(read.risk, Risk::kHigh) << "a look-alike name is suspicious in itself";
}

TEST(ClassifyTest, MoneyToolsAreFinancialAndOnlyChangingOnesCritical) {
  Classification list = Classify("list_invoices", "List invoices");
  EXPECT_EQ(list.category, Category::kFinancial);
  EXPECT_EQ(list.risk, Risk::kMedium);
  EXPECT_EQ(Classify("create_order", "Create an order").category, Category::kWrite);
  EXPECT_EQ(Classify("create_payment_link", "Create a payment link").risk, Risk::kCritical);
  EXPECT_EQ(Classify(Tool(R"({"name":"submit","inputSchema":{"type":"object","properties":
      {"amount":{"type":"integer"},"currency":{"type":"string"}}}})")).category,
            Category::kFinancial);
  EXPECT_EQ(Classify("transfer_repository", "Transfer a repository to another owner").category,
            Category::kWrite);
}

TEST(ClassifyTest, SplitsNames) {
  EXPECT_EQ(NameWords("createPullRequest"), (std::vector<std::string>{"create", "pull", "request"}));
  EXPECT_EQ(NameWords("k8s.pods-list_v2"), (std::vector<std::string>{"k8s", "pods", "list", "v2"}));
}

TEST(ClassifyTest, AgreesWithTheHeldOutLabelledSetAtLeastNinetyPercent) {
  // A third-party corpus beside the repository: skipped, visibly, without it.
  const char* env = std::getenv("TW_COMPAT_DIR");
  const std::string dir = env ? std::string(env) + "/intercept-policies" : TW_COMPAT_DIR;
  if (!std::filesystem::exists(dir)) {
    GTEST_SKIP() << "the labelled tool set is not at " << dir << " (set TW_COMPAT_DIR)";
  }
  const auto tools = ReadLabelledTools(dir);
  int total = 0, agree = 0;
  for (const auto& t : tools) {
    if (!t.holdout) continue;
    ++total;
    agree += Classify(t.name, t.description).category == t.category;
  }
  ASSERT_GT(total, 100) << "the held-out set is too small to mean anything";
  EXPECT_GE(100.0 * agree / total, 90.0) << agree << "/" << total;
}

TEST(ClassifyTest, ATellerOfSecretsIsNeverALowRead) {
  // server-everything's get-env, as it lists itself.
  const Classification env = Classify(
      "get-env", "Returns all environment variables, helpful for debugging MCP server configuration");
  EXPECT_EQ(env.category, Category::kRead);
  EXPECT_EQ(env.risk, Risk::kHigh);
  EXPECT_NE(std::find_if(env.signals.begin(), env.signals.end(),
                         [](const std::string& s) { return s.find("reveals secrets") != std::string::npos; }),
            env.signals.end());
  EXPECT_EQ(Classify("list_api_tokens", "Lists tokens").risk, Risk::kHigh);
  EXPECT_EQ(Classify("read_file", "Reads a file").risk, Risk::kLow);
  // The scaffold `scan` writes holds it for a human instead of allowing it.
  auto scanned = ScanTools(json::parse(
      R"([{"name":"get-env","description":"Returns all environment variables"}])").as_array());
  ASSERT_EQ(scanned.size(), 1u);
  EXPECT_EQ(scanned[0].recommendation, "require approval");
}

}  // namespace
}  // namespace tw::catalog
