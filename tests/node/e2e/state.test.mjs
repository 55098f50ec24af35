// The state file as a whole: `state info|backup|restore` beside a running gateway, and the
// schema version every connection checks (a newer file refused untouched, an older one upgraded).
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';

import { TOOLWARDEN, startServe, stop } from './helpers.mjs';

const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-state-'));
const statePath = path.join(tmp, 'state.db');
const config = path.join(tmp, 'toolwarden.yaml');
fs.writeFileSync(path.join(tmp, 'demo.yaml'), 'version: "1"\ndefault: allow\n');
fs.writeFileSync(config, [
  'listen: 127.0.0.1:0', `state: sqlite:${statePath}`, 'servers:',
  '  demo:', `    command: ${JSON.stringify(TOOLWARDEN)}`, '    args: [demo-server]', '    policy: demo.yaml', '',
].join('\n'));

const cli = (...args) => spawnSync(TOOLWARDEN, args, { encoding: 'utf8' });
const sqlite = (file, sql) => {
  const r = spawnSync('sqlite3', [file, sql], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.trim();
};
const info = (...args) => {
  const r = cli('state', 'info', '--json', ...args);
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
};

describe('state file', () => {
  let gw;
  after(async () => { await stop(gw?.proc); });

  it('is backed up while a gateway writes it, and restored only once that gateway is stopped', async () => {
    gw = await startServe(config);
    const created = cli('grants', 'create', 'agent', '-c', config, '--json');
    assert.equal(created.status, 0, created.stderr);
    const client = new Client({ name: 'e2e', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${gw.base}/mcp`), {
      requestInit: { headers: { Authorization: `Bearer ${JSON.parse(created.stdout).token}` } },
    }));
    const { tools } = await client.listTools();
    await client.callTool({ name: tools[0].name, arguments: {} }).catch(() => {});
    await client.close();

    const live = info('-c', config);
    assert.equal(live.schema_version, 3);
    assert.equal(live.supported_schema_version, 3);
    assert.equal(live.rows.grants, 1);

    const backup = path.join(tmp, 'backup.db');
    const b = cli('state', 'backup', '-c', config, backup);
    assert.equal(b.status, 0, b.stderr);
    assert.match(b.stdout, /backed up .*state\.db to .*backup\.db \(schema version 3, \d+ rows/);
    assert.equal(info('--state', `sqlite:${backup}`).rows.grants, 1);
    // As private as the state file, whatever the umask.
    fs.chmodSync(statePath, 0o600);
    const priv = path.join(tmp, 'private.db');
    assert.equal(spawnSync(TOOLWARDEN, ['state', 'backup', '-c', config, priv], { encoding: 'utf8', env: process.env }).status, 0);
    assert.equal(fs.statSync(priv).mode & 0o777, 0o600);
    // The same name again is refused unless --force.
    const again = cli('state', 'backup', '-c', config, backup);
    assert.equal(again.status, 1);
    assert.match(again.stderr, /exists: choose another name, or add --force/);
    assert.equal(cli('state', 'backup', '-c', config, backup, '--force').status, 0);

    // A running gateway holds the file: restore refuses and changes nothing.
    assert.equal(cli('grants', 'create', 'later', '-c', config).status, 0);
    const busy = cli('state', 'restore', '-c', config, backup);
    assert.equal(busy.status, 3, busy.stdout);
    assert.match(busy.stderr, /is open in another process \(a running gateway\?\): stop it, then restore; nothing was changed/);
    assert.equal(info('-c', config).rows.grants, 2);

    await stop(gw.proc);
    const r = cli('state', 'restore', '-c', config, backup);
    assert.equal(r.status, 0, r.stderr);
    const kept = r.stdout.match(/the previous file is kept as (\S+)/)?.[1];
    assert.ok(kept && fs.existsSync(kept), r.stdout);
    const names = cli('grants', 'list', '-c', config, '--json').stdout.trim().split('\n').map((l) => JSON.parse(l).name);
    assert.deepEqual(names, ['agent']);
    assert.equal(info('--state', `sqlite:${kept}`).rows.grants, 2);

    // The restored file serves: the grant made before the backup works again.
    gw = await startServe(config);
    const tokenless = await fetch(`${gw.base}/mcp`, { method: 'POST' });
    assert.equal(tokenless.status, 401);
    await stop(gw.proc);
  });

  it('refuses a file written by a newer toolwarden, untouched, in serve, the CLI and restore', () => {
    const newer = path.join(tmp, 'newer.db');
    fs.copyFileSync(statePath, newer);
    sqlite(newer, 'PRAGMA user_version=7');
    const before = fs.readFileSync(newer);

    const serve = cli('serve', '-c', config, '--state', `sqlite:${newer}`);
    assert.notEqual(serve.status, 0);
    assert.match(serve.stderr, /newer\.db was written by a newer toolwarden \(state schema version 7; this toolwarden knows up to 3\)/);
    const grants = cli('grants', 'list', '--state', `sqlite:${newer}`);
    assert.notEqual(grants.status, 0);
    assert.match(grants.stderr, /written by a newer toolwarden/);
    const restore = cli('state', 'restore', '-c', config, newer);
    assert.equal(restore.status, 1);
    assert.match(restore.stderr, /written by a newer toolwarden/);
    assert.deepEqual(fs.readFileSync(newer), before);
    assert.equal(info('--state', `sqlite:${newer}`).schema_version, 7);
  });

  it('upgrades a file from before schema versions, keeping its rows and a copy of the original', () => {
    const old = path.join(tmp, 'old.db');
    sqlite(old, "CREATE TABLE approvals(id TEXT PRIMARY KEY, created_ms INTEGER NOT NULL, expires_ms INTEGER NOT NULL, grant_name TEXT NOT NULL, session TEXT NOT NULL, server TEXT NOT NULL, tool TEXT NOT NULL, args TEXT NOT NULL, args_digest TEXT NOT NULL, state TEXT NOT NULL, resolved_by TEXT NOT NULL, resolved_ms INTEGER NOT NULL, reason TEXT NOT NULL); INSERT INTO approvals VALUES('ap_old',1,4102444800000,'ci','s','github','merge','{}','d','pending','',0,'');");
    assert.equal(info('--state', `sqlite:${old}`).schema_version, 0);
    const list = cli('approvals', 'list', '--state', `sqlite:${old}`, '--json');
    assert.equal(list.status, 0, list.stderr);
    assert.equal(JSON.parse(list.stdout.trim()).id, 'ap_old');
    assert.equal(info("--state", `sqlite:${old}`).schema_version, 3);
    assert.equal(sqlite(old, "SELECT count(*) FROM pragma_table_info('approvals') WHERE name='owner'"), '1');
    assert.equal(sqlite(`${old}.schema-v0.bak`, 'PRAGMA user_version'), '0');
  });

  it('upgrades a version 1 audit to record shadow decisions and classes, keeping its records', () => {
    const v1 = path.join(tmp, 'v1.db');
    sqlite(v1, "CREATE TABLE audit(id TEXT NOT NULL, ts_ms INTEGER NOT NULL, grant_name TEXT NOT NULL, session TEXT NOT NULL, server TEXT NOT NULL, tool TEXT NOT NULL, decision TEXT NOT NULL, rule TEXT NOT NULL, reason TEXT NOT NULL, arg_keys TEXT NOT NULL, args_digest TEXT NOT NULL, args TEXT, policy_version TEXT NOT NULL, outcome TEXT NOT NULL, latency_ms INTEGER NOT NULL); INSERT INTO audit VALUES('r1',1,'ci','s','db','query','allow','tools.query','','[\"sql\"]','d','{\"sql\":\"select 1\"}','v','ok',1); PRAGMA user_version=1;");
    const records = cli('audit', '--state', `sqlite:${v1}`, '--json');
    assert.equal(records.status, 0, records.stderr);
    assert.deepEqual(JSON.parse(records.stdout.trim()).args, { sql: 'select 1' });
    assert.equal(info("--state", `sqlite:${v1}`).schema_version, 3);
    assert.equal(sqlite(v1, "SELECT count(*) FROM pragma_table_info('audit') WHERE name IN ('shadow','tool_class')"), '2');
    assert.equal(sqlite(`${v1}.schema-v1.bak`, 'PRAGMA user_version'), '1');
  });

  it('says what it cannot do for a state that is not a file, and for a file that is not a backup', () => {
    const redis = cli('state', 'backup', '--state', 'redis://127.0.0.1:1/0', path.join(tmp, 'x.db'));
    assert.equal(redis.status, 1);
    assert.match(redis.stderr, /the state is on Redis .*BGSAVE/);
    const notBackup = path.join(tmp, 'not-a-backup.db');
    fs.writeFileSync(notBackup, 'hello');
    const r = cli('state', 'restore', '--state', `sqlite:${path.join(tmp, 'y.db')}`, notBackup);
    assert.equal(r.status, 1);
    assert.match(r.stderr, /not an intact SQLite file|not a database/);
    const missing = cli('state', 'info', '--state', `sqlite:${path.join(tmp, 'none.db')}`);
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /no state file at/);
  });
});
