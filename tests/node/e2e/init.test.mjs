// `toolwarden init` in a temporary HOME with sample client configurations: dry run, --apply
// (the rewritten command really works), --undo (byte-for-byte restore), secrets never printed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, describe, it } from 'node:test';

import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

import { newClient } from './everything-suite.mjs';
import { EVERYTHING, NODE_MODULES, TOOLWARDEN, resolvePendingApproval } from './helpers.mjs';

const FILESYSTEM = path.join(NODE_MODULES, '@modelcontextprotocol/server-filesystem/dist/index.js');
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-init-home-'));
const project = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-init-project-'));
after(() => {
  fs.rmSync(home, { recursive: true, force: true });
  fs.rmSync(project, { recursive: true, force: true });
});

const SECRET = 'sk-secret-do-not-print-1234';
const desktopFile = path.join(home, '.config', 'Claude', 'claude_desktop_config.json');
const desktop = JSON.stringify({
  globalShortcut: 'Ctrl+Space',
  mcpServers: {
    everything: { command: process.execPath, args: [EVERYTHING, 'stdio'], env: { API_KEY: SECRET } },
    remote: { type: 'http', url: 'https://mcp.example.com/mcp' },
  },
}, null, 2);
const codeFile = path.join(project, '.mcp.json');
const code = JSON.stringify({ mcpServers: { files: { command: process.execPath, args: [FILESYSTEM, project] } } }, null, 2);
fs.mkdirSync(path.dirname(desktopFile), { recursive: true });
fs.writeFileSync(desktopFile, desktop);
fs.writeFileSync(codeFile, code);

function init(...args) {
  return spawnSync(TOOLWARDEN, ['--log-level', 'warn', 'init', ...args], {
    cwd: project, encoding: 'utf8', timeout: 120000,
    env: { ...process.env, HOME: home, XDG_CONFIG_HOME: '' },
  });
}

describe('init', () => {
  it('dry run: finds the servers, writes policies and toolwarden.yaml, changes no client config', () => {
    const r = init();
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /claude_desktop_config\.json:\n {2}everything: \d+ tools → .*policies\/everything\.yaml/);
    assert.match(r.stdout, /remote: remote server \(https:\/\/mcp\.example\.com\/mcp\), left as is/);
    assert.match(r.stdout, /\.mcp\.json:\n {2}files: \d+ tools → .*policies\/files\.yaml/);
    assert.match(r.stdout, /dry run: no client configuration was changed/);
    assert.equal(fs.readFileSync(desktopFile, 'utf8'), desktop);
    assert.equal(fs.readFileSync(codeFile, 'utf8'), code);
    const out = path.join(home, '.config', 'toolwarden');
    const config = fs.readFileSync(path.join(out, 'toolwarden.yaml'), 'utf8');
    assert.match(config, /"everything":\n {4}command: /);
    assert.ok(!config.includes(SECRET), 'env values are not copied');
    assert.match(config, /"everything":\n(?: {4}.*\n)* {4}env:\n {6}API_KEY: "\$\{API_KEY\}"\n/, 'but named, for serve');
    assert.match(r.stdout, /needs API_KEY in the environment of `toolwarden serve`/);
    // It is a configuration serve loads, given what it names.
    const validate = (env) => spawnSync(TOOLWARDEN, ['validate', '-c', path.join(out, 'toolwarden.yaml')],
      { encoding: 'utf8', env });
    const { API_KEY: _unset, ...environment } = process.env;
    const valid = validate({ ...environment, API_KEY: 'k' });
    assert.equal(valid.status, 0, valid.stdout + valid.stderr);
    const invalid = validate(environment);
    assert.notEqual(invalid.status, 0);
    assert.match(invalid.stdout + invalid.stderr, /environment variable API_KEY is not set/);
    assert.equal(spawnSync(TOOLWARDEN, ['validate', path.join(out, 'policies', 'files.yaml')]).status, 0);
    assert.ok(!(r.stdout + r.stderr).includes(SECRET), 'secrets are never printed');
  });

  it('--apply rewrites the client configs to run through toolwarden, and the result works', async () => {
    const r = init('--apply');
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.ok(!(r.stdout + r.stderr).includes(SECRET));
    assert.equal(fs.readFileSync(`${desktopFile}.toolwarden-backup`, 'utf8'), desktop);
    const rewritten = JSON.parse(fs.readFileSync(desktopFile, 'utf8'));
    assert.equal(rewritten.globalShortcut, 'Ctrl+Space', 'other settings are kept');
    const everything = rewritten.mcpServers.everything;
    assert.equal(path.basename(everything.command), 'toolwarden');
    assert.deepEqual(everything.args.slice(0, 2), ['run', '-p']);
    assert.deepEqual(everything.args.slice(-4), ['--', process.execPath, EVERYTHING, 'stdio']);
    assert.deepEqual(everything.env, { API_KEY: SECRET }, 'env stays where it was');
    assert.deepEqual(rewritten.mcpServers.remote, { type: 'http', url: 'https://mcp.example.com/mcp' });

    // Run the rewritten entry as a client would: it is a working, policed server.
    const files = JSON.parse(fs.readFileSync(codeFile, 'utf8')).mcpServers.files;
    const state = `sqlite:${path.join(home, 'state.db')}`;
    const client = newClient();
    await client.connect(new StdioClientTransport({
      command: files.command, args: [...files.args.slice(0, 1), '--state', state, ...files.args.slice(1)],
      stderr: 'ignore',
    }));
    const { tools } = await client.listTools();
    assert.ok(tools.some((t) => t.name === 'read_text_file'));
    const pending = client.callTool({ name: 'write_file', arguments: { path: path.join(project, 'x'), content: 'x' } });
    await resolvePendingApproval(state, 'write_file', 'deny');
    const write = await pending;
    assert.equal(write.isError, true, 'the scaffold requires approval for destructive tools');
    await client.close();

    // Running init again does not wrap twice.
    const again = init('--apply');
    assert.match(again.stdout, /everything: already runs through toolwarden/);
  });

  it('--undo restores the originals byte for byte', () => {
    const r = init('--undo');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(fs.readFileSync(desktopFile, 'utf8'), desktop);
    assert.equal(fs.readFileSync(codeFile, 'utf8'), code);
    assert.ok(!fs.existsSync(`${desktopFile}.toolwarden-backup`));
  });

  it('says so when there is nothing to work on', () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-init-empty-'));
    const r = spawnSync(TOOLWARDEN, ['init'], { cwd: empty, encoding: 'utf8', env: { ...process.env, HOME: empty } });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /no MCP client configuration found/);
    fs.rmSync(empty, { recursive: true, force: true });
  });
});
