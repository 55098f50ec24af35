#include "auth/credential_store.h"

#include <gtest/gtest.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/random.h"

namespace tw::auth {
namespace {

class CredentialStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = std::filesystem::temp_directory_path() / ("tw-cred-" + RandomHex(6));
    std::filesystem::create_directories(dir_);
    spec_ = "sqlite:" + (dir_ / "state.db").string();
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }
  static CredentialKey Key(const std::string& hex = CredentialKey::Generate()) { return *CredentialKey::Parse(hex); }
  std::string FileBytes() {
    std::ifstream in(dir_ / "state.db", std::ios::binary);
    std::stringstream s;
    s << in.rdbuf();
    return s.str();
  }
  std::filesystem::path dir_;
  std::string spec_;
};

TEST_F(CredentialStoreTest, KeepsEachPersonsHeadersEncryptedAndBoundToThem) {
  const std::string hex = CredentialKey::Generate();
  {
    auto store = std::move(*OpenCredentialStore(spec_, Key(hex)));
    ASSERT_TRUE(store->Set("github", "alice@example.com", {{"Authorization", "Bearer ghp_alice_secret"}}, 10));
    ASSERT_TRUE(store->Set("github", "bob@example.com", {{"Authorization", "Bearer ghp_bob_secret"}, {"X-Org", "acme"}}, 11));
    auto alice = store->Get("github", "alice@example.com");
    ASSERT_TRUE(alice && *alice);
    EXPECT_EQ(**alice, (Headers{{"Authorization", "Bearer ghp_alice_secret"}}));
    EXPECT_FALSE(*store->Get("github", "carol@example.com"));
    EXPECT_FALSE(*store->Get("stripe", "alice@example.com"));
    auto list = store->List();
    ASSERT_TRUE(list);
    ASSERT_EQ(list->size(), 2u);
    EXPECT_EQ((*list)[1].principal, "bob@example.com");
    EXPECT_EQ((*list)[1].header_names, (std::vector<std::string>{"Authorization", "X-Org"}));
  }
  // Nothing secret in the file.
  const std::string bytes = FileBytes();
  EXPECT_EQ(bytes.find("ghp_alice_secret"), std::string::npos);
  EXPECT_EQ(bytes.find("ghp_bob_secret"), std::string::npos);
  // Another key reads nothing.
  auto other = std::move(*OpenCredentialStore(spec_, Key()));
  auto wrong = other->Get("github", "alice@example.com");
  ASSERT_FALSE(wrong);
  EXPECT_NE(wrong.error().message().find("does not decrypt"), std::string::npos);
  // A row moved to another person (someone with write access to the file) does not decrypt.
  sqlite3* db = nullptr;
  ASSERT_EQ(sqlite3_open((dir_ / "state.db").c_str(), &db), SQLITE_OK);
  ASSERT_EQ(sqlite3_exec(db,
                         "UPDATE upstream_credentials SET sealed=(SELECT sealed FROM upstream_credentials "
                         "WHERE principal='alice@example.com') WHERE principal='bob@example.com'",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  sqlite3_close(db);
  auto store = std::move(*OpenCredentialStore(spec_, Key(hex)));
  EXPECT_FALSE(store->Get("github", "bob@example.com"));
  EXPECT_TRUE(*store->Get("github", "alice@example.com"));
  EXPECT_TRUE(*store->Delete("github", "alice@example.com"));
  EXPECT_FALSE(*store->Delete("github", "alice@example.com"));
  EXPECT_FALSE(*store->Get("github", "alice@example.com"));
}

TEST_F(CredentialStoreTest, TheKeyComesFromTheEnvironmentOrAFileOnlyItsOwnerReads) {
  EXPECT_FALSE(CredentialKey::Parse("abc"));
  EXPECT_FALSE(CredentialKey::Parse(std::string(64, 'g')));
  EXPECT_TRUE(CredentialKey::Parse(" " + std::string(64, 'A') + "\n"));
  ::unsetenv("TOOLWARDEN_CREDENTIAL_KEY");
  auto none = CredentialKey::Load("");
  ASSERT_FALSE(none);
  EXPECT_EQ(none.error().code(), ErrorCode::kNotFound);
  const std::string file = (dir_ / "key").string();
  std::ofstream(file) << CredentialKey::Generate() << "\n";
  ::chmod(file.c_str(), 0644);
  auto loose = CredentialKey::Load(file);
  ASSERT_FALSE(loose);
  EXPECT_NE(loose.error().message().find("chmod 600"), std::string::npos);
  ::chmod(file.c_str(), 0600);
  EXPECT_TRUE(CredentialKey::Load(file));
  ::setenv("TOOLWARDEN_CREDENTIAL_KEY", "not a key", 1);
  auto bad_env = CredentialKey::Load(file);
  ::unsetenv("TOOLWARDEN_CREDENTIAL_KEY");
  ASSERT_FALSE(bad_env);
  EXPECT_NE(bad_env.error().message().find("TOOLWARDEN_CREDENTIAL_KEY"), std::string::npos);
}

}  // namespace
}  // namespace tw::auth
