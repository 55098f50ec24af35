-- wrk script for the cross-check in bench/wrk-check.sh: each wrk thread opens one MCP session
-- (initialize; its Mcp-Session-Id is kept), then sends tools/call echo on every connection.
-- Non-200 answers are counted by wrk ("non-2xx"); bodies are not checked here — loadgen checks
-- every answer, this script only cross-checks its throughput.
local session = nil

local init_body = '{"jsonrpc":"2.0","id":0,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"wrk","version":"1"}}}'
local call_body = '{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"message":"wrk"}}}'

function request()
  local headers = {
    ["Content-Type"] = "application/json",
    ["Accept"] = "application/json, text/event-stream",
  }
  if token then headers["Authorization"] = "Bearer " .. token end
  if session == nil then
    return wrk.format("POST", nil, headers, init_body)
  end
  headers["Mcp-Session-Id"] = session
  headers["MCP-Protocol-Version"] = "2025-06-18"
  return wrk.format("POST", nil, headers, call_body)
end

function response(status, headers, body)
  if session == nil and headers["Mcp-Session-Id"] then session = headers["Mcp-Session-Id"] end
end

function done(summary, latency, requests)
  io.write(string.format("requests/s %.0f  p50 %d us  p99 %d us  non-2xx %d\n",
    summary.requests / (summary.duration / 1e6), latency:percentile(50), latency:percentile(99),
    summary.errors.status))
end
