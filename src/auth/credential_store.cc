#include "auth/credential_store.h"

#include <openssl/evp.h>
#include <openssl/rand.h>
#include <sqlite3.h>
#include <sys/stat.h>

#include <boost/json.hpp>
#include <cstdlib>
#include <fstream>
#include <mutex>
#include <sstream>

#include "common/random.h"
#include "common/sqlite_db.h"

namespace tw::auth {
namespace {
namespace json = boost::json;

constexpr size_t kNonce = 12;
constexpr size_t kTag = 16;

struct CipherFree {
  void operator()(EVP_CIPHER_CTX* c) const { EVP_CIPHER_CTX_free(c); }
};

std::string Aad(const std::string& server, const std::string& principal) {
  std::string aad = "toolwarden-credential-v1\n";
  return aad.append(server).append(1, '\0').append(principal);
}

// nonce || ciphertext || tag.
Result<std::string> Seal(const CredentialKey& key, const std::string& aad, const std::string& plain) {
  std::string out(kNonce, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), kNonce) != 1) {
    return Fail(Error::Internal("no random nonce"));
  }
  std::unique_ptr<EVP_CIPHER_CTX, CipherFree> ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  std::string body(plain.size(), '\0');
  unsigned char tag[kTag];
  if (!ctx || EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.bytes().data(),
                                 reinterpret_cast<const unsigned char*>(out.data())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size())) != 1 ||
      EVP_EncryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(body.data()), &len,
                        reinterpret_cast<const unsigned char*>(plain.data()), static_cast<int>(plain.size())) != 1 ||
      EVP_EncryptFinal_ex(ctx.get(), nullptr, &len) != 1 ||
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTag, tag) != 1) {
    return Fail(Error::Internal("encrypting a credential"));
  }
  out += body;
  out.append(reinterpret_cast<char*>(tag), kTag);
  return out;
}

Result<std::string> Open(const CredentialKey& key, const std::string& aad, const std::string& sealed) {
  if (sealed.size() < kNonce + kTag) return Fail(Error::InvalidArgument("a stored credential is truncated"));
  const size_t n = sealed.size() - kNonce - kTag;
  std::string plain(n, '\0');
  std::unique_ptr<EVP_CIPHER_CTX, CipherFree> ctx(EVP_CIPHER_CTX_new());
  int len = 0;
  std::string tag = sealed.substr(kNonce + n);
  const bool ok =
      ctx &&
      EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key.bytes().data(),
                         reinterpret_cast<const unsigned char*>(sealed.data())) == 1 &&
      EVP_DecryptUpdate(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(aad.data()),
                        static_cast<int>(aad.size())) == 1 &&
      EVP_DecryptUpdate(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()), &len,
                        reinterpret_cast<const unsigned char*>(sealed.data() + kNonce), static_cast<int>(n)) == 1 &&
      EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTag, tag.data()) == 1 &&
      EVP_DecryptFinal_ex(ctx.get(), reinterpret_cast<unsigned char*>(plain.data()) + len, &len) == 1;
  if (!ok) {
    return Fail(Error::InvalidArgument(
        "a stored credential does not decrypt with this key (another key, or a changed row)"));
  }
  return plain;
}

class SqliteCredentialStore : public CredentialStore, SqliteStoreBase {
 public:
  SqliteCredentialStore(std::shared_ptr<SqliteConnection> conn, CredentialKey key)
      : SqliteStoreBase(std::move(conn), "credential store"), key_(key) {}

  Result<bool> Set(const std::string& server, const std::string& principal, const Headers& headers,
                   int64_t now_ms) override {
    json::array plain;
    json::array names;
    for (const auto& [k, v] : headers) {
      plain.push_back(json::array{json::string(k), json::string(v)});
      names.emplace_back(k);
    }
    auto sealed = Seal(key_, Aad(server, principal), json::serialize(plain));
    if (!sealed) return Fail(sealed.error());
    const std::string names_text = json::serialize(names);
    std::lock_guard lock(mu_);
    SqliteStmt st;
    sqlite3_prepare_v2(db_,
                       "INSERT INTO upstream_credentials(server, principal, sealed, header_names, "
                       "updated_ms) VALUES(?1,?2,?3,?4,?5) ON CONFLICT(server, principal) DO UPDATE "
                       "SET sealed=excluded.sealed, header_names=excluded.header_names, "
                       "updated_ms=excluded.updated_ms",
                       -1, &st.s, nullptr);
    sqlite3_bind_text(st.s, 1, server.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_text(st.s, 2, principal.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_blob(st.s, 3, sealed->data(), static_cast<int>(sealed->size()), SQLITE_STATIC);
    sqlite3_bind_text(st.s, 4, names_text.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_int64(st.s, 5, now_ms);
    if (sqlite3_step(st.s) != SQLITE_DONE) return Fail(Err());
    return true;
  }

  Result<std::optional<Headers>> Get(const std::string& server, const std::string& principal) override {
    std::string sealed;
    {
      std::lock_guard lock(mu_);
      ScopedStmt st = stmts_.Get(db_, "SELECT sealed FROM upstream_credentials WHERE server=?1 AND principal=?2");
      sqlite3_bind_text(st.s, 1, server.c_str(), -1, SQLITE_STATIC);
      sqlite3_bind_text(st.s, 2, principal.c_str(), -1, SQLITE_STATIC);
      const int rc = sqlite3_step(st.s);
      if (rc == SQLITE_DONE) return std::optional<Headers>();
      if (rc != SQLITE_ROW) return Fail(Err());
      sealed.assign(static_cast<const char*>(sqlite3_column_blob(st.s, 0)),
                    static_cast<size_t>(sqlite3_column_bytes(st.s, 0)));
    }
    auto plain = Open(key_, Aad(server, principal), sealed);
    if (!plain) return Fail(plain.error());
    boost::system::error_code ec;
    json::value v = json::parse(*plain, ec);
    Headers out;
    if (!ec && v.is_array()) {
      for (const json::value& kv : v.as_array()) {
        if (kv.is_array() && kv.as_array().size() == 2 && kv.as_array()[0].is_string() && kv.as_array()[1].is_string()) {
          out.emplace_back(kv.as_array()[0].as_string(), kv.as_array()[1].as_string());
        }
      }
    }
    return std::optional<Headers>(std::move(out));
  }

  Result<std::vector<CredentialInfo>> List() override {
    std::lock_guard lock(mu_);
    SqliteStmt st;
    sqlite3_prepare_v2(db_,
                       "SELECT server, principal, header_names, updated_ms FROM upstream_credentials "
                       "ORDER BY server, principal",
                       -1, &st.s, nullptr);
    std::vector<CredentialInfo> out;
    int rc;
    while ((rc = sqlite3_step(st.s)) == SQLITE_ROW) {
      CredentialInfo c;
      c.server = ColumnText(st.s, 0);
      c.principal = ColumnText(st.s, 1);
      boost::system::error_code ec;
      json::value names = json::parse(ColumnText(st.s, 2), ec);
      if (!ec && names.is_array()) {
        for (const json::value& n : names.as_array()) {
          if (n.is_string()) c.header_names.emplace_back(n.as_string());
        }
      }
      c.updated_ms = sqlite3_column_int64(st.s, 3);
      out.push_back(std::move(c));
    }
    if (rc != SQLITE_DONE) return Fail(Err());
    return out;
  }

  Result<bool> Delete(const std::string& server, const std::string& principal) override {
    std::lock_guard lock(mu_);
    SqliteStmt st;
    sqlite3_prepare_v2(db_, "DELETE FROM upstream_credentials WHERE server=?1 AND principal=?2", -1, &st.s, nullptr);
    sqlite3_bind_text(st.s, 1, server.c_str(), -1, SQLITE_STATIC);
    sqlite3_bind_text(st.s, 2, principal.c_str(), -1, SQLITE_STATIC);
    if (sqlite3_step(st.s) != SQLITE_DONE) return Fail(Err());
    return sqlite3_changes(db_) > 0;
  }

 private:
  const CredentialKey key_;
};

}  // namespace

Result<CredentialKey> CredentialKey::Parse(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  CredentialKey k;
  auto nibble = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  bool hex = text.size() == 64;
  for (size_t i = 0; hex && i < 32; ++i) {
    const int hi = nibble(text[2 * i]), lo = nibble(text[2 * i + 1]);
    hex = hi >= 0 && lo >= 0;
    if (hex) k.bytes_[i] = static_cast<unsigned char>(hi * 16 + lo);
  }
  if (hex) return k;
  return Fail(Error::InvalidArgument(
      "the credential key must be 32 bytes as 64 hex digits (make one with `toolwarden credentials key`)"));
}

Result<CredentialKey> CredentialKey::Load(const std::string& file) {
  if (const char* env = std::getenv("TOOLWARDEN_CREDENTIAL_KEY"); env && *env) {
    return Parse(env).map_error([](const Error& e) { return e.Context("TOOLWARDEN_CREDENTIAL_KEY"); });
  }
  if (file.empty()) {
    return Fail(Error::NotFound(
        "no credential key: set TOOLWARDEN_CREDENTIAL_KEY or auth.credential_key_file (make one with "
        "`toolwarden credentials key`)"));
  }
  struct stat st {};
  if (::stat(file.c_str(), &st) != 0) {
    return Fail(Error::NotFound("the credential key file " + file + " does not exist"));
  }
  if ((st.st_mode & 077) != 0) {
    return Fail(Error::InvalidArgument("the credential key file " + file +
                                       " may be read by others than its owner (chmod 600 it)"));
  }
  std::ifstream in(file);
  std::stringstream text;
  text << in.rdbuf();
  return Parse(text.str()).map_error([&](const Error& e) { return e.Context(file); });
}

std::string CredentialKey::Generate() { return RandomHex(32); }

Result<std::unique_ptr<CredentialStore>> OpenCredentialStore(const std::string& spec, CredentialKey key) {
  auto path = SqlitePathForSpec(spec);
  if (!path) return Fail(path.error());
  auto conn = OpenSharedSqlite(
      *path, "credential store",
      {"CREATE TABLE IF NOT EXISTS upstream_credentials(server TEXT NOT NULL, principal TEXT NOT "
       "NULL, sealed BLOB NOT NULL, header_names TEXT NOT NULL, updated_ms INTEGER NOT NULL, "
       "PRIMARY KEY(server, principal))"});
  if (!conn) return Fail(conn.error());
  return std::unique_ptr<CredentialStore>(std::make_unique<SqliteCredentialStore>(std::move(*conn), key));
}

}  // namespace tw::auth
