/**
 * A small RFC 8259 syntax checker that finds the offset of the first error. V8's
 * JSON.parse messages do not always give a position, so this runs on the error path only
 * to tell the client exactly where its body broke.
 */

const expectValue = 0;
const expectKey = 1;
const afterValue = 2;
const inObject = 1;
const inArray = 2;

/** The offset of the first JSON syntax error in `text` (RFC 8259), or -1 if there is none. */
export function jsonErrorOffset(text: string): number {
  const containers: number[] = [];
  let state = expectValue;
  let i = 0;
  for (;;) {
    i = skipWhitespace(text, i);
    const code = text.charCodeAt(i);
    if (state === expectValue) {
      if (code === 0x7b || code === 0x5b) {
        i = skipWhitespace(text, i + 1);
        if (text.charCodeAt(i) === code + 2) { // `}` and `]` follow `{` and `[` by two.
          i++;
          state = afterValue;
        } else {
          containers.push(code === 0x7b ? inObject : inArray);
          state = code === 0x7b ? expectKey : expectValue;
        }
        continue;
      }
      const end = scalarEnd(text, i);
      if (end < 0) return ~end;
      i = end;
      state = afterValue;
    } else if (state === expectKey) {
      if (code !== 0x22) return i;
      const end = stringEnd(text, i);
      if (end < 0) return ~end;
      i = skipWhitespace(text, end);
      if (text.charCodeAt(i) !== 0x3a) return i;
      i++;
      state = expectValue;
    } else {
      const top = containers[containers.length - 1];
      if (top === undefined) return i >= text.length ? -1 : i;
      if (code === 0x2c) {
        i++;
        state = top === inObject ? expectKey : expectValue;
      } else if ((top === inObject && code === 0x7d) || (top === inArray && code === 0x5d)) {
        containers.pop();
        i++;
      } else return i;
    }
  }
}

function skipWhitespace(text: string, start: number): number {
  let i = start;
  for (;;) {
    const code = text.charCodeAt(i);
    if (code !== 0x20 && code !== 0x0a && code !== 0x0d && code !== 0x09) return i;
    i++;
  }
}

/** End of the string, number or literal at `start`; `~offset` of the error otherwise. */
function scalarEnd(text: string, start: number): number {
  const code = text.charCodeAt(start);
  if (code === 0x22) return stringEnd(text, start);
  if (code === 0x2d || (code >= 0x30 && code <= 0x39)) return numberEnd(text, start);
  for (const literal of ['true', 'false', 'null']) {
    if (code !== literal.charCodeAt(0)) continue;
    for (let k = 1; k < literal.length; k++) if (text.charCodeAt(start + k) !== literal.charCodeAt(k)) return ~(start + k);
    return start + literal.length;
  }
  return ~start;
}

function stringEnd(text: string, start: number): number {
  let i = start + 1;
  for (;;) {
    if (i >= text.length) return ~text.length;
    const code = text.charCodeAt(i);
    if (code === 0x22) return i + 1;
    if (code < 0x20) return ~i;
    if (code === 0x5c) {
      const escape = text.charAt(i + 1);
      if (escape === 'u') {
        for (let k = 2; k < 6; k++) if (!/[0-9a-fA-F]/.test(text.charAt(i + k))) return ~(i + k);
        i += 6;
      } else if (escape !== '' && '"\\/bfnrt'.includes(escape)) i += 2;
      else return ~(i + 1);
    } else i++;
  }
}

function numberEnd(text: string, start: number): number {
  let i = start;
  if (text.charCodeAt(i) === 0x2d) i++;
  if (text.charCodeAt(i) === 0x30) i++;
  else if (isDigit(text.charCodeAt(i))) while (isDigit(text.charCodeAt(i))) i++;
  else return ~i;
  if (text.charCodeAt(i) === 0x2e) {
    i++;
    if (!isDigit(text.charCodeAt(i))) return ~i;
    while (isDigit(text.charCodeAt(i))) i++;
  }
  const exponent = text.charCodeAt(i);
  if (exponent === 0x65 || exponent === 0x45) {
    i++;
    const sign = text.charCodeAt(i);
    if (sign === 0x2b || sign === 0x2d) i++;
    if (!isDigit(text.charCodeAt(i))) return ~i;
    while (isDigit(text.charCodeAt(i))) i++;
  }
  return i;
}

function isDigit(code: number): boolean {
  return code >= 0x30 && code <= 0x39;
}
