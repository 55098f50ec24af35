// Test-only: signing keys made on the spot, their public JWK and tokens they sign — the
// identity provider's side of the tests of jwt.h and issuer.h.
#pragma once

#include <openssl/core_names.h>
#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>

#include <boost/json.hpp>
#include <memory>
#include <string>

#include "oauth/jwt.h"

namespace tw::oauth {

class TestKey {
 public:
  // alg: RS256, PS256, ES256, ES384 or EdDSA.
  static TestKey Make(const std::string& alg, const std::string& kid) {
    TestKey k;
    k.alg_ = alg;
    k.kid_ = kid;
    EVP_PKEY* key = alg.starts_with("RS") || alg.starts_with("PS") ? EVP_RSA_gen(2048)
                    : alg == "ES256"                               ? EVP_EC_gen("P-256")
                    : alg == "ES384"                               ? EVP_EC_gen("P-384")
                    : EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
    k.key_ = std::shared_ptr<EVP_PKEY>(key, EVP_PKEY_free);
    return k;
  }

  boost::json::object Jwk() const {
    boost::json::object o{{"kid", kid_}, {"use", "sig"}, {"alg", alg_}};
    EVP_PKEY* k = key_.get();
    if (alg_.starts_with("RS") || alg_.starts_with("PS")) {
      o["kty"] = "RSA";
      o["n"] = Base64UrlEncode(Bn(k, OSSL_PKEY_PARAM_RSA_N));
      o["e"] = Base64UrlEncode(Bn(k, OSSL_PKEY_PARAM_RSA_E));
    } else if (alg_.starts_with("ES")) {
      const size_t size = alg_ == "ES256" ? 32 : 48;
      o["kty"] = "EC";
      o["crv"] = alg_ == "ES256" ? "P-256" : "P-384";
      o["x"] = Base64UrlEncode(Pad(Bn(k, OSSL_PKEY_PARAM_EC_PUB_X), size));
      o["y"] = Base64UrlEncode(Pad(Bn(k, OSSL_PKEY_PARAM_EC_PUB_Y), size));
    } else {
      unsigned char raw[32];
      size_t len = sizeof raw;
      EVP_PKEY_get_raw_public_key(k, raw, &len);
      o["kty"] = "OKP";
      o["crv"] = "Ed25519";
      o["x"] = Base64UrlEncode(std::string(reinterpret_cast<char*>(raw), len));
    }
    return o;
  }

  std::string Sign(const boost::json::object& claims) const {
    return SignWithHeader(boost::json::object{{"alg", alg_}, {"kid", kid_}, {"typ", "at+jwt"}}, claims);
  }

  std::string SignWithHeader(const boost::json::object& header, const boost::json::object& claims) const {
    const std::string input = Base64UrlEncode(boost::json::serialize(header)) + "." +
                              Base64UrlEncode(boost::json::serialize(claims));
    std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
    EVP_PKEY_CTX* pctx = nullptr;
    const EVP_MD* md = alg_ == "EdDSA" ? nullptr : alg_.ends_with("384") ? EVP_sha384() : EVP_sha256();
    EVP_DigestSignInit(ctx.get(), &pctx, md, nullptr, key_.get());
    if (alg_.starts_with("PS")) {
      EVP_PKEY_CTX_set_rsa_padding(pctx, RSA_PKCS1_PSS_PADDING);
      EVP_PKEY_CTX_set_rsa_pss_saltlen(pctx, RSA_PSS_SALTLEN_DIGEST);
    }
    size_t len = 0;
    EVP_DigestSign(ctx.get(), nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()),
                   input.size());
    std::string sig(len, '\0');
    EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &len,
                   reinterpret_cast<const unsigned char*>(input.data()), input.size());
    sig.resize(len);
    if (alg_.starts_with("ES")) sig = RawEcdsa(sig, alg_ == "ES256" ? 32 : 48);
    return input + "." + Base64UrlEncode(sig);
  }

 private:
  static std::string Bn(EVP_PKEY* k, const char* name) {
    BIGNUM* bn = nullptr;
    EVP_PKEY_get_bn_param(k, name, &bn);
    std::string out(static_cast<size_t>(BN_num_bytes(bn)), '\0');
    BN_bn2bin(bn, reinterpret_cast<unsigned char*>(out.data()));
    BN_free(bn);
    return out;
  }
  static std::string Pad(std::string s, size_t size) { return std::string(size - s.size(), '\0') + s; }
  static std::string RawEcdsa(const std::string& der, size_t size) {
    const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
    ECDSA_SIG* sig = d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size()));
    std::string out(2 * size, '\0');
    BN_bn2binpad(ECDSA_SIG_get0_r(sig), reinterpret_cast<unsigned char*>(out.data()), int(size));
    BN_bn2binpad(ECDSA_SIG_get0_s(sig), reinterpret_cast<unsigned char*>(out.data() + size), int(size));
    ECDSA_SIG_free(sig);
    return out;
  }

  std::string alg_, kid_;
  std::shared_ptr<EVP_PKEY> key_;
};

}  // namespace tw::oauth
