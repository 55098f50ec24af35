// Airtight enforcement against the real binary: what a server receives is exactly what was
// decided. The upstream is a recording server (fixtures/recording-server.mjs) that executes
// whatever reaches it — notifications too — and writes every message down.
import assert from 'node:assert/strict';
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { after, before, describe, it } from 'node:test';

import { FIXTURES, TOOLWARDEN, eventually, startGateway, startServe, stop, waitForOutput } from './helpers.mjs';

const RECORDER = path.join(FIXTURES, 'recording-server.mjs');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-enforce-'));
fs.writeFileSync(path.join(tmp, 'policy.yaml'), [
  'version: "1"', 'default: allow', 'hide: [release-all]', 'tools:',
  '  pay:', '    deny_if: [{path: args.amount, op: gt, value: 100}]', '',
].join('\n'));
const policy = path.join(tmp, 'policy.yaml');

// What the recording server at `file` received: its environment and its messages.
function recorded(file) {
  const lines = fs.readFileSync(file, 'utf8').trim().split('\n').map((l) => JSON.parse(l));
  return { env: lines[0].env, messages: lines.slice(1) };
}
const calls = (file) => recorded(file).messages.filter((m) => m.method === 'tools/call');
const auditRecords = (state) => {
  const r = spawnSync(TOOLWARDEN, ['audit', '--state', state, '--json', '--limit', '100'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
};
const INIT = { jsonrpc: '2.0', id: 0, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'e2e', version: '1' } } };

describe('run (stdio): only decided calls reach the server', () => {
  const record = path.join(tmp, 'stdio.jsonl');
  const state = `sqlite:${path.join(tmp, 'stdio.db')}`;
  let proc;
  const answers = new Map();
  const send = (m) => proc.stdin.write(`${JSON.stringify(m)}\n`);
  const answer = (id) => eventually(() => answers.get(id), 10000, `the answer to ${id}`);

  before(() => {
    proc = spawn(TOOLWARDEN, ['run', '-p', policy, '--state', state, '--', process.execPath, RECORDER, record],
      { stdio: ['pipe', 'pipe', 'inherit'] });
    readline.createInterface({ input: proc.stdout }).on('line', (l) => {
      const m = JSON.parse(l);
      if (m.id !== undefined) answers.set(m.id, m);
    });
  });
  after(() => stop(proc));

  it('drops a tools/call sent as a notification, records it, and forwards nothing undecided', async () => {
    send(INIT);
    await answer(0);
    send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    send({ jsonrpc: '2.0', method: 'tools/call', params: { name: 'pay', arguments: { amount: 1000000 } } });
    send({ jsonrpc: '2.0', method: 'notifications/tools/call', params: { name: 'pay' } });
    send({ jsonrpc: '2.0', id: 'x', method: 'tools/execute', params: { name: 'pay' } });
    assert.equal((await answer('x')).error.code, -32601);
    // Look-alikes of listed tools: the server never listed these exact names.
    const names = ['Pay', 'pay ', 'pay\t', 'p\u200Bay', 'PAY', 'pay\u00AD'];
    names.forEach((name, i) => send({ jsonrpc: '2.0', id: `n${i}`, method: 'tools/call', params: { name, arguments: { amount: 1 } } }));
    for (let i = 0; i < names.length; i++) {
      const a = await answer(`n${i}`);
      assert.equal(a.result.isError, true, names[i]);
      assert.match(a.result._meta['toolwarden/decision'].rule, /^(unknown_tool|tool_name)$/);
    }
    // Numbers a 64-bit float cannot hold are refused, not rounded past `gt 100`.
    proc.stdin.write('{"jsonrpc":"2.0","id":"big","method":"tools/call","params":{"name":"pay","arguments":{"amount":100.0000000000000001}}}\n');
    proc.stdin.write('{"jsonrpc":"2.0","id":"inf","method":"tools/call","params":{"name":"pay","arguments":{"amount":1e999}}}\n');
    assert.equal((await answer('big')).error.code, -32602);
    assert.equal((await answer('inf')).error.code, -32602);
    // Arguments the tool's schema refuses.
    send({ jsonrpc: '2.0', id: 's', method: 'tools/call', params: { name: 'pay', arguments: { amount: 'all' } } });
    assert.equal((await answer('s')).result._meta['toolwarden/decision'].rule, 'schema');
    // And a decided call goes through.
    send({ jsonrpc: '2.0', id: 'ok', method: 'tools/call', params: { name: 'pay', arguments: { amount: 5 } } });
    assert.match((await answer('ok')).result.content[0].text, /called pay \{"amount":5\}/);

    const got = calls(record);
    assert.equal(got.length, 1, `the server received ${JSON.stringify(got)}`);
    assert.deepEqual(got[0].params, { name: 'pay', arguments: { amount: 5 } });
    assert.ok(!recorded(record).messages.some((m) => m.method === 'notifications/tools/call' || m.method === 'tools/execute'));
    const dropped = auditRecords(state).filter((r) => r.decision === 'dropped');
    assert.equal(dropped.length, 2);
    assert.ok(dropped.some((r) => r.tool === 'pay' && r.rule === 'protocol'));
  });
});

describe('run --listen: ids in flight are never reused', () => {
  const record = path.join(tmp, 'http.jsonl');
  let gw;
  let sid;
  const post = (body) => fetch(gw.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...(sid ? { 'mcp-session-id': sid } : {}) },
    body: JSON.stringify(body),
  });
  const messages = async (res) => {
    const body = await res.text();
    if (!(res.headers.get('content-type') ?? '').includes('text/event-stream')) return [JSON.parse(body)];
    return body.split('\n').filter((l) => l.startsWith('data:') && l.length > 6).map((l) => JSON.parse(l.slice(5)));
  };

  before(async () => {
    gw = await startGateway(['-p', policy, '--state', 'memory', '--', process.execPath, RECORDER, record]);
    const res = await post(INIT);
    sid = res.headers.get('mcp-session-id');
    await res.text();
    await (await post({ jsonrpc: '2.0', method: 'notifications/initialized' })).text();
  });
  after(() => stop(gw?.proc));

  it('answers a batch with a repeated id: the first runs and keeps its answer, the second is refused', async () => {
    const res = await post([
      { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { message: 'first' } } },
      { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'echo', arguments: { message: 'second' } } },
    ]);
    const got = await messages(res);
    assert.equal(got.length, 2);
    assert.ok(got.some((m) => m.error?.code === -32600 && /already in use/.test(m.error.message)));
    assert.ok(got.some((m) => /first/.test(m.result?.content?.[0]?.text ?? '')));
    assert.equal(calls(record).filter((c) => c.params.arguments.message === 'second').length, 0);
  });

  it('refuses a POST that reuses an id still in flight at once, with a closed answer', async () => {
    const waiting = post({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'wait', arguments: {} } });
    await eventually(() => calls(record).some((c) => c.params.name === 'wait'), 10000, 'the wait call upstream');
    const reuse = await post({ jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'echo', arguments: { message: 'reuse' } } });
    const [refused] = await messages(reuse);
    assert.equal(refused.error.code, -32600);
    await (await post({ jsonrpc: '2.0', id: 8, method: 'tools/call', params: { name: 'release', arguments: {} } })).text();
    const [released] = await messages(await waiting);
    assert.equal(released.id, 7);
    assert.match(released.result.content[0].text, /released/);
  });
});

describe('serve: each command server sees only its own environment', () => {
  const a = path.join(tmp, 'env-a.jsonl');
  const b = path.join(tmp, 'env-b.jsonl');
  const config = path.join(tmp, 'env.yaml');
  let gw;
  before(async () => {
    fs.writeFileSync(config, [
      'listen: 127.0.0.1:0', `state: sqlite:${path.join(tmp, 'env.db')}`, 'servers:',
      '  alpha:', `    command: ${JSON.stringify(process.execPath)}`, `    args: [${JSON.stringify(RECORDER)}, ${JSON.stringify(a)}]`,
      `    policy: ${JSON.stringify(policy)}`, '    env: {ALPHA_TOKEN: alpha-secret}',
      '  beta:', `    command: ${JSON.stringify(process.execPath)}`, `    args: [${JSON.stringify(RECORDER)}, ${JSON.stringify(b)}]`,
      `    policy: ${JSON.stringify(policy)}`, '    inherit_env: [SHARED_SETTING]', '',
    ].join('\n'));
    gw = await startServe(config, [], { env: { GATEWAY_SECRET: 'gw-secret', SHARED_SETTING: 'on', TOOLWARDEN_ADMIN_TOKEN: '' } });
    const started = (f) => { try { return recorded(f).env; } catch { return undefined; } };
    await eventually(() => started(a) && started(b), 10000, 'both servers started');
  });
  after(() => stop(gw?.proc));

  it('passes the base, the server\'s own env and what inherit_env names — nothing else', () => {
    const envA = recorded(a).env;
    const envB = recorded(b).env;
    assert.equal(envA.ALPHA_TOKEN, 'alpha-secret');
    assert.equal(envB.ALPHA_TOKEN, undefined, 'beta must not see alpha\'s credentials');
    assert.equal(envA.GATEWAY_SECRET, undefined);
    assert.equal(envB.GATEWAY_SECRET, undefined);
    assert.equal(envA.SHARED_SETTING, undefined);
    assert.equal(envB.SHARED_SETTING, 'on');
    assert.ok(envA.PATH && envB.PATH, 'PATH is part of the base');
  });
});

describe('serve: fair shares and a brake on guessing that locks out nobody else', () => {
  const record = path.join(tmp, 'share.jsonl');
  const config = path.join(tmp, 'share.yaml');
  let gw;
  let tokenA;
  let tokenB;
  const cli = (...args) => spawnSync(TOOLWARDEN, args, { encoding: 'utf8' });
  const initialize = (token, headers = {}) => fetch(`${gw.base}/mcp`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', authorization: `Bearer ${token}`, ...headers },
    body: JSON.stringify(INIT),
  });
  before(async () => {
    fs.writeFileSync(config, [
      'listen: 127.0.0.1:0', `state: sqlite:${path.join(tmp, 'share.db')}`,
      'max_sessions: 8', 'max_sessions_per_grant: 2', 'trusted_proxies: [127.0.0.0/8]', 'servers:',
      '  rec:', `    command: ${JSON.stringify(process.execPath)}`, `    args: [${JSON.stringify(RECORDER)}, ${JSON.stringify(record)}]`,
      `    policy: ${JSON.stringify(policy)}`, '',
    ].join('\n'));
    tokenA = JSON.parse(cli('grants', 'create', 'agent-a', '-c', config, '--json').stdout).token;
    tokenB = JSON.parse(cli('grants', 'create', 'agent-b', '-c', config, '--json').stdout).token;
    gw = await startServe(config);
  });
  after(() => stop(gw?.proc));

  it('refuses a grant past its share with 503 and Retry-After; another grant still gets in', async () => {
    for (let i = 0; i < 2; i++) {
      const res = await initialize(tokenA);
      assert.equal(res.status, 200);
      await res.text();
    }
    const third = await initialize(tokenA);
    assert.equal(third.status, 503);
    assert.ok(Number(third.headers.get('retry-after')) > 0);
    assert.match((await third.json()).error.message, /Too many sessions for this grant/);
    const other = await initialize(tokenB);
    assert.equal(other.status, 200);
    await other.text();
  });

  it('answers 429 to an address that keeps guessing, without checking its token, and serves others', async () => {
    const attacker = { 'x-forwarded-for': '203.0.113.7' };
    for (let i = 0; i < 20; i++) {
      const res = await initialize(`tw_${'x'.repeat(43)}`, attacker);
      assert.equal(res.status, 401);
      await res.text();
    }
    const blocked = await initialize(tokenB, attacker);
    assert.equal(blocked.status, 429, 'even a right token is not checked from there now');
    assert.ok(Number(blocked.headers.get('retry-after')) > 0);
    await blocked.text();
    const elsewhere = await initialize(tokenB, { 'x-forwarded-for': '203.0.113.8' });
    assert.equal(elsewhere.status, 200, 'a correct token from elsewhere is never refused');
    await elsewhere.text();
    // A forged hop left of the proxy's does not help: the proxy's entry is the one used.
    const forged = await initialize(tokenB, { 'x-forwarded-for': '198.51.100.1, 203.0.113.7' });
    assert.equal(forged.status, 429);
    await forged.text();
  });

  it('throttles wrong console logins per address, so the real admin can still log in', async () => {
    const login = (token, xff) => fetch(`${gw.base}/api/login`, {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-forwarded-for': xff },
      body: JSON.stringify({ token }),
    });
    for (let i = 0; i < 20; i++) {
      const res = await login(`twa_${'y'.repeat(43)}`, '203.0.113.9');
      assert.equal(res.status, 401);
      await res.text();
    }
    const blocked = await login(gw.adminToken, '203.0.113.9');
    assert.equal(blocked.status, 429);
    await blocked.text();
    const admin = await login(gw.adminToken, '192.0.2.1');
    assert.equal(admin.status, 200);
    await admin.text();
    // Wrong bearer tokens on the admin API count too.
    for (let i = 0; i < 20; i++) {
      const res = await fetch(`${gw.base}/api/servers`, { headers: { authorization: `Bearer twa_${'z'.repeat(43)}`, 'x-forwarded-for': '203.0.113.10' } });
      assert.equal(res.status, 401);
      await res.text();
    }
    const api = await fetch(`${gw.base}/api/servers`, { headers: { authorization: `Bearer ${gw.adminToken}`, 'x-forwarded-for': '203.0.113.10' } });
    assert.equal(api.status, 429);
    await api.text();
  });
});

describe('serve: a state file another process holds never freezes the gateway', () => {
  const record = path.join(tmp, 'locked.jsonl');
  const config = path.join(tmp, 'locked.yaml');
  const db = path.join(tmp, 'locked.db');
  let gw;
  let holder;
  const sessions = {};
  const cli = (...args) => spawnSync(TOOLWARDEN, args, { encoding: 'utf8' });
  const post = (who, body) => fetch(`${gw.base}/mcp/rec`, {
    method: 'POST',
    headers: {
      'content-type': 'application/json', accept: 'application/json, text/event-stream',
      authorization: `Bearer ${sessions[who].token}`,
      ...(sessions[who].sid ? { 'mcp-session-id': sessions[who].sid } : {}),
    },
    body: JSON.stringify(body),
  });
  const answer = async (res) => {
    const body = await res.text();
    if (!(res.headers.get('content-type') ?? '').includes('text/event-stream')) return JSON.parse(body);
    return body.split('\n').filter((l) => l.startsWith('data:') && l.length > 6).map((l) => JSON.parse(l.slice(5))).find((m) => m.id !== undefined);
  };
  const open = async (who) => {
    const res = await post(who, INIT);
    assert.equal(res.status, 200);
    sessions[who].sid = res.headers.get('mcp-session-id');
    await res.text();
    await (await post(who, { jsonrpc: '2.0', method: 'notifications/initialized' })).text();
  };
  const echo = (who, id, message) => post(who, { jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'echo', arguments: { message } } });

  before(async () => {
    fs.writeFileSync(config, [
      'listen: 127.0.0.1:0', `state: sqlite:${db}`, 'state_timeout: 3s', 'servers:',
      '  rec:', `    command: ${JSON.stringify(process.execPath)}`, `    args: [${JSON.stringify(RECORDER)}, ${JSON.stringify(record)}]`,
      `    policy: ${JSON.stringify(policy)}`, '',
    ].join('\n'));
    sessions.a = { token: JSON.parse(cli('grants', 'create', 'lock-a', '-c', config, '--json').stdout).token };
    sessions.b = { token: JSON.parse(cli('grants', 'create', 'lock-b', '-c', config, '--json').stdout).token };
    gw = await startServe(config);
  });
  after(async () => {
    holder?.kill();
    await stop(gw?.proc);
  });

  it('keeps /healthz, tools/list and other sessions answering; the call waiting for its record is denied after state_timeout', async () => {
    await open('a');
    assert.match((await answer(await echo('a', 1, 'before'))).result.content[0].text, /before/);
    // Another process (the sqlite3 shell) takes the state file's write lock and keeps it.
    holder = spawn('sqlite3', [db], { stdio: ['pipe', 'pipe', 'inherit'] });
    holder.stdin.write("BEGIN IMMEDIATE;\nSELECT 'locked';\n");
    await waitForOutput(holder, 'stdout', (text) => text.includes('locked'), 10000, 'the lock');

    const started = Date.now();
    let settled = false;
    const waiting = echo('a', 2, 'during').then(async (res) => { settled = true; return answer(res); });
    // While that call waits for its record, everything else answers.
    const health = await fetch(`${gw.base}/healthz`);
    assert.equal(health.status, 200);
    await health.text();
    const list = await answer(await post('a', { jsonrpc: '2.0', id: 3, method: 'tools/list' }));
    assert.ok(list.result.tools.some((t) => t.name === 'echo'));
    await open('b');
    assert.equal(settled, false, 'the call is still waiting for the state file');

    const denied = await waiting;
    assert.ok(Date.now() - started >= 2500, 'it waited for state_timeout');
    assert.equal(denied.result.isError, true);
    assert.equal(denied.result._meta['toolwarden/decision'].rule, 'audit');
    assert.match(denied.result.content[0].text, /cannot be recorded/);
    assert.equal(calls(record).filter((c) => c.params.arguments.message === 'during').length, 0);

    holder.stdin.end('ROLLBACK;\n');
    await new Promise((resolve) => holder.once('exit', resolve));
    assert.match((await answer(await echo('b', 4, 'after'))).result.content[0].text, /after/);
  });
});
