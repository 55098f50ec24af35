#include "console/assets.h"

#include <map>

#include "common/canonical_json.h"

namespace tw::console {

namespace {

std::string_view ContentType(std::string_view path) {
  auto ends = [&](std::string_view ext) { return path.ends_with(ext); };
  if (ends(".html")) return "text/html; charset=utf-8";
  if (ends(".js")) return "text/javascript; charset=utf-8";
  if (ends(".css")) return "text/css; charset=utf-8";
  if (ends(".svg")) return "image/svg+xml";
  if (ends(".png")) return "image/png";
  if (ends(".wav")) return "audio/wav";
  return "application/octet-stream";
}

struct Entry {
  std::string_view bytes;
  std::string_view type;
  std::string etag;
};

const std::map<std::string_view, Entry>& Table() {
  static const std::map<std::string_view, Entry> table = [] {
    std::map<std::string_view, Entry> t;
    for (const EmbeddedFile& f : EmbeddedFiles()) {
      std::string etag(1, '"');
      etag.append(Sha256Hex(f.bytes), 0, 20);
      etag.push_back('"');
      t[f.path] = Entry{f.bytes, ContentType(f.path), std::move(etag)};
    }
    return t;
  }();
  return table;
}

void AddSecurityHeaders(StaticReply& r) {
  r.headers.emplace_back("Content-Security-Policy",
                         "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' "
                         "data:; media-src 'self' data:; connect-src 'self'; font-src 'self'; "
                         "object-src 'none'; base-uri 'none'; form-action 'self'; "
                         "frame-ancestors 'none'");
  r.headers.emplace_back("X-Frame-Options", "DENY");
  r.headers.emplace_back("X-Content-Type-Options", "nosniff");
  r.headers.emplace_back("Referrer-Policy", "no-referrer");
  r.headers.emplace_back("Cross-Origin-Opener-Policy", "same-origin");
}

}  // namespace

StaticReply Serve(std::string_view method, std::string_view path, std::string_view if_none_match) {
  StaticReply r;
  AddSecurityHeaders(r);
  if (method != "GET" && method != "HEAD") {
    r.status = 405;
    r.body = "Method not allowed\n";
    r.headers.emplace_back("Allow", "GET, HEAD");
    return r;
  }
  if (path == "/ui") {
    r.status = 301;
    r.headers.emplace_back("Location", "/ui/");
    return r;
  }
  std::string_view rel = path.substr(std::string_view("/ui/").size());
  if (rel.empty()) rel = "index.html";
  auto it = Table().find(rel);
  if (it == Table().end()) {
    r.status = 404;
    r.body = "Not found\n";
    return r;
  }
  const Entry& e = it->second;
  // Revalidated on every load (the binary may have been upgraded); 304 when unchanged.
  r.headers.emplace_back("Cache-Control", "no-cache");
  r.headers.emplace_back("ETag", e.etag);
  r.content_type = std::string(e.type);
  if (if_none_match == e.etag) {
    r.status = 304;
    return r;
  }
  if (method == "GET") r.body = std::string(e.bytes);
  return r;
}

}  // namespace tw::console
