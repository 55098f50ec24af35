// `toolwarden init` in a temporary HOME with sample client configurations: dry run, --apply
// (the rewritten command really works), --undo (byte-for-byte restore), secrets never printed.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';

import { newClient } from './everything-suite.mjs';
import { EVERYTHING, NODE_MODULES, TOOLWARDEN, eventually, resolvePendingApproval, startHttpServer, stop } from './helpers.mjs';

const FILESYSTEM = path.join(NODE_MODULES, '@modelcontextprotocol/server-filesystem/dist/index.js');
const home = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-init-home-'));
const project = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-init-project-'));
after(() => {
  fs.rmSync(home, { recursive: true, force: true });
  fs.rmSync(project, { recursive: true, force: true });
});

const SECRET = 'sk-secret-do-not-print-1234';
const desktopFile = path.join(home, '.config', 'Claude', 'claude_desktop_config.json');
// A remote server (Streamable HTTP, with a secret header) beside the command servers.
let remoteServer;
let desktop;
let remoteEntry;
const codeFile = path.join(project, '.mcp.json');
const code = JSON.stringify({ mcpServers: { files: { command: process.execPath, args: [FILESYSTEM, project] } } }, null, 2);
before(async () => {
  remoteServer = await startHttpServer('everything', ['--log-headers']);
  remoteEntry = { type: 'http', url: `${remoteServer.base}/mcp`, headers: { Authorization: `Bearer ${SECRET}` } };
  desktop = JSON.stringify({
    globalShortcut: 'Ctrl+Space',
    mcpServers: {
      everything: { command: process.execPath, args: [EVERYTHING, 'stdio'], env: { API_KEY: SECRET } },
      remote: remoteEntry,
    },
  }, null, 2);
  fs.mkdirSync(path.dirname(desktopFile), { recursive: true });
  fs.writeFileSync(desktopFile, desktop);
  fs.writeFileSync(codeFile, code);
});
after(() => stop(remoteServer?.proc));

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
    assert.match(r.stdout, /remote: \d+ tools → .*policies\/remote\.yaml\n {4}needs REMOTE_AUTHORIZATION in the environment/);
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
    const valid = validate({ ...environment, API_KEY: 'k', REMOTE_AUTHORIZATION: 'Bearer k' });
    assert.equal(valid.status, 0, valid.stdout + valid.stderr);
    const invalid = validate(environment);
    assert.notEqual(invalid.status, 0);
    assert.match(invalid.stdout + invalid.stderr, /environment variable API_KEY is not set/);
    assert.equal(spawnSync(TOOLWARDEN, ['validate', path.join(out, 'policies', 'files.yaml')]).status, 0);
    assert.ok(!(r.stdout + r.stderr).includes(SECRET), 'secrets are never printed');
    // Each policy comes with the start of its tests, passing as written.
    for (const server of ['everything', 'remote', 'files']) {
      const t = spawnSync(TOOLWARDEN, ['test', path.join(out, 'policies', `${server}.yaml`),
        path.join(out, 'policies', `${server}.cases.yaml`)], { encoding: 'utf8' });
      assert.equal(t.status, 0, t.stdout + t.stderr);
    }
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
    // The remote server runs through `run --upstream`; its header's value moved to env, and
    // reaches the server through the variable, never on a command line.
    const remote = rewritten.mcpServers.remote;
    assert.equal(remote.type, 'stdio');
    assert.equal(remote.url, undefined);
    assert.deepEqual(remote.args.slice(-4), ['--upstream', remoteEntry.url, '--header', 'Authorization: ${REMOTE_AUTHORIZATION}']);
    assert.deepEqual(remote.env, { REMOTE_AUTHORIZATION: `Bearer ${SECRET}` });
    const remoteClient = newClient();
    await remoteClient.connect(new StdioClientTransport({
      command: remote.command, args: [remote.args[0], '--state', 'memory', ...remote.args.slice(1)],
      env: { ...process.env, ...remote.env }, stderr: 'ignore',
    }));
    assert.ok((await remoteClient.listTools()).tools.some((t) => t.name === 'echo'));
    await remoteClient.close();
    await eventually(() => remoteServer.proc.stderrText.includes(`"authorization":"Bearer ${SECRET}"`), 10000,
      'the header at the remote server');

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

    // Running init again does not wrap twice, and keeps toolwarden.yaml whole.
    const again = init('--apply');
    assert.match(again.stdout, /everything: already runs through toolwarden/);
    const yaml = path.join(home, '.config', 'toolwarden', 'toolwarden.yaml');
    const config = fs.readFileSync(yaml, 'utf8');
    assert.match(config, /"everything":/);
    assert.match(config, /"files":/);
    const valid = spawnSync(TOOLWARDEN, ['validate', '-c', yaml], { encoding: 'utf8', env: { ...process.env, API_KEY: 'k', REMOTE_AUTHORIZATION: 'k' } });
    assert.equal(valid.status, 0, valid.stdout + valid.stderr);
  });

  it('--undo restores the originals byte for byte', () => {
    const r = init('--undo');
    assert.equal(r.status, 0, r.stderr);
    assert.equal(fs.readFileSync(desktopFile, 'utf8'), desktop);
    assert.equal(fs.readFileSync(codeFile, 'utf8'), code);
    assert.ok(!fs.existsSync(`${desktopFile}.toolwarden-backup`));
  });

  it('undo reverts only what init changed: a server added since and other edits stay', () => {
    assert.equal(init('--apply').status, 0);
    // The client keeps writing its file: a new server, a changed setting.
    const edited = JSON.parse(fs.readFileSync(desktopFile, 'utf8'));
    edited.globalShortcut = 'Ctrl+Alt+Space';
    edited.mcpServers.later = { command: 'echo', args: ['added after init'] };
    fs.writeFileSync(desktopFile, JSON.stringify(edited, null, 2));
    const r = init('--undo');
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /everything: restored/);
    assert.match(r.stdout, /every other edit is kept/);
    const after = JSON.parse(fs.readFileSync(desktopFile, 'utf8'));
    assert.deepEqual(after.mcpServers.everything, JSON.parse(desktop).mcpServers.everything);
    assert.deepEqual(after.mcpServers.remote, remoteEntry, 'the remote entry is whole again, its header back');
    assert.deepEqual(after.mcpServers.later, { command: 'echo', args: ['added after init'] });
    assert.equal(after.globalShortcut, 'Ctrl+Alt+Space');
    assert.ok(!fs.existsSync(`${desktopFile}.toolwarden-backup`));
    assert.ok(!fs.existsSync(`${desktopFile}.toolwarden-init.json`));
    fs.writeFileSync(desktopFile, desktop);
  });

  it('undo leaves an entry changed again since, and shows it', () => {
    assert.equal(init('--apply').status, 0);
    const edited = JSON.parse(fs.readFileSync(desktopFile, 'utf8'));
    edited.mcpServers.everything.args.push('--extra');
    fs.writeFileSync(desktopFile, JSON.stringify(edited, null, 2));
    const r = init('--undo');
    assert.notEqual(r.status, 0);
    assert.match(r.stdout, /everything: changed since toolwarden init rewrote it; left as it is\n {4}init wrote: /);
    assert.ok(!(r.stdout + r.stderr).includes(SECRET), 'the diff shows no secret');
    assert.deepEqual(JSON.parse(fs.readFileSync(desktopFile, 'utf8')).mcpServers.everything.args.at(-1), '--extra');
    assert.ok(fs.existsSync(`${desktopFile}.toolwarden-init.json`), 'the record stays for what is left');
    assert.ok(!fs.readFileSync(`${desktopFile}.toolwarden-init.json`, 'utf8').includes(SECRET), 'no env value in the record');
    fs.writeFileSync(desktopFile, desktop);
    fs.rmSync(`${desktopFile}.toolwarden-init.json`);
    fs.rmSync(`${desktopFile}.toolwarden-backup`, { force: true });
    // The Claude Code project file was reverted in the same run.
    assert.equal(JSON.stringify(JSON.parse(fs.readFileSync(codeFile, 'utf8'))), JSON.stringify(JSON.parse(code)));
  });

  it('lists the clients it knows, scans a server once, and names its files plainly', () => {
    const list = init('--list-clients');
    assert.equal(list.status, 0);
    assert.match(list.stdout, /Claude Desktop \(Linux\): .*claude_desktop_config\.json: 2 servers/);
    assert.match(list.stdout, /Cursor \(global\): .*mcp\.json: not found/);
    const twice = path.join(project, 'twice.json');
    fs.writeFileSync(twice, JSON.stringify({ mcpServers: {
      a: { command: process.execPath, args: [EVERYTHING, 'stdio'] },
      b: { command: process.execPath, args: [EVERYTHING, 'stdio'] },
    } }));
    const out = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-init-out-'));
    const r = init('--client-config', twice, '-c', path.join(out, 'tw.yaml'));
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /b: the same server as above \(\d+ tools\), not scanned again/);
    assert.match(fs.readFileSync(path.join(out, 'tw.yaml'), 'utf8'), /"a":[\s\S]*"b":/);
    // Run again: the servers already in tw.yaml are kept as they are, the file is not emptied.
    const again = init('--client-config', twice, '-c', path.join(out, 'tw.yaml'));
    assert.match(again.stdout, /a: already in .*tw\.yaml, kept as it is/);
    assert.equal((fs.readFileSync(path.join(out, 'tw.yaml'), 'utf8').match(/"a":/g) ?? []).length, 1);
    const missing = init('--client-config', path.join(project, 'nope.json'));
    assert.equal(missing.status, 1);
    assert.match(missing.stderr, /nope\.json: no such file/);
    fs.rmSync(out, { recursive: true, force: true });
  });

  it('says so when there is nothing to work on', () => {
    const empty = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-init-empty-'));
    const r = spawnSync(TOOLWARDEN, ['init'], { cwd: empty, encoding: 'utf8', env: { ...process.env, HOME: empty } });
    assert.equal(r.status, 1);
    assert.match(r.stderr, /no MCP client configuration found/);
    fs.rmSync(empty, { recursive: true, force: true });
  });
});

describe('init edits a configuration in its text', () => {
  const vsHome = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-init-vs-'));
  after(() => fs.rmSync(vsHome, { recursive: true, force: true }));
  const vscodeFile = path.join(vsHome, '.vscode', 'mcp.json');
  // VS Code's shape: `servers`, JSON with comments and trailing commas.
  const vscode = `// Servers of this workspace
{
  "servers": {
    /* the reference server */
    "everything": {
      "type": "stdio",
      "command": ${JSON.stringify(process.execPath)},
      "args": [${JSON.stringify(EVERYTHING)}, "stdio"], // stdio transport
    },
  },
  "inputs": [],
}
`;
  const run = (...args) => spawnSync(TOOLWARDEN, ['--log-level', 'warn', 'init', ...args], {
    cwd: vsHome, encoding: 'utf8', timeout: 120000, env: { ...process.env, HOME: vsHome, XDG_CONFIG_HOME: '' },
  });

  it('finds VS Code\'s file, wraps its server keeping every comment, and undoes it the same way', () => {
    fs.mkdirSync(path.dirname(vscodeFile), { recursive: true });
    fs.writeFileSync(vscodeFile, vscode);
    assert.match(run('--list-clients').stdout, /VS Code \(workspace\): .*mcp\.json: 1 server/);
    const r = run('--apply');
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const applied = fs.readFileSync(vscodeFile, 'utf8');
    for (const kept of ['// Servers of this workspace', '/* the reference server */', '"inputs": [],']) {
      assert.ok(applied.includes(kept), `${kept} kept:\n${applied}`);
    }
    assert.match(applied, /"everything": \{\n {6}"type": "stdio",\n {6}"command": ".*toolwarden",/);
    // The user writes a comment of their own after init; undo keeps it too.
    fs.writeFileSync(vscodeFile, applied.replace('"inputs": [],', '"inputs": [], // mine'));
    const u = run('--undo');
    assert.equal(u.status, 0, u.stdout + u.stderr);
    const undone = fs.readFileSync(vscodeFile, 'utf8');
    assert.ok(undone.includes('// mine') && undone.includes('/* the reference server */'), undone);
    const servers = JSON.parse(undone.replace(/\/\/.*$/gm, '').replace(/\/\*.*?\*\//g, '').replace(/,(\s*[}\]])/g, '$1')).servers;
    assert.deepEqual(servers.everything, { type: 'stdio', command: process.execPath, args: [EVERYTHING, 'stdio'] });
  });

  it('finds Zed\'s settings, wraps its context server among the editor\'s own settings, leaves an entry it cannot read', () => {
    const zedFile = path.join(vsHome, '.config', 'zed', 'settings.json');
    fs.mkdirSync(path.dirname(zedFile), { recursive: true });
    // Zed's shape: settings.json with comments; MCP servers under `context_servers`.
    const zed = `// Zed settings
{
  "theme": "One Dark",
  "buffer_font_size": 15,
  "context_servers": {
    "everything": {
      "source": "custom", // added by hand
      "command": ${JSON.stringify(process.execPath)},
      "args": [${JSON.stringify(EVERYTHING)}, "stdio"],
      "env": {}
    },
    "legacy": { "command": { "path": "old-server", "args": [] } }
  }
}
`;
    fs.writeFileSync(zedFile, zed);
    assert.match(run('--list-clients').stdout, /Zed \(user\): .*settings\.json: 2 servers/);
    const r = run('--client-config', zedFile, '--apply');
    assert.match(r.stdout, /legacy: neither a command nor a url; left as is/);
    assert.match(r.stdout, /everything: \d+ tools/);
    const applied = fs.readFileSync(zedFile, 'utf8');
    for (const kept of ['// Zed settings', '"theme": "One Dark",', '"source": "custom", // added by hand',
      '"legacy": { "command": { "path": "old-server", "args": [] } }']) {
      assert.ok(applied.includes(kept), `${kept} kept:\n${applied}`);
    }
    assert.match(applied, /"command": ".*toolwarden",\n\s*"args": \[\s*"run"/);
    const u = run('--client-config', zedFile, '--undo');
    assert.equal(u.status, 0, u.stdout + u.stderr);
    assert.equal(fs.readFileSync(zedFile, 'utf8'), zed);
  });
});

describe('init with Cursor\'s and Windsurf\'s files', () => {
  const home2 = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-init-cw-'));
  let remote;
  before(async () => { remote = await startHttpServer('everything'); });
  after(async () => {
    await stop(remote?.proc);
    fs.rmSync(home2, { recursive: true, force: true });
  });
  const run = (...args) => spawnSync(TOOLWARDEN, ['--log-level', 'warn', 'init', ...args], {
    cwd: home2, encoding: 'utf8', timeout: 120000, env: { ...process.env, HOME: home2, XDG_CONFIG_HOME: '' },
  });

  it('wraps a Cursor server and a Windsurf `serverUrl` server, and restores each under its own key', () => {
    const cursorFile = path.join(home2, '.cursor', 'mcp.json');
    const windsurfFile = path.join(home2, '.codeium', 'windsurf', 'mcp_config.json');
    // The files as Cursor and Windsurf write them.
    const cursor = JSON.stringify({ mcpServers: { everything: { command: process.execPath, args: [EVERYTHING, 'stdio'] } } }, null, 2);
    const windsurf = JSON.stringify({ mcpServers: { hosted: { serverUrl: `${remote.base}/mcp`, headers: { Authorization: `Bearer ${SECRET}` } } } }, null, 2);
    for (const [file, text] of [[cursorFile, cursor], [windsurfFile, windsurf]]) {
      fs.mkdirSync(path.dirname(file), { recursive: true });
      fs.writeFileSync(file, text);
    }
    const list = run('--list-clients').stdout;
    assert.match(list, /Cursor \(global\): .*mcp\.json: 1 server/);
    assert.match(list, /Windsurf: .*mcp_config\.json: 1 server/);
    const r = run('--apply');
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.ok(!(r.stdout + r.stderr).includes(SECRET));
    const hosted = JSON.parse(fs.readFileSync(windsurfFile, 'utf8')).mcpServers.hosted;
    assert.equal(hosted.serverUrl, undefined);
    assert.equal(hosted.command, TOOLWARDEN);
    assert.deepEqual(hosted.args.slice(hosted.args.indexOf('--upstream'), hosted.args.indexOf('--upstream') + 4),
      ['--upstream', `${remote.base}/mcp`, '--header', 'Authorization: ${HOSTED_AUTHORIZATION}']);
    assert.equal(hosted.env.HOSTED_AUTHORIZATION, `Bearer ${SECRET}`);
    assert.equal(JSON.parse(fs.readFileSync(cursorFile, 'utf8')).mcpServers.everything.command, TOOLWARDEN);
    // Windsurf rewrites its file meanwhile (same content, its own formatting): undo still
    // restores the entry under `serverUrl`.
    fs.writeFileSync(windsurfFile, JSON.stringify(JSON.parse(fs.readFileSync(windsurfFile, 'utf8')), null, 4));
    const u = run('--undo');
    assert.equal(u.status, 0, u.stdout + u.stderr);
    assert.deepEqual(JSON.parse(fs.readFileSync(windsurfFile, 'utf8')), JSON.parse(windsurf));
    assert.equal(fs.readFileSync(cursorFile, 'utf8'), cursor);
  });
});

describe('init with the real Codex CLI (config.toml)', () => {
  const codexHome = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-init-codex-'));
  after(() => fs.rmSync(codexHome, { recursive: true, force: true }));
  const CODEX = path.join(NODE_MODULES, '.bin', 'codex');
  const configFile = path.join(codexHome, '.codex', 'config.toml');
  const env = { ...process.env, HOME: codexHome, XDG_CONFIG_HOME: '', CODEX_HOME: '' };
  const codex = (...args) => {
    const r = spawnSync(CODEX, args, { cwd: codexHome, encoding: 'utf8', timeout: 60000, env });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    return r.stdout;
  };
  const run = (...args) => spawnSync(TOOLWARDEN, ['--log-level', 'warn', 'init', ...args], {
    cwd: codexHome, encoding: 'utf8', timeout: 120000, env,
  });
  const transport = (name) => JSON.parse(codex('mcp', 'get', name, '--json')).transport;

  it('wraps a server Codex added, keeps the TOML\'s comments, works, and undoes only its own change', async (t) => {
    if (!fs.existsSync(CODEX)) return t.skip('@openai/codex is not installed (npm ci in tests/node)');
    // Codex writes its own configuration; the user adds a setting and a comment by hand.
    codex('mcp', 'add', 'everything', '--env', `API_KEY=${SECRET}`, '--', process.execPath, EVERYTHING, 'stdio');
    const written = fs.readFileSync(configFile, 'utf8');
    fs.writeFileSync(configFile, `# my Codex settings\nmodel = "o3" # the one I use\n\n${written}`);
    assert.match(run('--list-clients').stdout, /Codex: .*config\.toml: 1 server/);

    const r = run('--apply');
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.ok(!(r.stdout + r.stderr).includes(SECRET), 'no secret printed');
    const applied = fs.readFileSync(configFile, 'utf8');
    for (const kept of ['# my Codex settings', 'model = "o3" # the one I use', '[mcp_servers.everything.env]']) {
      assert.ok(applied.includes(kept), `${kept} kept:\n${applied}`);
    }
    // Codex reads the edited file: its own view of the server is the wrapped command.
    const wrapped = transport('everything');
    assert.equal(wrapped.command, TOOLWARDEN);
    assert.equal(wrapped.args[0], 'run');
    assert.deepEqual(wrapped.args.slice(wrapped.args.indexOf('--') + 1), [process.execPath, EVERYTHING, 'stdio']);
    assert.equal(wrapped.env.API_KEY, SECRET);
    // What Codex would start is a working gateway in front of the server.
    const client = newClient();
    await client.connect(new StdioClientTransport({ command: wrapped.command, args: wrapped.args, env: { ...process.env, ...wrapped.env }, stderr: 'ignore' }));
    const { tools } = await client.listTools();
    assert.ok(tools.some((tool) => tool.name === 'echo'), tools.map((tool) => tool.name).join());
    await client.close();

    // Codex adds another server after init; undo restores ours and keeps it.
    codex('mcp', 'add', 'later', '--', process.execPath, EVERYTHING, 'stdio');
    const u = run('--undo');
    assert.equal(u.status, 0, u.stdout + u.stderr);
    assert.deepEqual(transport('everything').command, process.execPath);
    assert.deepEqual(transport('everything').args, [EVERYTHING, 'stdio']);
    assert.deepEqual(transport('later').args, [EVERYTHING, 'stdio']);
    assert.ok(fs.readFileSync(configFile, 'utf8').includes('model = "o3" # the one I use'));
  });
});

// The clients' own CLIs write their configurations and check their servers' health: init
// wraps what they wrote, and their health check connects through toolwarden.
describe('init with the real Claude Code and Gemini CLIs', () => {
  const cliHome = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-init-clis-'));
  const work = path.join(cliHome, 'work');
  fs.mkdirSync(work);
  after(() => fs.rmSync(cliHome, { recursive: true, force: true }));
  const env = { ...process.env, HOME: cliHome, XDG_CONFIG_HOME: '' };
  const tool = (bin, ...args) => {
    const r = spawnSync(path.join(NODE_MODULES, '.bin', bin), args, { cwd: work, encoding: 'utf8', timeout: 90000, env });
    return { status: r.status, stdout: r.stdout + r.stderr };  // Gemini CLI lists on stderr
  };
  const run = (...args) => spawnSync(TOOLWARDEN, ['--log-level', 'warn', 'init', ...args],
    { cwd: work, encoding: 'utf8', timeout: 120000, env });
  const server = [process.execPath, EVERYTHING, 'stdio'];
  const line = (out, name) => out.split('\n').find((l) => l.includes(`${name}:`)) ?? '';

  it('Claude Code: claude mcp add, init --apply, claude mcp list connects; undo keeps a server added since', (t) => {
    if (!fs.existsSync(path.join(NODE_MODULES, '.bin', 'claude'))) return t.skip('@anthropic-ai/claude-code is not installed');
    assert.equal(tool('claude', 'mcp', 'add', '--scope', 'user', 'everything', '--', ...server).status, 0);
    assert.match(line(tool('claude', 'mcp', 'list').stdout, 'everything'), /Connected/);
    const r = run('--apply');
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const wrapped = line(tool('claude', 'mcp', 'list').stdout, 'everything');
    assert.ok(wrapped.includes(`${TOOLWARDEN} run -p `), wrapped);
    assert.match(wrapped, /✔ Connected/);
    // Claude Code adds a server after init; undo restores ours and keeps it.
    assert.equal(tool('claude', 'mcp', 'add', '--scope', 'user', 'later', '--', ...server).status, 0);
    const u = run('--undo');
    assert.equal(u.status, 0, u.stdout + u.stderr);
    const list = tool('claude', 'mcp', 'list').stdout;
    assert.ok(line(list, 'everything').startsWith(`everything: ${server.join(' ')}`), list);
    assert.match(line(list, 'everything'), /Connected/);
    assert.match(line(list, 'later'), /Connected/);
  });

  it('Gemini CLI: gemini mcp add, init --apply, gemini mcp list connects; undo restores', (t) => {
    if (!fs.existsSync(path.join(NODE_MODULES, '.bin', 'gemini'))) return t.skip('@google/gemini-cli is not installed');
    // Gemini runs a folder's servers only once the folder is trusted.
    fs.mkdirSync(path.join(cliHome, '.gemini'), { recursive: true });
    fs.writeFileSync(path.join(cliHome, '.gemini', 'trustedFolders.json'), JSON.stringify({ [work]: 'TRUST_FOLDER' }));
    assert.equal(tool('gemini', 'mcp', 'add', '--scope', 'user', 'gem', ...server).status, 0);
    assert.match(line(tool('gemini', 'mcp', 'list').stdout, 'gem'), /✓ gem: .* - Connected/);
    const r = run('--client-config', path.join(cliHome, '.gemini', 'settings.json'), '--apply');
    assert.equal(r.status, 0, r.stdout + r.stderr);
    const wrapped = line(tool('gemini', 'mcp', 'list').stdout, 'gem');
    assert.ok(wrapped.includes(`${TOOLWARDEN} run -p `), wrapped);
    assert.match(wrapped, /- Connected$/);
    const u = run('--client-config', path.join(cliHome, '.gemini', 'settings.json'), '--undo');
    assert.equal(u.status, 0, u.stdout + u.stderr);
    assert.ok(line(tool('gemini', 'mcp', 'list').stdout, 'gem').includes(`gem: ${server.join(' ')}`));
  });
});
