// The upstream side's edges: TLS verification, timeouts, an unreachable server, keep-alive on
// idle streams, slow clients, and which headers reach the server.
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { newClient } from './everything-suite.mjs';
import { EVERYTHING, POLICIES, TOOLWARDEN, eventually, startGateway, startHttpServer, stop } from './helpers.mjs';

const policy = `${POLICIES}/everything.yaml`;
const text = (r) => r.content.map((c) => c.text).join('');

async function stdioClient(args) {
  const client = newClient();
  await client.connect(new StdioClientTransport({ command: TOOLWARDEN, args, stderr: 'ignore' }));
  return client;
}

describe('TLS upstream', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-tls-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  let server;
  before(async () => {
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
      '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
      '-keyout', key, '-out', cert], { stdio: 'ignore' });
    server = await startHttpServer('everything', ['--tls', cert, key]);
  });
  after(async () => {
    await stop(server?.proc);
    fs.rmSync(dir, { recursive: true, force: true });
  });

  it('verifies the server certificate: an unknown CA is refused', async () => {
    const url = server.base.replace('http:', 'https:');
    await assert.rejects(stdioClient(['run', '-p', policy, '--upstream', `${url}/mcp`]),
      /certificate verify failed|cannot reach/);
  });

  it('works with --upstream-ca naming the CA', async () => {
    const url = server.base.replace('http:', 'https:');
    const client = await stdioClient(['run', '-p', policy, '--upstream', `${url}/mcp`, '--upstream-ca', cert]);
    const r = await client.callTool({ name: 'echo', arguments: { message: 'over tls' } });
    assert.equal(text(r), 'Echo: over tls');
    await client.close();
  });
});

describe('timeouts and unreachable servers', () => {
  let server;
  before(async () => { server = await startHttpServer('everything'); });
  after(() => stop(server?.proc));

  it('fails a request that outlives --request-timeout, and keeps serving', async () => {
    const client = await stdioClient(['run', '-p', policy, '--upstream', `${server.base}/mcp`, '--request-timeout', '0.5']);
    const started = Date.now();
    await assert.rejects(
      client.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 3, steps: 1 } }),
      /within the request timeout/);
    assert.ok(Date.now() - started < 2500);
    assert.equal(text(await client.callTool({ name: 'echo', arguments: { message: 'ok' } })), 'Echo: ok');
    await client.close();
  });

  it('answers with a clear error when the server cannot be reached', async () => {
    const closed = await new Promise((resolve) => {
      const s = net.createServer().listen(0, '127.0.0.1', () => {
        const { port } = s.address();
        s.close(() => resolve(port));
      });
    });
    await assert.rejects(
      stdioClient(['run', '-p', policy, '--upstream', `http://127.0.0.1:${closed}/mcp`]),
      /cannot reach http:\/\/127\.0\.0\.1:\d+\/mcp: Connection refused/);
  });
});

describe('HTTP listener hygiene', () => {
  let gw;
  let upstream;
  before(async () => {
    upstream = await startHttpServer('everything', ['--log-headers']);
    gw = await startGateway(['-p', policy, '--sse-keepalive', '0.2', '--client-timeout', '0.5',
      '--upstream', `${upstream.base}/mcp`, '--header', 'X-Upstream-Key: from-config']);
  });
  after(async () => {
    await stop(gw?.proc);
    await stop(upstream?.proc);
  });

  it("never forwards the agent's Authorization or Cookie; sends the configured headers", async () => {
    const client = newClient();
    await client.connect(new StreamableHTTPClientTransport(new URL(gw.url), {
      requestInit: { headers: { Authorization: 'Bearer agent-secret', Cookie: 'session=agent' } },
    }));
    await client.callTool({ name: 'echo', arguments: { message: 'x' } });
    await client.close();
    const seen = upstream.proc.stderrText.split('\n').filter((l) => l.startsWith('HEADERS '))
      .map((l) => JSON.parse(l.slice(8)));
    assert.ok(seen.length > 0);
    for (const h of seen) {
      assert.equal(h['x-upstream-key'], 'from-config');
      assert.ok(!JSON.stringify(h).includes('agent-secret'), 'agent credential forwarded');
      assert.equal(h.cookie, undefined);
    }
  });

  it('sends keep-alive comments on a quiet stream', async () => {
    const client = newClient();
    const transport = new StreamableHTTPClientTransport(new URL(gw.url));
    await client.connect(transport);
    const res = await fetch(gw.url, {
      method: 'POST',
      headers: {
        'content-type': 'application/json', accept: 'application/json, text/event-stream',
        'mcp-session-id': transport.sessionId,
      },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/call',
        params: { name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 1 } } }),
    });
    assert.match(res.headers.get('content-type'), /text\/event-stream/);
    const body = await res.text();
    assert.match(body, /^: keep-alive$/m);
    assert.match(body, /Long running operation completed/);
    await client.close();
  });

  it('drops a client that sends its request too slowly', async () => {
    const port = new URL(gw.url).port;
    const socket = net.connect(port, '127.0.0.1');
    await new Promise((r) => socket.on('connect', r));
    socket.write('POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\n');  // and then nothing
    const started = Date.now();
    await new Promise((resolve) => socket.on('close', resolve));
    assert.ok(Date.now() - started < 5000);
    // Still serving — asked on a new connection: a pooled keep-alive one may just have been
    // closed by the same read timeout (it idled past it), which would fail the fetch itself.
    const status = await new Promise((resolve, reject) => {
      http.get(`${gw.base}/healthz`, { agent: false }, (res) => { res.resume(); resolve(res.statusCode); })
        .on('error', reject);
    });
    assert.equal(status, 200);
  });
});

describe('an HTTP upstream that dies', () => {
  it('fails the call in flight with a clear error, and later calls too', async () => {
    const server = await startHttpServer('everything');
    const client = await stdioClient(['run', '-p', policy, '--upstream', `${server.base}/mcp`]);
    let progressed;
    const firstProgress = new Promise((r) => { progressed = r; });
    const call = client.callTool(
      { name: 'trigger-long-running-operation', arguments: { duration: 10, steps: 20 } },
      undefined, { onprogress: progressed });
    const failed = assert.rejects(call, /Upstream server error: .*(could not be resumed|cannot reach)/);
    await firstProgress;       // the response stream is established
    await stop(server.proc);   // and the server dies mid-call
    await failed;
    await assert.rejects(client.callTool({ name: 'echo', arguments: { message: 'down' } }),
      /cannot reach .*Connection refused/);
    await client.close();
  });
});

describe('session limits', () => {
  let gw;
  before(async () => {
    gw = await startGateway(['-p', policy, '--max-sessions', '2', '--', process.execPath, EVERYTHING, 'stdio']);
  });
  after(() => stop(gw?.proc));

  it('refuses sessions over --max-sessions with 503 and serves the existing ones', async () => {
    const clients = [];
    for (let i = 0; i < 2; i++) {
      const c = newClient();
      await c.connect(new StreamableHTTPClientTransport(new URL(gw.url)));
      clients.push(c);
    }
    const res = await fetch(gw.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 0, method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }),
    });
    assert.equal(res.status, 503);
    for (const c of clients) {
      assert.equal(text(await c.callTool({ name: 'echo', arguments: { message: 'still' } })), 'Echo: still');
      await c.close();
    }
  });
});
