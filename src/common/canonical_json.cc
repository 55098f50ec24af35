#include "common/canonical_json.h"

#include "common/hex.h"

#include <openssl/evp.h>

#include <algorithm>
#include <charconv>
#include <memory>
#include <cmath>
#include <vector>

namespace tw {

namespace {

void Write(const boost::json::value& v, ArrayOrder arrays, std::string& out) {
  switch (v.kind()) {
    case boost::json::kind::object: {
      const auto& o = v.get_object();
      std::vector<const boost::json::key_value_pair*> members;
      members.reserve(o.size());
      for (const auto& kv : o) members.push_back(&kv);
      std::sort(members.begin(), members.end(),
                [](auto* a, auto* b) { return a->key() < b->key(); });
      out.push_back('{');
      for (size_t i = 0; i < members.size(); ++i) {
        if (i) out.push_back(',');
        out += boost::json::serialize(boost::json::string(members[i]->key()));
        out.push_back(':');
        Write(members[i]->value(), arrays, out);
      }
      out.push_back('}');
      return;
    }
    case boost::json::kind::array: {
      std::vector<std::string> items;
      for (const auto& item : v.get_array()) {
        std::string s;
        Write(item, arrays, s);
        items.push_back(std::move(s));
      }
      if (arrays == ArrayOrder::kSorted) std::sort(items.begin(), items.end());
      out.push_back('[');
      for (size_t i = 0; i < items.size(); ++i) {
        if (i) out.push_back(',');
        out += items[i];
      }
      out.push_back(']');
      return;
    }
    case boost::json::kind::double_: {
      const double d = v.get_double();
      if (std::isfinite(d) && d == std::floor(d) && std::fabs(d) < 9007199254740992.0) {
        out += std::to_string(static_cast<int64_t>(d));
        return;
      }
      char buf[64];
      auto [p, ec] = std::to_chars(buf, buf + sizeof buf, d);
      out.append(buf, p);
      return;
    }
    default:
      out += boost::json::serialize(v);
  }
}

}  // namespace

std::string CanonicalJson(const boost::json::value& v, ArrayOrder arrays) {
  std::string out;
  Write(v, arrays, out);
  return out;
}

std::string Sha256Hex(std::string_view data) {
  // OpenSSL 3 looks the algorithm up in its provider registry on every EVP_Digest(EVP_sha256())
  // (a fetch under a lock: ~5k instructions, most of the cost of hashing a call's arguments).
  // The algorithm is fetched once per process and a context kept per thread instead.
  static EVP_MD* const md = EVP_MD_fetch(nullptr, "SHA2-256", nullptr);
  struct CtxFree {
    void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
  };
  thread_local std::unique_ptr<EVP_MD_CTX, CtxFree> ctx(EVP_MD_CTX_new());
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  if (!md || !ctx || EVP_DigestInit_ex2(ctx.get(), md, nullptr) != 1 ||
      EVP_DigestUpdate(ctx.get(), data.data(), data.size()) != 1 ||
      EVP_DigestFinal_ex(ctx.get(), digest, &len) != 1) {
    EVP_Digest(data.data(), data.size(), digest, &len, EVP_sha256(), nullptr);  // slow path
  }
  std::string out;
  out.reserve(len * 2);
  AppendHex(out, digest, len);
  return out;
}

}  // namespace tw
