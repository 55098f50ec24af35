// Summarizes bench/compare.sh results (JSON lines) as Markdown tables: the median over rounds
// and the spread (min–max), with ratios against direct and against toolwarden.
import fs from 'node:fs';

const file = process.argv[2];
const runs = fs.readFileSync(file, 'utf8').trim().split('\n').filter(Boolean).map((l) => JSON.parse(l));
const by = new Map();
for (const r of runs) {
  if (!by.has(r.label)) by.set(r.label, []);
  by.get(r.label).push(r);
}
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? (s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2) : NaN;
};
const stat = (label, key) => {
  const xs = (by.get(label) ?? []).filter((r) => !r.failed && r[key] != null).map((r) => r[key]);
  return { med: median(xs), min: Math.min(...xs), max: Math.max(...xs), n: xs.length };
};
const failures = (label) => (by.get(label) ?? []).filter((r) => r.failed || r.errors > 0).length;
const fmt = (x, d = 0) => (Number.isFinite(x) ? x.toFixed(d) : '–');
const spread = (s, d = 0) => (s.n > 1 ? ` (${fmt(s.min, d)}–${fmt(s.max, d)})` : '');
const tput = (l) => stat(l, 'throughput');
const ratio = (a, b, d = 2) => (Number.isFinite(a) && Number.isFinite(b) && b ? `${(a / b).toFixed(d)}×` : '–');

const scaling = /^(nginx-\d+w|tw-\d+(loops|procs))$/;
const closed = [...by.keys()].filter((l) => !l.includes('@') && !l.startsWith('stdio-') && !l.startsWith('idle') && !scaling.test(l));
const open = [...by.keys()].filter((l) => l.includes('@'));
const stdio = [...by.keys()].filter((l) => l.startsWith('stdio-'));

const ns = [...new Set([...by.keys()].filter((l) => scaling.test(l)).map((l) => Number(l.match(/\d+/)[0])))].sort((a, b) => a - b);
if (ns.length) {
  console.log('\n### Event loops against nginx workers (closed loop, calls/s; CPU s per 10k calls)\n');
  console.log('| N | nginx, N workers | toolwarden, N loops | loops vs nginx | toolwarden, N processes | loops vs processes | CPU nginx | CPU loops | CPU loops vs nginx |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|---:|---:|');
  for (const n of ns) {
    const ng = tput(`nginx-${n}w`), lo = tput(`tw-${n}loops`), pr = tput(`tw-${n}procs`);
    const cn = stat(`nginx-${n}w`, 'cpu_s_per_10k'), cl = stat(`tw-${n}loops`, 'cpu_s_per_10k');
    console.log(`| ${n} | ${fmt(ng.med)}${spread(ng)} | ${fmt(lo.med)}${spread(lo)} | ${ratio(lo.med, ng.med)} | ${fmt(pr.med)}${spread(pr)} | ${ratio(lo.med, pr.med)} | ${fmt(cn.med, 2)} | ${fmt(cl.med, 2)} | ${ratio(cl.med, cn.med)} |`);
  }
}

if (closed.length) {
console.log('\n### Throughput (closed loop)\n');
console.log('| contender | calls/s | vs direct | vs tw-realistic | CPU s / 10k calls | peak RSS MiB | runs with errors |');
console.log('|---|---:|---:|---:|---:|---:|---:|');
for (const l of closed) {
  const t = tput(l);
  const cpu = stat(l, by.get(l).some((r) => r.cpu_s_per_10k != null) ? 'cpu_s_per_10k' : 'pid0_cpu_s_per_10k');
  const rss = stat(l, 'pid0_peak_rss_kib');
  console.log(`| ${l} | ${fmt(t.med)}${spread(t)} | ${ratio(t.med, tput('direct').med)} | ${ratio(t.med, tput('tw-realistic').med)} | ${fmt(cpu.med, 2)} | ${fmt(rss.med / 1024, 1)} | ${failures(l)} |`);
}
if (by.has('tw-realistic-2026') && by.has('tw-realistic')) {
  // The same gateway, the same run: a 2026-07-28 stateless call against a 2025-era session's.
  const c26 = stat('tw-realistic-2026', 'cpu_s_per_10k'), c25 = stat('tw-realistic', 'cpu_s_per_10k');
  console.log(`\n2026-07-28 call vs 2025-era call, CPU per call: ${ratio(c26.med, c25.med)} (target ≤ 1.1)`);
}
}
if (open.length) {
console.log('\n### Latency at a fixed rate (open loop, µs)\n');
console.log('| contender | p50 | p90 | p99 | p99.9 | p50 vs direct | p99 vs direct | runs with errors |');
console.log('|---|---:|---:|---:|---:|---:|---:|---:|');
const directOpen = open.find((l) => l.startsWith('direct@'));
for (const l of open) {
  const p50 = stat(l, 'p50_us'), p90 = stat(l, 'p90_us'), p99 = stat(l, 'p99_us'), p999 = stat(l, 'p999_us');
  console.log(`| ${l} | ${fmt(p50.med)}${spread(p50)} | ${fmt(p90.med)} | ${fmt(p99.med)}${spread(p99)} | ${fmt(p999.med)} | ${ratio(p50.med, stat(directOpen, 'p50_us').med)} | ${ratio(p99.med, stat(directOpen, 'p99_us').med)} | ${failures(l)} |`);
}
}
if (stdio.length) {
console.log('\n### stdio wrapper (closed loop)\n');
console.log('| contender | calls/s | vs its direct row | p50 µs | p99 µs | runs with errors |');
console.log('|---|---:|---:|---:|---:|---:|');
for (const l of stdio) {
  const t = tput(l);
  const base = l.startsWith('stdio-everything-') ? 'stdio-everything-direct'
    : l.startsWith('stdio-seq-everything-') ? 'stdio-seq-everything-direct'
    : l.startsWith('stdio-seq-') ? 'stdio-seq-direct' : 'stdio-direct';
  console.log(`| ${l} | ${fmt(t.med)}${spread(t)} | ${ratio(t.med, tput(base).med)} | ${fmt(stat(l, 'p50_us').med)} | ${fmt(stat(l, 'p99_us').med)} | ${failures(l)} |`);
}
}

const idle = runs.filter((r) => r.label.startsWith('idle') && !r.failed);
if (idle.length) {
  console.log('\n### Idle sessions (toolwarden serve, GET streams held open)\n');
  console.log('| sessions | opened | failed | setup s | RSS before MiB | RSS after MiB | KiB per session |');
  console.log('|---:|---:|---:|---:|---:|---:|---:|');
  for (const r of idle) {
    console.log(`| ${r.sessions} | ${r.opened} | ${r.failed} | ${fmt(r.setup_s, 2)} | ${fmt(r.rss_before_kib / 1024, 1)} | ${fmt(r.rss_after_kib / 1024, 1)} | ${fmt(r.kib_per_session, 1)} |`);
  }
}
