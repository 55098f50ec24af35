// Approvals: calls held for a human, with grant, tool, arguments and time left; Approve or
// Deny with a reason. New ones arrive through the live stream.
import {h, clear, fmtTime, fmtDuration, toast, badge} from '../lib/dom.js';
import {api, onEvent, refreshApprovalBadge} from '../app.js';

let stop = null;
export function leave() {
  if (stop) stop();
  stop = null;
}

export async function render(main) {
  main.append(h('h1', {}, 'Approvals'));
  const list = h('div', {class: 'approvals'});
  const recent = h('div');
  main.append(list, h('section', {class: 'card', 'aria-labelledby': 'recent-title'}, h('h2', {id: 'recent-title'}, 'Recently resolved'), recent));

  async function load() {
    const [{approvals: pending}, {approvals: all}] = await Promise.all([
      api('GET', '/api/approvals'), api('GET', '/api/approvals?state=all')]);
    refreshApprovalBadge(false);
    clear(list);
    if (!pending.length) list.append(h('p', {class: 'empty'}, 'Nothing is waiting for approval.'));
    for (const a of pending) list.append(item(a));
    clear(recent);
    const done = all.filter(a => a.state !== 'pending').slice(0, 20);
    if (!done.length) recent.append(h('p', {class: 'empty'}, 'None yet.'));
    else recent.append(h('table', {class: 'data'},
      h('thead', {}, h('tr', {}, ['Created', 'Grant', 'Tool', 'State', 'By', 'Reason'].map(t => h('th', {scope: 'col'}, t)))),
      h('tbody', {}, done.map(a => h('tr', {},
        h('td', {class: 'small'}, fmtTime(a.created_ms)), h('td', {}, a.grant),
        h('td', {class: 'mono'}, `${a.server} ${a.tool}`), h('td', {}, badge(a.state)),
        h('td', {}, a.resolved_by || '—'), h('td', {class: 'small'}, a.reason || ''))))));
  }

  function item(a) {
    const left = h('span', {class: 'time-left', dataset: {expires: a.expires_ms}});
    const reason = h('input', {type: 'text', placeholder: 'Reason (optional; the agent sees it on a denial)', 'aria-label': `Reason for ${a.tool}`});
    const resolve = verdict => async () => {
      try {
        await api('POST', `/api/approvals/${encodeURIComponent(a.id)}/${verdict}`, {reason: reason.value.trim(), by: 'console'});
        toast(`${verdict === 'approve' ? 'Approved' : 'Denied'}: ${a.tool}`);
      } catch (e) {
        toast(e.message, 'error');
      }
      load();
    };
    return h('article', {class: 'card approval', 'aria-label': `Approval for ${a.tool}`},
      h('div', {class: 'card-head'}, h('strong', {class: 'mono'}, `${a.server} · ${a.tool}`), badge('pending', 'approval'),
        h('span', {class: 'spacer'}), left),
      h('p', {class: 'small muted'}, `grant ${a.grant} · asked ${fmtTime(a.created_ms)} · id ${a.id}`),
      h('pre', {class: 'args', tabindex: '0', 'aria-label': 'Arguments'}, JSON.stringify(a.arguments, null, 2)),
      h('div', {class: 'toolbar'}, reason,
        h('button', {type: 'button', onclick: resolve('approve')}, 'Approve'),
        h('button', {type: 'button', class: 'danger', onclick: resolve('deny')}, 'Deny')));
  }

  const tick = setInterval(() => {
    for (const el of list.querySelectorAll('.time-left')) {
      const ms = Number(el.dataset.expires) - Date.now();
      el.textContent = ms > 0 ? `${fmtDuration(ms)} left` : 'expired';
    }
  }, 1000);
  const poll = setInterval(load, 5000);
  const off = onEvent((type, data) => { if (type === 'decision' && data.decision === 'approval') load(); });
  stop = () => { clearInterval(tick); clearInterval(poll); off(); };
  await load();
}
