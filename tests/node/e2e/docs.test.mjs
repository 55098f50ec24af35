// The README's and docs' command lines against the command line itself: every `toolwarden …`
// in a ```sh block names subcommands and flags that exist where it uses them (the grammar comes
// from the binary, `toolwarden completions bash`). The install → init → protected path itself
// runs in tests/package/run.sh; the commands' behaviour in the other e2e tests.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';

import { ROOT, TOOLWARDEN } from './helpers.mjs';

// The CLI tree from the bash completion script: subcommands and flags at each path.
function grammar() {
  const script = spawnSync(TOOLWARDEN, ['completions', 'bash'], { encoding: 'utf8' }).stdout;
  const flags = new Map();
  const subs = new Map();
  for (const m of script.matchAll(/^ {4}'([^']*)'\) words='([^']*)' ;;$/gm)) flags.set(m[1], new Set(m[2].split(' ')));
  for (const m of script.matchAll(/^ {4}'([^']*)'\) subs='([^']*)' ;;$/gm)) subs.set(m[1], new Set(m[2].split(' ')));
  return { flags, subs };
}

// Shell words of one command (quotes removed; enough for documentation).
function words(command) {
  return [...command.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)].map((m) => m[1] ?? m[2] ?? m[3]);
}

function commands(file) {
  const out = [];
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  let inSh = false;
  let pending = '';
  lines.forEach((raw, i) => {
    if (/^```/.test(raw)) {
      inSh = !inSh && /^```(sh|bash|shell)\s*$/.test(raw);
      return;
    }
    if (!inSh) return;
    let text = pending + raw.replace(/^\$ /, '');
    if (text.endsWith('\\')) {
      pending = text.slice(0, -1) + ' ';
      return;
    }
    pending = '';
    text = text.replace(/(^|\s)#.*$/, '');  // a comment
    for (const part of text.split(/&&|\|\||;|\|/)) {
      let w = words(part.trim());
      while (w.length && /^[A-Z_]+=/.test(w[0])) w = w.slice(1);  // VAR=value before it
      if (w[0] === 'sudo') w = w.slice(w[1] === '-u' ? 3 : 1);
      if (w.length && /(^|\/)toolwarden$/.test(w[0])) out.push({ line: i + 1, argv: w.slice(1), text: part.trim() });
    }
  });
  return out;
}

function check({ flags, subs }, argv) {
  let at = '';
  for (const w of argv) {
    if (w === '--') break;  // the server's own command line
    if (w.startsWith('-')) {
      const flag = w.split('=')[0];
      if (!flags.get(at)?.has(flag)) return `no flag ${flag} for "toolwarden ${at}"`;
      continue;
    }
    if (subs.get(at)?.has(w)) at = at ? `${at} ${w}` : w;
  }
  if (subs.get(at)?.size && !at.split(' ').includes('demo')) {
    // A command that needs a subcommand and names none.
    const needs = ['grants', 'approvals', 'pins', 'admin', 'state'];
    if (needs.includes(at)) return `"toolwarden ${at}" needs a subcommand`;
  }
  if (at === '') return `no subcommand in it`;
  return null;
}

describe('documented commands', () => {
  const g = grammar();
  for (const file of ['README.md', 'docs/install.md', 'docs/configuration.md', 'docs/fleet.md', 'docs/testing.md', 'docs/protocol-eras.md', 'docs/security.md', 'docs/api.md', 'docs/policy-reference.md', 'docs/oauth.md']) {
    it(`every toolwarden command in ${file} exists as written`, () => {
      const found = commands(path.join(ROOT, file));
      if (file === 'README.md') assert.ok(found.length >= 30, `only ${found.length} commands found`);
      const problems = found.map((c) => [c, check(g, c.argv)]).filter(([, p]) => p)
        .map(([c, p]) => `${file}:${c.line}: ${c.text}\n    ${p}`);
      assert.deepEqual(problems, []);
    });
  }
});

describe('the README\'s policy example', () => {
  it('passes the README\'s own test cases (toolwarden test)', () => {
    const readme = fs.readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(readme.indexOf('\n## Policy\n'), readme.indexOf('\n## Human approval\n'));
    const blocks = [...section.matchAll(/```yaml\n([\s\S]*?)```/g)].map((m) => m[1]);
    const policy = blocks.find((b) => b.includes('create_refund:') && b.includes('version:'));
    const cases = blocks.find((b) => b.startsWith('# policy.cases.yaml'));
    assert.ok(policy && cases, 'the policy and its cases are in the README');
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-readme-'));
    fs.writeFileSync(path.join(dir, 'policy.yaml'), policy);
    fs.writeFileSync(path.join(dir, 'policy.cases.yaml'), cases);
    const r = spawnSync(TOOLWARDEN, ['test', path.join(dir, 'policy.yaml'), path.join(dir, 'policy.cases.yaml')], { encoding: 'utf8' });
    fs.rmSync(dir, { recursive: true, force: true });
    assert.equal(r.status, 0, r.stdout + r.stderr);
    assert.match(r.stdout, /2 cases: 2 passed, 0 failed/);
  });
});

describe('the documented policies', () => {
  for (const file of ['README.md', 'docs/policy-reference.md']) {
    it(`every whole policy in ${file} is valid`, () => {
      const text = fs.readFileSync(path.join(ROOT, file), 'utf8');
      const policies = [...text.matchAll(/```(?:yaml|json)\n([\s\S]*?)```/g)].map((m) => m[1])
        .filter((b) => /^version: "1"$/m.test(b) && !/^\s*rules:/m.test(b));
      assert.ok(policies.length >= (file === 'README.md' ? 1 : 3), `only ${policies.length} policies found`);
      const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tw-docs-'));
      const problems = policies.map((p, i) => {
        const f = path.join(dir, `p${i}.yaml`);
        fs.writeFileSync(f, p);
        const r = spawnSync(TOOLWARDEN, ['validate', f], { encoding: 'utf8' });
        return r.status === 0 ? null : `${p.split('\n').slice(0, 4).join(' | ')}\n    ${r.stdout}${r.stderr}`;
      }).filter(Boolean);
      fs.rmSync(dir, { recursive: true, force: true });
      assert.deepEqual(problems, []);
    });
  }
});
