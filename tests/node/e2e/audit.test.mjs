// The audit trail: one record per decided call with the right decision and outcome, argument
// keys and digest (values only when asked), the JSON lines mirror, and no decided call lost
// when the gateway is killed with SIGKILL mid-load.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

import { newClient } from './everything-suite.mjs';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { EVERYTHING, TOOLWARDEN, eventually, startServe, stop } from './helpers.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-audit-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const policy = path.join(tmp, 'policy.yaml');
fs.writeFileSync(policy, [
  'version: "1"', 'default: deny', 'tools:', '  echo: {}', '  get-resource-reference: {}',
  '  get-sum: {action: deny, reason: no sums}', '',
].join('\n'));

const audit = (state, ...args) => {
  const r = spawnSync(TOOLWARDEN, ['audit', '--state', state, '--json', '--limit', '1000', ...args], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
};
const digest = (args) => crypto.createHash('sha256').update(JSON.stringify(args)).digest('hex');

describe('audit trail', () => {
  it('records every decided call exactly once, with decision, outcome and argument digest', async () => {
    const state = `sqlite:${path.join(tmp, 'a.db')}`;
    const lines = path.join(tmp, 'audit.jsonl');
    const client = newClient();
    await client.connect(new StdioClientTransport({
      command: TOOLWARDEN,
      args: ['run', '-p', policy, '--state', state, '--audit-log', lines, '--', process.execPath, EVERYTHING, 'stdio'],
      stderr: 'ignore',
    }));
    await client.callTool({ name: 'echo', arguments: { message: 'one' } });
    await client.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } });
    await client.callTool({ name: 'not-listed', arguments: {} });
    await client.callTool({ name: 'get-resource-reference', arguments: { resourceType: 'Text', resourceId: -1 } }).catch(() => {});
    await client.listTools();  // not a tools/call: not audited
    await client.close();

    const records = audit(state);
    assert.equal(records.length, 4);
    const by = Object.fromEntries(records.map((r) => [r.tool, r]));
    assert.equal(by.echo.decision, 'allow');
    assert.equal(by.echo.outcome, 'ok');
    assert.deepEqual(by.echo.arg_keys, ['message']);
    assert.equal(by.echo.args_digest, digest({ message: 'one' }));
    assert.deepEqual(by.echo.args, { message: 'one' }, 'values are kept (redacted) by default, for replay');
    assert.equal(by.echo.server, 'server-everything');
    assert.equal(by['get-sum'].decision, 'deny');
    assert.equal(by['get-sum'].rule, 'tools.get-sum');
    assert.equal(by['get-sum'].outcome, 'not_forwarded');
    // A name the server never listed is refused before the policy, whatever its default.
    assert.equal(by['not-listed'].rule, 'unknown_tool');
    assert.match(by['get-resource-reference'].outcome, /^(tool_error|jsonrpc_error)$/);
    assert.equal(by.echo.grant, 'local');
    assert.match(by.echo.policy_version, /^[0-9a-f]{16}$/);
    assert.equal(audit(state, '--decision', 'deny').length, 2);

    const mirrored = fs.readFileSync(lines, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
    assert.equal(mirrored.length, 4);
  });

  it('loses no decided call when the gateway is killed with SIGKILL mid-load', async () => {
    const state = `sqlite:${path.join(tmp, 'kill.db')}`;
    const gw = spawn(TOOLWARDEN, ['run', '-p', policy, '--state', state, '--', process.execPath, EVERYTHING, 'stdio'],
      { stdio: ['pipe', 'pipe', 'ignore'] });
    const answered = [];
    let buf = '';
    gw.stdout.on('data', (c) => {
      buf += c;
      let nl;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const m = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        if (typeof m.id === 'number' && m.id >= 100) answered.push(m.id);
      }
    });
    const send = (m) => gw.stdin.write(`${JSON.stringify(m)}\n`);
    send({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'k', version: '1' } } });
    send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    for (let i = 100; i < 400; i++) {
      const tool = i % 3 === 0 ? 'get-sum' : 'echo';
      send({ jsonrpc: '2.0', id: i, method: 'tools/call', params: { name: tool, arguments: { message: `m${i}` } } });
    }
    await eventually(() => answered.length >= 50, 15000, 'some answers');
    gw.kill('SIGKILL');
    await new Promise((r) => gw.on('exit', r));
    const records = audit(state);
    const digests = new Set(records.map((r) => r.args_digest));
    for (const id of answered) {
      assert.ok(digests.has(digest({ message: `m${id}` })), `call ${id} was answered but not audited`);
    }
    assert.ok(records.length >= answered.length);
  });

  it('a nearly full disk refuses new calls with a clear reason, a metric and /readyz — and forwards nothing', async () => {
    const dir = path.join(tmp, 'full');
    fs.mkdirSync(dir);
    const config = path.join(dir, 'toolwarden.yaml');
    fs.writeFileSync(config, [
      'listen: 127.0.0.1:0', 'access: local', `state: sqlite:${path.join(dir, 'state.db')}`,
      // More free space than any disk has: the threshold bites at once.
      'audit: {min_free_bytes: 1000000TB, retention: 30d, max_size: 1GiB}',
      'servers:', '  everything:', '    command: node', `    args: [${JSON.stringify(EVERYTHING)}, stdio]`,
      `    policy: ${JSON.stringify(policy)}`, '',
    ].join('\n'));
    const gw = await startServe(config);
    try {
      const ready = await eventually(async () => {
        const r = await fetch(`${gw.base}/readyz`);
        return r.status === 503 && r.text();
      }, 10000, '/readyz to report the disk');
      assert.match(ready, /audit disk is nearly full/);
      const client = new Client({ name: 'e2e', version: '1' });
      await client.connect(new StreamableHTTPClientTransport(new URL(`${gw.base}/mcp`)));
      const res = await client.callTool({ name: 'echo', arguments: { message: 'never' } });
      assert.ok(res.isError);
      const text = res.content.map((c) => c.text).join('');
      assert.match(text, /^\[POLICY DENIED\] The call cannot be recorded right now \(the audit disk is nearly full/);
      assert.doesNotMatch(text, /Echo: never/);
      await client.close();
      const metrics = await (await fetch(`${gw.base}/metrics`)).text();
      assert.match(metrics, /toolwarden_audit_disk_low 1/);
      assert.match(metrics, /toolwarden_audit_refused_total [1-9]/);
      assert.match(metrics, /toolwarden_audit_file_bytes [1-9]/);
    } finally {
      await stop(gw.proc);
    }
  });
});
