// The policy builder: per server, each tool in one column — Inherit (default or a pattern),
// Allow, Rate limit, Require approval, Deny, Hide, or Custom (conditions and limits) — by
// drag and drop or by the card's own control. Bulk actions by category or risk (written as the
// policy's `classes:` selectors), a live preview of the file, validation by the gateway itself,
// a diff against the file on disk, an atomic save that the gateway puts in force at once, an
// explain box for the draft, and the draft tried live (shadow) or replayed over recorded calls.
import {h, clear, field, select, badge, dialog, toast, uid} from '../lib/dom.js';
import {renderDiff} from '../lib/diff.js';
import {toYaml} from '../lib/yaml.js';
import {api, ApiError} from '../app.js';
import {trialBox} from './policy_trial.js';

const COLUMNS = [
  ['inherit', 'Inherit', 'Decided by the default or a pattern'],
  ['allow', 'Allow', 'Forwarded'],
  ['rate', 'Rate limit', 'Allowed up to a count per window'],
  ['approval', 'Require approval', 'Held until a human approves'],
  ['deny', 'Deny', 'Refused with a reason'],
  ['hide', 'Hide', 'Not listed; refused if called'],
  ['custom', 'Custom', 'Conditions and limits'],
];
const WINDOWS = ['second', 'minute', 'hour', 'day', 'week'];
const SCOPES = ['grant', 'session', 'global'];
const OPS = ['eq', 'neq', 'in', 'not_in', 'lt', 'lte', 'gt', 'gte', 'regex', 'not_regex', 'contains',
             'starts_with', 'ends_with', 'exists'];

const own = (o, k) => o && Object.prototype.hasOwnProperty.call(o, k);
const hasConditions = e => (e.require && e.require.length) || (e.deny_if && e.deny_if.length);

export function stateOf(doc, name) {
  if ((doc.hide || []).includes(name)) return 'hide';
  if (!own(doc.tools, name)) return 'inherit';
  return entryState(doc.tools[name] || {});
}

function globRegex(glob) {
  return new RegExp('^' + glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$');
}

// The column a rule entry ({action, limits, …}) would put a tool in.
function entryState(e) {
  if (e.action === 'deny') return 'deny';
  if (e.action === 'require_approval') return 'approval';
  const limits = e.limits || [];
  if (hasConditions(e) || limits.length > 1 || limits.some(l => l.increment_from || l.increment)) return 'custom';
  return limits.length === 1 ? 'rate' : 'allow';
}

// What decides a tool without an entry of its own, as the gateway does: the longest matching
// pattern, then its category's class selector, then its risk's, then the default.
function inheritedFrom(doc, name, tool = {}) {
  const globs = Object.keys(doc.tools || {}).filter(k => /[*?]/.test(k)).sort((a, b) => b.length - a.length);
  for (const g of globs) if (globRegex(g).test(name)) return {key: g, state: stateOf(doc, g)};
  for (const c of [tool.category, tool.risk]) {
    if (c && own(doc.classes, c)) return {key: null, cls: c, state: entryState(doc.classes[c] || {})};
  }
  return {key: null, state: doc.default === 'allow' ? 'allow' : 'deny'};
}

// A class selector for one column (hide and custom are per tool).
export function setClass(doc, cls, column) {
  doc.classes = doc.classes || {};
  const prev = doc.classes[cls] || {};
  switch (column) {
    case 'inherit': delete doc.classes[cls]; break;
    case 'allow': doc.classes[cls] = {}; break;
    case 'rate': doc.classes[cls] = {limits: [{counter: freshCounter(doc, `class_${cls.toLowerCase()}`), window: 'minute', max: 10, scope: 'grant'}]}; break;
    case 'approval': doc.classes[cls] = {action: 'require_approval', approval_timeout: prev.approval_timeout || '5m'}; break;
    case 'deny': doc.classes[cls] = {action: 'deny', reason: prev.reason || `${cls} tools are not allowed for agents`}; break;
  }
  if (!Object.keys(doc.classes).length) delete doc.classes;
}

function allCounters(doc) {
  const names = new Set();
  const add = e => (e && e.limits || []).forEach(l => names.add(l.counter));
  add(doc.all_tools);
  Object.values(doc.tools || {}).forEach(add);
  Object.values(doc.classes || {}).forEach(add);
  return names;
}

function freshCounter(doc, tool) {
  const base = tool.replace(/[^A-Za-z0-9_]/g, '_') + '_rate';
  const used = allCounters(doc);
  let name = base;
  for (let i = 2; used.has(name); i++) name = `${base}_${i}`;
  return name;
}

export function setState(doc, name, state) {
  doc.tools = doc.tools || {};
  const prev = doc.tools[name] || {};
  if (doc.hide) {
    doc.hide = doc.hide.filter(x => x !== name);
    if (!doc.hide.length) delete doc.hide;
  }
  const keepConditions = e => {
    if (prev.require && prev.require.length) e.require = prev.require;
    if (prev.deny_if && prev.deny_if.length) e.deny_if = prev.deny_if;
    return e;
  };
  switch (state) {
    case 'inherit': delete doc.tools[name]; break;
    case 'allow': doc.tools[name] = {}; break;
    case 'rate': {
      const limit = prev.limits && prev.limits.length === 1 && !prev.limits[0].increment_from
        ? prev.limits[0] : {counter: freshCounter(doc, name), window: 'minute', max: 10, scope: 'grant'};
      doc.tools[name] = {limits: [limit]};
      break;
    }
    case 'approval':
      doc.tools[name] = keepConditions({action: 'require_approval', approval_timeout: prev.approval_timeout || '5m'});
      break;
    case 'deny':
      doc.tools[name] = {action: 'deny', reason: prev.reason || `${name} is not allowed for agents`};
      break;
    case 'hide':
      delete doc.tools[name];
      doc.hide = [...(doc.hide || []), name];
      break;
    case 'custom':
      doc.tools[name] = {...prev, action: prev.action === 'deny' ? undefined : prev.action};
      if (doc.tools[name].action === undefined) delete doc.tools[name].action;
      break;
  }
  if (!Object.keys(doc.tools).length) delete doc.tools;
}

// The argument paths a tool's input schema offers (args.a, args.a.b, args.list[0]).
function schemaPaths(schema, prefix = 'args', depth = 0, out = []) {
  if (!schema || typeof schema !== 'object' || depth > 3) return out;
  for (const [k, sub] of Object.entries(schema.properties || {})) {
    const p = /^[A-Za-z_][A-Za-z0-9_]*$/.test(k) ? `${prefix}.${k}` : `${prefix}["${k}"]`;
    out.push(p);
    if (sub && sub.type === 'object') schemaPaths(sub, p, depth + 1, out);
    if (sub && sub.type === 'array' && sub.items) {
      out.push(`${p}[0]`);
      schemaPaths(sub.items, `${p}[0]`, depth + 1, out);
    }
  }
  return out;
}

let state = null;  // the page's model while it is open

export function leave() {
  if (state) clearTimeout(state.validateTimer);
  state = null;
}

export async function render(main, [serverName]) {
  main.append(h('h1', {}, 'Policy builder'));
  const {servers} = await api('GET', '/api/servers');
  if (!servers.length) {
    main.append(h('p', {class: 'empty'}, 'No servers are configured.'));
    return;
  }
  const chosen = servers.find(s => s.name === serverName) || servers.find(s => s.policy) || servers[0];
  const picker = select(servers.map(s => s.name), chosen.name, {id: 'policy-server'});
  picker.addEventListener('change', () => { location.hash = `#/policy/${encodeURIComponent(picker.value)}`; });
  main.append(h('div', {class: 'toolbar'}, field('Server', picker)));
  const area = h('div');
  main.append(area);

  let file;
  try {
    file = await api('GET', `/api/servers/${encodeURIComponent(chosen.name)}/policy`);
  } catch (e) {
    if (e instanceof ApiError && e.code === 'no_policy') {
      area.append(h('p', {class: 'empty'}, e.message));
      return;
    }
    throw e;
  }
  const {tools} = await api('GET', `/api/servers/${encodeURIComponent(chosen.name)}/tools`);
  state = {server: chosen.name, file, tools, doc: null, validateTimer: 0, lastText: null};
  if (file.dialect !== 'native' || !file.document || typeof file.document !== 'object') {
    area.append(h('div', {class: 'notice', role: 'note'},
      file.dialect === 'intercept'
        ? `${file.path} is in Intercept's format. The builder edits toolwarden's native format; edit this file by hand (it is reloaded when saved), or try calls against it below.`
        : `${file.path} cannot be read as a policy right now; fix it by hand first.`),
      h('pre', {class: 'preview', tabindex: '0'}, file.text));
    area.append(explainBox(false));
    return;
  }
  state.doc = structuredClone(file.document);
  buildEditor(area);
}

function textOf(doc) {
  return state.file.format === 'json' ? JSON.stringify(doc, null, 2) + '\n' : toYaml(doc);
}

function buildEditor(area) {
  const {file} = state;
  const board = h('div', {class: 'board', role: 'list', 'aria-label': 'Tools by decision'});
  const preview = h('pre', {class: 'preview', tabindex: '0', 'aria-label': 'Policy file preview'});
  const problems = h('div', {class: 'problems', role: 'status', 'aria-live': 'polite'});
  const diffBox = h('div', {class: 'diffbox'});
  // The preview shows the file as it will be written, or the same policy as JSON.
  const asJson = h('input', {type: 'checkbox', id: 'preview-json', disabled: state.file.format === 'json'});
  asJson.addEventListener('change', () => changed());
  const filter = h('input', {type: 'search', placeholder: 'Filter tools', 'aria-label': 'Filter tools'});

  const defaultSel = select([['deny', 'deny'], ['allow', 'allow']], state.doc.default || 'deny', {});
  defaultSel.addEventListener('change', () => { state.doc.default = defaultSel.value; renderBoard(); changed(); });

  // Bulk: every tool of a category (or risk) to one column, written as a class selector
  // (`classes: {Destructive: …}`), so that tools the server adds later follow it too. Tools of
  // the class with a plain entry of their own drop it (a name beats a class); custom rules stay.
  const groups = [...new Set(state.tools.map(t => t.category).filter(Boolean))].sort();
  const risks = [...new Set(state.tools.map(t => t.risk).filter(Boolean))];
  const bulkWhat = select([...groups.map(g => [`c:${g}`, `${g} tools`]), ...risks.map(r => [`r:${r}`, `${r}-risk tools`])], undefined, {});
  const bulkTo = select(COLUMNS.filter(c => !['custom', 'hide'].includes(c[0])).map(([v, t]) =>
    [v, v === 'inherit' ? 'Inherit (remove the selector)' : t]), 'approval', {});
  const bulkBtn = h('button', {type: 'button', class: 'secondary', onclick: () => {
    const [kind, value] = [bulkWhat.value.slice(0, 1), bulkWhat.value.slice(2)];
    const hits = state.tools.filter(t => (kind === 'c' ? t.category : t.risk) === value);
    setClass(state.doc, value, bulkTo.value);
    let kept = 0;
    for (const t of hits) {
      const s = stateOf(state.doc, t.name);
      if (s === 'custom' || s === 'hide') kept++;
      else setState(state.doc, t.name, 'inherit');
    }
    toast(`classes.${value}: ${COLUMNS.find(c => c[0] === bulkTo.value)[1]} for ${hits.length - kept} tool(s)` +
          (kept ? `; ${kept} keep their own custom or hide rule` : ''));
    renderBoard();
    changed();
  }}, 'Apply');

  const saveBtn = h('button', {type: 'button', id: 'policy-save', onclick: save}, 'Save');
  const revertBtn = h('button', {type: 'button', class: 'secondary', onclick: () => {
    state.doc = structuredClone(state.file.document);
    defaultSel.value = state.doc.default || 'deny';
    renderBoard();
    changed();
  }}, 'Revert');

  area.append(
    h('p', {class: 'muted small'}, 'File: ', h('code', {}, file.path), ` (${file.format}), version ${file.version}`,
      file.version !== file.in_force_version ? h('span', {class: 'pill warn'}, 'differs from the policy in force') : null),
    h('div', {class: 'toolbar'},
      field('Tools not listed', defaultSel),
      filter,
      h('div', {class: 'bulk', role: 'group', 'aria-label': 'Bulk action'},
        field('Set every', bulkWhat), field('to', bulkTo), bulkBtn),
      h('span', {class: 'spacer'}), revertBtn, saveBtn),
    board,
    h('div', {class: 'split'},
      h('section', {'aria-labelledby': 'pv-title'}, h('div', {class: 'card-head'}, h('h2', {id: 'pv-title'}, 'Preview'),
        h('span', {class: 'spacer'}), h('label', {for: 'preview-json', class: 'small'}, asJson, ' show as JSON')), problems, preview),
      h('section', {'aria-labelledby': 'df-title'}, h('h2', {id: 'df-title'}, 'Changes against the file on disk'), diffBox)),
    explainBox(true),
    trialBox(state.server, () => ({text: textOf(state.doc), format: state.file.format})));

  filter.addEventListener('input', () => {
    const q = filter.value.trim().toLowerCase();
    for (const card of board.querySelectorAll('.tool-card')) card.hidden = q !== '' && !card.dataset.name.includes(q);
  });

  function names() {
    const seen = new Set(state.tools.map(t => t.name));
    const extra = [...Object.keys(state.doc.tools || {}).filter(k => !/[*?]/.test(k)), ...(state.doc.hide || []).filter(k => !/[*?]/.test(k))]
      .filter(k => !seen.has(k));
    return [...state.tools, ...[...new Set(extra)].map(name => ({name, unseen: true}))];
  }

  function renderBoard(focusTool) {
    clear(board);
    const cols = {};
    for (const [key, title, hint] of COLUMNS) {
      const list = h('div', {class: 'drop', role: 'list'});
      const col = h('section', {class: `column col-${key}`, role: 'listitem', 'aria-label': title, dataset: {state: key}},
        h('h3', {}, title, ' ', h('span', {class: 'count'})), h('p', {class: 'small muted'}, hint), list);
      col.addEventListener('dragover', e => { e.preventDefault(); col.classList.add('over'); });
      col.addEventListener('dragleave', () => col.classList.remove('over'));
      col.addEventListener('drop', e => {
        e.preventDefault();
        col.classList.remove('over');
        const name = e.dataTransfer.getData('text/plain');
        if (!name || stateOf(state.doc, name) === key) return;
        if (key === 'custom') return openCustom(name);
        setState(state.doc, name, key);
        refreshCard(name);
        changed();
      });
      cols[key] = list;
      board.append(col);
    }
    for (const t of names().sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0))) {
      const s = stateOf(state.doc, t.name);
      cols[s].append(card(t, s));
    }
    for (const col of board.children) col.querySelector('.count').textContent = `(${col.querySelector('.drop').children.length})`;
    if (focusTool) {
      const el = board.querySelector(`.tool-card[data-name="${CSS.escape(focusTool.toLowerCase())}"] select`);
      if (el) el.focus();
    }
  }

  // Redraws one tool's card in the column of its state (in name order), not the whole board:
  // a move stays quick with a thousand tools.
  function refreshCard(name) {
    const key = name.toLowerCase();
    const old = board.querySelector(`.tool-card[data-name="${CSS.escape(key)}"]`);
    const t = names().find(x => x.name === name);
    const s = stateOf(state.doc, name);
    const next = card(t, s);
    const q = filter.value.trim().toLowerCase();
    next.hidden = q !== '' && !key.includes(q);
    if (old) old.remove();
    const list = board.querySelector(`section.col-${s} .drop`);
    const after = [...list.children].find(c => c.dataset.sort > name);
    list.insertBefore(next, after || null);
    for (const col of board.children) col.querySelector('.count').textContent = `(${col.querySelector('.drop').children.length})`;
    next.querySelector('select.state').focus();
  }

  function card(t, s) {
    const entry = (state.doc.tools || {})[t.name] || {};
    const sel = select(COLUMNS.map(([v, title]) => [v, title]), s, {'aria-label': `Decision for ${t.name}`, class: 'state'});
    sel.addEventListener('change', () => {
      if (sel.value === 'custom') { sel.value = s; return openCustom(t.name); }
      setState(state.doc, t.name, sel.value);
      refreshCard(t.name);
      changed();
    });
    const params = h('div', {class: 'params'});
    const num = (label, value, set, attrs = {}) => {
      const input = h('input', {type: 'number', min: '1', value, ...attrs});
      input.addEventListener('input', () => { if (input.value) { set(Number(input.value)); changed(); } });
      return field(label, input);
    };
    const txt = (label, value, set, attrs = {}) => {
      const input = h('input', {type: 'text', value, ...attrs});
      input.addEventListener('input', () => { set(input.value); changed(); });
      return field(label, input);
    };
    const sel2 = (label, options, value, set) => {
      const input = select(options, value);
      input.addEventListener('change', () => { set(input.value); changed(); });
      return field(label, input);
    };
    if (s === 'rate') {
      const l = entry.limits[0];
      params.append(num('Calls', l.max, v => { l.max = v; }, {class: 'narrow'}),
                    sel2('per', WINDOWS.includes(l.window) ? WINDOWS : [l.window, ...WINDOWS], l.window, v => { l.window = v; }),
                    sel2('for each', SCOPES, l.scope || 'grant', v => { l.scope = v; }));
    } else if (s === 'approval') {
      params.append(txt('Timeout', entry.approval_timeout || '5m', v => { entry.approval_timeout = v; }, {class: 'narrow'}));
    } else if (s === 'deny') {
      params.append(txt('Reason', entry.reason || '', v => { entry.reason = v; }));
    } else if (s === 'inherit') {
      const from = inheritedFrom(state.doc, t.name, t);
      params.append(h('span', {class: 'small muted'},
        from.key ? `by pattern ${from.key}: ` : from.cls ? `by class ${from.cls}: ` : 'by the default: ', badge(from.state)));
    }
    if (s === 'custom' || hasConditions(entry)) {
      const n = (entry.require || []).length + (entry.deny_if || []).length;
      params.append(h('span', {class: 'small'}, `${n} condition(s), ${(entry.limits || []).length} limit(s)`));
    }
    const el = h('article', {class: 'tool-card', draggable: 'true', role: 'listitem', dataset: {name: t.name.toLowerCase(), sort: t.name}},
      h('div', {class: 'name mono'}, t.name),
      h('div', {class: 'card-head'},
        t.category ? h('span', {class: 'pill small'}, t.category) : null,
        t.risk ? badge(t.risk, 'risk-' + t.risk.toLowerCase()) : null,
        t.unseen ? h('span', {class: 'pill small'}, 'not seen') : null,
        t.changed ? h('span', {class: 'pill warn'}, 'changed') : null,
        h('span', {class: 'spacer'}),
        h('button', {type: 'button', class: 'link-btn', onclick: () => openCustom(t.name), 'aria-label': `Custom rules for ${t.name}`}, 'Custom…')),
      sel,
      params);
    el.addEventListener('dragstart', e => { e.dataTransfer.setData('text/plain', t.name); e.dataTransfer.effectAllowed = 'move'; });
    return el;
  }

  async function openCustom(name) {
    const tool = state.tools.find(t => t.name === name) || {name};
    const entry = structuredClone(own(state.doc.tools, name) ? state.doc.tools[name] : {});
    const paths = schemaPaths(tool.definition && tool.definition.inputSchema);
    const listId = uid('paths');
    const datalist = h('datalist', {id: listId}, paths.map(p => h('option', {value: p})));
    const action = select([['allow', 'Allow'], ['require_approval', 'Require approval'], ['deny', 'Deny']], entry.action || 'allow');
    const reason = h('input', {type: 'text', value: entry.reason || ''});
    const timeout = h('input', {type: 'text', value: entry.approval_timeout || '', placeholder: '5m'});
    const condRows = h('div', {class: 'rows'});
    const limitRows = h('div', {class: 'rows'});
    const addCond = (kind, c = {path: paths[0] || 'args.', op: 'eq', value: ''}) => {
      const p = h('input', {type: 'text', value: c.path, list: listId, 'aria-label': 'Argument path'});
      const op = select(OPS, c.op, {'aria-label': 'Operator'});
      const v = h('input', {type: 'text', value: c.value === undefined ? '' : (typeof c.value === 'string' ? c.value : JSON.stringify(c.value)), 'aria-label': 'Value (JSON or text)'});
      const k = select([['require', 'require'], ['deny_if', 'deny if']], kind, {'aria-label': 'Kind'});
      const row = h('div', {class: 'row cond'}, k, p, op, v,
        h('button', {type: 'button', class: 'secondary small-btn', 'aria-label': 'Remove condition', onclick: () => row.remove()}, '✕'));
      condRows.append(row);
    };
    const addLimit = (l = {counter: freshCounter(state.doc, name), max: 10, window: 'minute', scope: 'grant'}) => {
      const counter = h('input', {type: 'text', value: l.counter, 'aria-label': 'Counter name'});
      const max = h('input', {type: 'number', min: '1', value: l.max, class: 'narrow', 'aria-label': 'Maximum'});
      const win = select(WINDOWS.includes(l.window) ? WINDOWS : [l.window, ...WINDOWS], l.window, {'aria-label': 'Window'});
      const scope = select(SCOPES, l.scope || 'grant', {'aria-label': 'Scope'});
      const inc = h('input', {type: 'text', value: l.increment_from || '', list: listId, placeholder: 'count calls', 'aria-label': 'Add the amount from (spend cap)'});
      const row = h('div', {class: 'row limit'}, counter, max, h('span', {}, 'per'), win, scope, inc,
        h('button', {type: 'button', class: 'secondary small-btn', 'aria-label': 'Remove limit', onclick: () => row.remove()}, '✕'));
      limitRows.append(row);
    };
    (entry.require || []).forEach(c => addCond('require', c));
    (entry.deny_if || []).forEach(c => addCond('deny_if', c));
    (entry.limits || []).forEach(l => addLimit(l));
    const content = h('div', {class: 'custom'}, datalist,
      h('div', {class: 'grid2'}, field('Action', action), field('Timeout (approval)', timeout), field('Reason shown to the agent', reason)),
      h('h3', {}, 'Conditions'),
      h('p', {class: 'small muted'}, 'require: every one must hold. deny if: any one that holds denies. Values are JSON (5, true, ["a","b"]) or text.'),
      condRows,
      h('button', {type: 'button', class: 'secondary', onclick: () => addCond('require')}, 'Add condition'),
      h('h3', {}, 'Limits'),
      h('p', {class: 'small muted'}, 'A limit with an amount path is a spend cap: each call adds that argument\'s value.'),
      limitRows,
      h('button', {type: 'button', class: 'secondary', onclick: () => addLimit()}, 'Add limit'));
    const choice = await dialog(`Custom rules for ${name}`, content, [['cancel', 'Cancel'], ['ok', 'Apply']]);
    if (choice !== 'ok') return;
    const next = {};
    if (action.value !== 'allow') next.action = action.value;
    if (reason.value.trim()) next.reason = reason.value.trim();
    if (timeout.value.trim() && action.value === 'require_approval') next.approval_timeout = timeout.value.trim();
    const parse = v => { try { return JSON.parse(v); } catch { return v; } };
    for (const row of condRows.children) {
      const [k, p, op, v] = row.querySelectorAll('select, input');
      const c = {path: p.value.trim(), op: op.value};
      if (op.value !== 'exists' || v.value.trim()) c.value = op.value === 'exists' ? parse(v.value) : (['regex', 'not_regex', 'contains', 'starts_with', 'ends_with'].includes(op.value) ? v.value : parse(v.value));
      (next[k.value] = next[k.value] || []).push(c);
    }
    for (const row of limitRows.children) {
      const [counter, max, win, scope, inc] = row.querySelectorAll('select, input');
      const l = {counter: counter.value.trim(), window: win.value, max: Number(max.value), scope: scope.value};
      if (inc.value.trim()) l.increment_from = inc.value.trim();
      (next.limits = next.limits || []).push(l);
    }
    state.doc.tools = state.doc.tools || {};
    state.doc.tools[name] = next;
    if (state.doc.hide) {
      state.doc.hide = state.doc.hide.filter(x => x !== name);
      if (!state.doc.hide.length) delete state.doc.hide;
    }
    refreshCard(name);
    changed();
  }

  function changed() {
    if (!state) return;
    const text = textOf(state.doc);
    preview.textContent = asJson.checked ? JSON.stringify(state.doc, null, 2) : text;
    clear(diffBox).append(renderDiff(h, state.file.text, text));
    saveBtn.disabled = text === state.file.text;
    clearTimeout(state.validateTimer);
    state.validateTimer = setTimeout(() => validate(text), 250);
  }

  async function validate(text) {
    if (!state) return;
    const res = await api('POST', '/api/policies/validate', {text, format: state.file.format});
    if (!state || textOf(state.doc) !== text) return;  // a newer edit is on its way
    state.valid = res.ok;
    clear(problems);
    if (res.ok) problems.append(h('p', {class: 'ok'}, '✓ Valid'));
    else problems.append(h('ul', {class: 'error'}, res.diagnostics.map(d => h('li', {}, `line ${d.line}, column ${d.column}: ${d.message}`))));
    // Mark the lines with problems in the preview (they are lines of the file's text).
    if (asJson.checked) return;
    const bad = new Set(res.diagnostics.map(d => d.line));
    clear(preview);
    text.split('\n').forEach((line, i) => preview.append(h('span', {class: bad.has(i + 1) ? 'bad-line' : ''}, line + '\n')));
  }

  async function save() {
    const text = textOf(state.doc);
    if (text === state.file.text) return toast('Nothing to save');
    const warn = state.file.format === 'yaml'
      ? (state.file.has_comments ? 'Its comments and formatting are not kept: the file is rewritten from the builder.' : 'The file is rewritten from the builder (formatting is not kept).')
      : 'The file is rewritten from the builder.';
    const choice = await dialog(`Save ${state.file.path}?`, h('div', {}, h('p', {}, warn),
      h('p', {}, 'The gateway checks the file, writes it atomically and decides the next call with it.'),
      renderDiff(h, state.file.text, text)), [['cancel', 'Cancel'], ['save', 'Save and reload']]);
    if (choice !== 'save') return;
    try {
      const res = await api('PUT', `/api/servers/${encodeURIComponent(state.server)}/policy`, {text, base_version: state.file.version});
      toast(res.reloaded ? `Saved ${res.path}; in force now (version ${res.version})` : `Saved ${res.path}, but the gateway did not put it in force`, res.reloaded ? 'info' : 'error');
      state.file = await api('GET', `/api/servers/${encodeURIComponent(state.server)}/policy`);
      state.doc = structuredClone(state.file.document);
      renderBoard();
      changed();
    } catch (e) {
      if (e.code === 'conflict') {
        const again = await dialog('The file changed on disk', h('p', {}, e.message), [['cancel', 'Keep my edits'], ['reload', 'Load the file from disk']]);
        if (again === 'reload') location.reload();
      } else if (e.code === 'invalid_policy') {
        toast('Not saved: the policy is not valid (see the preview)', 'error');
      } else {
        toast('Not saved: ' + e.message, 'error');
      }
    }
  }

  renderBoard();
  changed();
}

function explainBox(draft) {
  // The tools the gateway has seen, and those the policy names (before any agent listed them).
  const named = Object.keys((state.file.document && state.file.document.tools) || {}).filter(k => !/[*?]/.test(k));
  const tools = [...new Set([...state.tools.map(t => t.name), ...named])];
  const tool = h('input', {type: 'text', list: 'explain-tools', value: tools[0] || '', id: 'explain-tool'});
  const args = h('textarea', {rows: '4', id: 'explain-args', spellcheck: 'false'}, '{}');
  const grant = h('input', {type: 'text', value: 'console', id: 'explain-grant'});
  const out = h('div', {class: 'explain-result', role: 'status', 'aria-live': 'polite'});
  const form = h('form', {class: 'card explain', 'aria-labelledby': 'explain-title'},
    h('h2', {id: 'explain-title'}, 'Explain'),
    h('p', {class: 'small muted'}, draft ? 'How the policy above (unsaved edits included) decides a call. Nothing is called or charged.' : 'How the policy in force decides a call. Nothing is called or charged.'),
    h('datalist', {id: 'explain-tools'}, tools.map(t => h('option', {value: t}))),
    h('div', {class: 'grid2'}, field('Tool', tool), field('Grant', grant)),
    field('Arguments (JSON)', args),
    h('button', {type: 'submit'}, 'Explain'),
    out);
  form.addEventListener('submit', async e => {
    e.preventDefault();
    clear(out);
    let parsed;
    try { parsed = JSON.parse(args.value || '{}'); } catch (err) {
      out.append(h('p', {class: 'error'}, 'Arguments: not JSON (' + err.message + ')'));
      return;
    }
    if (!tool.value.trim()) {
      out.append(h('p', {class: 'error'}, 'Type the name of a tool to explain.'));
      tool.focus();
      return;
    }
    const body = {server: state.server, tool: tool.value.trim(), arguments: parsed, grant: grant.value.trim()};
    const known = state.tools.find(t => t.name === body.tool);
    if (known && known.category) body.class = `${known.category}/${known.risk}`;
    if (draft && state.doc) { body.text = textOf(state.doc); body.format = state.file.format; }
    try {
      const r = await api('POST', '/api/explain', body);
      out.append(h('div', {},
        h('p', {}, 'Decision: ', badge(r.decision), ' by rule ', h('code', {}, r.rule || '—'), ` (selected by ${r.selector})`),
        r.shadow ? h('p', {}, 'Shadow (recorded, never enforced): ', badge(r.shadow.decision), ' by ', h('code', {}, r.shadow.rule)) : null,
        r.reason ? h('p', {}, 'Reason: ', r.reason) : null,
        r.approval_timeout_ms ? h('p', {}, `Held for approval for up to ${r.approval_timeout_ms / 1000}s.`) : null,
        r.limits.length ? h('ul', {}, r.limits.map(l => h('li', {}, `${l.rule}: counter ${l.counter} +${l.amount}, at most ${l.max} per ${l.window} (${l.scope})`, l.used !== undefined ? `, used ${l.used}` : ''))) : null));
    } catch (err) {
      out.append(h('p', {class: 'error'}, err.message));
      if (err.body && err.body.error && err.body.error.diagnostics) {
        out.append(h('ul', {class: 'error'}, err.body.error.diagnostics.map(d => h('li', {}, `line ${d.line}: ${d.message}`))));
      }
    }
  });
  return form;
}
