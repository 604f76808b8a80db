/** CEF (ArcSight Common Event Format) parsing, with its escaping rules. */

export interface CefEvent {
  version: number;
  device_vendor: string;
  device_product: string;
  device_version: string;
  signature_id: string;
  name: string;
  severity: string;
  /** Extension key=value pairs, unescaped. */
  extension: Record<string, string>;
}

export class CefParseError extends Error {
  override name = 'CefParseError';
}

/**
 * Parses `CEF:Version|Device Vendor|Device Product|Device Version|Signature ID|Name|Severity|Extension`.
 * In the header `\|` and `\\` are escapes; in the extension `\=`, `\\`, `\n` and `\r` are.
 */
export function parseCef(text: string): CefEvent {
  const start = text.indexOf('CEF:');
  if (start < 0) throw new CefParseError('no "CEF:" prefix');
  const fields: string[] = [];
  let current = '';
  let at = start + 4;
  while (fields.length < 7) {
    const ch = text[at];
    if (ch === undefined) throw new CefParseError(`CEF header has ${fields.length + 1} of 8 fields`);
    if (ch === '\\' && (text[at + 1] === '|' || text[at + 1] === '\\')) {
      current += text[at + 1];
      at += 2;
    } else if (ch === '|') {
      fields.push(current);
      current = '';
      at += 1;
    } else {
      current += ch;
      at += 1;
    }
  }
  const [version, vendor, product, deviceVersion, signatureId, name, severity] = fields as [
    string,
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  if (!/^\d+$/.test(version.trim())) throw new CefParseError(`CEF version "${version}" is not a number`);
  return {
    version: Number(version.trim()),
    device_vendor: vendor,
    device_product: product,
    device_version: deviceVersion,
    signature_id: signatureId,
    name,
    severity: severity.trim(),
    extension: parseExtension(text.slice(at)),
  };
}

const KEY_AT = /(?:^|\s)([A-Za-z0-9_.[\]-]+)=/g;

/**
 * Parses the extension: keys are words followed by an unescaped `=`; a value runs until the
 * space before the next key, so values may hold spaces.
 */
export function parseExtension(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  const keys: Array<{ key: string; keyStart: number; valueStart: number }> = [];
  KEY_AT.lastIndex = 0;
  for (let m = KEY_AT.exec(text); m !== null; m = KEY_AT.exec(text)) {
    const eq = m.index + m[0].length - 1;
    if (isEscaped(text, eq)) continue;
    keys.push({ key: m[1] as string, keyStart: eq - (m[1] as string).length, valueStart: eq + 1 });
  }
  if (keys.length === 0 && text.trim().length > 0)
    throw new CefParseError('CEF extension has text but no key=value pair');
  if (keys.length > 0 && text.slice(0, keys[0]?.keyStart).trim().length > 0)
    throw new CefParseError('CEF extension begins with text that is not a key=value pair');
  keys.forEach((k, i) => {
    const next = keys[i + 1];
    const raw = text.slice(k.valueStart, next ? next.keyStart : text.length);
    // trimEnd, not /\s+$/: the regex takes time quadratic in a run of spaces not at the end.
    out[k.key] = unescapeValue(raw.trimEnd());
  });
  return out;
}

function isEscaped(text: string, index: number): boolean {
  let backslashes = 0;
  for (let i = index - 1; i >= 0 && text[i] === '\\'; i -= 1) backslashes += 1;
  return backslashes % 2 === 1;
}

function unescapeValue(raw: string): string {
  return raw.replace(/\\([\\=nr|])/g, (_, ch: string) => (ch === 'n' ? '\n' : ch === 'r' ? '\r' : ch));
}
