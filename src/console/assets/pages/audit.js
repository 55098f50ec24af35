// Audit: search by time range, grant, server, tool and decision; server-side paging; export
// as JSON lines or CSV; a chart of calls per interval by decision; a shadow policy's decision
// beside the enforced one where they differ.
import {h, clear, field, select, badge, fmtTime} from '../lib/dom.js';
import {api} from '../app.js';

const PAGE = 50;

function localInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 16);
}

export async function render(main) {
  main.append(h('h1', {}, 'Audit'));
  const now = Date.now();
  const from = h('input', {type: 'datetime-local', value: localInput(now - 3600_000)});
  const to = h('input', {type: 'datetime-local', value: ''});
  const grant = h('input', {type: 'text', placeholder: 'any'});
  const server = h('input', {type: 'text', placeholder: 'any'});
  const tool = h('input', {type: 'text', placeholder: 'any'});
  const decision = select([['', 'any'], ['allow', 'allow'], ['deny', 'deny'], ['approval', 'approval']], '');
  const form = h('form', {class: 'card filters', 'aria-label': 'Search the audit trail'},
    h('div', {class: 'grid3'}, field('From', from), field('To', to, 'empty: now'), field('Grant', grant),
      field('Server', server), field('Tool', tool), field('Decision', decision)),
    h('div', {class: 'toolbar'}, h('button', {type: 'submit'}, 'Search'),
      h('a', {class: 'button secondary', id: 'export-jsonl', download: 'toolwarden-audit.jsonl'}, 'Export JSON lines'),
      h('a', {class: 'button secondary', id: 'export-csv', download: 'toolwarden-audit.csv'}, 'Export CSV')));
  const chart = h('figure', {class: 'chart card'});
  const summary = h('p', {role: 'status', 'aria-live': 'polite'});
  const tbody = h('tbody');
  const prev = h('button', {type: 'button', class: 'secondary'}, '← Newer');
  const next = h('button', {type: 'button', class: 'secondary'}, 'Older →');
  main.append(form, chart, summary,
    h('div', {class: 'scroll', tabindex: '0', role: 'region', 'aria-label': 'Scrollable table'}, h('table', {class: 'data', id: 'audit-table'},
      h('caption', {class: 'sr-only'}, 'Audit records, newest first'),
      h('thead', {}, h('tr', {}, ['Time', 'Who', 'Server', 'Tool', 'Decision', 'Rule', 'Reason', 'Outcome', 'Latency'].map(t => h('th', {scope: 'col'}, t)))),
      tbody)),
    h('div', {class: 'toolbar'}, prev, next));

  let offset = 0;
  const query = () => {
    const q = new URLSearchParams();
    if (from.value) q.set('from', String(new Date(from.value).getTime()));
    if (to.value) q.set('to', String(new Date(to.value).getTime()));
    for (const [k, el] of [['grant', grant], ['server', server], ['tool', tool], ['decision', decision]]) {
      if (el.value.trim()) q.set(k, el.value.trim());
    }
    return q;
  };

  async function load() {
    const q = query();
    document.getElementById('export-jsonl').href = `/api/audit?${q}&format=jsonl`;
    document.getElementById('export-csv').href = `/api/audit?${q}&format=csv`;
    const page = new URLSearchParams(q);
    page.set('limit', String(PAGE));
    page.set('offset', String(offset));
    const res = await api('GET', `/api/audit?${page}`);
    clear(tbody);
    for (const r of res.records) {
      tbody.append(h('tr', {},
        h('td', {class: 'small'}, fmtTime(r.ts_ms)), h('td', {}, who(r)), h('td', {}, r.server),
        h('td', {class: 'mono'}, r.tool), h('td', {}, badge(r.decision),
          // What a shadow policy would have decided, where it differs (never enforced).
          r.shadow && r.shadow.decision !== r.decision
            ? h('span', {class: 'shadow small', title: `Shadow: ${r.shadow.rule}${r.shadow.reason ? ': ' + r.shadow.reason : ''}`}, ' shadow: ', badge(r.shadow.decision))
            : null),
        h('td', {class: 'mono small'}, r.rule),
        h('td', {class: 'small'}, r.reason), h('td', {class: 'small'}, r.outcome), h('td', {class: 'small'}, `${r.latency_ms} ms`)));
    }
    summary.textContent = res.total
      ? `${offset + 1}–${offset + res.records.length} of ${res.total} records`
      : 'No records match.';
    prev.disabled = offset === 0;
    next.disabled = offset + res.records.length >= res.total;
    await drawChart(q);
  }

  async function drawChart(q) {
    const start = q.get('from') ? Number(q.get('from')) : Date.now() - 3600_000;
    const end = q.get('to') ? Number(q.get('to')) : Date.now();
    // About 60 bars, at least a minute each (calls per minute for the last hour).
    const steps = [60, 300, 900, 3600, 21600, 86400];
    let bucket = steps.find(s => (end - start) / (s * 1000) <= 120) || 86400;
    const hq = new URLSearchParams(q);
    hq.set('from', String(start));
    hq.set('bucket', `${bucket}s`);
    const res = await api('GET', `/api/audit/histogram?${hq}`);
    clear(chart);
    const unit = bucket === 60 ? 'minute' : bucket < 3600 ? `${bucket / 60} minutes` : bucket === 3600 ? 'hour' : `${bucket / 3600} hours`;
    chart.append(h('figcaption', {}, `Calls per ${unit} by decision`));
    if (!res.buckets.length) {
      chart.append(h('p', {class: 'empty'}, 'No calls in this range.'));
      return;
    }
    const max = Math.max(...res.buckets.map(b => b.allow + b.deny + b.approval), 1);
    const n = Math.max(1, Math.ceil((res.to_ms - res.from_ms) / res.bucket_ms));
    const W = 800, H = 160, bw = W / n;
    const NS = 'http://www.w3.org/2000/svg';
    const svg = document.createElementNS(NS, 'svg');
    svg.setAttribute('viewBox', `0 0 ${W} ${H + 20}`);
    svg.setAttribute('role', 'img');
    svg.setAttribute('aria-label', `Bar chart: ${res.buckets.reduce((s, b) => s + b.allow, 0)} allowed, ${res.buckets.reduce((s, b) => s + b.deny, 0)} denied, ${res.buckets.reduce((s, b) => s + b.approval, 0)} held for approval`);
    for (const b of res.buckets) {
      const i = Math.floor((b.start_ms - Math.floor(res.from_ms / res.bucket_ms) * res.bucket_ms) / res.bucket_ms);
      let y = H;
      for (const [k, cls] of [['allow', 'bar-allow'], ['approval', 'bar-approval'], ['deny', 'bar-deny']]) {
        const hgt = (b[k] / max) * H;
        if (!hgt) continue;
        y -= hgt;
        const rect = document.createElementNS(NS, 'rect');
        rect.setAttribute('x', String(i * bw + 1));
        rect.setAttribute('y', String(y));
        rect.setAttribute('width', String(Math.max(1, bw - 2)));
        rect.setAttribute('height', String(hgt));
        rect.setAttribute('class', cls);
        const title = document.createElementNS(NS, 'title');
        title.textContent = `${fmtTime(b.start_ms)}: ${b[k]} ${k}`;
        rect.append(title);
        svg.append(rect);
      }
    }
    const label = (x, text, anchor) => {
      const t = document.createElementNS(NS, 'text');
      t.setAttribute('x', String(x));
      t.setAttribute('y', String(H + 15));
      t.setAttribute('text-anchor', anchor);
      t.setAttribute('class', 'axis');
      t.textContent = text;
      svg.append(t);
    };
    label(0, fmtTime(res.from_ms), 'start');
    label(W, fmtTime(res.to_ms), 'end');
    chart.append(svg, h('p', {class: 'legend small'}, h('span', {class: 'key allow'}), ' allow ',
      h('span', {class: 'key approval'}), ' approval ', h('span', {class: 'key deny'}), ' deny', ` · highest bar ${max}`));
  }

  form.addEventListener('submit', e => { e.preventDefault(); offset = 0; load(); });
  prev.addEventListener('click', () => { offset = Math.max(0, offset - PAGE); load(); });
  next.addEventListener('click', () => { offset += PAGE; load(); });
  await load();
}

// The grant, and the person behind it when there is one: "alice@example.com (claude-code-x8f3k2)".
export function who(r) {
  if (!r.principal || r.principal === r.grant) return r.grant || '—';
  return `${r.principal} (${r.grant})`;
}
