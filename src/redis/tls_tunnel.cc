#include "redis/tls_tunnel.h"

#include "common/system_roots.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

namespace tw::redis {

namespace {

std::string Env(const char* name) {
  const char* v = std::getenv(name);
  return v ? std::string(v) : std::string();
}

std::string SslError() {
  const unsigned long e = ERR_get_error();
  if (e == 0) return "TLS handshake failed";
  char buf[256];
  ERR_error_string_n(e, buf, sizeof buf);
  return buf;
}

// A TCP connection to host:port within `timeout`, or -1 (with `why`).
int Dial(const std::string& host, int port, std::chrono::milliseconds timeout, std::string& why) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &res); rc != 0) {
    why = gai_strerror(rc);
    return -1;
  }
  int fd = -1;
  for (addrinfo* a = res; a != nullptr && fd < 0; a = a->ai_next) {
    fd = socket(a->ai_family, a->ai_socktype | SOCK_CLOEXEC, a->ai_protocol);
    if (fd < 0) continue;
    timeval tv{static_cast<time_t>(timeout.count() / 1000),
               static_cast<suseconds_t>((timeout.count() % 1000) * 1000)};
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);  // bounds connect() too
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);  // the handshake
    if (connect(fd, a->ai_addr, a->ai_addrlen) != 0) {
      why = std::strerror(errno);
      close(fd);
      fd = -1;
    }
  }
  freeaddrinfo(res);
  return fd;
}

}  // namespace

Result<std::unique_ptr<TlsTunnel>> TlsTunnel::Open(const std::string& host, int port,
                                                   std::chrono::milliseconds timeout) {
  std::unique_ptr<TlsTunnel> t(new TlsTunnel());
  const std::string where = "rediss://" + host + ":" + std::to_string(port);
  t->ctx_ = SSL_CTX_new(TLS_client_method());
  if (t->ctx_ == nullptr) return Fail(Error::Internal(where + ": " + SslError()));
  SSL_CTX_set_min_proto_version(t->ctx_, TLS1_2_VERSION);
  SSL_CTX_set_verify(t->ctx_, SSL_VERIFY_PEER, nullptr);
  const std::string ca = Env("TOOLWARDEN_REDIS_CA_FILE");
  if (!ca.empty() ? SSL_CTX_load_verify_locations(t->ctx_, ca.c_str(), nullptr) != 1
                  : !TrustSystemRoots(SSL_CTX_get_cert_store(t->ctx_))) {
    return Fail(Error::InvalidArgument(where + ": cannot load the CA certificates" +
                                       (ca.empty() ? "" : " of " + ca) + ": " + SslError()));
  }
  const std::string cert = Env("TOOLWARDEN_REDIS_CERT_FILE"), key = Env("TOOLWARDEN_REDIS_KEY_FILE");
  if (!cert.empty() &&
      (SSL_CTX_use_certificate_chain_file(t->ctx_, cert.c_str()) != 1 ||
       SSL_CTX_use_PrivateKey_file(t->ctx_, (key.empty() ? cert : key).c_str(), SSL_FILETYPE_PEM) != 1)) {
    return Fail(Error::InvalidArgument(where + ": cannot load the client certificate " + cert +
                                       ": " + SslError()));
  }
  std::string why;
  t->tcp_ = Dial(host, port, timeout, why);
  if (t->tcp_ < 0) return Fail(Error::Unavailable(where + ": " + why));
  t->ssl_ = SSL_new(t->ctx_);
  SSL_set_fd(t->ssl_, t->tcp_);
  // The certificate must name what the URL names: an address, or a host name (also sent as SNI).
  in6_addr probe{};
  const bool ip = inet_pton(AF_INET, host.c_str(), &probe) == 1 || inet_pton(AF_INET6, host.c_str(), &probe) == 1;
  X509_VERIFY_PARAM* param = SSL_get0_param(t->ssl_);
  if (ip) {
    X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str());
  } else {
    SSL_set_tlsext_host_name(t->ssl_, host.c_str());
    X509_VERIFY_PARAM_set1_host(param, host.c_str(), 0);
  }
  if (SSL_connect(t->ssl_) != 1) {
    const long verify = SSL_get_verify_result(t->ssl_);
    return Fail(Error::Unavailable(where + ": " +
                                   (verify != X509_V_OK ? std::string("certificate refused: ") +
                                                              X509_verify_cert_error_string(verify)
                                                        : SslError())));
  }
  // The handshake is done: from now on the pump waits with poll, and never blocks in OpenSSL
  // (a TLS 1.3 server sends session tickets after the handshake: a blocking SSL_read would
  // consume them and then wait for data while the other direction has bytes to move).
  fcntl(t->tcp_, F_SETFL, fcntl(t->tcp_, F_GETFL) | O_NONBLOCK);
  SSL_set_mode(t->ssl_, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
  int pair[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0 || pipe2(t->stop_, O_CLOEXEC) != 0) {
    return Fail(Error::Internal(where + ": " + std::strerror(errno)));
  }
  t->ours_ = pair[0];
  t->theirs_ = pair[1];
  t->thread_ = std::thread([p = t.get()] { p->Pump(); });
  return t;
}

TlsTunnel::~TlsTunnel() {
  if (thread_.joinable()) {
    (void)!write(stop_[1], "x", 1);
    thread_.join();
  }
  if (ssl_) {
    SSL_shutdown(ssl_);
    SSL_free(ssl_);
  }
  if (ctx_) SSL_CTX_free(ctx_);
  for (int fd : {tcp_, ours_, stop_[0], stop_[1]}) {
    if (fd >= 0) close(fd);
  }
  // theirs_ belongs to hiredis once handed out (redisFree closes it).
}

bool TlsTunnel::WriteAll(const char* data, size_t size) {
  for (size_t off = 0; off < size;) {
    const int w = SSL_write(ssl_, data + off, static_cast<int>(size - off));
    if (w > 0) {
      off += static_cast<size_t>(w);
      continue;
    }
    const int e = SSL_get_error(ssl_, w);
    if (e != SSL_ERROR_WANT_WRITE && e != SSL_ERROR_WANT_READ) return false;
    pollfd p[2] = {{tcp_, static_cast<short>(e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN), 0},
                   {stop_[0], POLLIN, 0}};
    if (poll(p, 2, -1) < 0 && errno != EINTR) return false;
    if (p[1].revents) return false;
  }
  return true;
}

void TlsTunnel::Pump() {
  char buf[16384];
  for (;;) {
    // Bytes OpenSSL already decrypted wait in its buffer, where poll cannot see them.
    if (SSL_pending(ssl_) == 0) {
      pollfd p[3] = {{ours_, POLLIN, 0}, {tcp_, POLLIN, 0}, {stop_[0], POLLIN, 0}};
      if (poll(p, 3, -1) < 0) {
        if (errno == EINTR) continue;
        return;
      }
      if (p[2].revents) return;
      if (p[0].revents) {
        const ssize_t n = read(ours_, buf, sizeof buf);
        if (n <= 0) return;  // hiredis closed its end
        if (!WriteAll(buf, static_cast<size_t>(n))) return;
      }
      if (!p[1].revents) continue;
    }
    const int n = SSL_read(ssl_, buf, sizeof buf);
    if (n <= 0) {
      const int e = SSL_get_error(ssl_, n);
      if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) continue;  // back to poll
      shutdown(ours_, SHUT_RDWR);  // the server went away: hiredis sees the connection close
      return;
    }
    for (ssize_t off = 0; off < n;) {
      const ssize_t w = write(ours_, buf + off, static_cast<size_t>(n - off));
      if (w <= 0) return;
      off += w;
    }
  }
}

}  // namespace tw::redis
