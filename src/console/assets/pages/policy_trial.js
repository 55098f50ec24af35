// The builder's draft put to the test before it is saved: tried live as the server's shadow
// policy (every call decided by the policy in force as before, and recorded with what the draft
// would have decided — the audit page shows where they differ), or replayed over the calls the
// audit recorded (what would have been denied, allowed or held, and when a limit would have
// fired). Nothing of either reaches an agent.
import {h, clear, field, select, badge, fmtTime, toast} from '../lib/dom.js';
import {api} from '../app.js';

// `draft()` returns {text, format} of the builder's current draft.
export function trialBox(server, draft) {
  const since = select([['1h', 'last hour'], ['24h', 'last 24 hours'], ['7d', 'last 7 days']], '24h', {id: 'replay-since'});
  const out = h('div', {class: 'replay-result', role: 'status', 'aria-live': 'polite'});
  const liveState = h('p', {class: 'small', id: 'shadow-state'});
  const stopBtn = h('button', {type: 'button', class: 'secondary', id: 'shadow-stop', hidden: true}, 'Stop trying');
  const tryBtn = h('button', {type: 'button', id: 'shadow-try'}, 'Try this draft live');
  const replayBtn = h('button', {type: 'button', class: 'secondary', id: 'replay-run'}, 'Replay');

  const showLive = version => {
    clear(liveState).append(version
      ? h('span', {}, badge('shadow'), ` Draft ${version} is evaluated on every call and recorded beside the decision in force (Audit shows where they differ).`)
      : h('span', {class: 'muted'}, 'No draft is being tried.'));
    stopBtn.hidden = !version;
  };
  api('GET', '/api/servers').then(({servers}) => {
    const s = servers.find(x => x.name === server);
    showLive(s && s.shadow_draft);
  });

  tryBtn.addEventListener('click', async () => {
    try {
      const r = await api('PUT', `/api/servers/${encodeURIComponent(server)}/shadow`, draft());
      showLive(r.shadow_draft);
      toast(`Trying draft ${r.shadow_draft} live on ${server}`);
    } catch (e) {
      toast('Not tried: ' + e.message, 'error');
    }
  });
  stopBtn.addEventListener('click', async () => {
    await api('DELETE', `/api/servers/${encodeURIComponent(server)}/shadow`);
    showLive('');
    toast('Stopped trying the draft');
  });
  replayBtn.addEventListener('click', async () => {
    clear(out).append(h('p', {class: 'muted'}, 'Replaying…'));
    try {
      const r = await api('POST', '/api/replay', {server, since: since.value, ...draft()});
      clear(out).append(replayReport(r));
    } catch (e) {
      clear(out).append(h('p', {class: 'error'}, e.message));
    }
  });

  return h('section', {class: 'card trial', 'aria-labelledby': 'trial-title'},
    h('h2', {id: 'trial-title'}, 'Try the draft'),
    h('p', {class: 'small muted'}, 'Live: the draft decides nothing; each call is recorded with what it would have decided. Replay: the draft decides the calls the audit recorded, with its limits counted in time order.'),
    h('div', {class: 'toolbar'}, tryBtn, stopBtn, h('span', {class: 'spacer'}), field('Replay the', since), replayBtn),
    liveState, out);
}

function replayReport(r) {
  const c = r.changed;
  const total = c.newly_denied + c.newly_allowed + c.newly_held + c.no_longer_held;
  const rows = r.changes.map(x => h('tr', {},
    h('td', {}, String(x.calls)), h('td', {class: 'mono'}, x.tool), h('td', {}, x.change.replaceAll('_', ' ')),
    h('td', {class: 'mono small'}, x.rule), h('td', {class: 'mono small'}, x.was_rule), h('td', {class: 'small'}, fmtTime(x.first_ms)),
    h('td', {class: 'small'}, x.examples.length ? `${x.examples[0].grant}: ${x.examples[0].reason}` : '')));
  return h('div', {},
    h('p', {}, `${r.records} recorded call(s): `, badge(`${r.unchanged} unchanged`),
      ` ${c.newly_denied} newly denied, ${c.newly_allowed} newly allowed, ${c.newly_held} newly held, ${c.no_longer_held} no longer held;`,
      ` ${r.outside_policy} decided outside the policy, ${r.undecidable} undecidable.`),
    r.truncated ? h('p', {class: 'small warn'}, 'Stopped at the console\'s limit; replay a shorter window, or all of it with `toolwarden replay`.') : null,
    total ? h('div', {class: 'scroll', tabindex: '0', role: 'region', 'aria-label': 'Replay changes'}, h('table', {class: 'data', id: 'replay-table'},
      h('thead', {}, h('tr', {}, ['Calls', 'Tool', 'Change', 'Rule', 'Was', 'First', 'Example'].map(t => h('th', {scope: 'col'}, t)))),
      h('tbody', {}, rows))) : h('p', {class: 'ok'}, 'No recorded call would be decided differently.'),
    r.undecidable_tools.length ? h('ul', {class: 'small'}, r.undecidable_tools.map(u => h('li', {}, `${u.tool}: ${u.calls} call(s) not decided — ${u.why}`))) : null);
}
