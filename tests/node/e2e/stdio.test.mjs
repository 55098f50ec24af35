// The SDK client drives `toolwarden run` over stdio, with server-everything as a stdio child
// and as a Streamable HTTP upstream.
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

import { everythingSuite, newClient } from './everything-suite.mjs';
import { EVERYTHING, POLICIES, TOOLWARDEN, startHttpServer, stop } from './helpers.mjs';

const policy = `${POLICIES}/everything.yaml`;

async function connectStdio(args) {
  const client = newClient();
  const transport = new StdioClientTransport({
    command: TOOLWARDEN, args, stderr: process.env.TW_E2E_VERBOSE ? 'inherit' : 'ignore',
  });
  await client.connect(transport);
  return client;
}

everythingSuite('stdio client -> stdio child', {
  setup: () => connectStdio(['run', '-p', policy, '--', process.execPath, EVERYTHING, 'stdio']),
});

let http;
everythingSuite('stdio client -> Streamable HTTP upstream', {
  setup: async () => {
    http = await startHttpServer('everything');
    return connectStdio(['run', '-p', policy, '--upstream', `${http.base}/mcp`]);
  },
  teardown: () => stop(http?.proc),
});

let legacy;
everythingSuite('stdio client -> legacy HTTP+SSE upstream', {
  setup: async () => {
    legacy = await startHttpServer('everything', ['--legacy-only']);
    return connectStdio(['run', '-p', policy, '--upstream', `${legacy.base}/sse`]);
  },
  teardown: () => stop(legacy?.proc),
});
