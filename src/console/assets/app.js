// The toolwarden web console: a single page over the admin API (/api/), signed in with a
// session cookie. No framework and no build step; every module is served from the binary.
import {h, clear, field, toast, clearPageToasts} from './lib/dom.js';
import * as servers from './pages/servers.js';
import * as policy from './pages/policy.js';
import * as live from './pages/live.js';
import * as approvals from './pages/approvals.js';
import * as audit from './pages/audit.js';
import * as grants from './pages/grants.js';
import * as consent from './pages/consent.js';

const PAGES = {servers, policy, live, approvals, audit, grants, consent};
let csrf = '';
let current = null;  // {name, page}

export class ApiError extends Error {
  constructor(status, code, message, body) {
    super(message);
    this.status = status;
    this.code = code;
    this.body = body;
  }
}

// Calls the admin API. Bodies go as JSON with the session's CSRF token; a 401 means the
// session has ended, so the login form comes back.
export async function api(method, path, body) {
  const opts = {method, headers: {Accept: 'application/json'}, credentials: 'same-origin'};
  if (method !== 'GET') {
    opts.headers['Content-Type'] = 'application/json';
    opts.headers['X-CSRF-Token'] = csrf;
    if (body !== undefined) opts.body = JSON.stringify(body);
  }
  let res;
  try {
    res = await fetch(path, opts);
  } catch (e) {
    throw new ApiError(0, 'network', 'The gateway cannot be reached: ' + e.message);
  }
  let data = null;
  try { data = await res.json(); } catch { data = null; }
  if (res.status === 401 && path !== '/api/login') {
    showLogin('Your session has ended. Log in again.');
    throw new ApiError(401, 'unauthorized', 'Not logged in');
  }
  if (!res.ok) {
    const err = data && data.error ? data.error : {code: 'http_' + res.status, message: res.statusText};
    throw new ApiError(res.status, err.code, err.message, data);
  }
  return data;
}

// ---- Approvals: title badge, nav badge and an optional sound, wherever the user is. ----
let pendingCount = 0;
export async function refreshApprovalBadge(announce) {
  try {
    const data = await api('GET', '/api/approvals');
    const n = data.approvals.length;
    const badgeEl = document.getElementById('approvals-badge');
    badgeEl.hidden = n === 0;
    badgeEl.textContent = String(n);
    badgeEl.setAttribute('aria-label', `${n} pending`);
    document.title = (n ? `(${n}) ` : '') + 'toolwarden';
    if (announce && n > pendingCount) {
      toast(`A call is waiting for approval (${n} pending)`, 'warn', {global: true});
      if (localStorage.getItem('tw-sound') === '1') beep();
    }
    pendingCount = n;
  } catch { /* shown elsewhere */ }
}

function beep() {
  try {
    const ctx = new AudioContext();
    const osc = ctx.createOscillator();
    const gain = ctx.createGain();
    osc.frequency.value = 880;
    gain.gain.value = 0.08;
    osc.connect(gain).connect(ctx.destination);
    osc.start();
    osc.stop(ctx.currentTime + 0.18);
  } catch { /* no audio */ }
}

// ---- The live event stream, shared by every page. ----
const listeners = new Set();
let source = null;
export function onEvent(fn) {
  listeners.add(fn);
  return () => listeners.delete(fn);
}
function openEvents() {
  if (source) source.close();
  source = new EventSource('/api/events');
  const dispatch = type => e => {
    let data = {};
    try { data = JSON.parse(e.data); } catch { /* keep {} */ }
    for (const fn of listeners) fn(type, data);
    if (type === 'decision' && data.decision === 'approval') refreshApprovalBadge(true);
  };
  for (const type of ['decision', 'outcome', 'lagged']) source.addEventListener(type, dispatch(type));
  source.addEventListener('open', () => document.body.classList.remove('offline'));
  source.addEventListener('error', () => document.body.classList.add('offline'));
}

// ---- Login ----
function showLogin(message) {
  if (source) { source.close(); source = null; }
  if (current && current.page.leave) current.page.leave();
  current = null;
  document.querySelector('header.top').hidden = true;
  const main = clear(document.getElementById('main'));
  const token = h('input', {type: 'password', name: 'token', autocomplete: 'current-password',
                            required: true, placeholder: 'twa_…', spellcheck: 'false'});
  const error = h('p', {class: 'error', role: 'alert'}, message || '');
  const form = h('form', {class: 'login card', 'aria-labelledby': 'login-title'},
    h('h1', {id: 'login-title'}, 'toolwarden console'),
    location.hash.startsWith('#/consent/')
      ? h('p', {id: 'login-consent'}, h('strong', {}, 'An MCP client asks to sign in through this gateway. '), 'Log in to review it.')
      : null,
    h('p', {class: 'muted'}, 'Log in with the admin token that toolwarden serve printed at its first start ',
      '(or make a new one with ', h('code', {}, 'toolwarden admin reset-token -c toolwarden.yaml'), ').'),
    field('Admin token', token),
    error,
    h('button', {type: 'submit'}, 'Log in'));
  form.addEventListener('submit', async e => {
    e.preventDefault();
    error.textContent = '';
    try {
      const res = await api('POST', '/api/login', {token: token.value.trim()});
      csrf = res.csrf;
      token.value = '';
      // The cookie is Secure: a browser keeps it on https and on localhost/127.0.0.1 only.
      try {
        await fetch('/api/session', {credentials: 'same-origin'}).then(r => { if (!r.ok) throw new Error(); });
      } catch {
        error.textContent = 'Logged in, but the browser did not keep the session cookie. ' +
                            'Open the console over HTTPS, or on 127.0.0.1 or localhost.';
        return;
      }
      start();
    } catch (err) {
      error.textContent = err.message;
      token.focus();
    }
  });
  main.append(form);
  token.focus();
  // The identity provider, when the gateway trusts one for the console (auth.oidc.console).
  const ssoError = new URLSearchParams(location.search).get('sso_error');
  if (ssoError && !message) error.textContent = 'Sign-in through the identity provider failed: ' + ssoError;
  fetch('/api/login', {headers: {Accept: 'application/json'}}).then(r => r.ok ? r.json() : {}).then(({sso}) => {
    if (!sso || !form.isConnected) return;
    const link = h('a', {class: 'button', id: 'login-sso', href: `/api/login/sso?return=${encodeURIComponent(location.hash || '#/servers')}`},
      `Sign in with ${new URL(sso).host}`);
    form.insertBefore(h('p', {}, link, ' ', h('span', {class: 'muted'}, 'or:')), form.querySelector('p.muted'));
  }).catch(() => {});
}

// ---- Shell and routing ----
function route() {
  const [, name = 'servers', ...rest] = (location.hash || '#/servers').split('/');
  const page = PAGES[name] || servers;
  if (current && current.page.leave) current.page.leave();
  current = {name, page};
  clearPageToasts();
  for (const a of document.querySelectorAll('nav a')) {
    if (a.dataset.page === name) a.setAttribute('aria-current', 'page');
    else a.removeAttribute('aria-current');
  }
  // Each visit renders into its own container: a slow render of a page the user has already
  // left ends up detached instead of mixing into the next page.
  const main = clear(document.getElementById('main'));
  const view = h('div', {class: 'view'});
  main.append(view);
  Promise.resolve(page.render(view, rest.map(decodeURIComponent))).catch(err => {
    if (err instanceof ApiError && err.status === 401) return;
    view.append(h('p', {class: 'error', role: 'alert'}, 'This page could not be loaded: ' + err.message));
  });
  main.focus({preventScroll: true});
}

function start() {
  document.querySelector('header.top').hidden = false;
  openEvents();
  refreshApprovalBadge(false);
  if (!location.hash || location.hash === '#') location.hash = '#/servers';  // routes on hashchange
  else route();
}

async function boot() {
  const sound = document.getElementById('sound');
  sound.checked = localStorage.getItem('tw-sound') === '1';
  sound.addEventListener('change', () => localStorage.setItem('tw-sound', sound.checked ? '1' : '0'));
  document.getElementById('logout').addEventListener('click', async () => {
    try { await api('POST', '/api/logout', {}); } catch { /* gone anyway */ }
    csrf = '';
    showLogin('Logged out.');
  });
  window.addEventListener('hashchange', () => { if (csrf) route(); });
  setInterval(() => { if (csrf) refreshApprovalBadge(true); }, 10000);
  const res = await fetch('/api/session', {credentials: 'same-origin'});
  if (res.ok) {
    const s = await res.json();
    if (s.csrf) {
      csrf = s.csrf;
      start();
      return;
    }
  }
  showLogin();
}

boot();
