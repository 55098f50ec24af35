// Line diff (longest common subsequence), for policy files and tool definitions.
// Returns [{op: ' ' | '-' | '+', text}]. Quadratic in the worst case; inputs are capped.
export function diffLines(a, b) {
  const x = a.split('\n'), y = b.split('\n');
  // Trim the common head and tail: most edits are local.
  let head = 0;
  while (head < x.length && head < y.length && x[head] === y[head]) head++;
  let tail = 0;
  while (tail < x.length - head && tail < y.length - head &&
         x[x.length - 1 - tail] === y[y.length - 1 - tail]) tail++;
  const xs = x.slice(head, x.length - tail), ys = y.slice(head, y.length - tail);
  const out = x.slice(0, head).map(text => ({op: ' ', text}));
  if (xs.length * ys.length > 4_000_000) {
    xs.forEach(text => out.push({op: '-', text}));
    ys.forEach(text => out.push({op: '+', text}));
  } else {
    const n = xs.length, m = ys.length;
    const lcs = Array.from({length: n + 1}, () => new Uint32Array(m + 1));
    for (let i = n - 1; i >= 0; i--) {
      for (let j = m - 1; j >= 0; j--) {
        lcs[i][j] = xs[i] === ys[j] ? lcs[i + 1][j + 1] + 1 : Math.max(lcs[i + 1][j], lcs[i][j + 1]);
      }
    }
    let i = 0, j = 0;
    while (i < n || j < m) {
      if (i < n && j < m && xs[i] === ys[j]) { out.push({op: ' ', text: xs[i]}); i++; j++; }
      else if (i < n && (j === m || lcs[i + 1][j] >= lcs[i][j + 1])) out.push({op: '-', text: xs[i++]});
      else out.push({op: '+', text: ys[j++]});
    }
  }
  x.slice(x.length - tail).forEach(text => out.push({op: ' ', text}));
  return out;
}

// Renders a diff as a <pre> with one line per entry; unchanged runs longer than 6 lines fold.
export function renderDiff(h, a, b) {
  const lines = diffLines(a, b);
  if (!lines.some(l => l.op !== ' ')) return h('p', {class: 'muted'}, 'No differences.');
  const pre = h('pre', {class: 'diff', tabindex: '0'});
  let run = [];
  const flush = () => {
    if (run.length > 6) {
      run.slice(0, 2).forEach(l => pre.append(h('span', {class: 'same'}, '  ' + l.text + '\n')));
      pre.append(h('span', {class: 'fold'}, `  … ${run.length - 4} unchanged lines\n`));
      run.slice(-2).forEach(l => pre.append(h('span', {class: 'same'}, '  ' + l.text + '\n')));
    } else run.forEach(l => pre.append(h('span', {class: 'same'}, '  ' + l.text + '\n')));
    run = [];
  };
  for (const l of lines) {
    if (l.op === ' ') { run.push(l); continue; }
    flush();
    pre.append(h('span', {class: l.op === '+' ? 'add' : 'del'}, `${l.op} ${l.text}\n`));
  }
  flush();
  return pre;
}
