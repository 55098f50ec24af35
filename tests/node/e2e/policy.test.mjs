// The policy language end to end: the seed policy's rate limit in front of a real server,
// counters that survive a restart (SQLite), spend caps, hot reload (file and SIGHUP, a broken
// file keeping the old policy), validate on Intercept's own files, and explain.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

import { newClient } from './everything-suite.mjs';
import { DENY_PREFIX, EVERYTHING, ROOT, TOOLWARDEN, eventually } from './helpers.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-policy-'));
// Every client this file opens is closed at the end, whatever failed: a gateway left running
// would keep the test runner waiting.
const clients = [];
after(async () => {
  await Promise.all(clients.map((c) => c.close().catch(() => {})));
  fs.rmSync(tmp, { recursive: true, force: true });
});
const text = (r) => r.content.map((c) => c.text).join('');

async function connect(policyFile, extra = []) {
  const client = newClient();
  const transport = new StdioClientTransport({
    command: TOOLWARDEN,
    args: ['run', '-p', policyFile, ...extra, '--', process.execPath, EVERYTHING, 'stdio'],
    stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr.on('data', (c) => { stderr += c.toString(); });
  try {
    await client.connect(transport);
  } catch (e) {
    throw new Error(`${e.message}; toolwarden said:\n${stderr}`);
  }
  clients.push(client);
  return { client, transport, stderr: () => stderr };
}

// The seed policy, with server-everything's `echo` standing in for Treasure Data's retry_session.
const seed = (tool) => JSON.stringify({
  version: '1', default: 'deny',
  tools: { [tool]: { limits: [{ counter: `${tool}_rate`, window: 'minute', max: 10, scope: 'grant' }] } },
});

// Runs `fn` so that it starts and ends within one UTC minute: when a run straddles a minute
// boundary (the limit's window rolled over mid-test), whatever it concluded is discarded and
// it runs again, once.
async function withinOneMinute(fn) {
  for (let attempt = 0; attempt < 2; attempt++) {
    const start = Math.floor(Date.now() / 60000);
    try {
      const result = await fn();
      if (Math.floor(Date.now() / 60000) === start) return result;
    } catch (e) {
      if (Math.floor(Date.now() / 60000) === start) throw e;
    }
  }
  throw new Error('straddled a minute boundary twice');
}

describe('the seed policy in front of a real server', () => {
  it('passes 10 calls a minute, denies the 11th with a readable reason, denies unlisted tools', async () => {
    const file = path.join(tmp, 'seed.json');
    fs.writeFileSync(file, seed('echo'));
    let attempt = 0;
    await withinOneMinute(async () => {
      // A fresh database per attempt (a retry must not share files with gateways still open).
      const state = `sqlite:${path.join(tmp, `seed-${++attempt}.db`)}`;
      const { client } = await connect(file, ['--state', state]);
      for (let i = 1; i <= 10; i++) {
        const r = await client.callTool({ name: 'echo', arguments: { message: `call ${i}` } });
        assert.equal(text(r), `Echo: call ${i}`);
      }
      const eleventh = await client.callTool({ name: 'echo', arguments: { message: 'call 11' } });
      assert.equal(eleventh.isError, true);
      assert.match(text(eleventh), /^\[POLICY DENIED\] Rate limit "echo_rate" reached: at most 10 calls per minute per grant\. Resets in (\d+ s|1 min)\.$/);
      const meta = eleventh._meta['toolwarden/decision'];
      assert.equal(meta.rule, 'tools.echo.limits[0]');
      assert.ok(meta.retry_after_s >= 1 && meta.retry_after_s <= 60);
      const unlisted = await client.callTool({ name: 'get-sum', arguments: { a: 1, b: 2 } });
      assert.equal(unlisted._meta['toolwarden/decision'].rule, 'default');
      await client.close();

      // A restart does not reset the quota: the counters are in the SQLite file.
      const again = await connect(file, ['--state', state]);
      const afterRestart = await again.client.callTool({ name: 'echo', arguments: { message: 'x' } });
      assert.equal(afterRestart.isError, true);
      assert.match(text(afterRestart), /Rate limit "echo_rate" reached/);
      await again.client.close();
    });
  });

  it('counts calls that fail upstream (a retry loop must still hit the limit)', async () => {
    const file = path.join(tmp, 'failing.json');
    // get-resource-reference fails for resource id -1 (its schema takes any number, the server
    // only positive ones): every call is an error upstream.
    fs.writeFileSync(file, JSON.stringify({
      version: '1', default: 'deny',
      tools: { 'get-resource-reference': { limits: [{ counter: 'r', window: 'hour', max: 3 }] } },
    }));
    const { client } = await connect(file, ['--state', 'memory']);
    for (let i = 0; i < 3; i++) {
      const r = await client.callTool({ name: 'get-resource-reference', arguments: { resourceType: 'Text', resourceId: -1 } })
        .catch((e) => ({ rejected: e }));
      assert.ok(r.rejected || r.isError, 'the upstream call fails');
      assert.ok(!JSON.stringify(r).includes('POLICY DENIED'), `call ${i} was forwarded`);
    }
    const fourth = await client.callTool({ name: 'get-resource-reference', arguments: { resourceType: 'Text', resourceId: -1 } });
    assert.match(text(fourth), /POLICY DENIED\] Rate limit "r" reached/);
    await client.close();
  });
});

describe('hot reload', () => {
  it('applies a valid edit to the next call, keeps the old policy on a broken one, and reloads on SIGHUP', async () => {
    const file = path.join(tmp, 'live.yaml');
    fs.writeFileSync(file, 'version: "1"\ndefault: allow\n');
    const { client, transport, stderr } = await connect(file, ['--state', 'memory']);
    assert.equal(text(await client.callTool({ name: 'echo', arguments: { message: 'a' } })), 'Echo: a');

    // An editor-style save: write a temporary file, rename it over the policy.
    fs.writeFileSync(`${file}.tmp`, 'version: "1"\ndefault: allow\ntools:\n  echo:\n    action: deny\n    reason: echo is off now\n');
    fs.renameSync(`${file}.tmp`, file);
    await eventually(async () => {
      const r = await client.callTool({ name: 'echo', arguments: { message: 'b' } });
      return text(r) === `${DENY_PREFIX}echo is off now`;
    }, 10000, 'the reloaded policy');

    // A broken file is refused with its position; the last good policy stays.
    fs.writeFileSync(file, 'version: "1"\ndefault: allow\ntools:\n  echo:\n    action: maybe\n');
    await eventually(() => /live\.yaml:5:13: tools\.echo\.action must be/.test(stderr()), 10000, 'the refusal in the log');
    assert.equal(text(await client.callTool({ name: 'echo', arguments: { message: 'c' } })), `${DENY_PREFIX}echo is off now`);

    // Putting the file back as it was (the policy in force) is said to be fine again.
    fs.writeFileSync(file, 'version: "1"\ndefault: allow\ntools:\n  echo:\n    action: deny\n    reason: echo is off now\n');
    await eventually(() => /live\.yaml is valid again/.test(stderr()), 10000, 'the recovery in the log');

    // SIGHUP reloads too (here: a fixed file).
    fs.writeFileSync(file, 'version: "1"\ndefault: allow\n');
    process.kill(transport.pid, 'SIGHUP');
    await eventually(async () => text(await client.callTool({ name: 'echo', arguments: { message: 'd' } })) === 'Echo: d',
      10000, 'the SIGHUP reload');
    await client.close();
  });
});

describe('validate and explain', () => {
  // The project's own Intercept-format fixtures, always; Intercept's published files beside the
  // repository (TW_COMPAT_DIR, default ../shared/compat) as an extra, skipped visibly without.
  const fixtures = path.join(ROOT, 'src', 'policy', 'testdata', 'intercept');
  const compat = path.join(process.env.TW_COMPAT_DIR ?? path.resolve(ROOT, '..', 'shared', 'compat'), 'intercept-policies');

  it('validates Intercept-format policies and reports every problem of a bad one with its position', () => {
    const ok = spawnSync(TOOLWARDEN, ['validate', path.join(fixtures, 'payouts.yaml'), path.join(fixtures, 'default_deny.yaml')]);
    assert.equal(ok.status, 0, ok.stdout.toString());
    assert.equal(ok.stdout.toString().trim().split('\n').length, 2);
    const bad = spawnSync(TOOLWARDEN, ['validate', path.join(fixtures, 'invalid_schema.yaml')]);
    assert.equal(bad.status, 1);
    assert.match(bad.stdout.toString(), /invalid_schema\.yaml:62:21: rate_limit cannot be used with action "deny"/);
    assert.equal(bad.stdout.toString().trim().split('\n').length, 14);
  });

  it("validates every published Intercept policy and rejects Intercept's invalid fixtures",
    { skip: !fs.existsSync(compat) && `Intercept's policy files are not at ${compat} (set TW_COMPAT_DIR)` }, () => {
    const files = fs.readdirSync(compat).filter((f) => f.endsWith('.yaml') && !f.startsWith('testdata-invalid'))
      .map((f) => path.join(compat, f));
    assert.ok(files.length >= 40);
    const ok = spawnSync(TOOLWARDEN, ['validate', ...files]);
    assert.equal(ok.status, 0, ok.stdout.toString());
    assert.equal(ok.stdout.toString().trim().split('\n').length, files.length);
    const bad = spawnSync(TOOLWARDEN, ['validate', path.join(compat, 'testdata-invalid_schema.yaml')]);
    assert.equal(bad.status, 1);
    assert.match(bad.stdout.toString(), /testdata-invalid_schema\.yaml:\d+:\d+: rate_limit cannot be used with action "deny"/);
  });

  it('explains a decision and the rule that made it', () => {
    const file = path.join(tmp, 'explain.json');
    fs.writeFileSync(file, JSON.stringify({
      version: '1', default: 'deny',
      tools: {
        create_refund: {
          deny_if: [{ path: 'args.amount', op: 'gt', value: 10000 }],
          limits: [{ counter: 'refund_total', window: 'day', max: 100000, increment_from: 'args.amount' }],
        },
      },
    }));
    const deny = spawnSync(TOOLWARDEN, ['explain', '-p', file, '--tool', 'create_refund', '--args', '{"amount": 20000}', '--state', 'memory']);
    assert.equal(deny.status, 0);
    assert.match(deny.stdout.toString(), /decision: deny\nrule: +tools\.create_refund\.deny_if\[0\]\nreason: +denied because args\.amount gt 10000/);
    const allow = spawnSync(TOOLWARDEN, ['explain', '-p', file, '--tool', 'create_refund', '--args', '{"amount": 500}', '--state', 'memory']);
    assert.match(allow.stdout.toString(), /limit: +tools\.create_refund\.limits\[0\]: counter "refund_total" \+500, at most 100000 per day \(grant local\), used 0 so far\ndecision: allow/);
    const asJson = spawnSync(TOOLWARDEN, ['explain', '-p', file, '--tool', 'create_refund', '--args', '{"amount": 500}',
      '--state', 'memory', '--json'], { encoding: 'utf8' });
    assert.deepEqual(JSON.parse(asJson.stdout), {
      tool: 'create_refund', decision: 'allow', rule: 'tools.create_refund', selector: 'exact',
      limits: [{ rule: 'tools.create_refund.limits[0]', counter: 'refund_total', amount: 500, max: 100000,
        window: 'day', scope: 'grant', used: 0 }],
    });
    const deniedJson = JSON.parse(spawnSync(TOOLWARDEN, ['explain', '-p', file, '--tool', 'create_refund', '--args',
      '{"amount": 20000}', '--state', 'memory', '--json'], { encoding: 'utf8' }).stdout);
    assert.equal(deniedJson.decision, 'deny');
    assert.match(deniedJson.reason, /args\.amount gt 10000/);
    const badArgs = spawnSync(TOOLWARDEN, ['explain', '-p', file, '--tool', 'x', '--args', '[1]']);
    assert.equal(badArgs.status, 2);
  });
});

describe('toolwarden test: a policy\'s expected decisions', () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-policytest-'));
  after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const policyFile = path.join(dir, 'stripe.yaml');
  fs.writeFileSync(policyFile, [
    'version: "1"', 'default: deny', 'hide: [export_all]', 'tools:',
    '  create_refund:', '    deny_if:', '      - {path: args.amount, op: gt, value: 10000}',
    '    reason: Refunds over 10000 need finance',
    '  search:', '    limits: [{counter: searches, window: minute, max: 3, scope: grant}]',
    '  delete_customer: {action: require_approval}', '',
  ].join('\n'));
  const cases = (body) => {
    const f = path.join(dir, `cases-${Math.random().toString(16).slice(2)}.yaml`);
    fs.writeFileSync(f, body);
    return f;
  };
  const tw = (...args) => spawnSync(TOOLWARDEN, args, { encoding: 'utf8' });
  const passing = cases(`cases:
  - name: small refunds go through
    tool: create_refund
    arguments: {amount: 500}
    expect: allow
  - name: large refunds need finance
    tool: create_refund
    arguments: {amount: 20000}
    expect: deny
    rule: tools.create_refund.deny_if[0]
    reason: need finance
  - name: the fourth search in a minute is refused
    tool: search
    before: [{tool: search, times: 3}]
    expect: deny
  - name: a minute later it is allowed again
    tool: search
    before: [{tool: search, times: 3}]
    wait: 61s
    expect: allow
  - name: another grant has its own searches
    tool: search
    grant: laptop
    before: [{tool: search, times: 3, grant: ci}]
    expect: allow
  - {name: deleting waits for a human, tool: delete_customer, expect: approval}
  - {name: hidden tools are denied, tool: export_all, expect: deny, rule: hide}
  - {name: unlisted tools are denied, tool: drop_database, expect: deny, rule: default}
`);

  it('passes when every decision is the expected one, with a table, JSON and JUnit', () => {
    const junit = path.join(dir, 'report.xml');
    const r = tw('test', policyFile, passing, '--junit', junit);
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /PASS {2}the fourth search in a minute is refused +deny +tools\.search/);
    assert.match(r.stdout, /8 cases: 8 passed, 0 failed/);
    const xml = fs.readFileSync(junit, 'utf8');
    assert.match(xml, /<testsuite name="[^"]*stripe\.yaml" tests="8" failures="0">/);
    const j = JSON.parse(tw('test', policyFile, passing, '--json').stdout);
    assert.equal(j.passed, 8);
    assert.equal(j.cases.find((c) => c.name === 'deleting waits for a human').decision, 'approval');
  });

  it('fails (exit 1) on a mismatch, saying what was expected and what the policy decided', () => {
    const failing = cases(`cases:
  - {name: big refund, tool: create_refund, arguments: {amount: 20000}, expect: allow}
  - {name: wrong rule, tool: create_refund, arguments: {amount: 20000}, expect: deny, rule: default}
  - {name: fine, tool: search, expect: allow}
`);
    const junit = path.join(dir, 'failing.xml');
    const r = tw('test', policyFile, failing, '--junit', junit);
    assert.equal(r.status, 1);
    assert.match(r.stdout, /FAIL {2}big refund +expected allow, got deny/);
    assert.match(r.stdout, /FAIL {2}wrong rule +expected rule default, got tools\.create_refund\.deny_if\[0\]/);
    assert.match(r.stdout, /3 cases: 1 passed, 2 failed/);
    assert.match(fs.readFileSync(junit, 'utf8'), /<testsuite [^>]*tests="3" failures="2">[\s\S]*<failure message="expected allow, got deny">/);
  });

  it('points at the line of a bad case file', () => {
    const bad = cases(`cases:
  - name: typo
    tool: search
    expect: alow
  - name: no tool
    expect: allow
    argumnets: {}
`);
    const r = tw('test', policyFile, bad);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /:4:13: cases\[0\]\.expect must be one of "allow", "deny", "approval" \(did you mean "allow"\?\)/);
    assert.match(r.stderr, /:7:5: cases\[1\]: unknown key "argumnets" \(did you mean "arguments"\?\)/);
    assert.match(r.stderr, /cases\[1\] needs a tool/);
  });
});
