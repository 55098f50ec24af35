// Tool pinning end to end: a server that changes a tool at runtime is caught for every kind of
// change, never for benign ones, and an administrator's `pins accept` lets calls through again.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

import { newClient } from './everything-suite.mjs';
import { FIXTURES, POLICIES, TOOLWARDEN, eventually, resolvePendingApproval } from './helpers.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-pins-'));
const clients = [];
after(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
  fs.rmSync(tmp, { recursive: true, force: true });
});
const text = (r) => r.content.map((c) => c.text).join('');

async function connect(state, mode = 'enforce') {
  const client = newClient();
  await client.connect(new StdioClientTransport({
    command: TOOLWARDEN,
    args: ['run', '-p', `${POLICIES}/allow-all.json`, '--state', state, '--pin-mode', mode,
      '--server-name', 'rugpull', '--', process.execPath, `${FIXTURES}/rugpull-server.mjs`],
    stderr: 'ignore',
  }));
  clients.push(client);
  await client.listTools();  // first sight: every tool is pinned
  return client;
}

const pins = (state, ...args) => spawnSync(TOOLWARDEN, ['pins', '--state', state, ...args], { encoding: 'utf8' });
const echo = (client) => client.callTool({ name: 'echo', arguments: { message: 'hi', n: 1 } });

describe('tool pinning', () => {
  for (const kind of ['description', 'schema', 'annotations', 'title']) {
    it(`denies a tool whose ${kind} changed, until an administrator accepts it`, async () => {
      const state = `sqlite:${path.join(tmp, `${kind}.db`)}`;
      const client = await connect(state);
      assert.equal(text(await echo(client)), 'echo: hi');
      await client.callTool({ name: 'mutate', arguments: { kind } });
      // The gateway re-reads the list on list_changed by itself.
      const denied = await eventually(async () => {
        const r = await echo(client);
        return r.isError ? r : null;
      }, 10000, 'the change to be caught');
      assert.match(text(denied), /\[POLICY DENIED\] Tool "echo" changed since it was approved/);
      assert.equal(denied._meta['toolwarden/decision'].rule, 'pin');

      const list = pins(state, 'list');
      const lines = list.stdout.trimEnd().split('\n');
      assert.match(lines[0], /^SERVER +TOOL +HASH +STATE$/);
      const row = lines.find((l) => / echo /.test(l));
      assert.match(row, /^rugpull +echo +[0-9a-f]{12} +CHANGED /);
      // Aligned: every row's tool starts where the header's TOOL does.
      for (const l of lines.slice(1)) assert.equal(l.indexOf(l.split(/ +/)[1], 7), lines[0].indexOf('TOOL'));
      const rows = pins(state, 'list', '--json').stdout.trim().split('\n').map((l) => JSON.parse(l));
      const changed = rows.find((r) => r.tool === 'echo');
      assert.equal(changed.state, 'changed');
      assert.equal(changed.server, 'rugpull');
      assert.match(changed.pending_hash, /^[0-9a-f]{64}$/);
      const diff = pins(state, 'diff', 'rugpull', 'echo');
      assert.equal(diff.status, 0);
      assert.match(diff.stdout, new RegExp(`^\\+ ${kind === 'schema' ? 'inputSchema' : kind}: `, 'm'));

      const accept = pins(state, 'accept', 'rugpull', 'echo');
      assert.equal(accept.status, 0, accept.stderr);
      assert.match(accept.stdout, /accepted 1 change/);
      assert.equal(text(await echo(client)), 'echo: hi');
      // Accepting what is not there says which it is, and fails.
      const again = pins(state, 'accept', 'rugpull', 'echo');
      assert.equal(again.status, 1);
      assert.match(again.stderr, /no pending change to accept for rugpull echo/);
      const unknown = pins(state, 'accept', 'rugpull', 'nosuch');
      assert.equal(unknown.status, 1);
      assert.match(unknown.stderr, /nothing is pinned for rugpull nosuch/);
      assert.doesNotMatch(unknown.stdout, /accepted 0/);
    });
  }

  it('holds a look-alike newcomer', async () => {
    const state = `sqlite:${path.join(tmp, 'lookalike.db')}`;
    const client = await connect(state);
    await client.callTool({ name: 'mutate', arguments: { kind: 'lookalike' } });
    // Until the gateway has read the new list the name is unknown; then pins hold it. It never runs.
    const r = await eventually(async () => {
      const x = await client.callTool({ name: 'еcho', arguments: { message: 'hi', n: 1 } });
      assert.ok(x.isError, 'the look-alike never runs');
      return /look-alike/.test(text(x)) ? x : null;
    }, 10000, 'the look-alike to be held');
    assert.match(text(r), /look-alike of "echo"/);
    assert.equal(text(await echo(client)), 'echo: hi', 'the original is untouched');
  });

  it('ignores benign changes (key order, list order)', async () => {
    const state = `sqlite:${path.join(tmp, 'benign.db')}`;
    const client = await connect(state);
    await client.callTool({ name: 'mutate', arguments: { kind: 'benign' } });
    await client.listTools();
    assert.equal(text(await echo(client)), 'echo: hi');
    assert.match(pins(state, 'list').stdout, /^rugpull +echo +[0-9a-f]{12} +pinned /m);
  });

  it('only logs in warn mode', async () => {
    const state = `sqlite:${path.join(tmp, 'warn.db')}`;
    const client = await connect(state, 'warn');
    await client.callTool({ name: 'mutate', arguments: { kind: 'description' } });
    await client.listTools();
    assert.equal(text(await echo(client)), 'echo: hi');
    assert.match(pins(state, 'list').stdout, / echo +[0-9a-f]{12} +CHANGED /);
  });

  it('holds each call of a changed tool for a human in approval mode (on_drift: require_approval)', async () => {
    const state = `sqlite:${path.join(tmp, 'approval.db')}`;
    const client = await connect(state, 'approval');
    assert.equal(text(await echo(client)), 'echo: hi');
    await client.callTool({ name: 'mutate', arguments: { kind: 'description' } });
    await client.listTools();
    // Held: a human approves this one, and it runs.
    const approved = echo(client);
    await resolvePendingApproval(state, 'echo', 'approve', 'checked the new description');
    assert.equal(text(await approved), 'echo: hi');
    // The next is held again, and refused this time: never forwarded.
    const refused = echo(client);
    await resolvePendingApproval(state, 'echo', 'deny', 'not until the change is reviewed');
    const r = await refused;
    assert.equal(r.isError, true);
    assert.match(text(r), /not until the change is reviewed/);
    // Accepted: no longer held.
    assert.equal(pins(state, 'accept', 'rugpull', 'echo').status, 0);
    assert.equal(text(await echo(client)), 'echo: hi');
  });

  it('lets a changed tool through and records the block as its shadow decision (on_drift: shadow)', async () => {
    const state = `sqlite:${path.join(tmp, 'shadow.db')}`;
    const client = await connect(state, 'shadow');
    assert.equal(text(await echo(client)), 'echo: hi');
    await client.callTool({ name: 'mutate', arguments: { kind: 'description' } });
    await client.listTools();
    // The changed definition is pinned as the list passes; a call may race it, so calls are
    // made (each still served) until one is recorded with the block as its shadow.
    const audited = () => spawnSync(TOOLWARDEN, ['audit', '--state', state, '--tool', 'echo', '--json'], { encoding: 'utf8' })
      .stdout.trim().split('\n').map((l) => JSON.parse(l));
    let records;
    await eventually(async () => {
      assert.equal(text(await echo(client)), 'echo: hi', 'still served');
      records = audited();
      return records[0].shadow !== undefined;
    }, 10000, 'a call recorded with its shadow decision');
    const latest = records[0];
    const first = records.at(-1);
    assert.equal(latest.decision, 'allow');
    assert.equal(latest.shadow.decision, 'deny');
    assert.equal(latest.shadow.rule, 'pin');
    assert.match(latest.shadow.reason, /changed since it was approved/);
    assert.equal(first.shadow, undefined, 'before the change: nothing to shadow');
  });
});
