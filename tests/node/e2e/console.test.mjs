// The web console (/ui/) in a real browser — Debian's chromium driven by playwright-core —
// against a real `toolwarden serve` with real upstreams (server-everything and the rug-pull
// fixture), and the official SDK client as the agent: log in, see servers and a changed tool,
// build a policy by clicking and dragging, save it, and prove the agent sees exactly that;
// approve a held call from the page; find calls in the audit view; create and revoke grants.
// Also the cookie and CSRF rules at the HTTP level. Screenshots go to artifacts/console/.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { fileURLToPath } from 'node:url';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { chromium } from 'playwright-core';

import { EVERYTHING, FIXTURES, NODE_MODULES, TOOLWARDEN, eventually, startServe, stop } from './helpers.mjs';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const ARTIFACTS = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', 'artifacts', 'console');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-console-'));
const config = path.join(tmp, 'toolwarden.yaml');
const policyFile = path.join(tmp, 'everything.yaml');
fs.writeFileSync(policyFile, [
  '# Policy for server-everything (kept in git)', 'version: "1"', 'default: allow', 'tools:',
  '  get-annotated-message: {action: deny, reason: not needed}', '',
].join('\n'));
fs.writeFileSync(path.join(tmp, 'rugpull.yaml'), 'version: "1"\ndefault: allow\n');
// A policy in Intercept's format: shown read-only by the builder, explained all the same.
fs.writeFileSync(path.join(tmp, 'legacy.yaml'), [
  'version: "1"', 'description: "an Intercept policy"', 'default: allow', 'tools:', '  echo:', '    rules:',
  '      - name: "echo rate"', '        rate_limit: 5/minute', '',
].join('\n'));
fs.writeFileSync(config, [
  'listen: 127.0.0.1:0', `state: sqlite:${path.join(tmp, 'state.db')}`, 'shutdown_timeout: 2s', 'servers:',
  '  everything:', '    command: node', `    args: [${JSON.stringify(EVERYTHING)}, stdio]`, '    policy: everything.yaml',
  '  rugpull:', '    command: node', `    args: [${JSON.stringify(path.join(FIXTURES, 'rugpull-server.mjs'))}]`,
  '    policy: rugpull.yaml',
  '  legacy:', '    command: node', `    args: [${JSON.stringify(path.join(FIXTURES, 'rugpull-server.mjs'))}]`,
  '    policy: legacy.yaml', '',
].join('\n'));

const createGrant = (name, cfg = config) => {
  const r = spawnSync(TOOLWARDEN, ['grants', 'create', name, '-c', cfg, '--json'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout).token;
};
const text = (r) => r.content.map((c) => c.text ?? '').join('');

describe('web console', () => {
  let gw;
  let browser;
  let page;
  const clients = [];
  const pageErrors = [];
  const connect = async (token, endpoint) => {
    const client = new Client({ name: 'console-e2e', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${gw.base}${endpoint}`), {
      requestInit: { headers: { Authorization: `Bearer ${token}` } },
    }));
    clients.push(client);
    return client;
  };
  const shot = async (name) => {
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    await page.screenshot({ path: path.join(ARTIFACTS, `${name}.png`), fullPage: true });
  };
  // Opens a page of the console afresh (a reload when it is the page already shown).
  const go = async (hash, heading) => {
    const url = `${gw.base}/ui/${hash}`;
    if (page.url() === url) await page.reload();
    else await page.goto(url);
    await page.getByRole('heading', { level: 1, name: heading }).waitFor();
  };

  before(async () => {
    gw = await startServe(config);
    browser = await chromium.launch({
      executablePath: CHROMIUM,
      headless: true,
      args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
             '--disable-sync', '--no-first-run', '--disable-quic'],
    });
    const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
    page = await context.newPage();
    page.on('pageerror', (e) => pageErrors.push(e.message));
    page.on('console', (m) => { if (m.type() === 'error' && !/401|Failed to load resource/.test(m.text())) pageErrors.push(m.text()); });
  });
  after(async () => {
    for (const c of clients) await c.close().catch(() => {});
    await browser?.close();
    await stop(gw?.proc);
  });

  it('logs in with the admin token (and refuses anything else)', async () => {
    await page.goto(`${gw.base}/`);  // / leads to the console
    await page.getByLabel('Admin token').fill('twa_not-the-token');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('alert').filter({ hasText: 'not the admin token' }).waitFor();
    await shot('login');
    await page.getByLabel('Admin token').fill(gw.adminToken);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { level: 1, name: 'Servers & tools' }).waitFor();
    const cookies = await page.context().cookies();
    const cookie = cookies.find((c) => c.name === '__Host-tw_console');
    assert.ok(cookie, 'the session cookie is set');
    assert.equal(cookie.httpOnly, true);
    assert.equal(cookie.secure, true);
    assert.equal(cookie.sameSite, 'Strict');
    assert.equal(await page.evaluate(() => document.cookie), '', 'the page cannot read its session cookie');
  });

  it('shows every server with its health and a changed tool with its diff, and accepts it', async () => {
    const agent = createGrant('pinner');
    const rug = await connect(agent, '/mcp/rugpull');
    await rug.listTools();
    const ev = await connect(agent, '/mcp/everything');
    await ev.listTools();  // the gateway pins (and so inventories) the tools it has seen
    await rug.callTool({ name: 'mutate', arguments: { kind: 'description' } });
    await eventually(async () => {
      await rug.listTools();
      const r = await fetch(`${gw.base}/api/servers/rugpull/tools`, { headers: { Authorization: `Bearer ${gw.adminToken}` } });
      return (await r.json()).tools.some((t) => t.changed);
    }, 10000, 'the changed definition is seen');

    await go('#/servers', 'Servers & tools');
    const servers = page.locator('table.data').first();
    await servers.getByRole('row', { name: /everything/ }).getByText('up').waitFor();
    const rugTools = page.getByRole('region', { name: 'Tools of rugpull' });
    const changed = rugTools.getByRole('row', { name: /echo/ });
    await changed.getByText(/^changed/).waitFor();
    const evTools = page.getByRole('region', { name: 'Tools of everything' });
    await evTools.getByRole('row', { name: /get-annotated-message/ }).getByText('deny', { exact: true }).waitFor();
    await changed.getByRole('button', { name: 'Diff' }).click();
    const dlg = page.getByRole('dialog');
    await dlg.locator('pre.diff .add').filter({ hasText: 'id_rsa' }).waitFor();
    await shot('servers-diff');
    await dlg.getByRole('button', { name: 'Accept new definition' }).click();
    await rugTools.getByRole('row', { name: /echo/ }).getByText(/^pinned/).waitFor();
    await shot('servers');
  });

  it('builds a policy visually, saves it, and the agent sees exactly that', async () => {
    await go('#/policy/everything', 'Policy builder');
    const board = page.getByRole('list', { name: 'Tools by decision' });
    await board.waitFor();
    // Deny get-env and require approval for get-sum with the card's control (keyboard path).
    await page.getByLabel('Decision for get-env').selectOption('deny');
    await page.locator('.tool-card[data-name="get-env"]').getByLabel('Reason').fill('environment stays private');
    await page.getByLabel('Decision for get-sum').selectOption('approval');
    await page.locator('.tool-card[data-name="get-sum"]').getByLabel('Timeout').fill('2m');
    // Rate-limit echo to 2 a minute: drag its card to the column, then set the count.
    await page.locator('.tool-card[data-name="echo"]').dragTo(page.locator('section.col-rate'));
    const echoCard = page.locator('section.col-rate .tool-card[data-name="echo"]');
    await echoCard.waitFor();
    await echoCard.getByLabel('Calls').fill('2');
    await echoCard.getByLabel('per').selectOption('minute');
    // Hide get-tiny-image by dragging it too.
    await page.locator('.tool-card[data-name="get-tiny-image"]').dragTo(page.locator('section.col-hide'));
    await page.locator('section.col-hide .tool-card[data-name="get-tiny-image"]').waitFor();

    const preview = page.getByLabel('Policy file preview');
    await eventually(async () => (await preview.textContent()).includes('max: 2'), 5000, 'the preview follows');
    await page.getByRole('status').filter({ hasText: '✓ Valid' }).waitFor();
    const previewText = await preview.textContent();
    assert.match(previewText, /hide:\n {2}- get-tiny-image\n/);
    assert.match(previewText, /get-env:\n {4}action: deny\n {4}reason: environment stays private\n/);
    await page.locator('.diffbox pre.diff .del').filter({ hasText: '# Policy for server-everything' }).waitFor();
    await page.getByLabel('show as JSON').check();
    const asJson = JSON.parse(await preview.textContent());
    assert.deepEqual(asJson.tools.echo.limits[0], { counter: 'echo_rate', window: 'minute', max: 2, scope: 'grant' });
    assert.deepEqual(asJson.hide, ['get-tiny-image']);
    await page.getByLabel('show as JSON').uncheck();

    // Explain the draft before saving: get-env is denied by its rule.
    await page.getByLabel('Tool', { exact: true }).fill('get-env');
    await page.getByRole('button', { name: 'Explain' }).click();
    await page.locator('.explain-result').getByText('tools.get-env').waitFor();
    await shot('policy-builder');

    await page.getByRole('button', { name: 'Save' }).click();
    const confirm = page.getByRole('dialog');
    await confirm.getByText('comments and formatting are not kept').waitFor();
    await confirm.getByRole('button', { name: 'Save and reload' }).click();
    await page.getByText(/in force now/).waitFor();
    const onDisk = fs.readFileSync(policyFile, 'utf8');
    assert.match(onDisk, /get-tiny-image/);
    assert.equal(spawnSync(TOOLWARDEN, ['validate', policyFile]).status, 0, 'the file on disk is valid');

    // The agent, through the gateway: exactly what was built.
    await go('#/live', 'Live decisions');
    const agent = await connect(createGrant('agent'), '/mcp/everything');
    const names = (await agent.listTools()).tools.map((t) => t.name);
    assert.ok(!names.includes('get-tiny-image'), 'hidden');
    assert.ok(names.includes('echo'));
    const env = await agent.callTool({ name: 'get-env', arguments: {} });
    assert.equal(env.isError, true);
    assert.match(text(env), /environment stays private/);
    for (let i = 0; i < 2; i++) {
      assert.equal(text(await agent.callTool({ name: 'echo', arguments: { message: `hi ${i}` } })), `Echo: hi ${i}`);
    }
    const third = await agent.callTool({ name: 'echo', arguments: { message: 'again' } });
    assert.equal(third.isError, true);
    assert.match(text(third), /Rate limit/);
    const hidden = await agent.callTool({ name: 'get-tiny-image', arguments: {} });
    assert.equal(hidden.isError, true);

    // The live view saw each of those decisions as they happened.
    const live = page.locator('#live-table tbody');
    await eventually(async () => (await live.locator('tr').count()) >= 5, 10000, 'five live rows');
    await live.locator('tr', { hasText: 'get-env' }).getByText('deny', { exact: true }).first().waitFor();
    await live.locator('tr', { hasText: 'echo' }).getByText('ok').first().waitFor();
    await page.locator('#counters-table tr', { hasText: 'echo_rate' }).filter({ hasText: 'agent' }).getByRole('cell', { name: '0', exact: true }).first().waitFor();
    await page.getByLabel('allow').uncheck();
    assert.equal(await live.locator('tr[data-decision="allow"]:visible').count(), 0);
    await page.getByLabel('allow').check();
    await shot('live');

    // Held for approval: approved from the page, and the agent's call completes.
    let settled = false;
    const held = agent.callTool({ name: 'get-sum', arguments: { a: 2, b: 3 } }, undefined, { timeout: 60000 })
      .finally(() => { settled = true; });
    await page.locator('#approvals-badge').filter({ hasText: '1' }).waitFor();
    assert.match(await page.title(), /^\(1\) toolwarden/);
    await go('#/approvals', 'Approvals');
    const card = page.getByRole('article', { name: 'Approval for get-sum' });
    await card.locator('pre.args').filter({ hasText: '"a": 2' }).waitFor();
    await card.getByText(/left$/).waitFor();
    await shot('approvals');
    assert.equal(settled, false, 'the call waits for a human');
    await card.getByRole('button', { name: 'Approve' }).click();
    const sum = await held;
    assert.notEqual(sum.isError, true);
    assert.match(text(sum), /5/);
    await page.getByText('Nothing is waiting for approval.').waitFor();
  });

  it('refuses to save an invalid policy, or over a file changed on disk meanwhile', async () => {
    await go('#/policy/everything', 'Policy builder');
    await page.getByRole('button', { name: 'Custom rules for echo' }).click();
    const custom = page.getByRole('dialog');
    await custom.getByRole('button', { name: 'Add condition' }).click();
    await custom.getByLabel('Argument path').fill('args.message');
    await custom.getByLabel('Operator').selectOption('regex');
    await custom.getByLabel('Value (JSON or text)').fill('(unclosed');
    await custom.getByRole('button', { name: 'Apply' }).click();
    await page.locator('section.col-custom .tool-card[data-name="echo"]').waitFor();
    await page.locator('.problems .error').filter({ hasText: /^line \d+, column \d+: .*regex/ }).waitFor();
    const before = fs.readFileSync(policyFile, 'utf8');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Save and reload' }).click();
    await page.getByText('Not saved: the policy is not valid').waitFor();
    assert.equal(fs.readFileSync(policyFile, 'utf8'), before, 'nothing written');

    await page.getByRole('button', { name: 'Revert' }).click();
    const edited = `${before}# edited by hand meanwhile\n`;
    fs.writeFileSync(policyFile, edited);
    await page.getByLabel('Decision for get-resource-links').selectOption('deny');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.getByRole('dialog').getByRole('button', { name: 'Save and reload' }).click();
    await page.getByRole('dialog').getByText(/changed on disk since it was loaded/).waitFor();
    await shot('policy-conflict');
    await page.getByRole('dialog').getByRole('button', { name: 'Keep my edits' }).click();
    assert.equal(fs.readFileSync(policyFile, 'utf8'), edited, 'the hand edit survives');
  });

  it('shows a policy in Intercept\'s format read-only, and explains calls against it', async () => {
    await go('#/policy/legacy', 'Policy builder');
    await page.getByText("legacy.yaml is in Intercept's format").waitFor();
    assert.equal(await page.getByRole('list', { name: 'Tools by decision' }).count(), 0, 'no board to edit');
    assert.equal(await page.getByLabel('Tool', { exact: true }).inputValue(), 'echo');  // named by the policy
    await page.getByRole('button', { name: 'Explain' }).click();
    await page.locator('.explain-result').getByText(/echo rate/).waitFor();
    assert.match(await page.locator('.explain-result').textContent(), /Decision: allow/);
  });

  it('finds the calls in the audit view, pages, charts and exports them', async () => {
    await go('#/audit', 'Audit');
    await page.getByLabel('Tool').fill('get-env');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.getByRole('status').filter({ hasText: '1–1 of 1 records' }).waitFor();
    await page.locator('#audit-table tbody tr', { hasText: 'environment stays private' }).waitFor();
    await page.getByLabel('Tool').fill('');
    await page.getByLabel('Grant').fill('agent');
    await page.getByRole('button', { name: 'Search' }).click();
    // get-env, echo ×3, get-tiny-image, get-sum
    const summary = page.locator('.view > p[role="status"]');
    await eventually(async () => /^1–6 of 6 records$/.test(await summary.textContent()), 10000,
                     'six records of the grant "agent"');
    await page.locator('figure.chart svg rect.bar-deny').first().waitFor();
    const csvHref = await page.locator('#export-csv').getAttribute('href');
    const csv = await page.evaluate(async (href) => (await fetch(href)).text(), csvHref);
    assert.match(csv, /^id,time,grant,session,server,tool,decision/);
    assert.match(csv, /get-env,deny/);
    await shot('audit');
  });

  it('writes bulk actions as class selectors, tries a draft live and replays it over the audit', async () => {
    await go('#/policy/everything', 'Policy builder');
    await page.getByRole('list', { name: 'Tools by decision' }).waitFor();
    const preview = page.getByLabel('Policy file preview');
    // Every Execute tool to Require approval: one selector, not one entry per tool.
    await page.getByRole('group', { name: 'Bulk action' }).getByLabel('Set every').selectOption('c:Execute');
    await page.getByRole('group', { name: 'Bulk action' }).getByLabel('to').selectOption('approval');
    await page.getByRole('group', { name: 'Bulk action' }).getByRole('button', { name: 'Apply' }).click();
    await eventually(async () => /classes:\n {2}Execute:\n {4}action: require_approval\n/.test(await preview.textContent()),
                     5000, 'a class selector in the preview');
    assert.doesNotMatch(await preview.textContent(), /trigger-long-running-operation/);
    await page.locator('section.col-inherit .tool-card[data-name="trigger-long-running-operation"]')
      .getByText('by class Execute').waitFor();
    await page.getByRole('status').filter({ hasText: '✓ Valid' }).waitFor();
    await page.getByRole('button', { name: 'Revert' }).click();

    // A draft that denies get-resource-links, tried live: the agent is served as before, and
    // the audit records what the draft would have decided.
    await page.getByLabel('Decision for get-resource-links').selectOption('deny');
    await page.getByRole('button', { name: 'Try this draft live' }).click();
    await page.locator('#shadow-state').getByText(/is evaluated on every call/).waitFor();
    const agent = await connect(createGrant('shadowed'), '/mcp/everything');
    const links = await agent.callTool({ name: 'get-resource-links', arguments: { count: 1 } });
    assert.notEqual(links.isError, true, 'a shadow never decides');
    const recorded = spawnSync(TOOLWARDEN, ['audit', '-c', config, '--grant', 'shadowed', '--json'], { encoding: 'utf8' });
    const record = JSON.parse(recorded.stdout.trim().split('\n')[0]);
    assert.equal(record.decision, 'allow');
    assert.deepEqual({ decision: record.shadow.decision, rule: record.shadow.rule },
                     { decision: 'deny', rule: 'tools.get-resource-links' });
    // Replay the same draft over what was recorded: that call is one it would have denied.
    await page.getByRole('button', { name: 'Replay' }).click();
    const row = page.locator('#replay-table tr', { hasText: 'get-resource-links' });
    await row.getByText('newly denied').waitFor();
    await shot('policy-trial');
    await page.getByRole('button', { name: 'Stop trying' }).click();
    await page.locator('#shadow-state').getByText('No draft is being tried.').waitFor();
    await agent.callTool({ name: 'get-resource-links', arguments: { count: 1 } });
    const after = spawnSync(TOOLWARDEN, ['audit', '-c', config, '--grant', 'shadowed', '--json'], { encoding: 'utf8' });
    assert.equal(JSON.parse(after.stdout.trim().split('\n')[0]).shadow, undefined, 'withdrawn: no shadow');
    // The audit page shows the shadow's decision where it differed.
    await go('#/audit', 'Audit');
    await page.getByLabel('Grant').fill('shadowed');
    await page.getByRole('button', { name: 'Search' }).click();
    await page.locator('#audit-table tbody tr .shadow').getByText('deny').waitFor();
  });

  it('creates a grant with a ready client config, and a revoked grant gets 401', async () => {
    await go('#/grants', 'Grants');
    await page.getByLabel('Name').fill('laptop');
    await page.getByRole('checkbox', { name: 'everything' }).check();
    await page.getByRole('button', { name: 'Create grant' }).click();
    const token = (await page.locator('#new-token').textContent()).trim();
    assert.match(token, /^tw_[A-Za-z0-9]{43}$/);
    const cursor = JSON.parse(await page.locator('#snippet-cursor').textContent());
    assert.equal(cursor.mcpServers.toolwarden.url, `${gw.base}/mcp`);
    assert.equal(cursor.mcpServers.toolwarden.headers.Authorization, `Bearer ${token}`);
    assert.match(await page.locator('#snippet-claude').textContent(), /^claude mcp add --transport http toolwarden /);
    await shot('grants-created');
    // The token from the page works for an agent.
    const laptop = await connect(token, '/mcp');
    assert.ok((await laptop.listTools()).tools.some((t) => t.name === 'everything__echo'));

    // Revoke "agent" from the page: its next call is refused with 401.
    const agent = await connect(createGrant('doomed'), '/mcp/everything');
    await agent.listTools();
    await page.reload();
    await page.evaluate(() => window.scrollTo(0, document.body.scrollHeight));
    await page.getByRole('button', { name: 'Revoke doomed' }).click();
    // The modal's backdrop covers the whole window, scrolled or not: every corner is the
    // dialog's (nothing behind it can be clicked), and it is shaded.
    await page.getByRole('dialog').waitFor();
    const cover = await page.evaluate(() => {
      const dlg = document.querySelector('dialog.modal[open]');
      const w = window.innerWidth, h = window.innerHeight;
      const corners = [[1, 1], [w - 2, 1], [1, h - 2], [w - 2, h - 2]]
        .map(([x, y]) => document.elementFromPoint(x, y)?.closest('dialog') === dlg);
      return { corners, shade: getComputedStyle(dlg, '::backdrop').backgroundColor };
    });
    assert.deepEqual(cover.corners, [true, true, true, true]);
    assert.match(cover.shade, /^rgba\(16, 24, 40, 0\.5\)$/);
    await page.getByRole('dialog').getByRole('button', { name: 'Revoke' }).click();
    await page.locator('#grants-table tr[data-grant="doomed"]').getByText('revoked').waitFor();
    await assert.rejects(agent.listTools(), /401|Unauthorized/);
    await shot('grants');
  });

  it('keeps toasts to their page: capped, never twice, dismissible, gone when the user moves on', async () => {
    await go('#/grants', 'Grants');
    const toasts = () => page.locator('#toast .toast');
    await page.evaluate(async () => {
      const dom = await import('/ui/lib/dom.js');
      for (let i = 0; i < 6; i++) dom.toast(`Saving failed (${i})`, 'error');
      dom.toast('Saving failed (5)', 'error');
      dom.toast('A call is waiting for approval (1 pending)', 'warn', { global: true });
    });
    assert.equal(await toasts().count(), 3);  // never more than three over the page
    assert.equal(await page.locator('#toast .toast', { hasText: 'Saving failed (5)' }).count(), 1);
    await page.locator('#toast .toast', { hasText: 'Saving failed (5)' }).getByRole('button', { name: 'Dismiss' }).click();
    assert.equal(await toasts().count(), 2);
    await page.goto(`${gw.base}/ui/#/audit`);
    await page.getByRole('heading', { level: 1, name: 'Audit' }).waitFor();
    // The errors of the grants page went with it; the approval notice is the console's own.
    assert.deepEqual(await toasts().allInnerTexts(), ['A call is waiting for approval (1 pending)\n×']);
    const box = await page.locator('#toast').boundingBox();
    assert.ok(box.height < 120, `the toasts take ${box.height}px`);
  });

  it('meets WCAG 2 A/AA on every page (axe-core) and fits a laptop screen', async () => {
    const axe = fs.readFileSync(path.join(NODE_MODULES, 'axe-core/axe.min.js'), 'utf8');
    await page.setViewportSize({ width: 1280, height: 720 });
    const found = [];
    for (const [hash, heading] of [['#/servers', 'Servers & tools'], ['#/policy/everything', 'Policy builder'],
      ['#/live', 'Live decisions'], ['#/approvals', 'Approvals'], ['#/audit', 'Audit'], ['#/grants', 'Grants']]) {
      await go(hash, heading);
      await page.waitForLoadState('networkidle');
      await page.evaluate(axe);  // through the debugger protocol: the page's CSP stays on
      const violations = await page.evaluate(async () => (await window.axe.run(document, {
        runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa'] },
      })).violations.filter((v) => v.impact === 'serious' || v.impact === 'critical')
        .map((v) => `${v.id}: ${v.nodes.slice(0, 3).map((n) => n.target.join(' ')).join(', ')}`));
      found.push(...violations.map((v) => `${hash} ${v}`));
      const overflow = await page.evaluate(() => document.scrollingElement.scrollWidth - window.innerWidth);
      assert.ok(overflow <= 0, `${hash} is ${overflow}px wider than a 1280px screen`);
    }
    await page.setViewportSize({ width: 1440, height: 900 });
    assert.deepEqual(found, []);
  });

  it('logs out: the cookie stops working', async () => {
    const cookie = (await page.context().cookies()).find((c) => c.name === '__Host-tw_console');
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByLabel('Admin token').waitFor();
    const r = await fetch(`${gw.base}/api/servers`, { headers: { Cookie: `${cookie.name}=${cookie.value}` } });
    assert.equal(r.status, 401);
    assert.deepEqual(pageErrors, [], 'no script errors on any page');
  });
});

after(() => fs.rmSync(tmp, { recursive: true, force: true }));

describe('console cookie and CSRF rules (HTTP)', () => {
  let gw;
  before(async () => {
    // A gateway of its own (its own state store, so its admin token is printed at start).
    const own = path.join(tmp, 'http.yaml');
    fs.writeFileSync(own, fs.readFileSync(config, 'utf8').replace('state.db', 'http-state.db'));
    gw = await startServe(own);
  });
  after(async () => { await stop(gw?.proc); });

  const login = async () => {
    const r = await fetch(`${gw.base}/api/login`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ token: gw.adminToken }),
    });
    assert.equal(r.status, 200);
    const setCookie = r.headers.get('set-cookie');
    return { setCookie, cookie: setCookie.split(';')[0], csrf: (await r.json()).csrf };
  };

  it('serves the console with a strict content security policy, from the binary', async () => {
    const r = await fetch(`${gw.base}/ui/`);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /text\/html/);
    assert.match(r.headers.get('content-security-policy'), /default-src 'self'; script-src 'self';/);
    assert.equal(r.headers.get('x-frame-options'), 'DENY');
    const root = await fetch(`${gw.base}/`, { redirect: 'manual' });
    assert.equal(root.status, 302);
    assert.equal(root.headers.get('location'), '/ui/');
    const etag = (await fetch(`${gw.base}/ui/app.js`)).headers.get('etag');
    assert.equal((await fetch(`${gw.base}/ui/app.js`, { headers: { 'If-None-Match': etag } })).status, 304);
  });

  it('sets a __Host- cookie that is Secure, HttpOnly and SameSite=Strict, only for the admin token', async () => {
    const bad = await fetch(`${gw.base}/api/login`, {
      method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ token: 'twa_x' }),
    });
    assert.equal(bad.status, 401);
    assert.equal(bad.headers.get('set-cookie'), null);
    const form = await fetch(`${gw.base}/api/login`, {
      method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: `token=${gw.adminToken}`,
    });
    assert.equal(form.status, 415);
    const { setCookie } = await login();
    assert.match(setCookie, /^__Host-tw_console=[0-9a-f]{64}; Path=\/; Secure; HttpOnly; SameSite=Strict; Max-Age=\d+$/);
  });

  it('refuses a cookie-borne change without the CSRF token, from a foreign origin, or as a form', async () => {
    const { cookie, csrf } = await login();
    const post = (headers) => fetch(`${gw.base}/api/grants`, {
      method: 'POST', headers: { Cookie: cookie, 'Content-Type': 'application/json', ...headers },
      body: JSON.stringify({ name: 'csrf-test' }),
    });
    assert.equal((await fetch(`${gw.base}/api/grants`, { headers: { Cookie: cookie } })).status, 200);
    const noToken = await post({});
    assert.equal(noToken.status, 403);
    assert.equal((await noToken.json()).error.code, 'csrf');
    assert.equal((await post({ 'X-CSRF-Token': 'f'.repeat(64) })).status, 403);
    assert.equal((await post({ 'X-CSRF-Token': csrf, Origin: 'http://evil.example' })).status, 403);
    assert.equal((await post({ 'X-CSRF-Token': csrf, 'Content-Type': 'text/plain' })).status, 415);
    const list = await (await fetch(`${gw.base}/api/grants`, { headers: { Cookie: cookie } })).json();
    assert.ok(!list.grants.some((g) => g.name === 'csrf-test'), 'nothing was created');
    assert.equal((await post({ 'X-CSRF-Token': csrf })).status, 201);
    // Logging out ends the session on the server, not only in the browser.
    const out = await fetch(`${gw.base}/api/logout`, {
      method: 'POST', headers: { Cookie: cookie, 'Content-Type': 'application/json', 'X-CSRF-Token': csrf }, body: '{}',
    });
    assert.equal(out.status, 200);
    assert.match(out.headers.get('set-cookie'), /Max-Age=0/);
    assert.equal((await fetch(`${gw.base}/api/grants`, { headers: { Cookie: cookie } })).status, 401);
  });

  it('streams decisions to a logged-in console as server-sent events', async () => {
    const { cookie } = await login();
    const controller = new AbortController();
    const res = await fetch(`${gw.base}/api/events`, { headers: { Cookie: cookie }, signal: controller.signal });
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type'), /text\/event-stream/);
    const reader = res.body.getReader();
    const client = new Client({ name: 'sse-e2e', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${gw.base}/mcp/everything`), {
      requestInit: { headers: { Authorization: `Bearer ${createGrant('sse-agent', path.join(tmp, 'http.yaml'))}` } },
    }));
    await client.callTool({ name: 'get-annotated-message', arguments: { messageType: 'error' } }).catch(() => {});
    let seen = '';
    const deadline = Date.now() + 10000;
    while (!/event: decision\ndata: \{[^\n]*"tool":"get-annotated-message"[^\n]*"decision":"deny"/.test(seen)) {
      assert.ok(Date.now() < deadline, `no decision event in: ${seen}`);
      const { value, done } = await reader.read();
      if (done) break;
      seen += Buffer.from(value).toString();
    }
    controller.abort();
    await client.close();
    const anon = await fetch(`${gw.base}/api/events`);
    assert.equal(anon.status, 401);
  });
});
