/** LEEF (IBM QRadar Log Event Extended Format) 1.0 and 2.0 parsing. */

export interface LeefEvent {
  version: string;
  vendor: string;
  product: string;
  product_version: string;
  event_id: string;
  /** The attribute delimiter: a tab for LEEF 1.0, the declared one for LEEF 2.0. */
  delimiter: string;
  attributes: Record<string, string>;
}

export class LeefParseError extends Error {
  override name = 'LeefParseError';
}

/** Reads a LEEF 2.0 delimiter field: one character, or `0x`/`x` followed by hex digits. */
function delimiterOf(field: string): string {
  if (field.length === 1) return field;
  const hex = /^(?:0?x)([0-9a-fA-F]{1,4})$/.exec(field);
  if (hex) return String.fromCharCode(parseInt(hex[1] as string, 16));
  throw new LeefParseError(`LEEF 2.0 delimiter "${field}" is neither a character nor a hex code`);
}

/**
 * Parses `LEEF:1.0|Vendor|Product|Version|EventID|attrs` (tab-delimited attributes) and
 * `LEEF:2.0|Vendor|Product|Version|EventID|Delimiter|attrs`.
 */
export function parseLeef(text: string): LeefEvent {
  const start = text.indexOf('LEEF:');
  if (start < 0) throw new LeefParseError('no "LEEF:" prefix');
  const body = text.slice(start + 5);
  const header: string[] = [];
  let at = 0;
  const fieldCount = body.startsWith('2.0|') ? 6 : 5;
  while (header.length < fieldCount) {
    const bar = body.indexOf('|', at);
    if (bar < 0) {
      // The LEEF 2.0 delimiter field may end the line when there are no attributes.
      if (header.length === 5 && fieldCount === 6 && at < body.length) {
        header.push(body.slice(at));
        at = body.length;
        break;
      }
      throw new LeefParseError(`LEEF header has ${header.length} of ${fieldCount} fields`);
    }
    header.push(body.slice(at, bar));
    at = bar + 1;
  }
  const [version, vendor, product, productVersion, eventId] = header as [
    string,
    string,
    string,
    string,
    string,
  ];
  if (version !== '1.0' && version !== '2.0')
    throw new LeefParseError(`LEEF version "${version}" is not 1.0 or 2.0`);
  const delimiter = version === '2.0' ? delimiterOf(header[5] as string) : '\t';
  const attributes: Record<string, string> = {};
  const rest = body.slice(at);
  if (rest.length > 0) {
    for (const pair of rest.split(delimiter)) {
      if (pair.trim().length === 0) continue;
      const eq = pair.indexOf('=');
      if (eq <= 0) throw new LeefParseError(`LEEF attribute "${pair.slice(0, 40)}" is not key=value`);
      attributes[pair.slice(0, eq).trim()] = pair.slice(eq + 1);
    }
  }
  return {
    version,
    vendor,
    product,
    product_version: productVersion,
    event_id: eventId,
    delimiter,
    attributes,
  };
}
