// Human approval: a call held by `action: require_approval` waits (with progress notifications)
// until `toolwarden approvals approve|deny` in another process decides, or times out.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

import { newClient } from './everything-suite.mjs';
import { EVERYTHING, TOOLWARDEN, eventually, resolvePendingApproval } from './helpers.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-approvals-'));
const state = `sqlite:${path.join(tmp, 'state.db')}`;
const policy = path.join(tmp, 'policy.yaml');
fs.writeFileSync(policy, [
  'version: "1"', 'default: deny', 'tools:',
  '  echo:', '    action: require_approval', '    approval_timeout: 30s',
  '    limits: [{counter: echo_daily, window: day, max: 2}]',
  '  get-sum: {action: require_approval, approval_timeout: 1s}', '',
].join('\n'));
const text = (r) => r.content.map((c) => c.text).join('');
const approvals = (...args) => spawnSync(TOOLWARDEN, ['approvals', '--state', state, ...args], { encoding: 'utf8' });
const list = () => approvals('list', '--all', '--json').stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));

describe('approvals', () => {
  let client;
  before(async () => {
    client = newClient();
    await client.connect(new StdioClientTransport({
      command: TOOLWARDEN, args: ['run', '-p', policy, '--state', state, '--', process.execPath, EVERYTHING, 'stdio'],
      stderr: 'ignore',
    }));
  });
  after(async () => {
    await client?.close();
    fs.rmSync(tmp, { recursive: true, force: true });
  });

  it('forwards the call once a human approves it, keeping the client informed', async () => {
    const progress = [];
    const call = client.callTool({ name: 'echo', arguments: { message: 'approved' } }, undefined,
      { onprogress: (p) => progress.push(p.message) });
    // The client hears that its call waits, while it waits.
    await eventually(() => progress.length > 0, 15000, 'a progress notification');
    const id = await resolvePendingApproval(state, 'echo', 'approve', 'looks fine');
    assert.match(progress[0], new RegExp(`^Waiting for approval ${id}`));
    const r = await call;
    assert.equal(text(r), 'Echo: approved');
    const record = list().find((a) => a.id === id);
    assert.equal(record.state, 'approved');
    assert.deepEqual(record.arguments, { message: 'approved' });
    assert.equal(record.reason, 'looks fine');
    // Single use: it cannot be decided again, and unknown ids are refused.
    const twice = approvals('deny', id);
    assert.equal(twice.status, 1);
    assert.match(twice.stderr, /already approved/);
    assert.match(approvals('approve', 'f'.repeat(32)).stderr, /no approval/);
  });

  it('denies with the human\'s reason, and a denied call uses no quota', async () => {
    for (let i = 0; i < 3; i++) {
      const call = client.callTool({ name: 'echo', arguments: { message: `no ${i}` } });
      await resolvePendingApproval(state, 'echo', 'deny', 'not today');
      const r = await call;
      assert.equal(r.isError, true);
      assert.match(text(r), /A human denied this call .*: not today$/);
      assert.equal(r._meta['toolwarden/decision'].rule, 'approval');
    }
    // One approved call so far today, of two: the next is still asked for, not rate-limited.
    const call = client.callTool({ name: 'echo', arguments: { message: 'second' } });
    await resolvePendingApproval(state, 'echo', 'approve');
    assert.equal(text(await call), 'Echo: second');
    const third = await client.callTool({ name: 'echo', arguments: { message: 'third' } });
    assert.match(text(third), /Rate limit "echo_daily" reached/);
  });

  it('denies when nobody decides in time', async () => {
    const r = await client.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } });
    assert.match(text(r), /Nobody approved this call in time/);
    assert.ok(list().some((a) => a.tool === 'get-sum' && a.state === 'expired'));
  });

  it('withdraws the approval when the client cancels the call', async () => {
    const controller = new AbortController();
    const call = client.callTool({ name: 'get-sum', arguments: { a: 5, b: 5 } }, undefined, { signal: controller.signal });
    await eventually(() => list().some((a) => a.tool === 'get-sum' && a.state === 'pending'), 10000, 'a pending approval');
    controller.abort('changed my mind');
    await assert.rejects(call);
    await eventually(() => list().some((a) => a.tool === 'get-sum' && a.state === 'cancelled'), 10000, 'the approval cancelled');
  });
});
