// The built-in authorization server's consent screen: an MCP client (Claude Code, Cursor,
// VS Code…) asks to act through this gateway; the person signed in chooses which servers and
// for how long, or declines. Approving makes a grant (listed under Grants, revoked there like
// any other) and sends the browser back to the client with a one-time code.
import {h, field} from '../lib/dom.js';
import {api} from '../app.js';

const DURATIONS = [['1d', 'One day'], ['7d', 'One week'], ['30d', '30 days'], ['90d', '90 days'], ['', 'Until revoked']];

export async function render(main, [id = '']) {
  main.append(h('h1', {}, 'Sign-in request'));
  let req;
  try {
    req = await api('GET', `/api/oauth/consents/${encodeURIComponent(id)}`);
  } catch (err) {
    main.append(h('p', {class: 'error', role: 'alert', id: 'consent-over'},
      err.status === 404 ? 'This sign-in is over: it expired or was already answered. Start it again from the client.' : err.message));
    return;
  }
  let redirectHost = req.redirect_uri;
  try { const u = new URL(req.redirect_uri); redirectHost = u.protocol === 'http:' || u.protocol === 'https:' ? u.host : u.protocol; } catch { /* shown whole */ }
  const wanted = new Set(req.scopes.filter(s => s.startsWith('mcp:')).map(s => s.slice(4)));
  const all = req.scopes.length === 0 || req.scopes.includes('mcp') || wanted.size === 0;
  const boxes = req.servers.map(s => h('input', {type: 'checkbox', value: s, id: `consent-server-${s}`, checked: all || wanted.has(s)}));
  const duration = h('select', {id: 'consent-expires'}, DURATIONS.map(([v, t]) => h('option', {value: v, selected: v === '30d'}, t)));
  const principal = h('input', {type: 'text', id: 'consent-principal', placeholder: 'admin', autocomplete: 'off'});
  const error = h('p', {class: 'error', role: 'alert'});
  const answer = async approve => {
    error.textContent = '';
    const body = {approve};
    if (approve) {
      const chosen = boxes.filter(b => b.checked).map(b => b.value);
      if (!chosen.length) { error.textContent = 'Tick at least one server, or decline.'; return; }
      body.servers = chosen.length === boxes.length ? [] : chosen;
      if (duration.value) body.expires = duration.value;
      if (principal.value.trim()) body.principal = principal.value.trim();
    }
    try {
      const {redirect} = await api('POST', `/api/oauth/consents/${encodeURIComponent(id)}`, body);
      main.append(h('p', {role: 'status', id: 'consent-done'}, approve ? 'Approved — returning to the client…' : 'Declined — returning to the client…'));
      location.assign(redirect);
    } catch (err) {
      error.textContent = err.message;
    }
  };
  main.append(h('section', {class: 'card', 'aria-labelledby': 'consent-title'},
    h('h2', {id: 'consent-title'}, `${req.client} wants to call tools through this gateway`),
    /^https:\/\//.test(req.client_id)
      ? h('p', {class: 'small muted', id: 'consent-described'}, `Described by ${new URL(req.client_id).host} (${req.client_id})`)
      : null,
    h('p', {}, 'After you approve, it is sent back to ', h('strong', {id: 'consent-redirect'}, redirectHost),
      ' and may call the servers ticked below, every call decided by their policies and recorded in the audit.'),
    h('fieldset', {}, h('legend', {}, 'Servers'),
      boxes.map((b, i) => h('label', {for: b.id, class: 'inline'}, b, ' ', req.servers[i]))),
    field('For how long', duration),
    field('Acting for', principal, 'The person policies name (principals:); empty: you, the admin'),
    error,
    h('div', {class: 'actions'},
      h('button', {type: 'button', id: 'consent-approve', onclick: () => answer(true)}, 'Approve'),
      h('button', {type: 'button', class: 'secondary', id: 'consent-decline', onclick: () => answer(false)}, 'Decline'))));
}
