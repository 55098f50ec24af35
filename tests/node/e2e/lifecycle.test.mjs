// Changing policies without fear, end to end with server-everything and the official SDK
// client: a shadow policy beside the one in force (serve's policy_shadow, run's
// --policy-shadow, mode: shadow parts) recorded in the audit and /metrics and never seen by the
// agent; `toolwarden replay` of a candidate over what the audit recorded, with its JSON for CI
// and what it cannot decide; class selectors deciding by what the classifier says; argument
// values kept redacted.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { DENY_PREFIX, EVERYTHING, TOOLWARDEN, startServe, stop } from './helpers.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-lifecycle-'));
const text = (r) => r.content.map((c) => c.text ?? '').join('');
const cli = (...args) => spawnSync(TOOLWARDEN, args, { encoding: 'utf8' });
const audit = (...args) => {
  const r = cli('audit', ...args, '--json');
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
};
const write = (name, lines) => {
  const file = path.join(tmp, name);
  fs.writeFileSync(file, lines.join('\n') + '\n');
  return file;
};

// In force: everything allowed but the environment. Execute tools are denied by class.
write('everything.yaml', [
  'version: "1"', 'default: allow', 'tools:', '  get-env: {action: deny, reason: "the environment stays private"}',
  'classes:', '  Execute: {action: deny, reason: "no Execute tools here"}',
]);
// The candidate tried live: echo of anything but "hi" is denied, get-sum at most twice.
write('next.yaml', [
  'version: "1"', 'default: allow', 'mode: shadow', 'tools:',
  '  get-env: {action: deny}',
  '  echo: {require: [{path: args.message, op: regex, value: "^hi"}]}',
  '  get-sum: {limits: [{counter: sums, window: hour, max: 2}]}',
]);
const config = write('toolwarden.yaml', [
  'listen: 127.0.0.1:0', `state: sqlite:${path.join(tmp, 'state.db')}`, 'shutdown_timeout: 2s',
  'audit: {redact: [args.b]}', 'servers:',
  '  everything:', '    command: node', `    args: [${JSON.stringify(EVERYTHING)}, stdio]`,
  '    policy: everything.yaml', '    policy_shadow: next.yaml',
]);

describe('policy lifecycle', () => {
  let gw;
  let agent;
  before(async () => {
    gw = await startServe(config);
    const grant = cli('grants', 'create', 'ci', '-c', config, '--json');
    assert.equal(grant.status, 0, grant.stderr);
    agent = new Client({ name: 'lifecycle', version: '1' });
    await agent.connect(new StreamableHTTPClientTransport(new URL(`${gw.base}/mcp/everything`), {
      requestInit: { headers: { Authorization: `Bearer ${JSON.parse(grant.stdout).token}` } },
    }));
    await agent.listTools();
  });
  after(async () => {
    await agent?.close().catch(() => {});
    await stop(gw?.proc);
  });

  it('records what the shadow policy would decide, and the agent never sees it', async () => {
    assert.equal(text(await agent.callTool({ name: 'echo', arguments: { message: 'hi there' } })), 'Echo: hi there');
    assert.equal(text(await agent.callTool({ name: 'echo', arguments: { message: 'rm -rf /' } })), 'Echo: rm -rf /');
    for (let i = 0; i < 3; i++) {
      const sum = await agent.callTool({ name: 'get-sum', arguments: { a: i, b: 1 } });
      assert.notEqual(sum.isError, true, 'the shadow limit never denies');
    }
    const records = audit('-c', config, '--grant', 'ci');
    const echoes = records.filter((r) => r.tool === 'echo');
    assert.deepEqual(echoes.map((r) => [r.decision, r.shadow.decision, r.shadow.rule]).sort(), [
      ['allow', 'allow', 'tools.echo'],
      ['allow', 'deny', 'tools.echo.require[0]'],
    ]);
    const sums = records.filter((r) => r.tool === 'get-sum').sort((a, b) => a.ts_ms - b.ts_ms);
    assert.deepEqual(sums.map((r) => r.shadow.decision), ['allow', 'allow', 'deny']);
    assert.match(sums[2].shadow.reason, /Rate limit "sums" reached/);
    // Argument values are kept for replay; the configured path redacted.
    assert.deepEqual(sums[0].args, { a: 0, b: '[redacted]' });
    assert.match(sums[0].class, /^Read\//);
    const metrics = await (await fetch(`${gw.base}/metrics`)).text();
    assert.match(metrics, /toolwarden_shadow_decisions_total\{server="everything",tool="echo",decision="deny"\} 1/);
    assert.match(metrics, /toolwarden_shadow_decisions_total\{server="everything",tool="get-sum",decision="deny"\} 1/);
    assert.match(metrics, /toolwarden_tool_calls_total\{server="everything",tool="echo",decision="allow"\} 2/);
  });

  it('decides by class selectors, with the classifier that scan uses', async () => {
    const r = await agent.callTool({ name: 'trigger-long-running-operation', arguments: { duration: 1, steps: 1 } });
    assert.equal(r.isError, true);
    assert.equal(text(r), `${DENY_PREFIX}no Execute tools here`);
    assert.equal(r._meta['toolwarden/decision'].rule, 'classes.Execute');
    const explained = cli('explain', '-p', path.join(tmp, 'everything.yaml'), '--tool', 'trigger-long-running-operation',
      '--class', 'Execute/Critical', '--json');
    assert.equal(explained.status, 0, explained.stderr);
    assert.deepEqual((({ decision, rule, selector }) => ({ decision, rule, selector }))(JSON.parse(explained.stdout)),
                     { decision: 'deny', rule: 'classes.Execute', selector: 'class' });
    const [rec] = audit('-c', config, '--tool', 'trigger-long-running-operation');
    assert.deepEqual([rec.class, rec.classifier], ['Execute/Critical', '1']);
    // Policy tests name the class a case's tool has, as scan shows it.
    const cases = write('everything.cases.yaml', [
      'cases:', '  - {tool: trigger-long-running-operation, class: Execute/Critical, expect: deny, rule: classes.Execute}',
      '  - {tool: echo, class: Read/Low, arguments: {message: hi}, expect: allow, rule: default}',
    ]);
    const passed = cli('test', path.join(tmp, 'everything.yaml'), cases);
    assert.equal(passed.status, 0, passed.stdout + passed.stderr);
    const badCases = write('bad.cases.yaml', ['cases:', '  - {tool: x, class: Dangerous, expect: deny}']);
    const refused = cli('test', path.join(tmp, 'everything.yaml'), badCases);
    assert.equal(refused.status, 1);
    assert.match(refused.stdout + refused.stderr, /bad\.cases\.yaml:2:\d+: cases\[0\]\.class must be a category/);
  });

  it('replays a candidate over the recorded calls, with a JSON report for CI', () => {
    const candidate = write('stricter.yaml', [
      'version: "1"', 'default: allow', 'tools:', '  get-env: {action: deny}',
      '  get-sum: {limits: [{counter: sums, window: hour, max: 1}]}',
      '  echo: {deny_if: [{path: args.message, op: contains, value: "rm -rf"}]}',
      'classes:', '  Execute: {action: deny}',
    ]);
    const r = cli('replay', '--policy', candidate, '-c', config, '--since', '1h', '--json');
    assert.equal(r.status, 0, r.stderr);
    const report = JSON.parse(r.stdout);
    assert.equal(report.server, 'everything');
    assert.equal(report.changed.newly_denied, 3, JSON.stringify(report.changes));
    const by = Object.fromEntries(report.changes.map((c) => [c.tool, c]));
    assert.equal(by['get-sum'].calls, 2);
    assert.equal(by['get-sum'].rule, 'tools.get-sum.limits[0]');
    assert.equal(by.echo.rule, 'tools.echo.deny_if[0]');
    assert.equal(by.echo.examples[0].grant, 'ci');
    assert.equal(report.changed.newly_allowed, 0);
    // The gate CI uses.
    assert.equal(cli('replay', '--policy', candidate, '-c', config, '--fail-on-change').status, 1);
    const table = cli('replay', '--policy', candidate, '-c', config);
    assert.match(table.stdout, /What would change:\nCALLS +TOOL +CHANGE +RULE/);
    assert.match(table.stdout, /^2 +get-sum +newly_denied +tools\.get-sum\.limits\[0\]/m);
  });

  it('says what replay cannot decide, and refuses what it cannot read', () => {
    const reads = write('reads-b.yaml', [
      'version: "1"', 'default: allow', 'tools:', '  get-sum: {deny_if: [{path: args.b, op: gt, value: 5}]}',
    ]);
    const r = JSON.parse(cli('replay', '--policy', reads, '-c', config, '--json').stdout);
    assert.equal(r.undecidable, 3);
    assert.deepEqual(r.undecidable_tools, [{ tool: 'get-sum', calls: 3, why: 'the policy reads args.b, which the audit keeps redacted' }]);
    const bad = write('bad.yaml', ['version: "1"', 'default: maybe']);
    const invalid = cli('replay', '--policy', bad, '-c', config);
    assert.equal(invalid.status, 1);
    assert.match(invalid.stderr, /bad\.yaml:2:10: default must be "allow" or "deny"/);
    const since = cli('replay', '--policy', reads, '-c', config, '--since', 'last week');
    assert.equal(since.status, 2);
    assert.match(since.stderr, /is not a duration/);
  });

  it('runs a shadow beside a local wrapper too (run --policy-shadow), and mode: shadow parts', async () => {
    const state = `sqlite:${path.join(tmp, 'run.db')}`;
    const parts = write('parts.yaml', [
      'version: "1"', 'default: allow', 'tools:', '  echo: {action: deny, mode: shadow, reason: "echo is going away"}',
    ]);
    const client = new Client({ name: 'lifecycle-run', version: '1' });
    await client.connect(new StdioClientTransport({
      command: TOOLWARDEN,
      args: ['run', '-p', parts, '--state', state, '--', process.execPath, EVERYTHING, 'stdio'],
      stderr: 'ignore',
    }));
    assert.equal(text(await client.callTool({ name: 'echo', arguments: { message: 'a' } })), 'Echo: a');
    await client.close();
    const [rec] = audit('--state', state);
    assert.deepEqual([rec.decision, rec.shadow.decision, rec.shadow.reason], ['allow', 'deny', 'echo is going away']);

    const client2 = new Client({ name: 'lifecycle-run', version: '1' });
    await client2.connect(new StdioClientTransport({
      command: TOOLWARDEN,
      args: ['run', '-p', path.join(tmp, 'everything.yaml'), '--policy-shadow', path.join(tmp, 'next.yaml'),
        '--state', state, '--', process.execPath, EVERYTHING, 'stdio'],
      stderr: 'ignore',
    }));
    assert.equal(text(await client2.callTool({ name: 'echo', arguments: { message: 'bye' } })), 'Echo: bye');
    await client2.close();
    const [latest] = audit('--state', state);
    assert.deepEqual([latest.decision, latest.shadow.rule], ['allow', 'tools.echo.require[0]']);
  });

  it('refuses a shadow-only file where the deciding policy belongs', () => {
    const wrong = write('wrong.yaml', [
      `state: sqlite:${path.join(tmp, 'w.db')}`, 'listen: 127.0.0.1:0', 'servers:',
      '  everything:', '    command: node', `    args: [${JSON.stringify(EVERYTHING)}, stdio]`, '    policy: next.yaml',
    ]);
    const r = spawnSync(TOOLWARDEN, ['serve', '-c', wrong], { encoding: 'utf8', timeout: 20000 });
    assert.notEqual(r.status, 0);
    assert.match(r.stderr, /next\.yaml says mode: shadow, a candidate that decides nothing; name it under policy_shadow/);
  });
});
