// Grants: create (the token is shown once, with a copy button and client config snippets for
// Claude Code, Cursor and any MCP client), list, revoke.
import {h, clear, field, badge, fmtTime, dialog, toast, copyText} from '../lib/dom.js';
import {api} from '../app.js';

export async function render(main) {
  main.append(h('h1', {}, 'Grants'));
  const {servers} = await api('GET', '/api/servers');
  const name = h('input', {type: 'text', required: true, pattern: '[A-Za-z0-9._\\-]{1,64}', placeholder: 'ci-runner', id: 'grant-name'});
  const expires = h('input', {type: 'text', placeholder: 'never (or 30d, 12h)', id: 'grant-expires'});
  const boxes = servers.map(s => h('input', {type: 'checkbox', value: s.name, id: `grant-server-${s.name}`}));
  const error = h('p', {class: 'error', role: 'alert'});
  const created = h('div', {'aria-live': 'polite'});
  const form = h('form', {class: 'card', 'aria-labelledby': 'new-grant'},
    h('h2', {id: 'new-grant'}, 'New grant'),
    h('div', {class: 'grid3'}, field('Name', name, '1-64 of A-Z a-z 0-9 . _ -'), field('Expires after', expires)),
    h('fieldset', {}, h('legend', {}, 'Servers (none ticked: every server)'),
      boxes.map((b, i) => h('label', {for: b.id, class: 'inline'}, b, ' ', servers[i].name))),
    error,
    h('button', {type: 'submit'}, 'Create grant'));
  const list = h('div');
  main.append(form, created, h('section', {'aria-labelledby': 'grants-title'}, h('h2', {id: 'grants-title'}, 'All grants'), list));

  form.addEventListener('submit', async e => {
    e.preventDefault();
    error.textContent = '';
    const body = {name: name.value.trim(), servers: boxes.filter(b => b.checked).map(b => b.value)};
    if (expires.value.trim()) body.expires = expires.value.trim();
    try {
      const g = await api('POST', '/api/grants', body);
      name.value = '';
      expires.value = '';
      showToken(g);
      load();
    } catch (err) {
      error.textContent = err.message;
    }
  });

  function showToken(g) {
    const url = `${location.origin}/mcp`;
    const claude = `claude mcp add --transport http toolwarden ${url} --header "Authorization: Bearer ${g.token}"`;
    const cursor = JSON.stringify({mcpServers: {toolwarden: {url, headers: {Authorization: `Bearer ${g.token}`}}}}, null, 2);
    const vscode = JSON.stringify({servers: {toolwarden: {type: 'http', url, headers: {Authorization: `Bearer ${g.token}`}}}}, null, 2);
    const block = (title, text, id) => {
      const btn = h('button', {type: 'button', class: 'secondary small-btn', onclick: () => copyText(text, btn)}, 'Copy');
      return h('div', {class: 'snippet'}, h('div', {class: 'card-head'}, h('strong', {}, title), h('span', {class: 'spacer'}), btn),
               h('pre', {id, tabindex: '0'}, text));
    };
    clear(created).append(h('section', {class: 'card notice', 'aria-labelledby': 'token-title'},
      h('h2', {id: 'token-title'}, `Grant ${g.name} created`),
      h('p', {}, h('strong', {}, 'Copy the token now: '), 'it is shown only this once (the gateway keeps only its hash).'),
      block('Token', g.token, 'new-token'),
      block('Claude Code', claude, 'snippet-claude'),
      block('Cursor (.cursor/mcp.json)', cursor, 'snippet-cursor'),
      block('VS Code (.vscode/mcp.json)', vscode, 'snippet-vscode'),
      h('p', {class: 'small muted'}, `Every server this grant may use is behind ${url} (tools named server__tool); one server alone is at ${url}/<server>.`),
      h('button', {type: 'button', class: 'secondary', onclick: () => clear(created)}, 'Done — hide the token')));
  }

  async function load() {
    const {grants} = await api('GET', '/api/grants');
    clear(list);
    if (!grants.length) {
      list.append(h('p', {class: 'empty'}, 'No grants yet. Agents need one to call through this gateway.'));
      return;
    }
    list.append(h('table', {class: 'data', id: 'grants-table'},
      h('caption', {class: 'sr-only'}, 'Grants'),
      h('thead', {}, h('tr', {}, ['Name', 'For', 'Servers', 'State', 'Created', 'Expires', 'Last used', ''].map(t => h('th', {scope: 'col'}, t)))),
      h('tbody', {}, grants.map(g => h('tr', {dataset: {grant: g.name}},
        h('th', {scope: 'row'}, g.name),
        h('td', {class: 'small'}, g.client ? `${g.principal || '—'} (${g.client}, signed in)` : g.principal || '—'),
        h('td', {}, g.servers.length ? g.servers.join(', ') : 'every server'),
        h('td', {}, badge(g.state)),
        h('td', {class: 'small'}, fmtTime(g.created_ms)),
        h('td', {class: 'small'}, g.expires_ms ? fmtTime(g.expires_ms) : 'never'),
        h('td', {class: 'small'}, fmtTime(g.last_used_ms)),
        h('td', {}, g.state === 'active' ? h('button', {type: 'button', class: 'danger small-btn', 'aria-label': `Revoke ${g.name}`, onclick: async () => {
          const ok = await dialog(`Revoke ${g.name}?`, h('p', {}, 'Its token stops working at once: the next request gets 401.'), [['cancel', 'Cancel'], ['revoke', 'Revoke', 'danger']]);
          if (ok !== 'revoke') return;
          await api('DELETE', `/api/grants/${encodeURIComponent(g.name)}`);
          toast(`Revoked ${g.name}`);
          load();
        }}, 'Revoke') : null))))));
  }
  await load();
}
