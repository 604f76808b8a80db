/**
 * Text every store can keep. PostgreSQL's text and jsonb refuse U+0000 and the unpaired half of
 * a surrogate pair (left by a cut at a fixed length, or sent so); SQLite keeps both. Events are
 * refused with such text at acceptance, so both stores take the same events; what the bridge
 * records of others' answers is made storable instead.
 */

/** A high surrogate not followed by a low one, or a low one not preceded by a high one. */
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/;
const LONE_SURROGATES = new RegExp(LONE_SURROGATE.source, 'g');

/** Whether every store can keep `text` as it is. */
export function isStorableText(text: string): boolean {
  return !text.includes('\u0000') && !LONE_SURROGATE.test(text);
}

/** `text` with U+0000 and unpaired surrogates replaced by U+FFFD. */
export function storableText(text: string): string {
  if (isStorableText(text)) return text;
  return text.replace(LONE_SURROGATES, '\uFFFD').replaceAll('\u0000', '\uFFFD');
}

/**
 * The path (`a.b[2]`) of the first string or key in `value` that a store cannot keep, or
 * undefined. Walked iteratively; call it on values whose depth is already bounded.
 */
export function unstorableTextPath(value: unknown, path = ''): string | undefined {
  const stack: Array<[unknown, string]> = [[value, path]];
  for (let next = stack.pop(); next !== undefined; next = stack.pop()) {
    const [item, at] = next;
    if (typeof item === 'string') {
      if (!isStorableText(item)) return at;
      continue;
    }
    if (item === null || typeof item !== 'object') continue;
    if (Array.isArray(item)) {
      item.forEach((child, i) => stack.push([child, `${at}[${i}]`]));
      continue;
    }
    for (const [key, child] of Object.entries(item)) {
      const keyPath = at ? `${at}.${key}` : key;
      if (!isStorableText(key)) return keyPath;
      stack.push([child, keyPath]);
    }
  }
  return undefined;
}
