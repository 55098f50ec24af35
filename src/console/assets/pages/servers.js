// Servers & tools: every server with its health, every tool with category, risk, pin state
// (changed definitions stand out, with a diff and Accept) and what the policy does with it.
import {h, clear, badge, fmtTime, dialog, toast} from '../lib/dom.js';
import {renderDiff} from '../lib/diff.js';
import {api} from '../app.js';

export async function render(main, [focus]) {
  main.append(h('h1', {}, 'Servers & tools'));
  const {servers} = await api('GET', '/api/servers');
  if (!servers.length) {
    main.append(h('p', {class: 'empty'}, 'No servers are configured. Add one under ',
                  h('code', {}, 'servers:'), ' in toolwarden.yaml; the gateway picks it up without a restart.'));
    return;
  }
  const table = h('table', {class: 'data'},
    h('caption', {class: 'sr-only'}, 'Configured servers'),
    h('thead', {}, h('tr', {}, ['Server', 'State', 'Transport', 'Target', 'Policy', 'Pins'].map(t => h('th', {scope: 'col'}, t)))),
    h('tbody', {}, servers.map(s => h('tr', {},
      h('th', {scope: 'row'}, h('a', {href: `#/servers/${encodeURIComponent(s.name)}`}, s.name)),
      h('td', {}, badge(s.state), s.last_error ? h('div', {class: 'small error'}, s.last_error) : null),
      h('td', {}, s.transport + (s.isolation ? ` (${s.isolation})` : '')),
      h('td', {class: 'mono small'}, s.target),
      h('td', {class: 'small'}, s.policy ? h('a', {href: `#/policy/${encodeURIComponent(s.name)}`}, s.policy) : h('span', {class: 'muted'}, 'none (allow all)')),
      h('td', {}, s.pins)))));
  main.append(table);
  const sections = await Promise.all(servers.map(toolsSection));
  main.append(...sections);
  // #/servers/<name> opens the page at that server's tools.
  const target = focus && sections[servers.findIndex(s => s.name === focus)];
  if (target) target.scrollIntoView({block: 'start'});
}

async function toolsSection(server) {
  const section = h('section', {class: 'card', 'aria-labelledby': `tools-${server.name}`});
  const body = h('div');
  section.append(h('h2', {id: `tools-${server.name}`}, `Tools of ${server.name}`), body);
  await fillTools(server, body);
  return section;
}

async function fillTools(server, body) {
  clear(body);
  const {tools} = await api('GET', `/api/servers/${encodeURIComponent(server.name)}/tools`);
  if (!tools.length) {
    body.append(h('p', {class: 'empty'}, server.pins === 'off'
      ? 'Pins are off for this server, so the gateway keeps no inventory of its tools.'
      : 'No tools seen yet: they appear once an agent (or toolwarden tools -c) has listed them.'));
    return;
  }
  const changed = tools.filter(t => t.changed);
  const filter = h('input', {type: 'search', placeholder: 'Filter tools', 'aria-label': `Filter the tools of ${server.name}`});
  const bar = h('div', {class: 'toolbar'}, filter,
    h('span', {class: 'muted'}, `${tools.length} tools`),
    changed.length ? h('span', {class: 'pill warn'}, `${changed.length} changed`) : null,
    changed.length ? h('button', {type: 'button', onclick: async () => {
      const ok = await dialog('Accept every changed tool?', h('p', {}, `${changed.length} tool definition(s) of ${server.name} will be pinned as they are now.`), [['cancel', 'Cancel'], ['ok', 'Accept all']]);
      if (ok !== 'ok') return;
      await api('POST', `/api/servers/${encodeURIComponent(server.name)}/accept`, {});
      toast(`Accepted ${changed.length} change(s)`);
      fillTools(server, body);
    }}, 'Accept all changes') : null);
  const tbody = h('tbody');
  const table = h('table', {class: 'data tools'},
    h('caption', {class: 'sr-only'}, `Tools of ${server.name}`),
    h('thead', {}, h('tr', {}, ['Tool', 'Category', 'Risk', 'Decision', 'Rule', 'Pin', ''].map(t => h('th', {scope: 'col'}, t)))),
    tbody);
  const rows = tools.sort((a, b) => (b.changed - a.changed) || a.name.localeCompare(b.name)).map(t => {
    const desc = t.definition && t.definition.description ? t.definition.description : '';
    const row = h('tr', {class: t.changed ? 'changed' : '', dataset: {name: t.name.toLowerCase()}},
      h('th', {scope: 'row'}, h('span', {class: 'mono'}, t.name), desc ? h('div', {class: 'small muted clamp'}, desc) : null),
      h('td', {}, t.category || '—'),
      h('td', {}, t.risk ? badge(t.risk, 'risk-' + t.risk.toLowerCase()) : '—'),
      h('td', {}, t.decision ? badge(t.decision) : '—'),
      h('td', {class: 'mono small'}, t.rule || ''),
      h('td', {}, t.changed ? h('span', {class: 'pill warn'}, 'changed ' + fmtTime(t.changed_ms)) : h('span', {class: 'small muted'}, 'pinned ' + fmtTime(t.pinned_ms))),
      h('td', {}, t.changed ? [
        h('button', {type: 'button', class: 'secondary small-btn', onclick: () => showDiff(server, t, () => fillTools(server, body))}, 'Diff'),
        ' ',
        h('button', {type: 'button', class: 'small-btn', onclick: async () => {
          await api('POST', `/api/servers/${encodeURIComponent(server.name)}/tools/${encodeURIComponent(t.name)}/accept`, {});
          toast(`Accepted the new definition of ${t.name}`);
          fillTools(server, body);
        }}, 'Accept')] : null));
    return row;
  });
  tbody.append(...rows);
  filter.addEventListener('input', () => {
    const q = filter.value.trim().toLowerCase();
    for (const r of rows) r.hidden = q !== '' && !r.dataset.name.includes(q);
  });
  body.append(bar, h('div', {class: 'scroll', tabindex: '0', role: 'region', 'aria-label': 'Scrollable table'}, table));
}

async function showDiff(server, tool, refresh) {
  const before = JSON.stringify(tool.definition, null, 2);
  const after = JSON.stringify(tool.pending_definition, null, 2);
  const content = h('div', {},
    h('p', {}, `The definition ${server.name} now announces for `, h('code', {}, tool.name),
      ' differs from the one pinned. Calls to it are ', server.pins === 'enforce' ? 'blocked' : 'allowed with a warning', ' until it is accepted.'),
    tool.pending_note ? h('p', {class: 'muted'}, tool.pending_note) : null,
    renderDiff(h, before, after));
  const choice = await dialog(`Changed: ${tool.name}`, content, [['cancel', 'Close'], ['accept', 'Accept new definition']]);
  if (choice === 'accept') {
    await api('POST', `/api/servers/${encodeURIComponent(server.name)}/tools/${encodeURIComponent(tool.name)}/accept`, {});
    toast(`Accepted the new definition of ${tool.name}`);
    refresh();
  }
}
