// Writes a JSON value as block-style YAML that toolwarden's loader reads back to the same
// value: every string is double-quoted (JSON escapes are valid YAML), keys too unless plain.
const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_.-]*$/;
const RESERVED = /^(true|false|null|yes|no|on|off|y|n|~)$/i;

function key(k) {
  return PLAIN_KEY.test(k) && !RESERVED.test(k) ? k : JSON.stringify(k);
}

// Plain (unquoted) when YAML would read it back as the same string: starts with a letter,
// holds no ': ', ' #' or flow characters, is not a YAML 1.1/1.2 keyword.
const PLAIN = /^[A-Za-z_][A-Za-z0-9_ .,\/()'-]*$/;
function scalar(v) {
  if (v === null) return 'null';
  if (typeof v === 'string') {
    const plain = PLAIN.test(v) && !RESERVED.test(v) && !v.endsWith(' ') && !/\s[#]|:\s/.test(v);
    return plain ? v : JSON.stringify(v);
  }
  return String(v);
}

function isEmpty(v) {
  return (Array.isArray(v) && v.length === 0) ||
         (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length === 0);
}

function emit(v, indent, out) {
  const pad = ' '.repeat(indent);
  if (Array.isArray(v)) {
    for (const item of v) {
      if (item && typeof item === 'object' && !isEmpty(item)) {
        const lines = [];
        emit(item, indent + 2, lines);
        lines[0] = pad + '- ' + lines[0].slice(indent + 2);
        out.push(...lines);
      } else {
        out.push(pad + '- ' + (isEmpty(item) ? JSON.stringify(item) : scalar(item)));
      }
    }
    return;
  }
  for (const [k, val] of Object.entries(v)) {
    if (val && typeof val === 'object' && !isEmpty(val)) {
      out.push(pad + key(k) + ':');
      emit(val, indent + 2, out);
    } else {
      out.push(pad + key(k) + ': ' + (isEmpty(val) ? JSON.stringify(val) : scalar(val)));
    }
  }
}

export function toYaml(doc) {
  const out = [];
  emit(doc, 0, out);
  return out.join('\n') + '\n';
}
