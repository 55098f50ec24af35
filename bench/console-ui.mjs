// The web console with 1,000 tools, in Debian's chromium (playwright-core from tests/node):
// time until the Servers & tools page and the policy builder show every tool, how long a
// filter keystroke and a move between columns take. 5 runs each, median and spread.
//   node bench/console-ui.mjs [--tools 1000] [--runs 5]     (after `make` and `make test`'s npm install)
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const nm = path.join(root, 'tests/node/node_modules');
const { chromium } = await import(path.join(nm, 'playwright-core/index.mjs'));
const { Client } = await import(path.join(nm, '@modelcontextprotocol/sdk/dist/esm/client/index.js'));
const { StreamableHTTPClientTransport } = await import(path.join(nm, '@modelcontextprotocol/sdk/dist/esm/client/streamableHttp.js'));

const arg = (name, dflt) => { const i = process.argv.indexOf(name); return i > 0 ? Number(process.argv[i + 1]) : dflt; };
const TOOLS = arg('--tools', 1000), RUNS = arg('--runs', 5);
const build = process.env.BUILD_DIR ?? path.join(root, 'build');
const tw = path.join(build, 'toolwarden');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-console-bench-'));
fs.writeFileSync(path.join(tmp, 'fast.yaml'), 'version: "1"\ndefault: allow\n');
const config = path.join(tmp, 'toolwarden.yaml');
fs.writeFileSync(config, ['listen: 127.0.0.1:0', `state: sqlite:${path.join(tmp, 'state.db')}`, 'servers:', '  fast:',
  `    command: ${path.join(build, 'bench/fast_server')}`, `    args: [stdio, --tools, "${TOOLS}"]`, '    policy: fast.yaml', ''].join('\n'));

const gw = spawn(tw, ['serve', '-c', config], { stdio: ['ignore', 'ignore', 'pipe'] });
let err = '';
const base = await new Promise((resolve, reject) => {
  const timer = setTimeout(() => reject(new Error(`serve did not start: ${err}`)), 15000);
  gw.stderr.on('data', (d) => {
    err += d;
    const m = err.match(/listening on (http:\/\/127\.0\.0\.1:\d+)/);
    if (m) { clearTimeout(timer); resolve(m[1]); }
  });
});
const adminToken = err.match(/twa_[A-Za-z0-9]{43}/)[0];
const grant = JSON.parse(spawnSync(tw, ['grants', 'create', 'bench', '-c', config, '--json'], { encoding: 'utf8' }).stdout).token;
const client = new Client({ name: 'bench', version: '1' });
await client.connect(new StreamableHTTPClientTransport(new URL(`${base}/mcp/fast`), { requestInit: { headers: { Authorization: `Bearer ${grant}` } } }));
const listed = (await client.listTools()).tools.length;  // the gateway pins (inventories) them
await client.close();

const browser = await chromium.launch({ executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium', headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run', '--disable-quic'] });
const page = await (await browser.newContext({ viewport: { width: 1440, height: 900 } })).newPage();
await page.goto(`${base}/ui/`);
await page.getByLabel('Admin token').fill(adminToken);
await page.getByRole('button', { name: 'Log in' }).click();
await page.getByRole('heading', { level: 1, name: 'Servers & tools' }).waitFor();

const timed = async (fn) => { const t = performance.now(); await fn(); return performance.now() - t; };
const results = { servers: [], builder: [], filter: [], move: [] };
for (let run = 0; run < RUNS; run++) {
  await page.goto(`${base}/ui/#/grants`);
  await page.getByRole('heading', { level: 1, name: 'Grants' }).waitFor();
  results.servers.push(await timed(async () => {
    await page.goto(`${base}/ui/#/servers`);
    await page.waitForFunction((n) => document.querySelectorAll('table.tools tbody tr').length === n, TOOLS);
  }));
  results.builder.push(await timed(async () => {
    await page.goto(`${base}/ui/#/policy/fast`);
    await page.waitForFunction((n) => document.querySelectorAll('.tool-card').length === n, TOOLS);
  }));
  results.filter.push(await timed(async () => {
    await page.getByLabel('Filter tools').fill(`tool_${run + 1}`);
    await page.waitForFunction(() => document.querySelectorAll('.tool-card:not([hidden])').length < 200);
  }));
  await page.getByLabel('Filter tools').fill('');
  results.move.push(await timed(async () => {
    await page.getByLabel('Decision for tool_5', { exact: true }).selectOption(run % 2 ? 'allow' : 'deny');
    await page.waitForFunction((s) => document.querySelector(`.col-${s} .tool-card[data-name="tool_5"]`), run % 2 ? 'allow' : 'deny');
  }));
}
await browser.close();
gw.kill('SIGTERM');
fs.rmSync(tmp, { recursive: true, force: true });

const median = (xs) => { const s = [...xs].sort((a, b) => a - b); return s[Math.floor(s.length / 2)]; };
console.log(`console with ${listed} tools, ${RUNS} runs (ms: median [min-max])`);
for (const [k, label] of [['servers', 'Servers & tools page, every tool row shown'], ['builder', 'policy builder, every tool card shown'],
                          ['filter', 'filter keystroke to filtered board'], ['move', 'move one tool to another column']]) {
  console.log(`  ${label.padEnd(52)} ${median(results[k]).toFixed(0).padStart(6)}  [${Math.min(...results[k]).toFixed(0)}-${Math.max(...results[k]).toFixed(0)}]`);
}
