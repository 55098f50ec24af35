// The enforcement oracle through the real binary: random sequences of what agents of two grants
// send to `toolwarden serve` — on one server's endpoint and on the aggregate `/mcp`, over one
// shared server process that runs whatever reaches it and talks about each call — checked after
// every sequence: every tools/call the server ran has an `allow` record of the grant and session
// that sent it, with exactly those arguments; every message a session received is its own.
// TW_ORACLE_SEED=N replays a run (its seed is printed); TW_ORACLE_E2E_SEQUENCES sets how many.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { FIXTURES, TOOLWARDEN, startServe, stop } from './helpers.mjs';

const RECORDER = path.join(FIXTURES, 'recording-server.mjs');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-oracle-'));
const record = path.join(tmp, 'rec.jsonl');
const config = path.join(tmp, 'toolwarden.yaml');
const state = path.join(tmp, 'state.db');
fs.writeFileSync(path.join(tmp, 'policy.yaml'), [
  'version: "1"', 'default: allow', 'hide: [release]', 'tools:',
  '  pay:', '    deny_if: [{path: args.amount, op: gt, value: 100}]', '',
].join('\n'));
fs.writeFileSync(config, [
  'listen: 127.0.0.1:0', `state: sqlite:${state}`, 'audit: {include_arguments: true}', 'servers:',
  '  rec:', `    command: ${JSON.stringify(process.execPath)}`, `    args: [${JSON.stringify(RECORDER)}, ${JSON.stringify(record)}]`,
  '    policy: policy.yaml', '',
].join('\n'));

// A small seeded generator (mulberry32): a failing run replays from its seed.
function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6D2B79F5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const cli = (...args) => spawnSync(TOOLWARDEN, args, { encoding: 'utf8' });
const received = (res) => res.text().then((body) => {
  if (!(res.headers.get('content-type') ?? '').includes('text/event-stream')) return body ? [JSON.parse(body)] : [];
  return body.split('\n').filter((l) => l.startsWith('data:') && l.length > 6).map((l) => JSON.parse(l.slice(5)));
});

// JSON with every object's keys sorted: two values are equal JSON iff their texts are.
const canonical = (v) => JSON.stringify(v, (k, x) => (x && typeof x === 'object' && !Array.isArray(x)
  ? Object.fromEntries(Object.keys(x).sort().map((key) => [key, x[key]])) : x));

describe('the enforcement oracle through toolwarden serve', () => {
  let gw;
  const grants = {};
  before(async () => {
    for (const name of ['agent-a', 'agent-b']) {
      grants[name] = JSON.parse(cli('grants', 'create', name, '-c', config, '--json').stdout).token;
    }
    gw = await startServe(config);
  });
  after(() => stop(gw?.proc));

  it('runs only decided calls, each for its sender, and shows each session only its own', async () => {
    const first = Number(process.env.TW_ORACLE_SEED ?? Math.floor(Math.random() * 2 ** 31));
    const count = Number(process.env.TW_ORACLE_E2E_SEQUENCES ?? 40);
    console.log(`oracle (e2e): ${count} sequences from seed ${first} (TW_ORACLE_SEED replays)`);
    for (let seq = 0; seq < count; seq++) {
      const seed = first + seq;
      const random = rng(seed);
      const pick = (list) => list[Math.floor(random() * list.length)];
      // Four sessions: each grant on the server's endpoint and on the aggregate.
      const sessions = [];
      for (const grant of ['agent-a', 'agent-b']) {
        for (const endpoint of ['/mcp/rec', '/mcp']) {
          const s = { grant, endpoint, url: `${gw.base}${endpoint}`, got: [], ids: new Set(), next: 1 };
          const res = await fetch(s.url, { method: 'POST', headers: headers(s), body: JSON.stringify({
            jsonrpc: '2.0', id: 'init', method: 'initialize',
            params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'oracle', version: '1' } } }) });
          assert.equal(res.status, 200, `seed ${seed}: initialize`);
          s.sid = res.headers.get('mcp-session-id');
          s.mark = `mark-${s.sid}`;
          await res.text();
          await (await post(s, '{"jsonrpc":"2.0","method":"notifications/initialized"}')).text();
          sessions.push(s);
        }
      }
      function headers(s) {
        return { 'content-type': 'application/json', accept: 'application/json, text/event-stream',
          authorization: `Bearer ${grants[s.grant]}`, ...(s.sid ? { 'mcp-session-id': s.sid } : {}) };
      }
      function post(s, body) { return fetch(s.url, { method: 'POST', headers: headers(s), body }); }
      const names = ['echo', 'pay', 'release', 'Echo', 'echo ', 'ech\u200bo', 'pay\t', 'nosuch'];
      for (let step = 0; step < 12; step++) {
        const s = pick(sessions);
        const name = (s.endpoint === '/mcp' ? 'rec__' : '') + pick(names);
        const id = random() < 0.2 ? s.next : ++s.next;  // sometimes an id already used
        const amount = pick(['5', '150', '100.0000000000000001', '1e999', '"x"']);
        const args = `{"message":"m${step}","n":${step},"amount":${amount},"mark":${JSON.stringify(s.mark)}}`;
        const call = (withId) => `{"jsonrpc":"2.0",${withId ? `"id":${withId},` : ''}"method":"tools/call","params":{"name":${JSON.stringify(name)},"arguments":${args}}}`;
        let body;
        switch (Math.floor(random() * 5)) {
          case 0: body = call(id); break;
          case 1: body = call(null); break;  // a call as a notification
          case 2: body = `[${call(id)},${call(id)}]`; break;  // a batch reusing one id
          case 3: body = `{"jsonrpc":"2.0","id":${id},"method":"tools/execute","params":{}}`; break;
          default: body = `{"jsonrpc":"2.0","id":${id},"method":"tools/list"}`;
        }
        if (body.includes('"id":')) s.ids.add(String(id));
        const res = await post(s, body);
        s.got.push(...(await received(res)));
      }
      // Property 1: everything the server ran was decided, for whom it was sent.
      const ran = fs.readFileSync(record, 'utf8').trim().split('\n').slice(1).map((l) => JSON.parse(l))
        .filter((m) => m.method === 'tools/call');
      assert.ok(ran.every((m) => m.id !== undefined), `seed ${seed}: the server received a tools/call notification`);
      const audit = cli('audit', '-c', config, '--decision', 'allow', '--json', '--limit', '1000000');
      assert.equal(audit.status, 0, audit.stderr);
      const records = audit.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
      for (const m of ran) {
        const mark = m.params.arguments?.mark;
        const owner = sessions.find((s) => s.mark === mark) ?? { sid: mark?.slice(5) };
        // The audit keeps arguments as canonical JSON (keys sorted): compared as values.
        const rec = records.filter((r) => r.session === owner.sid && r.tool === m.params.name &&
          canonical(r.args) === canonical(m.params.arguments));
        assert.ok(rec.length >= 1, `seed ${seed}: the server ran an undecided call ${JSON.stringify(m.params)}`);
        if (owner.grant) assert.equal(rec[0].grant, owner.grant, `seed ${seed}: recorded for another grant`);
      }
      // Property 2: each session received only its own.
      for (const s of sessions) {
        for (const msg of s.got) {
          const text = JSON.stringify(msg);
          for (const other of sessions) {
            assert.ok(other === s || !text.includes(other.mark), `seed ${seed}: ${s.sid} got another session's message ${text}`);
          }
          assert.ok(!text.includes('working on'), `seed ${seed}: a shared server's unattributable log line reached ${s.sid}`);
          if (msg.id !== undefined && msg.id !== null) assert.ok(s.ids.has(String(msg.id)), `seed ${seed}: ${s.sid} got an answer to ${msg.id}`);
        }
      }
      for (const s of sessions) await (await fetch(s.url, { method: 'DELETE', headers: headers(s) })).text();
    }
  });
});
