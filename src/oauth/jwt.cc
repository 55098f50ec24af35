#include "oauth/jwt.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/rsa.h>

#include <array>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>
#include <cmath>

namespace tw::oauth {
namespace json = boost::json;

namespace {

constexpr std::string_view kAlphabet =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

int Sextet(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '-') return 62;
  if (c == '_') return 63;
  return -1;
}

std::string StringMember(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  return v && v->is_string() ? std::string(v->as_string()) : std::string();
}

struct PkeyCtxFree {
  void operator()(EVP_PKEY_CTX* c) const { EVP_PKEY_CTX_free(c); }
};
struct MdCtxFree {
  void operator()(EVP_MD_CTX* c) const { EVP_MD_CTX_free(c); }
};
struct BldFree {
  void operator()(OSSL_PARAM_BLD* b) const { OSSL_PARAM_BLD_free(b); }
};
struct ParamFree {
  void operator()(OSSL_PARAM* p) const { OSSL_PARAM_free(p); }
};
struct BnFree {
  void operator()(BIGNUM* b) const { BN_free(b); }
};
using Bn = std::unique_ptr<BIGNUM, BnFree>;

Bn ToBn(const std::string& bytes) {
  return Bn(BN_bin2bn(reinterpret_cast<const unsigned char*>(bytes.data()),
                      static_cast<int>(bytes.size()), nullptr));
}

// Builds a public key from OpenSSL parameters of type `name` ("RSA", "EC").
EVP_PKEY* FromData(const char* name, OSSL_PARAM* params) {
  std::unique_ptr<EVP_PKEY_CTX, PkeyCtxFree> ctx(EVP_PKEY_CTX_new_from_name(nullptr, name, nullptr));
  EVP_PKEY* key = nullptr;
  if (!ctx || EVP_PKEY_fromdata_init(ctx.get()) <= 0 ||
      EVP_PKEY_fromdata(ctx.get(), &key, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
    return nullptr;
  }
  return key;
}

// The digest an algorithm's name implies ("RS256" → SHA-256); nullptr for EdDSA.
const EVP_MD* DigestOf(std::string_view alg) {
  if (alg.ends_with("256")) return EVP_sha256();
  if (alg.ends_with("384")) return EVP_sha384();
  if (alg.ends_with("512")) return EVP_sha512();
  return nullptr;
}

// The curve an ES algorithm needs, and its coordinate size.
std::pair<std::string_view, size_t> CurveOf(std::string_view alg) {
  if (alg == "ES256") return {"P-256", 32};
  if (alg == "ES384") return {"P-384", 48};
  return {"", 0};
}

Verified Refuse(JwtRefusal why, std::string reason) {
  Verified v;
  v.refusal = why;
  v.reason = std::move(reason);
  return v;
}

// A NumericDate claim (RFC 7519 §2): a JSON number of seconds; nullopt when absent or not one.
std::optional<double> DateClaim(const json::object& claims, std::string_view key) {
  const json::value* v = claims.if_contains(key);
  if (!v || !v->is_number()) return std::nullopt;
  const double d = v->to_number<double>();
  if (!std::isfinite(d)) return std::nullopt;
  return d;
}

}  // namespace

std::string Base64UrlEncode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() * 4 + 2) / 3);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t n = (uint8_t(bytes[i]) << 16) | (uint8_t(bytes[i + 1]) << 8) | uint8_t(bytes[i + 2]);
    out.push_back(kAlphabet[n >> 18]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    out.push_back(kAlphabet[(n >> 6) & 63]);
    out.push_back(kAlphabet[n & 63]);
  }
  const size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t n = uint8_t(bytes[i]) << 16;
    if (rest == 2) n |= uint8_t(bytes[i + 1]) << 8;
    out.push_back(kAlphabet[n >> 18]);
    out.push_back(kAlphabet[(n >> 12) & 63]);
    if (rest == 2) out.push_back(kAlphabet[(n >> 6) & 63]);
  }
  return out;
}

std::optional<std::string> Base64UrlDecode(std::string_view text) {
  if (text.size() % 4 == 1) return std::nullopt;
  std::string out;
  out.reserve(text.size() * 3 / 4);
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    const int s = Sextet(c);
    if (s < 0) return std::nullopt;
    acc = (acc << 6) | uint32_t(s);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out.push_back(char((acc >> bits) & 0xff));
    }
  }
  if (bits > 0 && (acc & ((1u << bits) - 1)) != 0) return std::nullopt;  // non-canonical tail
  return out;
}

void Jwk::KeyFree::operator()(void* key) const { EVP_PKEY_free(static_cast<EVP_PKEY*>(key)); }
Jwk::~Jwk() = default;
Jwk::Jwk(Jwk&&) noexcept = default;
Jwk& Jwk::operator=(Jwk&&) noexcept = default;

Result<Jwk> Jwk::FromJson(const json::object& jwk) {
  Jwk k;
  k.kid_ = StringMember(jwk, "kid");
  k.alg_ = StringMember(jwk, "alg");
  const std::string use = StringMember(jwk, "use");
  k.for_signing_ = use.empty() || use == "sig";
  const std::string kty = StringMember(jwk, "kty");
  auto member = [&](std::string_view name) -> Result<std::string> {
    auto bytes = Base64UrlDecode(StringMember(jwk, name));
    if (!bytes || bytes->empty()) {
      return Fail(Error::InvalidArgument("key \"" + k.kid_ + "\": member \"" + std::string(name) +
                                         "\" is missing or not base64url"));
    }
    return *bytes;
  };
  EVP_PKEY* key = nullptr;
  if (kty == "RSA") {
    k.type_ = Type::kRsa;
    auto n = member("n");
    if (!n) return Fail(n.error());
    auto e = member("e");
    if (!e) return Fail(e.error());
    if (n->size() < 256) {
      return Fail(Error::InvalidArgument("key \"" + k.kid_ + "\": an RSA key under 2048 bits"));
    }
    Bn bn_n = ToBn(*n), bn_e = ToBn(*e);
    std::unique_ptr<OSSL_PARAM_BLD, BldFree> bld(OSSL_PARAM_BLD_new());
    if (!bld || !bn_n || !bn_e ||
        !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_N, bn_n.get()) ||
        !OSSL_PARAM_BLD_push_BN(bld.get(), OSSL_PKEY_PARAM_RSA_E, bn_e.get())) {
      return Fail(Error::Internal("building an RSA key"));
    }
    std::unique_ptr<OSSL_PARAM, ParamFree> params(OSSL_PARAM_BLD_to_param(bld.get()));
    key = params ? FromData("RSA", params.get()) : nullptr;
  } else if (kty == "EC") {
    k.type_ = Type::kEc;
    k.curve_ = StringMember(jwk, "crv");
    const char* group = k.curve_ == "P-256" ? "prime256v1" : k.curve_ == "P-384" ? "secp384r1" : nullptr;
    if (!group) {
      return Fail(Error::InvalidArgument("key \"" + k.kid_ + "\": curve \"" + k.curve_ +
                                         "\" is not taken (P-256, P-384)"));
    }
    const size_t size = k.curve_ == "P-256" ? 32 : 48;
    auto x = member("x");
    if (!x) return Fail(x.error());
    auto y = member("y");
    if (!y) return Fail(y.error());
    if (x->size() != size || y->size() != size) {
      return Fail(Error::InvalidArgument("key \"" + k.kid_ + "\": coordinates of the wrong size"));
    }
    std::string point = "\x04" + *x;
    point += *y;
    std::unique_ptr<OSSL_PARAM_BLD, BldFree> bld(OSSL_PARAM_BLD_new());
    if (!bld || !OSSL_PARAM_BLD_push_utf8_string(bld.get(), OSSL_PKEY_PARAM_GROUP_NAME, group, 0) ||
        !OSSL_PARAM_BLD_push_octet_string(bld.get(), OSSL_PKEY_PARAM_PUB_KEY, point.data(),
                                          point.size())) {
      return Fail(Error::Internal("building an EC key"));
    }
    std::unique_ptr<OSSL_PARAM, ParamFree> params(OSSL_PARAM_BLD_to_param(bld.get()));
    key = params ? FromData("EC", params.get()) : nullptr;  // checks the point is on the curve
  } else if (kty == "OKP") {
    k.type_ = Type::kOkp;
    k.curve_ = StringMember(jwk, "crv");
    if (k.curve_ != "Ed25519") {
      return Fail(Error::InvalidArgument("key \"" + k.kid_ + "\": curve \"" + k.curve_ +
                                         "\" is not taken (Ed25519)"));
    }
    auto x = member("x");
    if (!x) return Fail(x.error());
    key = EVP_PKEY_new_raw_public_key(EVP_PKEY_ED25519, nullptr,
                                      reinterpret_cast<const unsigned char*>(x->data()), x->size());
  } else {
    return Fail(Error::InvalidArgument("key \"" + k.kid_ + "\": type \"" + kty +
                                       "\" cannot verify an access token (RSA, EC, OKP)"));
  }
  if (!key) return Fail(Error::InvalidArgument("key \"" + k.kid_ + "\" is not a valid public key"));
  k.key_.reset(key);
  return k;
}

bool Jwk::Fits(std::string_view alg) const {
  if (!for_signing_ || !AcceptedAlgorithm(alg)) return false;
  if (!alg_.empty() && alg_ != alg) return false;
  switch (type_) {
    case Type::kRsa:
      return alg.starts_with("RS") || alg.starts_with("PS");
    case Type::kEc:
      return alg.starts_with("ES") && CurveOf(alg).first == curve_;
    case Type::kOkp:
      return alg == "EdDSA";
  }
  return false;
}

bool Jwk::Verify(std::string_view alg, std::string_view input, std::string_view signature) const {
  EVP_PKEY* key = static_cast<EVP_PKEY*>(key_.get());
  std::unique_ptr<EVP_MD_CTX, MdCtxFree> ctx(EVP_MD_CTX_new());
  if (!ctx) return false;
  EVP_PKEY_CTX* pctx = nullptr;
  if (EVP_DigestVerifyInit(ctx.get(), &pctx, DigestOf(alg), nullptr, key) <= 0) return false;
  std::string der;
  if (alg.starts_with("PS")) {
    if (EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING) <= 0 ||
        EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST) <= 0) {
      return false;
    }
  } else if (alg.starts_with("ES")) {
    // JWS carries r||s of fixed size (RFC 7518 §3.4); OpenSSL verifies DER.
    const size_t size = CurveOf(alg).second;
    if (signature.size() != 2 * size) return false;
    ECDSA_SIG* sig = ECDSA_SIG_new();
    if (!sig) return false;
    BIGNUM* r = BN_bin2bn(reinterpret_cast<const unsigned char*>(signature.data()), int(size), nullptr);
    BIGNUM* s = BN_bin2bn(reinterpret_cast<const unsigned char*>(signature.data() + size),
                          int(size), nullptr);
    if (!r || !s || !ECDSA_SIG_set0(sig, r, s)) {
      BN_free(r);
      BN_free(s);
      ECDSA_SIG_free(sig);
      return false;
    }
    unsigned char* out = nullptr;
    const int len = i2d_ECDSA_SIG(sig, &out);
    ECDSA_SIG_free(sig);
    if (len <= 0) return false;
    der.assign(reinterpret_cast<char*>(out), size_t(len));
    OPENSSL_free(out);
    signature = der;
  }
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                          signature.size(), reinterpret_cast<const unsigned char*>(input.data()),
                          input.size()) == 1;
}

Result<KeySet> KeySet::Parse(std::string_view text) {
  boost::system::error_code ec;
  json::value doc = json::parse(text, ec);
  if (ec || !doc.is_object()) return Fail(Error::InvalidArgument("the key set is not a JSON object"));
  const json::value* keys = doc.as_object().if_contains("keys");
  if (!keys || !keys->is_array()) {
    return Fail(Error::InvalidArgument("the key set has no \"keys\" array"));
  }
  KeySet set;
  for (const json::value& k : keys->as_array()) {
    if (!k.is_object()) {
      set.skipped.push_back("a key that is not an object");
      continue;
    }
    auto jwk = Jwk::FromJson(k.as_object());
    if (!jwk) {
      set.skipped.push_back(jwk.error().message());
      continue;
    }
    set.keys.push_back(std::move(*jwk));
  }
  return set;
}

const Jwk* KeySet::Find(std::string_view kid, std::string_view alg) const {
  const Jwk* only = nullptr;
  int fitting = 0;
  for (const Jwk& k : keys) {
    if (!kid.empty()) {
      if (k.kid() == kid) return k.Fits(alg) ? &k : nullptr;
      continue;
    }
    if (k.Fits(alg)) {
      only = &k;
      ++fitting;
    }
  }
  return fitting == 1 ? only : nullptr;
}

bool AcceptedAlgorithm(std::string_view alg) {
  static constexpr std::array<std::string_view, 9> kTaken = {
      "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"};
  for (std::string_view a : kTaken) {
    if (a == alg) return true;
  }
  return false;
}

Result<Decoded> Decode(std::string_view token) {
  const size_t a = token.find('.');
  const size_t b = a == std::string_view::npos ? a : token.find('.', a + 1);
  if (b == std::string_view::npos || token.find('.', b + 1) != std::string_view::npos) {
    return Fail(Error::InvalidArgument("the token is not a signed JWT (three parts)"));
  }
  auto header = Base64UrlDecode(token.substr(0, a));
  auto claims = Base64UrlDecode(token.substr(a + 1, b - a - 1));
  auto signature = Base64UrlDecode(token.substr(b + 1));
  if (!header || !claims || !signature) {
    return Fail(Error::InvalidArgument("the token's parts are not base64url"));
  }
  boost::system::error_code ec;
  json::value h = json::parse(*header, ec);
  if (ec || !h.is_object()) return Fail(Error::InvalidArgument("the token's header is not a JSON object"));
  json::value c = json::parse(*claims, ec);
  if (ec || !c.is_object()) return Fail(Error::InvalidArgument("the token's claims are not a JSON object"));
  Decoded d;
  d.header = std::move(h.as_object());
  d.claims = std::move(c.as_object());
  d.alg = StringMember(d.header, "alg");
  d.kid = StringMember(d.header, "kid");
  d.signing_input = std::string(token.substr(0, b));
  d.signature = std::move(*signature);
  return d;
}

Verified CheckClaims(json::object claims, const Expectation& expect) {
  if (StringMember(claims, "iss") != expect.issuer) {
    return Refuse(JwtRefusal::kClaims, "the token was issued by another issuer");
  }
  bool audience = false;
  if (const json::value* aud = claims.if_contains("aud")) {
    auto names = [&](const json::value& v) {
      if (!v.is_string()) return false;
      for (const std::string& a : expect.audiences) {
        if (v.as_string() == a) return true;
      }
      return false;
    };
    if (aud->is_array()) {
      for (const json::value& a : aud->as_array()) audience = audience || names(a);
    } else {
      audience = names(*aud);
    }
  }
  if (!audience) return Refuse(JwtRefusal::kClaims, "the token is for another audience");
  const std::optional<double> exp = DateClaim(claims, "exp");
  if (!exp) return Refuse(JwtRefusal::kClaims, "the token has no expiry");
  if (*exp + double(expect.leeway_s) <= double(expect.now_s)) {
    return Refuse(JwtRefusal::kClaims, "the token expired");
  }
  if (claims.contains("nbf")) {
    const std::optional<double> nbf = DateClaim(claims, "nbf");
    if (!nbf || *nbf - double(expect.leeway_s) > double(expect.now_s)) {
      return Refuse(JwtRefusal::kClaims, "the token is not valid yet");
    }
  }
  Verified v;
  v.claims = std::move(claims);
  return v;
}

Verified Verify(std::string_view token, const KeySet& keys, const Expectation& expect) {
  auto decoded = Decode(token);
  if (!decoded) return Refuse(JwtRefusal::kMalformed, decoded.error().message());
  if (!AcceptedAlgorithm(decoded->alg)) {
    return Refuse(JwtRefusal::kAlgorithm, "the token's algorithm \"" + decoded->alg +
                                              "\" is not taken (RS*, PS*, ES256, ES384, EdDSA)");
  }
  if (decoded->header.contains("crit")) {
    return Refuse(JwtRefusal::kMalformed, "the token's header has critical extensions");
  }
  // Another issuer's token is refused before any key is looked for: a key it names could
  // only send the caller of Verify to fetch keys of the wrong provider.
  if (StringMember(decoded->claims, "iss") != expect.issuer) {
    return Refuse(JwtRefusal::kClaims, "the token was issued by another issuer");
  }
  const Jwk* key = keys.Find(decoded->kid, decoded->alg);
  if (!key) return Refuse(JwtRefusal::kUnknownKey, "the token was signed by an unknown key");
  if (!key->Verify(decoded->alg, decoded->signing_input, decoded->signature)) {
    return Refuse(JwtRefusal::kSignature, "the token's signature does not verify");
  }
  return CheckClaims(std::move(decoded->claims), expect);
}

}  // namespace tw::oauth
