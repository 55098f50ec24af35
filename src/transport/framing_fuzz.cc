// Fuzz target: the stdio line framer (with the oversized-answer id recovery) and the SSE
// parser (the upstream answer stream), fed the input in chunks whose sizes the input chooses.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "transport/framing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace tw::transport;
  if (size < 1) return 0;
  const size_t chunk = 1 + data[0] % 64;
  const std::string_view text(reinterpret_cast<const char*>(data + 1), size - 1);
  size_t lines = 0;
  LineFramer framer(
      128, [&](std::string_view line) {
        if (line.size() > 128) __builtin_trap();  // never more than the limit
        ++lines;
      },
      [](size_t) {},
      [](std::string_view head, std::string_view tail) {
        if (head.size() > LineFramer::kEdge || tail.size() > LineFramer::kEdge) __builtin_trap();
        (void)OversizedAnswerId(head, tail);
      });
  SseParser sse(256, [](SseEvent e) {
    if (e.data.size() > 256) __builtin_trap();
  });
  bool sse_ok = true;
  for (size_t i = 0; i < text.size(); i += chunk) {
    const std::string_view part = text.substr(i, chunk);
    framer.Append(part);
    if (sse_ok) sse_ok = sse.Append(part);
  }
  (void)OversizedAnswerId(text.substr(0, LineFramer::kEdge),
                          text.size() > LineFramer::kEdge ? text.substr(text.size() - LineFramer::kEdge) : text);
  return 0;
}
