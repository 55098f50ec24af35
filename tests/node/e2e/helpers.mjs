// Shared helpers for the end-to-end tests: start the real toolwarden binary and real MCP
// servers, wait for them with deadlines (never sleeps), stop them by PID.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const here = path.dirname(fileURLToPath(import.meta.url));
export const ROOT = path.resolve(here, '../../..');
export const TOOLWARDEN = process.env.TOOLWARDEN ?? path.join(ROOT, 'build', 'toolwarden');
export const NODE_MODULES = path.resolve(here, '..', 'node_modules');
export const EVERYTHING = path.join(NODE_MODULES, '@modelcontextprotocol/server-everything/dist/index.js');
export const FIXTURES = path.resolve(here, '..', 'fixtures');
export const POLICIES = path.resolve(here, 'policies');

// Waits until `predicate(text)` holds for the accumulated output of `stream`, or fails after
// `timeoutMs`. Returns the predicate's value.
export function waitForOutput(proc, stream, predicate, timeoutMs = 15000, what = 'output') {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => {
      cleanup();
      reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}; got:\n${text}`));
    }, timeoutMs);
    const onData = (chunk) => {
      text += chunk.toString();
      const value = predicate(text);
      if (value) {
        cleanup();
        resolve(value);
      }
    };
    const onExit = (code) => {
      cleanup();
      reject(new Error(`process exited (${code}) while waiting for ${what}; got:\n${text}`));
    };
    const cleanup = () => {
      clearTimeout(timer);
      proc[stream].off('data', onData);
      proc.off('exit', onExit);
    };
    proc[stream].on('data', onData);
    proc.on('exit', onExit);
  });
}

// Collects a process's stderr for assertions and debugging.
function collectStderr(proc) {
  proc.stderrText = '';
  proc.stderr.on('data', (c) => {
    proc.stderrText += c.toString();
    if (process.env.TW_E2E_VERBOSE) process.stderr.write(c);
  });
}

// Starts toolwarden with `args` and waits until it listens; returns { proc, base }.
async function startListening(args, env) {
  const proc = spawn(TOOLWARDEN, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
  collectStderr(proc);
  const port = await waitForOutput(
    proc, 'stderr', (t) => t.match(/listening on http:\/\/127\.0\.0\.1:(\d+)\/mcp/)?.[1],
    15000, `toolwarden ${args[0]} to listen`);
  return { proc, base: `http://127.0.0.1:${port}` };
}

// Starts `toolwarden run ... --listen 127.0.0.1:0` and returns { url, base, proc }.
export async function startGateway(args, { env } = {}) {
  const { proc, base } = await startListening(['run', '--listen', '127.0.0.1:0', ...args], env);
  return { proc, base, url: `${base}/mcp` };
}

// Starts an MCP server over HTTP from fixtures/serve-http.mjs; returns { base, proc }.
export async function startHttpServer(kind, extraArgs = []) {
  const proc = spawn(process.execPath, [path.join(FIXTURES, 'serve-http.mjs'), kind, ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  collectStderr(proc);
  const port = await waitForOutput(proc, 'stdout', (t) => t.match(/LISTENING (\d+)/)?.[1],
    15000, `${kind} server to listen`);
  return { proc, base: `http://127.0.0.1:${port}` };
}

// Starts fixtures/modern-server.mjs (a 2026-07-28 server, SDK v2) over HTTP; returns { base, proc }.
export async function startModernServer(extraArgs = []) {
  const proc = spawn(process.execPath, [path.join(FIXTURES, 'modern-server.mjs'), 'http', ...extraArgs], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  collectStderr(proc);
  const port = await waitForOutput(proc, 'stdout', (t) => t.match(/LISTENING (\d+)/)?.[1],
    15000, 'the 2026-07-28 server to listen');
  return { proc, base: `http://127.0.0.1:${port}` };
}

// Stops a process we started: SIGTERM, then SIGKILL after a grace period.
export async function stop(proc, graceMs = 5000) {
  if (!proc || proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = once(proc, 'exit');
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

// Polls `fn` until it returns a truthy value or the deadline passes.
export async function eventually(fn, timeoutMs = 10000, what = 'condition') {
  const deadline = Date.now() + timeoutMs;
  let last;
  while (Date.now() < deadline) {
    try {
      last = await fn();
      if (last) return last;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setImmediate(r));
  }
  throw new Error(`timed out waiting for ${what}: ${last}`);
}

export const DENY_PREFIX = '[POLICY DENIED] ';

// Resolves the one pending approval for `tool` in `state` with the approvals CLI; returns its id.
export async function resolvePendingApproval(state, tool, verdict = 'deny', reason = 'not in tests') {
  const { spawnSync } = await import('node:child_process');
  const pending = await eventually(() => {
    const r = spawnSync(TOOLWARDEN, ['approvals', '--state', state, 'list', '--json'], { encoding: 'utf8' });
    const rows = r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
    return rows.find((a) => a.tool === tool && a.state === 'pending');
  }, 15000, `a pending approval for ${tool}`);
  const r = spawnSync(TOOLWARDEN, ['approvals', '--state', state, verdict, pending.id, '--reason', reason], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(r.stderr);
  return pending.id;
}

// Starts `toolwarden serve -c CONFIG` (extra args after); returns { proc, base, adminToken }.
export async function startServe(config, args = [], { env } = {}) {
  const { proc, base } = await startListening(['serve', '-c', config, ...args], env);
  return { proc, base, adminToken: proc.stderrText.match(/twa_[A-Za-z0-9]{43}/)?.[0] };
}

// A port the OS just handed out and took back (for servers that take no port 0: redis-server,
// nginx). Another process may take it first; callers retry their start on a fresh one.
export async function freePort() {
  const net = await import('node:net');
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.on('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address();
      srv.close(() => resolve(port));
    });
  });
}

// The first of `paths` that is an executable file, or undefined.
export async function findExecutable(...paths) {
  const fs = await import('node:fs');
  return paths.find((p) => {
    try {
      fs.accessSync(p, fs.constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

// Whether a Redis server answers PING on `port`.
async function redisAnswers(port) {
  const net = await import('node:net');
  return new Promise((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.setTimeout(1000);
    sock.on('connect', () => sock.write('PING\r\n'));
    sock.on('data', (d) => { sock.destroy(); resolve(d.toString().startsWith('+PONG')); });
    sock.on('error', () => resolve(false));
    sock.on('timeout', () => { sock.destroy(); resolve(false); });
  });
}

// Starts a real redis-server on `port` (a free one when omitted) with its append-only file in
// `dir` (fsync on every write: a server killed with SIGKILL loses nothing); returns
// { proc, port, url }. Stop it with stop(proc) or proc.kill('SIGKILL').
export async function startRedis(dir, port) {
  const bin = await findExecutable('/usr/bin/redis-server', '/usr/local/bin/redis-server');
  if (!bin) throw new Error('redis-server is not installed');
  for (let attempt = 0; attempt < 5; ++attempt) {
    const p = port ?? await freePort();
    const proc = spawn(bin, ['--port', String(p), '--bind', '127.0.0.1', '--save', '',
      '--appendonly', 'yes', '--appendfsync', 'always', '--dir', dir, '--daemonize', 'no',
      '--loglevel', 'warning'], { stdio: ['ignore', 'pipe', 'pipe'] });
    collectStderr(proc);
    try {
      await eventually(async () => proc.exitCode === null && await redisAnswers(p), 10000, 'redis-server to answer');
      return { proc, port: p, url: `redis://127.0.0.1:${p}/0` };
    } catch (e) {
      proc.kill('SIGKILL');
      if (port) throw e;
    }
  }
  throw new Error('redis-server did not start');
}

// Starts Debian's nginx with `conf(port)` (the text of nginx.conf for a listen port) in `dir`,
// not as a daemon; returns { proc, port, base }.
export async function startNginx(dir, conf) {
  const bin = await findExecutable('/usr/sbin/nginx', '/usr/bin/nginx');
  if (!bin) throw new Error('nginx is not installed');
  const fs = await import('node:fs');
  for (let attempt = 0; attempt < 5; ++attempt) {
    const port = await freePort();
    const file = path.join(dir, 'nginx.conf');
    fs.writeFileSync(file, conf(port));
    // In the foreground (daemon off): the test stops it by this PID.
    const proc = spawn(bin, ['-p', dir, '-c', file, '-e', path.join(dir, 'nginx-error.log'), '-g', 'daemon off;'],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    collectStderr(proc);
    const up = await eventually(async () => {
      if (proc.exitCode !== null) return 'exited';
      try {
        await fetch(`http://127.0.0.1:${port}/healthz`);
        return 'up';
      } catch {
        return false;
      }
    }, 10000, 'nginx to listen').catch(() => 'timeout');
    if (up === 'up') return { proc, port, base: `http://127.0.0.1:${port}` };
    proc.kill('SIGKILL');
  }
  throw new Error('nginx did not start');
}

// Starts a real PostgreSQL server (initdb in `dir`, a free loopback port, no fsync). initdb and
// postgres refuse to run as root, so as root both run as the `postgres` user. Returns
// { proc, port, url } with the database `postgres` and the superuser `toolwarden`.
export async function startPostgres(dir) {
  const fs = await import('node:fs');
  const { spawnSync } = await import('node:child_process');
  const versions = fs.existsSync('/usr/lib/postgresql') ? fs.readdirSync('/usr/lib/postgresql').sort() : [];
  const bin = versions.map((v) => `/usr/lib/postgresql/${v}/bin`).reverse()
    .find((b) => fs.existsSync(`${b}/initdb`));
  if (!bin) throw new Error('PostgreSQL is not installed');
  const data = path.join(dir, 'pgdata');
  fs.mkdirSync(data, { recursive: true });
  let ids = {};
  if (process.getuid() === 0) {
    const id = (flag) => Number(spawnSync('id', [flag, 'postgres'], { encoding: 'utf8' }).stdout.trim());
    ids = { uid: id('-u'), gid: id('-g') };
    for (const p of [dir, data]) fs.chownSync(p, ids.uid, ids.gid);
  }
  const init = spawnSync(`${bin}/initdb`, ['-D', data, '-U', 'toolwarden', '-A', 'trust', '-E', 'UTF8',
    '--no-sync', '--locale=C'], { encoding: 'utf8', ...ids });
  if (init.status !== 0) throw new Error(`initdb failed: ${init.stderr}`);
  for (let attempt = 0; attempt < 5; ++attempt) {
    const port = await freePort();
    const proc = spawn(`${bin}/postgres`, ['-D', data, '-p', String(port), '-k', dir,
      '-c', 'listen_addresses=127.0.0.1', '-c', 'fsync=off'], { stdio: ['ignore', 'pipe', 'pipe'], ...ids });
    collectStderr(proc);
    const ready = await eventually(() => {
      if (proc.exitCode !== null) return 'exited';
      const r = spawnSync(`${bin}/pg_isready`, ['-h', '127.0.0.1', '-p', String(port), '-U', 'toolwarden', '-d', 'postgres']);
      return r.status === 0 && 'ready';
    }, 20000, 'postgres to accept connections').catch(() => 'timeout');
    if (ready === 'ready') return { proc, port, url: `postgresql://toolwarden@127.0.0.1:${port}/postgres` };
    proc.kill('SIGKILL');
  }
  throw new Error('postgres did not start');
}
