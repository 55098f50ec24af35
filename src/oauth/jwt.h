// JSON Web Tokens as OAuth access tokens (RFC 7519, RFC 9068): signature checked against a JSON
// Web Key Set (RFC 7517), then the claims a resource server must check — issuer, audience
// (RFC 8707: this gateway's resource URL), expiry and not-before.
//
// Only asymmetric algorithms are taken (RS256/384/512, PS256/384/512, ES256/384, EdDSA): a
// symmetric key (HS*) would let anyone holding the issuer's shared secret mint tokens for every
// resource, and `none` signs nothing. The algorithm comes from the token's header but must fit
// the key it names (its `kty`, its curve, its own `alg` when the key says one), so a public RSA
// key can never be used as an HMAC secret (the classic algorithm-confusion attack).
//
// Pure: no I/O, no clock (the time is given).
#pragma once

#include <boost/json/object.hpp>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"

namespace tw::oauth {

// Base64url without padding (RFC 7515 §2). Decoding refuses padding, other alphabets and
// trailing bits that are not zero (one token, one spelling).
std::string Base64UrlEncode(std::string_view bytes);
std::optional<std::string> Base64UrlDecode(std::string_view text);

// One public key of a set, ready to verify signatures.
class Jwk {
 public:
  enum class Type { kRsa, kEc, kOkp };
  ~Jwk();
  Jwk(Jwk&&) noexcept;
  Jwk& operator=(Jwk&&) noexcept;

  // One member of a set's `keys`. Fails for symmetric keys (`oct`), unknown types and curves
  // and malformed members; a private key's private members are ignored.
  static Result<Jwk> FromJson(const boost::json::object& jwk);

  const std::string& kid() const { return kid_; }
  Type type() const { return type_; }
  // Whether `alg` may be verified with this key.
  bool Fits(std::string_view alg) const;
  // Verifies `signature` over `input` with `alg` (already known to fit).
  bool Verify(std::string_view alg, std::string_view input, std::string_view signature) const;

 private:
  Jwk() = default;
  struct KeyFree {
    void operator()(void* key) const;
  };
  std::unique_ptr<void, KeyFree> key_;  // EVP_PKEY
  Type type_ = Type::kRsa;
  std::string kid_;
  std::string alg_;    // the key's own `alg`, when it names one
  std::string curve_;  // EC / OKP
  bool for_signing_ = true;  // `use` absent or "sig"
};

// A JSON Web Key Set. Keys that cannot verify signatures (symmetric, encryption-only, unknown
// types) are skipped; `skipped` says how many and why, for the log.
struct KeySet {
  std::vector<Jwk> keys;
  std::vector<std::string> skipped;

  static Result<KeySet> Parse(std::string_view json);
  // The key a token's header names: by `kid`; without one, the only key that fits `alg`.
  const Jwk* Find(std::string_view kid, std::string_view alg) const;
};

// What an access token must say to be accepted here.
struct Expectation {
  std::string issuer;                  // `iss`, compared exactly
  std::vector<std::string> audiences;  // `aud` must name one of them
  int64_t now_s = 0;
  int64_t leeway_s = 60;  // clock skew tolerated on exp and nbf
};

// A token's parts, decoded but not yet trusted.
struct Decoded {
  boost::json::object header;
  boost::json::object claims;
  std::string alg;
  std::string kid;
  std::string signing_input;  // header.payload as sent
  std::string signature;      // raw bytes
};
// Splits and decodes a compact JWS; fails on anything but three base64url parts of JSON objects.
Result<Decoded> Decode(std::string_view token);

// Why a token was refused, for the 401's error_description and the audit: never the token.
// kUnknownKey is a token signed by a key the set does not have (yet): a caller may fetch the
// set again before refusing it.
enum class JwtRefusal { kNone, kMalformed, kAlgorithm, kUnknownKey, kSignature, kClaims };

struct Verified {
  boost::json::object claims;
  JwtRefusal refusal = JwtRefusal::kNone;
  std::string reason;  // when refused
  bool ok() const { return refusal == JwtRefusal::kNone; }
};

// Checks `token`'s signature against `keys` and its claims against `expect`.
Verified Verify(std::string_view token, const KeySet& keys, const Expectation& expect);
// The claim checks alone (for a token whose signature was checked).
Verified CheckClaims(boost::json::object claims, const Expectation& expect);

// The algorithms Verify takes.
bool AcceptedAlgorithm(std::string_view alg);

}  // namespace tw::oauth
