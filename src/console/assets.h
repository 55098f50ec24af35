// The web console's static files (src/console/assets), embedded in the binary, and how they
// are served under /ui/: content types, ETags (If-None-Match → 304), and headers that keep the
// page to itself — a Content-Security-Policy allowing only this origin (no inline script, no
// CDN, no external fonts), no framing, no sniffing, no referrer.
//
// Thread: any (the table is immutable after first use).
#pragma once

#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace tw::console {

struct EmbeddedFile {
  std::string_view path;  // relative to assets/, "index.html"
  std::string_view bytes;
};
// Generated at build time (embed.cmake).
const std::vector<EmbeddedFile>& EmbeddedFiles();

struct StaticReply {
  int status = 200;
  std::string body;
  std::string content_type = "text/plain; charset=utf-8";
  std::vector<std::pair<std::string, std::string>> headers;
};

// Serves a request for `path` (starting with /ui) — GET or HEAD only.
StaticReply Serve(std::string_view method, std::string_view path, std::string_view if_none_match);

}  // namespace tw::console
