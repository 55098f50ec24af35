// The host's trusted CA certificates, wherever its Linux distribution keeps them.
#pragma once

#include <openssl/types.h>

namespace tw {

// Adds the system's CA certificates to `store`: OpenSSL's default locations (SSL_CERT_FILE and
// SSL_CERT_DIR when set), and — when the bundle OpenSSL was built to look for does not exist
// on this host, as for the portable binary (make package) on a distribution other than the
// Debian it was built on — the first bundle found where Debian/Ubuntu, Fedora/RHEL, openSUSE
// or Alpine keep theirs. Returns false if no certificate source could be loaded.
bool TrustSystemRoots(X509_STORE* store);

}  // namespace tw
