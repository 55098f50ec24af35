// Signing in as MCP expects (docs/oauth.md), with real software on both ends:
//  - the built-in authorization server: the official SDK client's OAuth flow (401 → resource
//    metadata → authorization-server metadata → dynamic registration → PKCE) driven through
//    the console's consent page in Chromium, refresh-token rotation and its replay, a revoked
//    grant, and the Claude Code CLI (`claude mcp list`: "Needs authentication", then
//    "Connected" with a token in place);
//  - a company identity provider: `oidc-provider` (a certified OpenID implementation) issuing
//    JWT access tokens, principals and groups in policies and server settings, scopes (403
//    insufficient_scope), key rotation, and the 401 matrix with zero calls forwarded.
// The upstream is the recording server, so what crossed the gateway is known exactly.
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import http from 'node:http';
import https from 'node:https';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';

import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { chromium } from 'playwright-core';

import { EVERYTHING, FIXTURES, NODE_MODULES, TOOLWARDEN, eventually, freePort, startHttpServer, startServe, stop, waitForOutput } from './helpers.mjs';

const CHROMIUM = process.env.CHROMIUM ?? '/usr/bin/chromium';
const RECORDER = path.join(FIXTURES, 'recording-server.mjs');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-oauth-'));
const text = (r) => r.content.map((c) => c.text ?? '').join('');
// The tools/call requests the recording server at `file` received.
const callsReceived = (file) => (fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '').split('\n').slice(1).filter(Boolean)
  .map((l) => JSON.parse(l)).filter((m) => m.method === 'tools/call');
const initialize = { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } } };
const post = (url, token, body = initialize) => fetch(url, {
  method: 'POST',
  headers: { 'Content-Type': 'application/json', Accept: 'application/json, text/event-stream', ...(token ? { Authorization: `Bearer ${token}` } : {}) },
  body: JSON.stringify(body),
});
const auditOf = (config) => {
  const r = spawnSync(TOOLWARDEN, ['audit', '-c', config, '--json', '--limit', '1000'], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
};

const launchBrowser = () => chromium.launch({ executablePath: CHROMIUM, headless: true,
  args: ['--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'] });

// An OAuthClientProvider as an MCP client implements it, keeping everything in memory; the
// browser is driven by `onRedirect`.
class MemoryProvider {
  constructor(redirectUrl, onRedirect, clientMetadataUrl) {
    this.redirect = redirectUrl;
    this.onRedirect = onRedirect;
    this.clientMetadataUrl = clientMetadataUrl;
    this.saved = {};
  }
  get redirectUrl() { return this.redirect; }
  get clientMetadata() {
    return { client_name: 'toolwarden e2e agent', redirect_uris: [this.redirect], grant_types: ['authorization_code', 'refresh_token'],
             response_types: ['code'], token_endpoint_auth_method: 'none' };
  }
  clientInformation() { return this.saved.client; }
  saveClientInformation(info) { this.saved.client = info; }
  tokens() { return this.saved.tokens; }
  saveTokens(t) { (this.saved.history ??= []).push(t); this.saved.tokens = t; }
  redirectToAuthorization(url) { this.onRedirect(url); }
  saveCodeVerifier(v) { this.saved.verifier = v; }
  codeVerifier() { return this.saved.verifier; }
}

// A loopback redirect target, as a native client runs one: resolves each code it is sent.
async function callbackServer() {
  let waiting;
  const server = http.createServer((req, res) => {
    const u = new URL(req.url, 'http://127.0.0.1');
    res.end('You can close this window.');
    waiting?.(u.searchParams);
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return {
    url: `http://127.0.0.1:${server.address().port}/callback`,
    next: () => new Promise((r) => { waiting = r; }),
    close: () => server.close(),
  };
}

describe('built-in authorization server', () => {
  const dir = path.join(tmp, 'builtin');
  const config = path.join(dir, 'toolwarden.yaml');
  const record = path.join(dir, 'record.jsonl');
  let gw;
  let browser;
  let page;
  let callback;
  const clients = [];

  before(async () => {
    fs.mkdirSync(dir, { recursive: true });
    fs.writeFileSync(path.join(dir, 'allow.yaml'), 'version: "1"\ndefault: allow\n');
    fs.writeFileSync(config, [
      'listen: 127.0.0.1:0', `state: sqlite:${path.join(dir, 'state.db')}`, 'shutdown_timeout: 2s',
      'auth:', '  access_token_ttl: 3s', 'servers:',
      '  rec:', '    command: node', `    args: [${JSON.stringify(RECORDER)}, ${JSON.stringify(record)}]`, '    policy: allow.yaml',
      '  everything:', '    command: node', `    args: [${JSON.stringify(EVERYTHING)}, stdio]`, '    policy: allow.yaml', '',
    ].join('\n'));
    gw = await startServe(config);
    callback = await callbackServer();
    browser = await launchBrowser();
    page = await (await browser.newContext()).newPage();
  });
  after(async () => {
    for (const c of clients) await c.close().catch(() => {});
    await browser?.close();
    callback?.close();
    await stop(gw?.proc);
  });

  // The whole flow as an agent's owner lives it: the client opens the browser, the person logs
  // in to the console, ticks servers and approves; the client gets its tokens and connects.
  const signIn = async ({ servers, login = true } = {}) => {
    let opened;
    const redirected = new Promise((r) => { opened = r; });
    const provider = new MemoryProvider(callback.url, opened);
    const first = new Client({ name: 'oauth-e2e', version: '1' });
    const transport = new StreamableHTTPClientTransport(new URL(`${gw.base}/mcp`), { authProvider: provider });
    await assert.rejects(first.connect(transport), /Unauthorized/);
    const authUrl = await redirected;
    const code = callback.next();
    await page.goto(authUrl.toString());
    if (login) {
      await page.locator('#login-consent').waitFor();
      await page.getByLabel('Admin token').fill(gw.adminToken);
      await page.getByRole('button', { name: 'Log in' }).click();
    }
    await page.getByRole('heading', { level: 1, name: 'Sign-in request' }).waitFor();
    assert.match(await page.locator('#consent-title').textContent(), /toolwarden e2e agent wants to call tools/);
    assert.match(await page.locator('#consent-redirect').textContent(), /^127\.0\.0\.1:\d+$/);
    for (const name of ['rec', 'everything']) {
      const box = page.getByLabel(name, { exact: true });
      if (servers.includes(name)) await box.check(); else await box.uncheck();
    }
    await page.getByLabel('For how long').selectOption('7d');
    await page.getByRole('button', { name: 'Approve' }).click();
    const params = await code;
    assert.equal(params.get('iss'), gw.base);
    await transport.finishAuth(params.get('code'));
    const client = new Client({ name: 'oauth-e2e', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${gw.base}/mcp`), { authProvider: provider }));
    clients.push(client);
    return { client, provider };
  };

  it('answers 401 with the metadata an MCP client follows', async () => {
    const r = await post(`${gw.base}/mcp`);
    assert.equal(r.status, 401);
    const challenge = r.headers.get('www-authenticate');
    assert.match(challenge, /^Bearer realm="toolwarden", resource_metadata="http:\/\/127\.0\.0\.1:\d+\/\.well-known\/oauth-protected-resource\/mcp"$/);
    const prm = await (await fetch(challenge.match(/resource_metadata="([^"]+)"/)[1])).json();
    assert.equal(prm.resource, `${gw.base}/mcp`);
    assert.deepEqual(prm.authorization_servers, [gw.base]);
    assert.deepEqual(prm.scopes_supported, ['mcp', 'mcp:everything', 'mcp:rec']);
    const as = await (await fetch(`${gw.base}/.well-known/oauth-authorization-server`)).json();
    assert.equal(as.issuer, gw.base);
    assert.deepEqual(as.code_challenge_methods_supported, ['S256']);
    const bad = await fetch(as.registration_endpoint, { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ client_name: 'x', redirect_uris: ['http://evil.example.com/cb'] }) });
    assert.equal(bad.status, 400);
    assert.equal((await bad.json()).error, 'invalid_redirect_uri');
    const wrong = await post(`${gw.base}/mcp`, 'twat_' + 'a'.repeat(43));
    assert.equal(wrong.status, 401);
    assert.match(wrong.headers.get('www-authenticate'), /error="invalid_token", error_description="unknown token"/);
  });

  it('an SDK client signs in through the consent page in Chromium and calls only what was granted', async () => {
    const { client, provider } = await signIn({ servers: ['rec'] });
    const { tools } = await client.listTools();
    assert.deepEqual(tools.map((t) => t.name).sort(), ['rec__echo', 'rec__pay', 'rec__release', 'rec__wait']);
    assert.match(text(await client.callTool({ name: 'rec__echo', arguments: { message: 'signed in' } })), /signed in/);
    assert.match(provider.tokens().access_token, /^twat_[A-Za-z0-9]{43}$/);
    assert.match(provider.tokens().refresh_token, /^twrt_/);
    assert.equal(provider.tokens().scope, 'mcp:rec');
    const grants = spawnSync(TOOLWARDEN, ['grants', 'list', '-c', config, '--json'], { encoding: 'utf8' })
      .stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l));
    const grant = grants.find((g) => g.client === 'toolwarden e2e agent');
    assert.ok(grant, 'the consent made a grant');
    assert.match(grant.name, /^toolwarden-e2e-agent-[a-z0-9]{6}$/);
    assert.equal(grant.principal, 'admin');
    assert.deepEqual(grant.servers, ['rec']);
    assert.ok(grant.expires_ms > Date.now() + 6 * 86400_000, 'for a week');
    const records = auditOf(config);
    for (const event of ['oauth.register', 'oauth.consent', 'oauth.token']) {
      assert.ok(records.some((x) => x.tool === event && x.decision === 'allow'), `${event} audited`);
    }
    const call = records.find((x) => x.tool === 'echo' && x.server === 'rec');
    assert.equal(call.grant, grant.name);
    assert.equal(call.principal, 'admin');
    // The grants page shows who it is for.
    await page.goto(`${gw.base}/ui/#/grants`);
    await page.getByRole('row', { name: new RegExp(grant.name) }).getByText('admin (toolwarden e2e agent, signed in)').waitFor();
  });

  it('rotates refresh tokens; a replayed one ends the whole sign-in', async () => {
    const { client, provider } = await signIn({ servers: ['rec'], login: false });
    const firstRefresh = provider.tokens().refresh_token;
    const firstAccess = provider.tokens().access_token;
    // Polled with a request that opens no session (an unknown session's ping: 404 while the
    // token is good).
    const probe = { jsonrpc: '2.0', id: 2, method: 'ping' };
    await eventually(async () => (await post(`${gw.base}/mcp`, firstAccess, probe)).status === 401, 10000, 'the access token to expire');
    // The SDK answers the 401 by refreshing, and the call goes through.
    assert.match(text(await client.callTool({ name: 'rec__echo', arguments: { message: 'refreshed' } })), /refreshed/);
    assert.notEqual(provider.tokens().refresh_token, firstRefresh);
    const current = provider.tokens().access_token;
    assert.equal((await post(`${gw.base}/mcp`, current)).status, 200);
    const replay = await fetch(`${gw.base}/oauth/token`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'refresh_token', refresh_token: firstRefresh, client_id: provider.clientInformation().client_id }) });
    assert.equal(replay.status, 400);
    assert.match((await replay.json()).error_description, /used before/);
    assert.equal((await post(`${gw.base}/mcp`, current)).status, 401, 'the chain\'s access token is dead too');
    assert.ok(auditOf(config).some((x) => x.tool === 'oauth.refresh' && x.decision === 'deny' && /used before/.test(x.reason)));
  });

  it('a revoked grant\'s token is refused at its next request, with nothing forwarded', async () => {
    const { client, provider } = await signIn({ servers: ['rec'], login: false });
    const grant = spawnSync(TOOLWARDEN, ['grants', 'list', '-c', config, '--json'], { encoding: 'utf8' })
      .stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l)).filter((g) => g.state === 'active' && g.client).sort((a, b) => a.created_ms - b.created_ms).at(-1);
    assert.equal(spawnSync(TOOLWARDEN, ['grants', 'revoke', grant.name, '-c', config]).status, 0);
    const before = callsReceived(record).length;
    const r = await post(`${gw.base}/mcp`, provider.tokens().access_token,
      { jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'rec__echo', arguments: { message: 'after revoke' } } });
    assert.equal(r.status, 401);
    assert.match(await r.text(), /token revoked/);
    await assert.rejects(client.callTool({ name: 'rec__echo', arguments: { message: 'after revoke' } }));
    assert.equal(callsReceived(record).length, before);
  });

  it('Claude Code: one command and a sign-in — "Needs authentication" first, "Connected" with a token', async (t) => {
    const claude = path.join(NODE_MODULES, '.bin', 'claude');
    if (!fs.existsSync(claude)) return t.skip('@anthropic-ai/claude-code is not installed');
    const home = path.join(dir, 'home');
    fs.mkdirSync(home, { recursive: true });
    const run = (...args) => spawnSync(claude, args, { encoding: 'utf8', cwd: home, timeout: 60000,
      env: { ...process.env, HOME: home, CLAUDE_CONFIG_DIR: path.join(home, '.claude'), DISABLE_AUTOUPDATER: '1' } });
    const line = (out, name) => out.split('\n').find((l) => l.startsWith(`${name}:`)) ?? out;
    assert.equal(run('mcp', 'add', '--transport', 'http', 'gw', `${gw.base}/mcp`).status, 0);
    assert.match(line(run('mcp', 'list').stdout, 'gw'), /Needs authentication/);
    const { provider } = await signIn({ servers: ['everything'], login: false });
    assert.equal(run('mcp', 'add', '--transport', 'http', 'signed', `${gw.base}/mcp`, '--header',
      `Authorization: Bearer ${provider.tokens().access_token}`).status, 0);
    assert.match(line(run('mcp', 'list').stdout, 'signed'), /Connected/);
  });
});

describe('company identity provider (oidc-provider)', () => {
  const dir = path.join(tmp, 'oidc');
  const config = path.join(dir, 'toolwarden.yaml');
  const record = path.join(dir, 'record.jsonl');
  let gw;
  let idp;
  let other;
  let issuer;
  let resource;

  const startIdp = async (forResource, consoleRedirect) => {
    const proc = spawn(process.execPath, [path.join(FIXTURES, 'oidc-provider.mjs'), forResource, ...(consoleRedirect ? [consoleRedirect] : [])],
      { stdio: ['ignore', 'pipe', 'pipe'] });
    const url = await waitForOutput(proc, 'stdout', (s) => s.match(/issuer (\S+)/)?.[1], 15000, 'oidc-provider to listen');
    return { proc, url };
  };
  const token = async (client, scope = 'mcp', from = idp, forResource = undefined) => {
    const r = await fetch(`${from.url}/token`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
      body: new URLSearchParams({ grant_type: 'client_credentials', client_id: client, client_secret: `${client}-secret`,
                                  resource: forResource ?? (from === idp ? resource : other.resource), scope }) });
    assert.equal(r.status, 200, await r.clone().text());
    return (await r.json()).access_token;
  };
  const connect = async (accessToken, route = '/mcp') => {
    const client = new Client({ name: 'idp-e2e', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${gw.base}${route}`), {
      requestInit: { headers: { Authorization: `Bearer ${accessToken}` } } }));
    return client;
  };

  before(async () => {
    fs.mkdirSync(dir, { recursive: true });
    const port = await freePort();
    resource = `http://127.0.0.1:${port}/mcp`;
    idp = await startIdp(resource, `http://127.0.0.1:${port}/api/login/sso/callback`);
    issuer = idp.url;
    other = await startIdp('http://127.0.0.1:1/mcp');
    other.resource = 'http://127.0.0.1:1/mcp';
    fs.writeFileSync(path.join(dir, 'policy.yaml'), [
      'version: "1"', 'default: deny', 'tools:',
      '  echo:', '    groups: [sre]',
      '  pay:', '    principals: [dev-agent]', '    limits:', '      - {counter: pay, max: 2, window: hour, scope: principal}', '',
    ].join('\n'));
    fs.writeFileSync(config, [
      `listen: 127.0.0.1:${port}`, `state: sqlite:${path.join(dir, 'state.db')}`, 'shutdown_timeout: 2s',
      'auth:', `  public_url: http://127.0.0.1:${port}`, '  oidc:', `    issuer: ${issuer}`,
      '    console: {client_id: console, client_secret: "${TW_E2E_CONSOLE_SECRET}", admins_group: admins, scopes: openid email groups}',
      'servers:',
      '  rec:', '    command: node', `    args: [${JSON.stringify(RECORDER)}, ${JSON.stringify(record)}]`, '    policy: policy.yaml',
      '  ops:', '    command: node', `    args: [${JSON.stringify(EVERYTHING)}, stdio]`, '    policy: policy.yaml', '    groups: [sre]', '',
    ].join('\n'));
    gw = await startServe(config, [], { env: { TW_E2E_CONSOLE_SECRET: 'console-secret' } });
  });
  after(async () => {
    await stop(gw?.proc);
    await stop(idp?.proc);
    await stop(other?.proc);
  });

  it('signs the provider\'s admins in to the console; anyone else is refused', async () => {
    const browser = await launchBrowser();
    try {
      const signIn = async (who) => {
        const page = await (await browser.newContext()).newPage();
        await page.goto(`${gw.base}/ui/#/grants`);
        const link = page.locator('#login-sso');
        assert.match(await link.textContent(), new RegExp(`Sign in with ${new URL(issuer).host}`));
        await link.click();
        await page.locator('input[name="login"]').fill(who);  // the provider's own login page
        await page.locator('input[name="password"]').fill('any');
        await page.locator('button[type="submit"]').click();
        return page;
      };
      const root = await signIn('root');
      await root.getByRole('heading', { level: 1, name: 'Grants' }).waitFor();  // back where it started
      // A consent given by a person signed in through the provider is that person's grant.
      const reg = await (await fetch(`${gw.base}/oauth/register`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ client_name: 'root laptop', redirect_uris: ['http://127.0.0.1:9/cb'] }) })).json();
      const challenge = 'E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM';
      const authorize = await fetch(`${gw.base}/oauth/authorize?response_type=code&client_id=${reg.client_id}&code_challenge=${challenge}&code_challenge_method=S256`,
        { redirect: 'manual' });
      await root.goto(`${gw.base}${authorize.headers.get('location')}`);
      await root.getByRole('button', { name: 'Approve' }).click();
      const made = await eventually(() => spawnSync(TOOLWARDEN, ['grants', 'list', '-c', config, '--json'], { encoding: 'utf8' })
        .stdout.split('\n').filter(Boolean).map((l) => JSON.parse(l)).find((g) => g.client === 'root laptop'), 10000, 'the grant');
      assert.equal(made.principal, 'root');
      const dev = await signIn('dev');
      await dev.getByRole('alert').filter({ hasText: 'dev is not in the admins group' }).waitFor();
      assert.equal(await dev.locator('#login-sso').count(), 1, 'the login page is shown again');
      const logins = auditOf(config).filter((x) => x.tool === 'console.login');
      assert.ok(logins.some((x) => /as root/.test(x.reason)));
      assert.ok(logins.some((x) => /refused: dev is not in the admins group/.test(x.reason)));
    } finally {
      await browser.close();
    }
  });

  it('names the provider in the resource metadata', async () => {
    const prm = await (await fetch(`${gw.base}/.well-known/oauth-protected-resource/mcp`)).json();
    assert.deepEqual(prm.authorization_servers, [issuer]);
    assert.equal(prm.resource, resource);
  });

  it('a provider token names the principal and groups policies and servers decide by', async () => {
    const sre = await eventually(async () => {
      try { return await connect(await token('ci-agent')); } catch { return null; }
    }, 15000, 'the gateway to know the provider\'s keys');
    assert.match(text(await sre.callTool({ name: 'rec__echo', arguments: { message: 'from sre' } })), /from sre/);
    const denied = await sre.callTool({ name: 'rec__pay', arguments: { amount: 1 } });
    assert.equal(denied.isError, true);
    assert.match(text(denied), /may be called only by dev-agent \(you are ci-agent\)/);
    assert.ok((await sre.listTools()).tools.some((t) => t.name.startsWith('ops__')), 'sre may use ops');
    const dev = await connect(await token('dev-agent'));
    const tools = (await dev.listTools()).tools.map((t) => t.name);
    assert.ok(!tools.some((n) => n.startsWith('ops__')), 'ops is for sre only');
    assert.match(text(await dev.callTool({ name: 'rec__echo', arguments: { message: 'x' } })), /members of sre \(you are dev-agent\)/);
    // scope: principal counts per person, whichever session or token.
    for (let i = 0; i < 2; i++) assert.equal((await dev.callTool({ name: 'rec__pay', arguments: { amount: 1 } })).isError, undefined);
    const again = await connect(await token('dev-agent'));
    assert.match(text(await again.callTool({ name: 'rec__pay', arguments: { amount: 1 } })), /limit/i);
    const forbidden = await post(`${gw.base}/mcp/ops`, await token('dev-agent'));
    assert.equal(forbidden.status, 403);
    const records = auditOf(config);
    const echo = records.find((x) => x.tool === 'echo' && x.decision === 'allow');
    assert.equal(echo.principal, 'ci-agent');
    assert.equal(echo.grant, 'idp:ci-agent');
    for (const c of [sre, dev, again]) await c.close();
  });

  it('a token scoped to one server gets 403 insufficient_scope elsewhere', async () => {
    const narrow = await token('narrow', 'mcp:everything');
    const r = await post(`${gw.base}/mcp/rec`, narrow);
    assert.equal(r.status, 403);
    assert.match(r.headers.get('www-authenticate'), /error="insufficient_scope", error_description="[^"]*", scope="mcp:rec"/);
    assert.match(r.headers.get('www-authenticate'), /resource_metadata="/);
  });

  it('401 matrix: forged, unsigned, another issuer\'s, for another audience — nothing forwarded', async () => {
    const before = callsReceived(record).length;
    const good = await token('ci-agent');
    const [h, p, s] = good.split('.');
    const b64 = (o) => Buffer.from(JSON.stringify(o)).toString('base64url');
    const claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    const call = { jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'rec__echo', arguments: { message: 'x' } } };
    const cases = {
      'a forged signature': `${h}.${p}.${s.slice(0, -4)}AAAA`,
      'claims changed after signing': `${h}.${b64({ ...claims, groups: ['sre', 'admins'], exp: claims.exp + 3600 })}.${s}`,
      'alg none': `${b64({ alg: 'none', typ: 'at+jwt' })}.${p}.`,
      'HS256 keyed with nothing': `${b64({ alg: 'HS256', kid: JSON.parse(Buffer.from(h, 'base64url')).kid })}.${p}.${s}`,
      'another issuer\'s token': await token('ci-agent', 'mcp', other),
      'a token for another resource': await token('ci-agent', 'mcp', idp, 'https://elsewhere.example.com/mcp'),
    };
    for (const [what, bad] of Object.entries(cases)) {
      const r = await post(`${gw.base}/mcp`, bad, call);
      assert.equal(r.status, 401, what);
      assert.match(r.headers.get('www-authenticate'), /error="invalid_token"/, what);
    }
    assert.equal(callsReceived(record).length, before, 'no call reached the server');
    const records = auditOf(config).filter((x) => x.rule === 'authentication');
    assert.ok(records.some((x) => /signature does not verify/.test(x.reason)));
    assert.ok(records.some((x) => /algorithm "none"/.test(x.reason)));
    assert.ok(records.some((x) => /for another audience/.test(x.reason)));
    assert.ok(records.some((x) => /issued by another issuer/.test(x.reason)));
  });

  it('follows the provider\'s key rotation: new keys fetched, the old key\'s tokens refused', async () => {
    const old = await token('ci-agent');
    assert.equal((await post(`${gw.base}/mcp`, old)).status, 200);
    assert.equal(await (await fetch(`${issuer}/rotate`, { method: 'POST' })).text(), 'rotated\n');
    const fresh = await token('ci-agent');
    let retried = false;
    await eventually(async () => {
      const r = await post(`${gw.base}/mcp`, fresh);
      if (r.status === 503) {
        retried = true;
        assert.ok(r.headers.get('retry-after'));
      }
      return r.status === 200;
    }, 20000, 'the new key to be fetched');
    assert.ok(retried, 'the first request was asked to come back while the keys were fetched');
    await eventually(async () => (await post(`${gw.base}/mcp`, old)).status === 401, 20000, 'the old key to be refused');
  });
});

describe('upstream credentials per person (credentials: per_principal)', () => {
  const dir = path.join(tmp, 'percred');
  const config = path.join(dir, 'toolwarden.yaml');
  const keyFile = path.join(dir, 'credential.key');
  let upstream;
  let gw;
  const cli = (args, input) => spawnSync(TOOLWARDEN, args, { encoding: 'utf8', input });
  const grant = (name, ...extra) => {
    const r = cli(['grants', 'create', name, '-c', config, '--json', ...extra]);
    assert.equal(r.status, 0, r.stderr);
    return JSON.parse(r.stdout).token;
  };
  const connect = async (token, route = '/mcp') => {
    const client = new Client({ name: 'percred-e2e', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${gw.base}${route}`), {
      requestInit: { headers: { Authorization: `Bearer ${token}` } } }));
    return client;
  };
  const seen = () => upstream.proc.stderrText.split('\n').filter((l) => l.startsWith('HEADERS ')).map((l) => JSON.parse(l.slice(8)));

  before(async () => {
    fs.mkdirSync(dir, { recursive: true });
    upstream = await startHttpServer('conformance', ['--log-headers']);
    fs.writeFileSync(path.join(dir, 'allow.yaml'), 'version: "1"\ndefault: allow\n');
    const lines = (key) => [
      'listen: 127.0.0.1:0', `state: sqlite:${path.join(dir, 'state.db')}`, 'shutdown_timeout: 2s',
      ...(key ? ['auth:', `  credential_key_file: ${keyFile}`] : []), 'servers:',
      '  gh:', `    url: ${upstream.base}/mcp`, '    credentials: per_principal', '    headers: {X-Static: shared}', '    policy: allow.yaml', '',
    ].join('\n');
    // Without a key the gateway does not start: the operator hears it, not the first user.
    fs.writeFileSync(config, lines(false));
    const refused = spawnSync(TOOLWARDEN, ['serve', '-c', config], { encoding: 'utf8', timeout: 20000,
      env: { ...process.env, TOOLWARDEN_CREDENTIAL_KEY: '' } });
    assert.notEqual(refused.status, 0);
    assert.match(refused.stderr, /servers\.gh\.credentials: per_principal: no credential key/);
    const key = cli(['credentials', 'key']).stdout.trim();
    assert.match(key, /^[0-9a-f]{64}$/);
    fs.writeFileSync(keyFile, `${key}\n`, { mode: 0o600 });
    fs.writeFileSync(config, lines(true));
    gw = await startServe(config, [], { env: { TOOLWARDEN_CREDENTIAL_KEY: '' } });
  });
  after(async () => {
    await stop(gw?.proc);
    await stop(upstream?.proc);
  });

  it('sends each person\'s own headers upstream, never the agent\'s token, and nobody\'s for a person without', async () => {
    const set = cli(['credentials', 'set', 'gh', 'alice@example.com', '--header', 'Authorization', '--header', 'X-Static', '-c', config],
      'Bearer alice-upstream-token\nalice-static\n');
    assert.equal(set.status, 0, set.stderr);
    const alice = grant('alice-laptop', '--principal', 'alice@example.com');
    const bob = grant('bob-laptop', '--principal', 'bob@example.com');
    const a = await connect(alice);
    assert.ok((await a.listTools()).tools.some((t) => t.name === 'gh__test_simple_text'));
    await a.callTool({ name: 'gh__test_simple_text', arguments: {} });
    const headers = seen();
    assert.ok(headers.length > 0);
    for (const h of headers) {
      assert.equal(h.authorization, 'Bearer alice-upstream-token');
      assert.equal(h['x-static'], 'alice-static', 'the person\'s header replaces the config\'s of the same name');
    }
    const b = await connect(bob);
    assert.ok(!(await b.listTools()).tools.some((t) => t.name.startsWith('gh__')), 'bob has no credentials: gh is not offered');
    const direct = await post(`${gw.base}/mcp/gh`, bob);
    assert.equal(direct.status, 403);
    assert.match(await direct.text(), /no credentials are stored for bob@example\.com \(toolwarden credentials set\)/);
    assert.ok(seen().every((h) => h.authorization === 'Bearer alice-upstream-token'), 'nothing went upstream for bob');
    const list = cli(['credentials', 'list', '-c', config, '--json']).stdout.trim().split('\n').map((l) => JSON.parse(l));
    assert.deepEqual(list.map((c) => [c.server, c.principal, c.headers]), [['gh', 'alice@example.com', ['Authorization', 'X-Static']]]);
    assert.ok(!fs.readFileSync(path.join(dir, 'state.db')).includes('alice-upstream-token'), 'encrypted at rest');
    assert.equal(cli(['credentials', 'delete', 'gh', 'alice@example.com', '-c', config]).status, 0);
    const again = await connect(alice);
    assert.ok(!(await again.listTools()).tools.some((t) => t.name.startsWith('gh__')), 'deleted: new sessions do not get gh');
    for (const c of [a, b, again]) await c.close();
  });
});

describe('Client ID Metadata Documents', () => {
  const dir = path.join(tmp, 'cimd');
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  let docs;
  let gw;
  let strict;
  let browser;
  let callback;
  let docUrl;

  before(async () => {
    fs.mkdirSync(dir, { recursive: true });
    execFileSync('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1',
      '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { stdio: 'ignore' });
    callback = await callbackServer();
    // The client's own site, publishing its metadata document.
    docs = https.createServer({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) }, (req, res) => {
      res.setHeader('Content-Type', 'application/json');
      res.end(JSON.stringify({ client_id: docUrl, client_name: 'Described Agent', redirect_uris: [callback.url],
                               grant_types: ['authorization_code', 'refresh_token'], token_endpoint_auth_method: 'none' }));
    });
    await new Promise((r) => docs.listen(0, '127.0.0.1', r));
    docUrl = `https://127.0.0.1:${docs.address().port}/oauth/client.json`;
    fs.writeFileSync(path.join(dir, 'allow.yaml'), 'version: "1"\ndefault: allow\n');
    const write = (file, extra) => fs.writeFileSync(file, [
      'listen: 127.0.0.1:0', `state: sqlite:${path.join(dir, `${path.basename(file)}.db`)}`, 'shutdown_timeout: 2s', ...extra, 'servers:',
      '  everything:', '    command: node', `    args: [${JSON.stringify(EVERYTHING)}, stdio]`, '    policy: allow.yaml', '',
    ].join('\n'));
    // The document's host is a loopback address here: allowed explicitly, with its CA.
    write(path.join(dir, 'open.yaml'), ['auth:', `  client_metadata: {private_addresses: true, ca_file: ${cert}}`]);
    write(path.join(dir, 'strict.yaml'), ['auth:', `  client_metadata: {ca_file: ${cert}}`]);
    gw = await startServe(path.join(dir, 'open.yaml'));
    strict = await startServe(path.join(dir, 'strict.yaml'));
    browser = await launchBrowser();
  });
  after(async () => {
    await browser?.close();
    callback?.close();
    docs?.close();
    await stop(gw?.proc);
    await stop(strict?.proc);
  });

  it('a client named by its https URL signs in without registering', async () => {
    const meta = await (await fetch(`${gw.base}/.well-known/oauth-authorization-server`)).json();
    assert.equal(meta.client_id_metadata_document_supported, true);
    let opened;
    const redirected = new Promise((r) => { opened = r; });
    const provider = new MemoryProvider(callback.url, opened, docUrl);
    const transport = new StreamableHTTPClientTransport(new URL(`${gw.base}/mcp`), { authProvider: provider });
    await assert.rejects(new Client({ name: 'cimd', version: '1' }).connect(transport), /Unauthorized/);
    assert.equal(provider.clientInformation().client_id, docUrl, 'no registration: the URL is the client id');
    const page = await (await browser.newContext()).newPage();
    const code = callback.next();
    await page.goto((await redirected).toString());
    await page.getByLabel('Admin token').fill(gw.adminToken);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { level: 1, name: 'Sign-in request' }).waitFor();
    assert.match(await page.locator('#consent-title').textContent(), /^Described Agent wants/);
    assert.match(await page.locator('#consent-described').textContent(), /Described by 127\.0\.0\.1:\d+/);
    await page.getByRole('button', { name: 'Approve' }).click();
    await transport.finishAuth((await code).get('code'));
    const client = new Client({ name: 'cimd', version: '1' });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${gw.base}/mcp`), { authProvider: provider }));
    assert.ok((await client.listTools()).tools.length > 0);
    await client.close();
  });

  it('fetches a document only from where it may: public addresses, unless allowed', async () => {
    const r = await fetch(`${strict.base}/oauth/authorize?response_type=code&client_id=${encodeURIComponent(docUrl)}` +
      '&code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM&code_challenge_method=S256', { redirect: 'manual' });
    assert.equal(r.status, 400);
    assert.match((await r.json()).error_description, /not an address the gateway may fetch from/);
    for (const bad of ['http://example.com/c.json', 'https://example.com', 'https://example.com/c.json#x']) {
      const res = await fetch(`${gw.base}/oauth/authorize?response_type=code&client_id=${encodeURIComponent(bad)}`, { redirect: 'manual' });
      assert.equal(res.status, 400, bad);
    }
  });
});
