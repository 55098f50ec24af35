#include "common/system_roots.h"

#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

#include <cstdlib>
#include <filesystem>

namespace tw {

bool TrustSystemRoots(X509_STORE* store) {
  const bool defaults = X509_STORE_set_default_paths(store) == 1;
  if (std::getenv(X509_get_default_cert_file_env()) != nullptr) return defaults;
  std::error_code ec;
  if (std::filesystem::exists(X509_get_default_cert_file(), ec)) return defaults;
  for (const char* bundle :
       {"/etc/ssl/certs/ca-certificates.crt", "/etc/pki/tls/certs/ca-bundle.crt",
        "/etc/ssl/ca-bundle.pem", "/etc/ssl/cert.pem"}) {
    if (std::filesystem::exists(bundle, ec)) return X509_STORE_load_file(store, bundle) == 1;
  }
  return defaults;
}

}  // namespace tw
