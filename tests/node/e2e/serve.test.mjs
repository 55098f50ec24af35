// `toolwarden serve`: two real upstreams (server-everything, shared; the conformance fixture, one
// process per session) behind one endpoint, agents identified by grant tokens, the admin API.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import http from 'node:http';

import { EVERYTHING, FIXTURES, TOOLWARDEN, eventually, startHttpServer, startServe, stop } from './helpers.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-serve-'));
const config = path.join(tmp, 'toolwarden.yaml');
const statePath = path.join(tmp, 'state.db');
fs.writeFileSync(path.join(tmp, 'everything.yaml'), [
  'version: "1"', 'default: allow', 'tools:',
  '  echo:', '    limits: [{counter: echo_daily, window: day, max: 3, scope: grant}]',
  '  get-sum: {action: require_approval, approval_timeout: 20s}',
  '  get-tiny-image: {action: require_approval, approval_timeout: 1s}',
  '  get-env: {action: deny, reason: environment stays private}', '',
].join('\n'));
fs.writeFileSync(path.join(tmp, 'conformance.yaml'), 'version: "1"\ndefault: allow\n');
fs.writeFileSync(path.join(tmp, 'readonly.yaml'), 'version: "1"\ndefault: deny\ntools:\n  echo: {}\n');
const writeConfig = (servers) => fs.writeFileSync(config, [
  'listen: 127.0.0.1:0', `state: sqlite:${statePath}`, 'shutdown_timeout: 5s', 'servers:', ...servers, '',
].join('\n'));
const EVERYTHING_ENTRY = [
  '  everything:', '    command: node', `    args: [${JSON.stringify(EVERYTHING)}, stdio]`,
  '    policy: everything.yaml',
];
const CONFORMANCE_ENTRY = [
  '  conformance:', '    command: node', `    args: [${JSON.stringify(path.join(FIXTURES, 'conformance-server.mjs'))}]`,
  '    policy: conformance.yaml', '    isolation: session', '    idle_timeout: 1s',
];
writeConfig([...EVERYTHING_ENTRY, ...CONFORMANCE_ENTRY]);

const cli = (...args) => spawnSync(TOOLWARDEN, args, { encoding: 'utf8' });
const createGrant = (name, ...args) => {
  const r = cli('grants', 'create', name, '-c', config, '--json', ...args);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout).token;
};
const text = (r) => r.content.map((c) => c.text ?? '').join('');

describe('serve', () => {
  let gw;
  let all;      // token of a grant for every server
  let onlyEv;   // token of a grant for everything only
  const clients = [];
  const connect = async (token, endpoint = '/mcp') => {
    const client = new Client({ name: 'e2e', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${gw.base}${endpoint}`), {
      requestInit: { headers: { Authorization: `Bearer ${token}` } },
    }));
    clients.push(client);
    return client;
  };
  const api = async (method, route, { token = gw.adminToken, body, headers = {} } = {}) => {
    const res = await fetch(`${gw.base}/api${route}`, {
      method,
      headers: { ...(token ? { Authorization: `Bearer ${token}` } : {}),
        ...(body !== undefined ? { 'Content-Type': 'application/json' } : {}), ...headers },
      body: body !== undefined ? JSON.stringify(body) : undefined,
    });
    return { status: res.status, body: await res.json().catch(() => null), headers: res.headers };
  };
  const rawPost = (token, extra = {}) => fetch(`${gw.base}/mcp`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream',
      ...(token !== undefined ? { Authorization: token } : {}), ...extra },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } }),
  });

  before(async () => {
    all = createGrant('all-servers');
    onlyEv = createGrant('everything-only', '--servers', 'everything');
    gw = await startServe(config);
    assert.match(gw.adminToken ?? '', /^twa_/, 'the admin token is printed at first start');
  });
  after(async () => {
    for (const c of clients) await c.close().catch(() => {});
    await stop(gw?.proc);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('aggregates every server a grant may use, names namespaced as server__tool', async () => {
    const client = await connect(all);
    assert.equal(client.getServerVersion().name, 'toolwarden');
    const names = (await client.listTools()).tools.map((t) => t.name);
    assert.ok(names.includes('everything__echo'));
    assert.ok(names.includes('conformance__test_simple_text'));
    assert.ok(names.every((n) => /^(everything|conformance)__/.test(n)), names.join(' '));
    assert.equal(text(await client.callTool({ name: 'everything__echo', arguments: { message: 'hi' } })), 'Echo: hi');
    assert.equal(text(await client.callTool({ name: 'conformance__test_simple_text', arguments: {} })),
      'This is a simple text response for testing.');
    // Each server's own policy decides its calls.
    const denied = await client.callTool({ name: 'everything__get-env', arguments: {} });
    assert.equal(denied.isError, true);
    assert.match(text(denied), /environment stays private/);
    // Resources and prompts too, URIs made unambiguous as server+uri.
    const resources = (await client.listResources()).resources.map((r) => r.uri);
    assert.ok(resources.includes('conformance+test://static-text'), resources.join(' '));
    const read = await client.readResource({ uri: 'conformance+test://static-text' });
    assert.equal(read.contents[0].uri, 'conformance+test://static-text');
    const prompts = (await client.listPrompts()).prompts.map((p) => p.name);
    assert.ok(prompts.includes('conformance__test_simple_prompt'));
    assert.ok(prompts.includes('everything__simple-prompt'));
  });

  it('starts an isolation: session server for a session only when it calls it, and stops it when idle', async () => {
    const starts = () => (gw.proc.stderrText.match(/upstream process started: pid \d+ \(node\)/g) ?? []).length;
    // The test above listed the servers' tools: the gateway remembers what conformance said.
    const before = starts();
    const a = await connect(all);
    const b = await connect(all);
    for (const c of [a, b]) {
      const names = (await c.listTools()).tools.map((t) => t.name);
      assert.ok(names.includes('conformance__test_simple_text'), names.join(' '));
      assert.equal(text(await c.callTool({ name: 'everything__echo', arguments: { message: 'x' } })), 'Echo: x');
    }
    await new Promise((r) => setTimeout(r, 0));
    assert.equal(starts(), before, 'two sessions that list and call another server start no conformance process');
    assert.equal(text(await a.callTool({ name: 'conformance__test_simple_text', arguments: {} })),
      'This is a simple text response for testing.');
    // The gateway's log reaches this process on its own pipe: read with a deadline.
    await eventually(() => starts() === before + 1, 5000, 'the first call to start one process');
    // No request for idle_timeout (1 s): that process is stopped (its pid is the newest started).
    const pids = () => [...gw.proc.stderrText.matchAll(/upstream process started: pid (\d+) \(node\)/g)].map((m) => Number(m[1]));
    const pid = pids().at(-1);
    const alive = (p) => { try { process.kill(p, 0); return true; } catch { return false; } };
    assert.ok(alive(pid));
    await eventually(() => !alive(pid), 10000, 'the idle process to stop');
    assert.match(gw.proc.stderrText, /server conformance: a session's process stopped after 1000 ms idle/);
    assert.equal(text(await a.callTool({ name: 'conformance__test_simple_text', arguments: {} })),
      'This is a simple text response for testing.');
    await eventually(() => starts() === before + 2, 5000, 'the next call to start it again');
    assert.equal(text(await b.callTool({ name: 'conformance__test_simple_text', arguments: {} })),
      'This is a simple text response for testing.');
    await eventually(() => starts() === before + 3, 5000, 'a process for the other session');
    assert.equal(starts(), before + 3);
  });

  it('shows a grant only its servers, on /mcp and /mcp/<server>', async () => {
    const client = await connect(onlyEv);
    const names = (await client.listTools()).tools.map((t) => t.name);
    assert.ok(names.length > 0);
    assert.ok(names.every((n) => n.startsWith('everything__')), names.join(' '));
    await assert.rejects(client.callTool({ name: 'conformance__test_simple_text', arguments: {} }),
      /Unknown tool: conformance__test_simple_text/);
    // One server, its own names.
    const single = await connect(onlyEv, '/mcp/everything');
    const own = (await single.listTools()).tools.map((t) => t.name);
    assert.ok(own.includes('echo') && !own.some((n) => n.includes('__')));
    assert.equal(text(await single.callTool({ name: 'echo', arguments: { message: 'one' } })), 'Echo: one');
    const forbidden = await rawPost(`Bearer ${onlyEv}`, {}).then(() =>
      fetch(`${gw.base}/mcp/conformance`, { method: 'POST',
        headers: { Authorization: `Bearer ${onlyEv}`, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }) }));
    assert.equal(forbidden.status, 403);
    const missing = await fetch(`${gw.base}/mcp/nope`, { method: 'POST',
      headers: { Authorization: `Bearer ${all}`, 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } } }) });
    assert.equal(missing.status, 404);
  });

  it('answers 401 to a missing, foreign, wrong, revoked or expired token, forwarding nothing', async () => {
    const before = (await api('GET', '/audit?decision=deny&limit=1000')).body.records
      .filter((r) => r.rule === 'authentication').length;
    const expiring = createGrant('short-lived', '--expires', '1s');
    const revoked = createGrant('revoked');
    // Used first, so that the gateway holds it in memory: the revocation by another process
    // (the CLI) must still refuse its very next request.
    const used = await rawPost(`Bearer ${revoked}`);
    assert.equal(used.status, 200);
    await used.body?.cancel();
    assert.equal(cli('grants', 'revoke', 'revoked', '-c', config).status, 0);
    const cases = [
      [undefined, /^Bearer realm="toolwarden", resource_metadata="http:\/\/127\.0\.0\.1:\d+\/\.well-known\/oauth-protected-resource\/mcp"$/],
      [`Basic ${Buffer.from('a:b').toString('base64')}`, /invalid_token.*Bearer scheme/],
      [`Bearer tw_${'x'.repeat(43)}`, /unknown token/],
      [`Bearer ${revoked}`, /token revoked/],
    ];
    for (const [header, wwwAuth] of cases) {
      const res = await rawPost(header);
      assert.equal(res.status, 401, String(header));
      assert.match(res.headers.get('www-authenticate'), wwwAuth);
      assert.equal(res.headers.get('mcp-session-id'), null);
      // The body says what is missing and how to get it.
      assert.match((await res.json()).error.message, /grants create NAME.*Authorization: Bearer tw_/);
    }
    // A client answered 401 finds OAuth sign-in (docs/oauth.md; e2e.oauth drives it); a path
    // of another layout is answered with where to look.
    for (const probe of ['/.well-known/oauth-protected-resource/mcp', '/.well-known/oauth-authorization-server']) {
      assert.equal((await fetch(`${gw.base}${probe}`)).status, 200, probe);
    }
    const other = await fetch(`${gw.base}/register`, { method: 'POST' });
    assert.equal(other.status, 404);
    assert.match((await other.json()).error_description, /oauth-protected-resource.*grants create/);
    await eventually(async () => (await rawPost(`Bearer ${expiring}`)).status === 401, 10000, 'expiry');
    const res = await rawPost(`Bearer ${expiring}`);
    assert.match(res.headers.get('www-authenticate'), /token expired/);
    // Every refusal is audited, and no token appears in the trail.
    const records = (await api('GET', '/audit?decision=deny&limit=1000')).body.records
      .filter((r) => r.rule === 'authentication');
    assert.ok(records.length >= before + 5, `${records.length} vs ${before}`);
    const trail = cli('audit', '-c', config, '--json', '--limit', '1000').stdout;
    for (const t of [revoked, expiring]) assert.ok(!trail.includes(t.slice(3)));
  });

  it('applies a grant\'s own policy for a server instead of the server\'s', async () => {
    const client = await connect(createGrant('read-only', '--policy', `everything=${path.join(tmp, 'readonly.yaml')}`));
    assert.equal(text(await client.callTool({ name: 'everything__echo', arguments: { message: 'ro' } })), 'Echo: ro');
    const sum = await client.callTool({ name: 'everything__get-sum', arguments: { a: 1, b: 2 } });
    assert.equal(sum.isError, true);  // default deny in its policy, not an approval as in the server's
    assert.match(text(sum), /POLICY DENIED/);
    const bad = cli('grants', 'create', 'broken-policy', '-c', config, '--policy', 'everything=/nonexistent.yaml');
    assert.notEqual(bad.status, 0);
  });

  it('binds a session to its grant: another grant using its id gets 404', async () => {
    const init = await rawPost(`Bearer ${all}`);
    assert.equal(init.status, 200);
    const sid = init.headers.get('mcp-session-id');
    const post = (token) => fetch(`${gw.base}/mcp`, { method: 'POST',
      headers: { Authorization: `Bearer ${token}`, 'Mcp-Session-Id': sid, 'Content-Type': 'application/json',
        Accept: 'application/json, text/event-stream', 'MCP-Protocol-Version': '2025-06-18' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/list' }) });
    assert.equal((await post(onlyEv)).status, 404);
    assert.equal((await post(all)).status, 200);
  });

  it('keeps counters apart per grant', async () => {
    const a = await connect(createGrant('counter-a'));
    const b = await connect(createGrant('counter-b'));
    for (let i = 0; i < 3; i++) {
      assert.equal(text(await a.callTool({ name: 'everything__echo', arguments: { message: `a${i}` } })), `Echo: a${i}`);
    }
    const fourth = await a.callTool({ name: 'everything__echo', arguments: { message: 'a3' } });
    assert.match(text(fourth), /Rate limit "echo_daily" reached/);
    assert.equal(text(await b.callTool({ name: 'everything__echo', arguments: { message: 'b0' } })), 'Echo: b0');
  });

  it('holds calls for approval; the admin API approves, denies, and refuses twice or unknown ids', async () => {
    const owner = await connect(createGrant('approver-a'));
    const other = await connect(createGrant('approver-b'));
    const pendingFor = (grant, tool) => eventually(async () =>
      (await api('GET', '/approvals')).body.approvals.find((a) => a.grant === grant && a.tool === tool),
    15000, `a pending approval for ${grant}`);
    const call = owner.callTool({ name: 'everything__get-sum', arguments: { a: 2, b: 3 } });
    const pending = await pendingFor('approver-a', 'get-sum');
    assert.equal(pending.server, 'everything');
    assert.deepEqual(pending.arguments, { a: 2, b: 3 });
    // The same call by another grant is a different approval: nothing carries over.
    const otherCall = other.callTool({ name: 'everything__get-sum', arguments: { a: 2, b: 3 } });
    const otherPending = await pendingFor('approver-b', 'get-sum');
    assert.notEqual(otherPending.id, pending.id);
    assert.equal((await api('POST', `/approvals/${pending.id}/approve`, { body: { reason: 'ok' } })).status, 200);
    assert.match(text(await call), /5/);
    const twice = await api('POST', `/approvals/${pending.id}/approve`, { body: {} });
    assert.equal(twice.status, 409);
    assert.equal((await api('POST', `/approvals/${'0'.repeat(32)}/approve`, { body: {} })).status, 404);
    assert.equal((await api('POST', `/approvals/${otherPending.id}/deny`, { body: { reason: 'not you' } })).status, 200);
    const denied = await otherCall;
    assert.equal(denied.isError, true);
    assert.match(text(denied), /A human denied this call .*: not you/);
    // Nobody decides: the call times out with a clear denial.
    const late = await owner.callTool({ name: 'everything__get-tiny-image', arguments: {} });
    assert.match(text(late), /Nobody approved this call in time/);
    const all = (await api('GET', '/approvals?state=all')).body.approvals;
    assert.equal(all.find((a) => a.id === pending.id).resolved_by, 'admin-api');
  });

  it('lets the approvals CLI resolve a call the running gateway holds (-c CONFIG)', async () => {
    const client = await connect(createGrant('cli-approved'));
    const call = client.callTool({ name: 'everything__get-sum', arguments: { a: 40, b: 2 } });
    const pending = await eventually(() => {
      const r = cli('approvals', 'list', '--json', '-c', config);
      return r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l))
        .find((a) => a.grant === 'cli-approved');
    }, 15000, 'the pending approval');
    const r = cli('approvals', 'approve', pending.id, '-c', config, '--reason', 'from the terminal');
    assert.equal(r.status, 0, r.stderr);
    assert.match(text(await call), /42/);
  });

  it('lets the approvals CLI work through the admin API (--api, token from the environment)', async () => {
    const client = await connect(createGrant('api-approved'));
    const env = { ...process.env, TOOLWARDEN_ADMIN_TOKEN: gw.adminToken };
    const viaApi = (...args) => spawnSync(TOOLWARDEN, ['approvals', '--api', gw.base, ...args], { encoding: 'utf8', env });
    const call = client.callTool({ name: 'everything__get-sum', arguments: { a: 1, b: 1 } });
    const pending = await eventually(() => viaApi('list', '--json').stdout.trim().split('\n').filter(Boolean)
      .map((l) => JSON.parse(l)).find((a) => a.grant === 'api-approved'), 15000, 'the pending approval via the API');
    assert.deepEqual(pending.arguments, { a: 1, b: 1 });
    const r = viaApi('approve', pending.id, '--reason', 'over the API');
    assert.equal(r.status, 0, r.stderr);
    assert.match(text(await call), /2/);
    const again = viaApi('approve', pending.id);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /admin API answered 409/);
    const noToken = spawnSync(TOOLWARDEN, ['approvals', '--api', gw.base, 'list'],
      { encoding: 'utf8', env: { ...process.env, TOOLWARDEN_ADMIN_TOKEN: '' } });
    assert.notEqual(noToken.status, 0);
    assert.match(noToken.stderr, /TOOLWARDEN_ADMIN_TOKEN/);
  });

  it('records exactly one audit record per decided call', async () => {
    const client = await connect(createGrant('audited'));
    for (let i = 0; i < 4; i++) await client.callTool({ name: 'conformance__test_simple_text', arguments: {} });
    for (let i = 0; i < 2; i++) await client.callTool({ name: 'everything__get-env', arguments: {} });
    const records = await eventually(async () => {
      const r = (await api('GET', '/audit?grant=audited')).body.records;
      return r.length === 6 && r.every((x) => x.outcome !== 'pending') && r;
    }, 10000, 'six completed records');
    assert.equal(records.filter((r) => r.decision === 'allow' && r.server === 'conformance' && r.outcome === 'ok').length, 4);
    assert.equal(records.filter((r) => r.decision === 'deny' && r.tool === 'get-env').length, 2);
  });

  it('guards the admin API with the admin token, Origin and JSON content type', async () => {
    assert.equal((await api('GET', '/servers', { token: null })).status, 401);
    assert.equal((await api('GET', '/servers', { token: all })).status, 401);
    const servers = await api('GET', '/servers');
    assert.equal(servers.status, 200);
    assert.deepEqual(servers.body.servers.map((s) => s.name), ['conformance', 'everything']);
    await eventually(async () => (await api('GET', '/servers')).body.servers
      .find((s) => s.name === 'everything').state === 'up', 15000, 'everything to be up');
    const foreign = await api('POST', '/grants', { body: { name: 'evil' }, headers: { Origin: 'https://evil.example' } });
    assert.equal(foreign.status, 403);
    const form = await fetch(`${gw.base}/api/grants`, { method: 'POST',
      headers: { Authorization: `Bearer ${gw.adminToken}`, 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'name=evil' });
    assert.equal(form.status, 415);
    const created = await api('POST', '/grants', { body: { name: 'via-api', servers: ['everything'] } });
    assert.equal(created.status, 201);
    const client = await connect(created.body.token);  // usable at once
    assert.ok((await client.listTools()).tools.length > 0);
    assert.equal((await api('DELETE', '/grants/via-api', { body: {} })).status, 200);
    assert.equal((await rawPost(`Bearer ${created.body.token}`)).status, 401);  // revoked at once
    const tools = await api('GET', '/servers/everything/tools');
    assert.ok(tools.body.tools.some((t) => t.name === 'echo' && t.risk));
    const policies = (await api('GET', '/policies')).body.policies;
    const everythingPolicy = policies.find((p) => p.path === path.join(tmp, 'everything.yaml'));
    assert.deepEqual(everythingPolicy.servers, ['everything']);
    assert.match(everythingPolicy.text, /environment stays private/);
  });

  it('lists every configured server\'s tools with category, risk, pin state and decision', async () => {
    const r = cli('tools', '-c', config, '--json');
    assert.equal(r.status, 0, r.stderr);
    const rows = JSON.parse(r.stdout);
    const env = rows.find((t) => t.server === 'everything' && t.name === 'get-env');
    assert.equal(env.decision, 'deny');
    assert.ok(rows.some((t) => t.server === 'conformance' && t.name === 'test_simple_text' && t.pin === 'pinned'));
    const only = JSON.parse(cli('tools', '-c', config, '--server', 'conformance', '--json').stdout);
    assert.ok(only.length > 0 && only.every((t) => t.server === 'conformance'));
    const viaApi = (await api('GET', '/servers/everything/tools')).body.tools;
    assert.equal(viaApi.find((t) => t.name === 'get-env').decision, 'deny');
    assert.equal(cli('tools', '-c', config, '--server', 'nope').status, 2);
  });

  it('exposes metrics, health and readiness', async () => {
    const metrics = await (await fetch(`${gw.base}/metrics`)).text();
    assert.match(metrics, /toolwarden_tool_calls_total\{server="everything",tool="echo",decision="allow"\} \d+/);
    assert.match(metrics, /toolwarden_unauthorized_requests_total [1-9]/);
    assert.match(metrics, /toolwarden_sessions \d+/);
    assert.match(metrics, /toolwarden_servers_up 2/);
    assert.match(metrics, /toolwarden_decision_duration_seconds_bucket\{server="everything",le="\+Inf"\} [1-9]/);
    assert.match(metrics, /toolwarden_call_duration_seconds_count\{server="conformance"\} [1-9]/);
    assert.equal((await fetch(`${gw.base}/readyz`)).status, 200);
  });

  it('reloads the config: servers come and go for new sessions; a bad file changes nothing', async () => {
    writeConfig([...EVERYTHING_ENTRY]);
    await eventually(async () => (await api('GET', '/servers')).body.servers.length === 1, 10000, 'reload');
    const client = await connect(all);
    assert.ok((await client.listTools()).tools.every((t) => t.name.startsWith('everything__')));
    const good = fs.readFileSync(config, 'utf8');
    fs.writeFileSync(config, good + 'bogus: 1\n');
    const reload = await api('POST', '/reload', { body: {} });
    assert.equal(reload.status, 422);
    assert.match(reload.body.error.message, /toolwarden\.yaml:\d+:1: unknown key "bogus"/);
    assert.equal((await api('GET', '/servers')).body.servers.length, 1);
    await eventually(() => /config reload \(.*\) refused/.test(gw.proc.stderrText), 10000, 'the refusal in the log');
    // The file put back as it was: the log says the config in force is its text again.
    fs.writeFileSync(config, good);
    await eventually(() => /config .*toolwarden\.yaml is valid again/.test(gw.proc.stderrText), 10000, 'the recovery in the log');
    writeConfig([...EVERYTHING_ENTRY, ...CONFORMANCE_ENTRY]);
    await eventually(async () => (await api('GET', '/servers')).body.servers.length === 2, 10000, 'reload back');
  });
});

// A gateway of its own for one test: a temporary folder with `policy` as p.yaml, a config with
// `lines` (servers and settings) after listen and state, a grant, `serve`, and an SDK client on
// /mcp with that grant's token (and `headers`). Everything is stopped and removed afterwards.
async function withServe({ name, lines, policy = 'version: "1"\ndefault: allow\n', env, headers = {} }, fn) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `tw-serve-${name}-`));
  fs.writeFileSync(path.join(dir, 'p.yaml'), policy);
  const cfg = path.join(dir, 'toolwarden.yaml');
  fs.writeFileSync(cfg, ['listen: 127.0.0.1:0', `state: sqlite:${path.join(dir, 'state.db')}`, ...lines, ''].join('\n'));
  const token = JSON.parse(cli('grants', 'create', name, '-c', cfg, '--json').stdout).token;
  const gw = await startServe(cfg, [], { env });
  const client = new Client({ name: 'e2e', version: '1' });
  try {
    await client.connect(new StreamableHTTPClientTransport(new URL(`${gw.base}/mcp`), {
      requestInit: { headers: { Authorization: `Bearer ${token}`, ...headers } } }));
    await fn({ gw, client, cfg });
  } finally {
    await client.close().catch(() => {});
    await stop(gw.proc);
    fs.rmSync(dir, { recursive: true, force: true });
  }
}
const EVERYTHING_ONLY = [
  'servers:', '  everything:', '    command: node', `    args: [${JSON.stringify(EVERYTHING)}, stdio]`, '    policy: p.yaml',
];

describe('serve killed with SIGKILL mid-load', () => {
  it('loses no decided call', async () => {
    await withServe({ name: 'loader', lines: EVERYTHING_ONLY }, async ({ gw, client, cfg }) => {
      const answered = [];
      const calls = [];
      for (let i = 0; i < 300; i++) {
        calls.push(client.callTool({ name: 'everything__echo', arguments: { message: `m${i}` } })
          .then((r) => { if (!r.isError) answered.push(i); }, () => {}));
      }
      await eventually(() => answered.length >= 30, 20000, 'some answers');
      gw.proc.kill('SIGKILL');
      await new Promise((r) => (gw.proc.exitCode !== null || gw.proc.signalCode !== null ? r() : gw.proc.on('exit', r)));
      await Promise.allSettled(calls);
      const records = cli('audit', '-c', cfg, '--json', '--limit', '1000', '--tool', 'echo').stdout
        .trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
      assert.ok(records.length >= answered.length, `${records.length} records for ${answered.length} answers`);
      assert.ok(records.every((r) => r.grant === 'loader' && r.server === 'everything' && r.decision === 'allow'));
      const digests = new Set(records.map((r) => r.args_digest));
      for (const i of answered) {
        const d = createHash('sha256').update(JSON.stringify({ message: `m${i}` })).digest('hex');
        assert.ok(digests.has(d), `call ${i} was answered but not audited`);
      }
    });
  });
});

describe('serve shutting down', () => {
  it('lets a call in flight finish, then stops', async () => {
    await withServe({ name: 'drain', lines: ['shutdown_timeout: 20s', ...EVERYTHING_ONLY] }, async ({ gw, client }) => {
      let progressed = false;
      const call = client.callTool({ name: 'everything__trigger-long-running-operation', arguments: { duration: 2, steps: 4 } },
        undefined, { onprogress: () => { progressed = true; } });
      await eventually(() => progressed, 15000, 'the call to be running');
      const exited = new Promise((r) => gw.proc.on('exit', (code) => r(code)));
      gw.proc.kill('SIGTERM');
      const result = await call;  // finishes although the gateway is stopping
      assert.match(text(result), /Long running operation completed/);
      assert.equal(await exited, 0);
      assert.match(gw.proc.stderrText, /draining \(1 request\(s\) in flight/);
    });
  });
});

describe('serve with a server that cannot start', () => {
  it('drops that server and keeps serving the others', async () => {
    const lines = [...EVERYTHING_ONLY,
      '  broken: {command: node, args: ["-e", "process.exit(3)"], policy: p.yaml, isolation: session}'];
    await withServe({ name: 'down', lines }, async ({ client }) => {
      const names = (await client.listTools()).tools.map((t) => t.name);
      assert.ok(names.includes('everything__echo'));
      assert.ok(!names.some((n) => n.startsWith('broken__')));
      await assert.rejects(client.callTool({ name: 'broken__anything', arguments: {} }), /"broken" is unavailable/);
      assert.equal(text(await client.callTool({ name: 'everything__echo', arguments: { message: 'still' } })), 'Echo: still');
    });
  });
});

describe('serve with a remote server and an approvals webhook', () => {
  it('sends upstream credentials from the config, never the agent\'s, and posts new approvals', async () => {
    const upstream = await startHttpServer('conformance', ['--log-headers']);
    const hooks = [];
    const hook = http.createServer((req, res) => {
      let body = '';
      req.on('data', (c) => { body += c; });
      req.on('end', () => { hooks.push({ type: req.headers['content-type'], body: JSON.parse(body) }); res.end('ok'); });
    });
    await new Promise((r) => hook.listen(0, '127.0.0.1', r));
    try {
      await withServe({
        name: 'remote',
        policy: 'version: "1"\ndefault: allow\ntools:\n  test_image_content: {action: require_approval, approval_timeout: 20s}\n',
        lines: [
          `approvals: {webhook_url: "http://127.0.0.1:${hook.address().port}/hook"}`, 'servers:',
          '  remote:', `    url: ${upstream.base}/mcp`, '    headers: {X-Upstream-Key: "${TW_E2E_UPSTREAM_KEY}"}',
          '    policy: p.yaml',
        ],
        env: { TW_E2E_UPSTREAM_KEY: 'upstream-secret-1' },
        headers: { Cookie: 'agent_session=do-not-forward' },
      }, async ({ gw, client }) => {
        assert.equal(text(await client.callTool({ name: 'remote__test_simple_text', arguments: {} })),
          'This is a simple text response for testing.');
        const seen = upstream.proc.stderrText.split('\n').filter((l) => l.startsWith('HEADERS '))
          .map((l) => JSON.parse(l.slice(8)));
        assert.ok(seen.length > 0);
        for (const h of seen) {
          assert.equal(h['x-upstream-key'], 'upstream-secret-1');
          assert.equal(h.authorization, undefined);
          assert.equal(h.cookie, undefined);
        }
        const held = client.callTool({ name: 'remote__test_image_content', arguments: {} });
        const posted = await eventually(() => hooks[0], 15000, 'the webhook');
        assert.equal(posted.type, 'application/json');
        assert.equal(posted.body.state, 'pending');
        assert.equal(posted.body.tool, 'test_image_content');
        assert.equal(posted.body.grant, 'remote');
        const res = await fetch(`${gw.base}/api/approvals/${posted.body.id}/approve`, { method: 'POST',
          headers: { Authorization: `Bearer ${gw.adminToken}`, 'Content-Type': 'application/json' }, body: '{}' });
        assert.equal(res.status, 200);
        assert.equal((await held).content[0].type, 'image');
      });
    } finally {
      await stop(upstream.proc);
      hook.close();
    }
  });
});

describe("serve's first start", () => {
  it('shows the admin token only once it listens, with the console URL and the next command', async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-first-'));
    const cfg = path.join(dir, 'toolwarden.yaml');
    fs.writeFileSync(path.join(dir, 'p.yaml'), 'version: "1"\ndefault: allow\n');
    fs.writeFileSync(cfg, [
      'listen: 127.0.0.1:0', `state: sqlite:${path.join(dir, 'state.db')}`, 'servers:',
      '  everything:', '    command: node', `    args: [${JSON.stringify(EVERYTHING)}, stdio]`,
      '    policy: p.yaml', '',
    ].join('\n'));
    // A start that cannot bind (the port is taken) shows nothing it cannot keep.
    const busy = http.createServer();
    await new Promise((r) => busy.listen(0, '127.0.0.1', r));
    try {
      const failed = spawnSync(TOOLWARDEN, ['serve', '-c', cfg, '--listen', `127.0.0.1:${busy.address().port}`],
        { encoding: 'utf8', timeout: 30000 });
      assert.notEqual(failed.status, 0);
      assert.doesNotMatch(failed.stderr, /twa_/, 'no token from a start that failed');
    } finally {
      busy.close();
    }
    const first = await startServe(cfg);
    try {
      assert.ok(first.adminToken, 'the first start that listens shows the token');
      assert.ok(first.proc.stderrText.includes(`${first.base}/ui/`), first.proc.stderrText);
      assert.ok(first.proc.stderrText.includes(`toolwarden grants create NAME -c ${cfg}`));
      assert.equal((await fetch(`${first.base}/api/grants`, {
        headers: { Authorization: `Bearer ${first.adminToken}` } })).status, 200);
    } finally {
      await stop(first.proc);
    }
    const again = await startServe(cfg);
    try {
      assert.equal(again.adminToken, undefined, 'shown once');
      assert.ok(again.proc.stderrText.includes(`console on ${again.base}/ui/`), again.proc.stderrText);
    } finally {
      await stop(again.proc);
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
