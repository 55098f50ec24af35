#include "common/change_epoch.h"

#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>

#include "common/random.h"

namespace tw {
namespace {

class ChangeEpochTest : public ::testing::Test {
 protected:
  void TearDown() override { std::filesystem::remove(path_); }
  std::string path_ =
      (std::filesystem::temp_directory_path() / ("tw-epoch-" + RandomHex(6))).string();
};

TEST_F(ChangeEpochTest, TwoMappingsOfOneFileSeeEachOthersBumps) {
  auto a = ChangeEpoch::Open(path_);
  auto b = ChangeEpoch::Open(path_);
  ASSERT_TRUE(a && b);
  const uint64_t start = (*a)->Load();
  (*b)->Bump();
  EXPECT_EQ((*a)->Load(), start + 1);
  (*a)->Bump();
  EXPECT_EQ((*b)->Load(), start + 2);
  EXPECT_EQ(std::filesystem::file_size(path_), 8u);
}

TEST_F(ChangeEpochTest, ABumpInAnotherProcessIsSeenWithoutReopening) {
  auto e = ChangeEpoch::Open(path_);
  ASSERT_TRUE(e);
  const uint64_t start = (*e)->Load();
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    // A process of its own that opens the file anew, as `toolwarden grants revoke` does.
    auto mine = ChangeEpoch::Open(path_);
    if (mine) (*mine)->Bump();
    _exit(mine ? 0 : 1);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  EXPECT_EQ((*e)->Load(), start + 1);
}

TEST_F(ChangeEpochTest, AnEmptyPathIsPrivateToTheProcess) {
  auto a = ChangeEpoch::Open("");
  auto b = ChangeEpoch::Open("");
  ASSERT_TRUE(a && b);
  (*a)->Bump();
  EXPECT_EQ((*a)->Load(), 1u);
  EXPECT_EQ((*b)->Load(), 0u);
}

TEST_F(ChangeEpochTest, AFileThatCannotBeCreatedIsAnErrorNamingIt) {
  auto e = ChangeEpoch::Open("/nonexistent-dir-tw/epoch");
  ASSERT_FALSE(e);
  EXPECT_NE(e.error().message().find("/nonexistent-dir-tw/epoch"), std::string::npos);
}

}  // namespace
}  // namespace tw
