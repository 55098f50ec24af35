// Small DOM helpers. Everything from the gateway is inserted as text, never as HTML.

// h('button', {class: 'x', onclick: f}, 'text', child) → element
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith('on') && typeof v === 'function') el.addEventListener(k.slice(2), v);
    else if (k === 'class') el.className = v;
    else if (k === 'dataset') Object.assign(el.dataset, v);
    else if (k === 'value') el.value = v;
    else if (k === 'checked' || k === 'selected' || k === 'disabled' || k === 'hidden') el[k] = !!v;
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === null || c === undefined || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
}

export function clear(el) {
  while (el.firstChild) el.firstChild.remove();
  return el;
}

let idCounter = 0;
export const uid = (prefix = 'f') => `${prefix}-${++idCounter}`;

// A labelled form field: label + control, tied by id.
export function field(label, control, hint) {
  if (!control.id) control.id = uid();
  return h('div', {class: 'field'}, h('label', {for: control.id}, label), control,
           hint ? h('small', {class: 'muted'}, hint) : null);
}

export function select(options, value, attrs = {}) {
  return h('select', attrs, options.map(o => {
    const [v, text] = Array.isArray(o) ? o : [o, o];
    return h('option', {value: v, selected: v === value}, text);
  }));
}

export function fmtTime(ms) {
  if (!ms) return '—';
  const d = new Date(ms);
  const pad = n => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function fmtDuration(ms) {
  if (ms <= 0) return '0s';
  const s = Math.ceil(ms / 1000);
  if (s < 60) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m}m ${s % 60}s`;
  return `${Math.floor(m / 60)}h ${m % 60}m`;
}

export function badge(text, kind) {
  return h('span', {class: `pill ${kind || text}`}, text);
}

// A modal dialog with a title, content and buttons; resolves with the button's value.
export function dialog(title, content, buttons = [['ok', 'OK']]) {
  return new Promise(resolve => {
    const dlg = h('dialog', {class: 'modal', 'aria-labelledby': uid('dlg')});
    const titleId = dlg.getAttribute('aria-labelledby');
    const close = value => { dlg.close(); dlg.remove(); resolve(value); };
    dlg.append(h('h2', {id: titleId}, title), content,
               h('div', {class: 'actions'}, buttons.map(([value, text, cls]) =>
                 h('button', {type: 'button', class: cls || (value === 'cancel' ? 'secondary' : ''),
                              onclick: () => close(value)}, text))));
    dlg.addEventListener('cancel', e => { e.preventDefault(); close('cancel'); });
    document.body.append(dlg);
    dlg.showModal();
  });
}

// A short message in the corner. It belongs to the page it was raised on (clearPageToasts
// removes it when the user moves on) unless `global`; it has a close button; the same message
// is not shown twice at once; at most MAX_TOASTS are shown (the oldest goes first), so they
// never pile up over the page's buttons.
const MAX_TOASTS = 3;
export function toast(message, kind = 'info', {global = false} = {}) {
  const t = document.getElementById('toast');
  for (const old of t.children) {
    if (old.dataset.message === message) old.remove();
  }
  while (t.children.length >= MAX_TOASTS) t.firstElementChild.remove();
  const close = h('button', {type: 'button', class: 'toast-close', 'aria-label': 'Dismiss'}, '×');
  const item = h('div', {class: `toast ${kind}`},
    h('span', {}, message), close);
  item.dataset.message = message;
  if (!global) item.dataset.page = location.hash;
  close.addEventListener('click', () => item.remove());
  t.append(item);
  setTimeout(() => item.remove(), kind === 'error' ? 8000 : 4000);
}

// Removes the toasts raised on another page than the one shown now.
export function clearPageToasts() {
  for (const item of [...document.getElementById('toast').children]) {
    if (item.dataset.page !== undefined && item.dataset.page !== location.hash) item.remove();
  }
}

export async function copyText(text, button) {
  try {
    await navigator.clipboard.writeText(text);
  } catch {
    // Clipboard API refused (no focus, or an insecure origin): select-and-copy fallback.
    const ta = h('textarea', {class: 'offscreen'}, text);
    document.body.append(ta);
    ta.select();
    document.execCommand('copy');
    ta.remove();
  }
  if (button) {
    const old = button.textContent;
    button.textContent = 'Copied';
    setTimeout(() => { button.textContent = old; }, 1500);
  }
}
