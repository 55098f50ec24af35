// `toolwarden scan` against real servers: the scaffold validates, loads unchanged and enforces.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

import { newClient } from './everything-suite.mjs';
import { DENY_PREFIX, EVERYTHING, FIXTURES, NODE_MODULES, TOOLWARDEN, resolvePendingApproval, startHttpServer, stop } from './helpers.mjs';

const FILESYSTEM = path.join(NODE_MODULES, '@modelcontextprotocol/server-filesystem/dist/index.js');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-scan-'));
after(() => fs.rmSync(tmp, { recursive: true, force: true }));
const text = (r) => r.content.map((c) => c.text ?? '').join('');

function scan(args) {
  const r = spawnSync(TOOLWARDEN, ['--log-level', 'warn', 'scan', ...args], { encoding: 'utf8', timeout: 60000 });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

describe('scan', () => {
  it('classifies server-filesystem and writes a YAML scaffold that validates and enforces', async () => {
    const root = path.join(tmp, 'files');
    fs.mkdirSync(root);
    fs.writeFileSync(path.join(root, 'hello.txt'), 'hi there');
    const policy = path.join(tmp, 'filesystem.yaml');
    scan(['-o', policy, '--', process.execPath, FILESYSTEM, root]);
    const yaml = fs.readFileSync(policy, 'utf8');
    assert.match(yaml, /^default: deny$/m);
    assert.match(yaml, /# "?read_text_file"? — Read, Low risk: allow/);
    assert.match(yaml, /"write_file":\n    action: require_approval/);

    const v = spawnSync(TOOLWARDEN, ['validate', policy], { encoding: 'utf8' });
    assert.equal(v.status, 0, v.stdout);
    // Beside the scaffold, the start of its tests: one case per tool, passing as written.
    const cases = path.join(tmp, 'filesystem.cases.yaml');
    assert.match(fs.readFileSync(cases, 'utf8'), /- name: "write_file is held for approval"\n {4}tool: "write_file"\n {4}arguments: \{\}\n {4}expect: approval/);
    const t = spawnSync(TOOLWARDEN, ['test', policy, cases], { encoding: 'utf8' });
    assert.equal(t.status, 0, t.stdout + t.stderr);
    assert.match(t.stdout, /\d+ cases: (\d+) passed, 0 failed/);
    // A second scan keeps the cases someone edited.
    fs.appendFileSync(cases, '  - {name: mine, tool: read_text_file, arguments: {path: /x}, expect: allow}\n');
    scan(['-o', policy, '--', process.execPath, FILESYSTEM, root]);
    assert.match(fs.readFileSync(cases, 'utf8'), /name: mine/);

    const state = `sqlite:${path.join(tmp, 'scaffold.db')}`;
    const client = newClient();
    await client.connect(new StdioClientTransport({
      command: TOOLWARDEN, args: ['run', '-p', policy, '--state', state, '--', process.execPath, FILESYSTEM, root], stderr: 'ignore',
    }));
    const read = await client.callTool({ name: 'read_text_file', arguments: { path: path.join(root, 'hello.txt') } });
    assert.equal(text(read), 'hi there');
    // Destructive: held for a human, who says no.
    const pending = client.callTool({ name: 'write_file', arguments: { path: path.join(root, 'x.txt'), content: 'no' } });
    await resolvePendingApproval(state, 'write_file', 'deny');
    const write = await pending;
    assert.equal(write.isError, true);
    assert.ok(text(write).startsWith(DENY_PREFIX));
    assert.ok(!fs.existsSync(path.join(root, 'x.txt')), 'the denied write never happened');
    await client.close();
  });

  it('prints a summary as a table and as JSON', () => {
    const table = scan(['--summary', '--', process.execPath, FILESYSTEM, tmp]);
    assert.match(table, /^TOOL +CATEGORY +RISK +RECOMMENDATION$/m);
    assert.match(table, /^write_file +Destructive +Critical +require approval$/m);
    const rows = JSON.parse(scan(['--summary', '--json', '--', process.execPath, FILESYSTEM, tmp]));
    const byName = Object.fromEntries(rows.map((r) => [r.name, r]));
    assert.deepEqual(Object.keys(byName.read_file).sort(), ['category', 'name', 'recommendation', 'risk', 'signals']);
    assert.equal(byName.read_file.category, 'Read');
    assert.equal(byName.create_directory.category, 'Write');
    assert.ok(byName.write_file.signals.length > 0);
  });

  it('scans every tool of server-everything, including the ones offered to capable clients', () => {
    const rows = JSON.parse(scan(['--summary', '--json', '--', process.execPath, EVERYTHING, 'stdio']));
    const names = rows.map((r) => r.name);
    assert.ok(names.includes('echo'));
    assert.ok(names.includes('trigger-sampling-request'));
    // It claims readOnlyHint but its name says it triggers work: flagged, not trusted.
    const op = rows.find((r) => r.name === 'trigger-long-running-operation');
    assert.equal(op.category, 'Execute');
    assert.ok(op.signals.some((s) => s.includes('not trusted')));
  });

  it('scans an HTTP server and writes a JSON scaffold that loads unchanged', async () => {
    const server = await startHttpServer('conformance');
    try {
      const policy = path.join(tmp, 'conformance.json');
      scan(['-o', policy, '--upstream', `${server.base}/mcp`]);
      const doc = JSON.parse(fs.readFileSync(policy, 'utf8'));
      assert.equal(doc.default, 'deny');
      for (const entry of Object.values(doc.tools)) {
        assert.match(entry._about, /^(Read|Write|Execute|Financial|Destructive), (Low|Medium|High|Critical) risk: /);
      }
      assert.ok(Object.keys(doc.tools).length >= 14);
      const v = spawnSync(TOOLWARDEN, ['validate', policy], { encoding: 'utf8' });
      assert.equal(v.status, 0, v.stdout);
    } finally {
      await stop(server.proc);
    }
  });

  it('agrees with the project\'s labels for every tool of the servers installed from npm', () => {
    // The labels are the project's (fixtures/labelled-tools.json); the tools are what the
    // installed servers list now, so a server that adds a tool fails here until it is labelled.
    const labels = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'labelled-tools.json'), 'utf8')).servers;
    const listed = {
      '@modelcontextprotocol/server-everything': [process.execPath, EVERYTHING, 'stdio'],
      '@modelcontextprotocol/server-filesystem': [process.execPath, FILESYSTEM, tmp],
    };
    let total = 0;
    const disagreements = [];
    for (const [server, command] of Object.entries(listed)) {
      const rows = JSON.parse(scan(['--summary', '--json', '--', ...command]));
      assert.deepEqual(rows.map((r) => r.name).sort(), Object.keys(labels[server]).sort(),
        `${server}: the labelled set and the tools it lists differ`);
      for (const r of rows) {
        ++total;
        if (r.category !== labels[server][r.name]) disagreements.push(`${r.name}: ${r.category}, labelled ${labels[server][r.name]}`);
      }
    }
    assert.ok(total >= 30, `only ${total} tools`);
    const agreement = (total - disagreements.length) / total;
    assert.ok(agreement >= 0.9, `agreement ${(100 * agreement).toFixed(1)}%:\n${disagreements.join('\n')}`);
  });

  it('fails clearly when the server cannot be started or reached', () => {
    const r = spawnSync(TOOLWARDEN, ['scan', '--', 'no-such-server-xyz'], { encoding: 'utf8' });
    assert.equal(r.status, 3);
    assert.match(r.stderr, /no-such-server-xyz.*not found/);
    const u = spawnSync(TOOLWARDEN, ['scan', '--timeout', '5', '--upstream', 'http://127.0.0.1:9/mcp'], { encoding: 'utf8' });
    assert.equal(u.status, 3);
    assert.match(u.stderr, /Connection refused/);
  });
});

describe('tools (inventory)', () => {
  it('shows every tool with category, risk, pin state and how the policy treats it', async () => {
    const policy = path.join(tmp, 'inventory.yaml');
    fs.writeFileSync(policy, [
      'version: "1"', 'default: deny', 'hide: [list_allowed_directories]', 'tools:',
      '  read_text_file: {}',
      '  write_file: {action: require_approval}',
      '  create_directory:', '    limits: [{counter: mkdir, window: minute, max: 5}]',
      '  move_file:', '    deny_if: [{path: args.destination, op: starts_with, value: /etc}]', '',
    ].join('\n'));
    const state = `sqlite:${path.join(tmp, 'inventory.db')}`;
    // A session through the gateway pins the tools first.
    const client = newClient();
    await client.connect(new StdioClientTransport({
      command: TOOLWARDEN, args: ['run', '-p', policy, '--state', state, '--', process.execPath, FILESYSTEM, tmp], stderr: 'ignore',
    }));
    await client.listTools();
    await client.close();
    const r = spawnSync(TOOLWARDEN, ['--log-level', 'warn', 'tools', '-p', policy, '--state', state, '--json', '--', process.execPath, FILESYSTEM, tmp], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const rows = Object.fromEntries(JSON.parse(r.stdout).map((x) => [x.name, x]));
    assert.equal(rows.read_text_file.decision, 'allow');
    assert.equal(rows.write_file.decision, 'approval');
    assert.equal(rows.create_directory.decision, 'limited');
    assert.equal(rows.move_file.decision, 'conditional');
    assert.equal(rows.list_allowed_directories.decision, 'hidden');
    assert.equal(rows.read_file.decision, 'deny');
    assert.equal(rows.read_file.rule, 'default');
    assert.equal(rows.write_file.category, 'Destructive');
    assert.equal(rows.read_text_file.pin, 'pinned');
    assert.equal(rows.read_text_file.server, 'server-filesystem');
  });
});
