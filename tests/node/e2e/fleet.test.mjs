// A fleet: a real redis-server holding the shared state, three `toolwarden serve` replicas
// started from one config, Debian's nginx in front (round robin for new sessions; a session's
// requests routed by the replica name its id starts with — deploy/nginx-fleet.conf), the SDK
// client as the agent. What is checked: a grant made through one replica works through every
// other; a limit of 12 admits exactly 12 of 60 concurrent calls spread over the replicas; a
// call held on one replica is released by an approval given through another, once; a replica
// killed mid-load loses its sessions but nothing goes over the limit or unaudited; Redis
// stopped makes every replica fail closed (503 + Retry-After, /readyz 503) and restarted makes
// them serve again. Every replica ships its records to one PostgreSQL trail (a replica killed
// with SIGKILL ships its backlog when it comes back). A console signed in through one replica is signed in through all.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import {
  DENY_PREFIX, FIXTURES, ROOT, TOOLWARDEN, eventually, findExecutable, startNginx, startPostgres,
  startRedis, startServe, stop,
} from './helpers.mjs';

const REPLICAS = ['r1', 'r2', 'r3'];
const haveRedis = await findExecutable('/usr/bin/redis-server', '/usr/local/bin/redis-server');
const haveNginx = await findExecutable('/usr/sbin/nginx', '/usr/bin/nginx');
const havePostgres = fs.existsSync('/usr/lib/postgresql') &&
  fs.readdirSync('/usr/lib/postgresql').some((v) => fs.existsSync(`/usr/lib/postgresql/${v}/bin/initdb`));
const skip = !haveRedis ? 'redis-server is not installed' : !haveNginx ? 'nginx is not installed'
  : !havePostgres ? 'PostgreSQL is not installed' : false;

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-fleet-'));
fs.chmodSync(tmp, 0o755);  // nginx's workers (nobody) create their temporary files here
const config = path.join(tmp, 'toolwarden.yaml');
fs.writeFileSync(path.join(tmp, 'fleet.yaml'), [
  'version: "1"', 'default: allow', 'tools:',
  '  echo:', '    limits: [{counter: echo_total, window: day, max: 12, scope: grant}]',
  '  pay: {action: require_approval, approval_timeout: 60s}', '',
].join('\n'));
const record = (r) => path.join(tmp, `${r}.calls.jsonl`);
const auditStore = (r) => `sqlite:${path.join(tmp, r, 'toolwarden', 'audit.db')}`;
const text = (res) => res.content.map((c) => c.text ?? '').join('');

// The calls of tool `name` whose message starts with `prefix`, as the upstreams received them.
const forwarded = (name, prefix) => REPLICAS.flatMap((r) => {
  if (!fs.existsSync(record(r))) return [];
  return fs.readFileSync(record(r), 'utf8').trim().split('\n').slice(1).map((l) => JSON.parse(l))
    .filter((m) => m.method === 'tools/call' && m.params?.name === name &&
      String(m.params?.arguments?.message ?? m.params?.arguments?.amount ?? '').startsWith(prefix));
});

const auditQuery = (...args) => {
  const out = spawnSync(TOOLWARDEN, ['audit', '--json', '--limit', '1000', ...args], { encoding: 'utf8' });
  assert.equal(out.status, 0, out.stderr);
  return out.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
};
// Every replica's audit records of a grant (each replica's durable local log).
const audited = (grant) => REPLICAS.flatMap((r) => auditQuery('--state', auditStore(r), '--grant', grant));
// The fleet's shared trail (PostgreSQL), as `toolwarden audit -c` reads it.
const sharedTrail = (grant) => auditQuery('-c', config, '--grant', grant);

describe('fleet', { skip }, () => {
  let redis;
  let pg;
  let lb;
  const gw = {};  // replica → { proc, base, adminToken }
  let admin;      // the fleet's one admin token (printed by the first replica only)
  const clients = [];

  const startReplica = (r) => startServe(config, ['--replica', r], {
    env: { XDG_STATE_HOME: path.join(tmp, r), TW_RECORD: record(r) },
  });
  const api = async (replica, method, target, body) => {
    const res = await fetch(`${gw[replica].base}${target}`, {
      method,
      headers: { Authorization: `Bearer ${admin}`, 'Content-Type': 'application/json' },
      body: body && JSON.stringify(body),
    });
    return { status: res.status, body: await res.json().catch(() => ({})) };
  };
  const createGrant = async (replica, name) => {
    const r = await api(replica, 'POST', '/api/grants', { name });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    return r.body.token;
  };
  // An agent connected through the load balancer; `replica` is where its session lives.
  const connect = async (token) => {
    const transport = new StreamableHTTPClientTransport(new URL(`${lb.base}/mcp/rec`), {
      requestInit: { headers: { Authorization: `Bearer ${token}` } },
    });
    const client = new Client({ name: 'fleet-agent', version: '1' });
    await client.connect(transport);
    clients.push(client);
    return { client, replica: transport.sessionId.split('.')[0] };
  };

  before(async () => {
    redis = await startRedis(tmp);
    fs.mkdirSync(path.join(tmp, 'pg'));
    pg = await startPostgres(path.join(tmp, 'pg'));
    fs.writeFileSync(config, [
      'listen: 127.0.0.1:0', `state: ${redis.url}`, 'workers: 1', 'shutdown_timeout: 2s',
      `audit: {shared: "${pg.url}"}`,
      'trusted_proxies: [127.0.0.1]', 'servers:', '  rec:', '    command: node',
      `    args: [${JSON.stringify(path.join(FIXTURES, 'recording-server.mjs'))}, "\${TW_RECORD}"]`,
      '    policy: fleet.yaml', '',
    ].join('\n'));
    for (const r of REPLICAS) gw[r] = await startReplica(r);
    admin = gw.r1.adminToken;
    assert.ok(admin, 'the first replica prints the fleet\'s admin token');
    assert.equal(gw.r2.adminToken, undefined, 'the others find it made');
    const template = fs.readFileSync(path.join(ROOT, 'deploy', 'nginx-fleet.conf'), 'utf8');
    // One worker: round robin is per worker, and the spread of new sessions is asserted.
    lb = await startNginx(tmp, (port) => template
      .replace('worker_processes auto;', 'worker_processes 1;')
      .replaceAll('127.0.0.1:8420', `127.0.0.1:${port}`)
      .replaceAll('127.0.0.1:8421', gw.r1.base.slice(7))
      .replaceAll('127.0.0.1:8422', gw.r2.base.slice(7))
      .replaceAll('127.0.0.1:8423', gw.r3.base.slice(7))
      .replace('# pid', `pid ${path.join(tmp, 'nginx.pid')};`)
      .replace('# temp', ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']
        .map((t) => `${t}_temp_path ${path.join(tmp, `nginx-${t}`)};`).join(' ')));
  });

  after(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => {})));
    await Promise.all(Object.values(gw).map((g) => stop(g.proc)));
    await stop(lb?.proc);
    await stop(redis?.proc);
    await stop(pg?.proc);
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('a grant created through one replica works through every replica', async () => {
    const token = await createGrant('r2', 'agent-a');
    const agents = [await connect(token), await connect(token), await connect(token)];
    assert.deepEqual(agents.map((a) => a.replica).sort(), REPLICAS, 'round robin spreads new sessions');
    for (const a of agents) {
      const res = await a.client.callTool({ name: 'echo', arguments: { message: `hello-${a.replica}` } });
      assert.match(text(res), new RegExp(`hello-${a.replica}`));
    }
    // The CLI sees the same grants on the same Redis.
    const list = spawnSync(TOOLWARDEN, ['grants', 'list', '--state', redis.url, '--json'], { encoding: 'utf8' });
    assert.equal(list.status, 0, list.stderr);
    assert.match(list.stdout, /agent-a/);
  });

  it('signed in to the console through one replica is signed in through all, until signed out anywhere', async () => {
    const login = await fetch(`${gw.r1.base}/api/login`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ token: admin }),
    });
    assert.equal(login.status, 200);
    const cookie = login.headers.get('set-cookie').split(';')[0];
    const { csrf } = await login.json();
    for (const r of REPLICAS) {
      assert.equal((await fetch(`${gw[r].base}/api/grants`, { headers: { Cookie: cookie } })).status, 200, r);
    }
    const out = await fetch(`${gw.r3.base}/api/logout`, {
      method: 'POST', headers: { Cookie: cookie, 'Content-Type': 'application/json', 'X-CSRF-Token': csrf }, body: '{}',
    });
    assert.equal(out.status, 200);
    assert.equal((await fetch(`${gw.r1.base}/api/grants`, { headers: { Cookie: cookie } })).status, 401);
  });

  it('60 concurrent calls against a limit of 12 forward exactly 12, whatever replica each lands on', async () => {
    const made = spawnSync(TOOLWARDEN, ['grants', 'create', 'racer', '--state', redis.url, '--json'], { encoding: 'utf8' });
    assert.equal(made.status, 0, made.stderr);
    const { token } = JSON.parse(made.stdout);
    const agents = [];
    for (let i = 0; i < 6; ++i) agents.push(await connect(token));
    assert.equal(new Set(agents.map((a) => a.replica)).size, 3);
    const results = await Promise.all(Array.from({ length: 60 }, (_, i) =>
      agents[i % agents.length].client.callTool({ name: 'echo', arguments: { message: `race-${i}` } })));
    const passed = results.filter((r) => !r.isError);
    const denied = results.filter((r) => r.isError);
    assert.equal(passed.length, 12);
    assert.equal(denied.length, 48);
    for (const d of denied) assert.ok(text(d).startsWith(DENY_PREFIX) && /echo_total/.test(text(d)), text(d));
    assert.equal(forwarded('echo', 'race-').length, 12);
    const allows = audited('racer').filter((a) => a.decision === 'allow');
    assert.equal(allows.length, 12, 'every forwarded call has its record on the replica that forwarded it');
    // One trail for the fleet: every replica's records, each once.
    const shared = await eventually(() => {
      const rows = sharedTrail('racer');
      return rows.length === 60 && rows;
    }, 15000, 'the shared trail to hold all 60 records');
    assert.equal(shared.filter((a) => a.decision === 'allow').length, 12);
    assert.equal(new Set(shared.map((a) => a.id)).size, 60);
    // Replayed over the fleet's trail, a limit of 20 lets through the first 20 in time order,
    // whichever replica decided them.
    const looser = path.join(tmp, 'looser.yaml');
    fs.writeFileSync(looser, fs.readFileSync(path.join(tmp, 'fleet.yaml'), 'utf8').replace('max: 12', 'max: 20'));
    const replayed = spawnSync(TOOLWARDEN, ['replay', '--policy', looser, '-c', config, '--grant', 'racer', '--since', '1h', '--json'],
                               { encoding: 'utf8' });
    assert.equal(replayed.status, 0, replayed.stderr);
    const report = JSON.parse(replayed.stdout);
    assert.equal(report.records, 60);
    assert.equal(12 + report.changed.newly_allowed - report.changed.newly_denied, 20);
    assert.ok(report.changed.newly_allowed >= 8);
  });

  it('a call held on one replica is released by an approval given through another, once', async () => {
    const token = await createGrant('r1', 'payer');
    let held;
    while (!held) {
      const a = await connect(token);
      if (a.replica === 'r1') held = a;
    }
    const call = held.client.callTool({ name: 'pay', arguments: { amount: 42 } });
    const pending = await eventually(async () => {
      const r = await api('r3', 'GET', '/api/approvals');
      return r.body.approvals?.find((a) => a.tool === 'pay' && a.grant === 'payer' && a.state === 'pending');
    }, 15000, 'the approval to be listed on another replica');
    const approved = await api('r3', 'POST', `/api/approvals/${pending.id}/approve`, { reason: 'ok' });
    assert.equal(approved.status, 200, JSON.stringify(approved.body));
    const res = await call;
    assert.ok(!res.isError, text(res));
    assert.equal(forwarded('pay', '42').length, 1);
    const again = await api('r2', 'POST', `/api/approvals/${pending.id}/deny`, { reason: 'late' });
    assert.notEqual(again.status, 200, 'an approval is resolved once, fleet-wide');
  });

  it('a replica killed mid-load: its agents reconnect elsewhere, nothing over the limit, nothing unaudited', async () => {
    const token = await createGrant('r2', 'survivor');
    const agents = [];
    for (let i = 0; i < 6; ++i) agents.push(await connect(token));
    const calls = Array.from({ length: 18 }, (_, i) =>
      agents[i % agents.length].client.callTool({ name: 'echo', arguments: { message: `load-${i}` } }));
    gw.r3.proc.kill('SIGKILL');
    const settled = await Promise.allSettled(calls);
    // Agents whose replica died start new sessions through the load balancer.
    for (const a of agents.filter((x) => x.replica === 'r3')) {
      const again = await connect(token);
      assert.notEqual(again.replica, 'r3');
      const res = await again.client.callTool({ name: 'echo', arguments: { message: 'load-again' } });
      assert.ok(res.isError ? text(res).startsWith(DENY_PREFIX) : text(res).includes('load-again'), text(res));
    }
    const passed = settled.filter((s) => s.status === 'fulfilled' && !s.value.isError).length;
    const sent = forwarded('echo', 'load-').length;
    assert.ok(sent <= 12, `${sent} forwarded against a limit of 12`);
    assert.ok(passed <= sent);
    const allows = audited('survivor').filter((a) => a.decision === 'allow').length;
    assert.ok(allows >= sent, `${sent} forwarded, ${allows} allow records`);
    assert.ok(allows <= 12);
    // Back from the dead, the replica ships what it had recorded: the shared trail is the union
    // of every replica's records, none twice.
    gw.r3 = await startReplica('r3');
    const local = new Set(audited('survivor').map((a) => a.id));
    await eventually(() => {
      const rows = sharedTrail('survivor');
      return rows.length === local.size && rows.every((a) => local.has(a.id));
    }, 15000, 'the shared trail to hold every replica\'s records of survivor');
  });

  it('Redis stopped: every replica fails closed; restarted: they serve again', async () => {
    const token = await createGrant('r1', 'outage');
    // A session opened before the outage, spoken to directly (to see status and headers).
    const rpc = async (body, session) => {
      const res = await fetch(`${lb.base}/mcp/rec`, {
        method: 'POST',
        headers: {
          Authorization: `Bearer ${token}`, 'Content-Type': 'application/json',
          Accept: 'application/json, text/event-stream', ...(session ? { 'Mcp-Session-Id': session } : {}),
        },
        body: JSON.stringify({ jsonrpc: '2.0', ...body }),
      });
      const raw = await res.text();
      const data = raw.split('\n').filter((l) => l.startsWith('data:')).map((l) => l.slice(5)).join('');
      let message;
      try { message = JSON.parse(data || raw); } catch { message = undefined; }
      return { status: res.status, headers: res.headers, raw, message };
    };
    const init = await rpc({ id: 1, method: 'initialize', params: {
      protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
    assert.equal(init.status, 200, init.raw);
    const session = init.headers.get('mcp-session-id');
    await rpc({ method: 'notifications/initialized' }, session);
    const echo = (id, message) => rpc({ id, method: 'tools/call', params: { name: 'echo', arguments: { message } } }, session);

    redis.proc.kill('SIGKILL');
    await eventually(() => redis.proc.exitCode !== null || redis.proc.signalCode !== null, 5000, 'redis to die');
    const refused = await echo(2, 'outage-1');
    assert.equal(refused.status, 503, refused.raw);
    assert.equal(refused.headers.get('retry-after'), '2');
    assert.match(refused.raw, /grant store is unavailable/);
    const fresh = await rpc({ id: 3, method: 'initialize', params: {
      protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } });
    assert.equal(fresh.status, 503, 'no new session either');
    for (const r of ['r1', 'r2']) {
      const ready = await fetch(`${gw[r].base}/readyz`);
      assert.equal(ready.status, 503);
      assert.match(await ready.text(), /state store unreachable/);
    }
    const metrics = await (await fetch(`${gw.r1.base}/metrics`)).text();
    assert.match(metrics, /toolwarden_state_errors_total [1-9]/);
    assert.equal(forwarded('echo', 'outage-').length, 0);

    redis = await startRedis(tmp, redis.port);  // the same port, the same append-only file
    // The grant survived in the append-only file; the session held on. The replicas try Redis
    // again within 2 s.
    const back = await eventually(async () => {
      const r = await echo(4, 'outage-2');
      return r.status === 200 && r;
    }, 10000, 'calls to be served again');
    assert.match(JSON.stringify(back.message.result), /outage-2/);
    for (const r of ['r1', 'r2']) {
      await eventually(async () => (await fetch(`${gw[r].base}/readyz`)).status === 200, 10000, `${r}'s readyz to recover`);
    }
  });
});
