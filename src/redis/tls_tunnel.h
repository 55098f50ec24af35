// TlsTunnel: TLS to a Redis server for hiredis 0.14, which has none (`rediss://`). It opens a
// TLS connection with OpenSSL (the server's certificate checked against the system's CAs, or
// TOOLWARDEN_REDIS_CA_FILE, and against the host name or address; a client certificate from
// TOOLWARDEN_REDIS_CERT_FILE and TOOLWARDEN_REDIS_KEY_FILE when the server asks for one) and
// hands out one end of a socket pair that carries the plaintext: a thread of the tunnel's own
// moves bytes between the two until either side closes. hiredis connects to that end
// (redisConnectFd) and owns it from then on.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <thread>

#include "common/result.h"

typedef struct ssl_st SSL;
typedef struct ssl_ctx_st SSL_CTX;

namespace tw::redis {

class TlsTunnel {
 public:
  // Connects and completes the handshake within `timeout`. plain_fd() is then the caller's.
  static Result<std::unique_ptr<TlsTunnel>> Open(const std::string& host, int port,
                                                 std::chrono::milliseconds timeout);
  ~TlsTunnel();  // closes the TLS side and joins the thread
  TlsTunnel(const TlsTunnel&) = delete;
  TlsTunnel& operator=(const TlsTunnel&) = delete;

  // The plaintext end to give hiredis (it closes it when it is done).
  int plain_fd() const { return theirs_; }

 private:
  TlsTunnel() = default;
  void Pump();
  bool WriteAll(const char* data, size_t size);  // false: the connection or the tunnel ended

  SSL_CTX* ctx_ = nullptr;
  SSL* ssl_ = nullptr;
  int tcp_ = -1;     // the TLS connection's socket
  int ours_ = -1;    // our end of the pair
  int theirs_ = -1;  // hiredis's end
  int stop_[2] = {-1, -1};  // a pipe that wakes the pump to stop
  std::thread thread_;
};

}  // namespace tw::redis
