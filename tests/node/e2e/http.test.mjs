// The SDK client drives `toolwarden run --listen` over Streamable HTTP and legacy HTTP+SSE.
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { everythingSuite, newClient } from './everything-suite.mjs';
import { EVERYTHING, POLICIES, startGateway, startHttpServer, stop } from './helpers.mjs';

const policy = `${POLICIES}/everything.yaml`;

let gw;
everythingSuite('Streamable HTTP client -> stdio child', {
  setup: async () => {
    gw = await startGateway(['-p', policy, '--', process.execPath, EVERYTHING, 'stdio']);
    const client = newClient();
    await client.connect(new StreamableHTTPClientTransport(new URL(gw.url)));
    return client;
  },
  teardown: () => stop(gw?.proc),
});

let gw2;
let upstream;
everythingSuite('Streamable HTTP client -> Streamable HTTP upstream', {
  setup: async () => {
    upstream = await startHttpServer('everything');
    gw2 = await startGateway(['-p', policy, '--upstream', `${upstream.base}/mcp`]);
    const client = newClient();
    await client.connect(new StreamableHTTPClientTransport(new URL(gw2.url)));
    return client;
  },
  teardown: async () => {
    await stop(gw2?.proc);
    await stop(upstream?.proc);
  },
});

let gw3;
everythingSuite('legacy SSE client -> stdio child', {
  setup: async () => {
    gw3 = await startGateway(['-p', policy, '--', process.execPath, EVERYTHING, 'stdio']);
    const client = newClient();
    await client.connect(new SSEClientTransport(new URL(`${gw3.base}/sse`)));
    return client;
  },
  teardown: () => stop(gw3?.proc),
});
