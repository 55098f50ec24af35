// Live decisions: every call as it is decided (SSE from /api/events), with its latency once
// answered; a filter by decision; counters with what is left per grant.
import {h, clear, badge, fmtTime, fmtDuration} from '../lib/dom.js';
import {api, onEvent} from '../app.js';
import {who} from './audit.js';

const MAX_ROWS = 500;
let stop = null;

export function leave() {
  if (stop) stop();
  stop = null;
}

export async function render(main) {
  main.append(h('h1', {}, 'Live decisions'));
  const show = {allow: true, deny: true, approval: true};
  let paused = false;
  const filters = h('fieldset', {class: 'toolbar'}, h('legend', {}, 'Show'),
    Object.keys(show).map(d => {
      const box = h('input', {type: 'checkbox', checked: true, id: `live-${d}`});
      box.addEventListener('change', () => {
        show[d] = box.checked;
        for (const row of tbody.children) row.hidden = !show[row.dataset.decision];
      });
      return h('label', {for: `live-${d}`}, box, ' ', d);
    }),
    h('button', {type: 'button', class: 'secondary', 'aria-pressed': 'false', onclick: e => {
      paused = !paused;
      e.target.setAttribute('aria-pressed', String(paused));
      e.target.textContent = paused ? 'Resume' : 'Pause';
    }}, 'Pause'));
  const tbody = h('tbody');
  const empty = h('p', {class: 'empty', id: 'live-empty'}, 'Waiting for calls… Decisions appear here as agents make them.');
  const note = h('p', {class: 'small muted', role: 'status'});
  const table = h('table', {class: 'data', id: 'live-table'},
    h('caption', {class: 'sr-only'}, 'Calls as they are decided, newest first'),
    h('thead', {}, h('tr', {}, ['Time', 'Who', 'Server', 'Tool', 'Decision', 'Rule', 'Reason', 'Outcome', 'Latency'].map(t => h('th', {scope: 'col'}, t)))),
    tbody);
  const counters = h('div');
  main.append(filters, note, empty, h('div', {class: 'scroll', tabindex: '0', role: 'region', 'aria-label': 'Scrollable table'}, table),
              h('section', {class: 'card', 'aria-labelledby': 'counters-title'}, h('h2', {id: 'counters-title'}, 'Counters'), counters));

  const rows = new Map();  // record id → row
  stop = onEvent((type, data) => {
    if (type === 'lagged') {
      note.textContent = 'Some events were skipped (the page fell behind); the audit view has every record.';
      return;
    }
    if (type === 'outcome') {
      const row = rows.get(data.id);
      if (row) {
        row.querySelector('.outcome').textContent = data.outcome;
        row.querySelector('.latency').textContent = `${data.latency_ms} ms`;
      }
      return;
    }
    if (type !== 'decision' || paused || data.server === '(admin)') return;
    empty.hidden = true;
    const row = h('tr', {dataset: {decision: data.decision}, hidden: !show[data.decision]},
      h('td', {class: 'small'}, fmtTime(data.ts_ms)),
      h('td', {}, who(data)),
      h('td', {}, data.server),
      h('td', {class: 'mono'}, data.tool),
      h('td', {}, badge(data.decision)),
      h('td', {class: 'mono small'}, data.rule),
      h('td', {class: 'small'}, data.reason || ''),
      h('td', {class: 'outcome small'}, data.outcome === 'pending' ? '…' : data.outcome),
      h('td', {class: 'latency small'}, data.outcome === 'pending' ? '' : `${data.latency_ms} ms`));
    rows.set(data.id, row);
    tbody.prepend(row);
    while (tbody.children.length > MAX_ROWS) {
      const last = tbody.lastElementChild;
      for (const [id, r] of rows) if (r === last) rows.delete(id);
      last.remove();
    }
    scheduleCounters();
  });

  let timer = 0;
  const scheduleCounters = () => { clearTimeout(timer); timer = setTimeout(loadCounters, 500); };
  async function loadCounters() {
    const {counters: list} = await api('GET', '/api/counters');
    clear(counters);
    if (!list.length) {
      counters.append(h('p', {class: 'empty'}, 'No rate limits or spend caps in the policies in force.'));
      return;
    }
    counters.append(h('table', {class: 'data', id: 'counters-table'},
      h('caption', {class: 'sr-only'}, 'Counters per grant'),
      h('thead', {}, h('tr', {}, ['Grant', 'Server', 'Counter', 'Used', 'Max', 'Remaining', 'Window', 'Resets in'].map(t => h('th', {scope: 'col'}, t)))),
      h('tbody', {}, list.map(c => h('tr', {},
        h('td', {}, c.grant), h('td', {}, c.server), h('td', {class: 'mono'}, c.counter),
        h('td', {}, c.used ?? 'per session'), h('td', {}, c.max),
        h('td', {}, c.remaining === undefined ? '—' : h('span', {class: c.remaining === 0 ? 'pill deny' : ''}, String(c.remaining))),
        h('td', {}, `${c.window} (${c.scope})`), h('td', {}, fmtDuration(c.resets_ms - Date.now())))))));
  }
  const interval = setInterval(loadCounters, 10000);
  const unsubscribe = stop;
  stop = () => { unsubscribe(); clearInterval(interval); clearTimeout(timer); };
  await loadCounters();
}
