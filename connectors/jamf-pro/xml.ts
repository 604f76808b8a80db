import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { PermanentError } from '../../core/plugin-api/index.ts';

/**
 * The XML variant of Jamf Pro webhooks (content type text/xml): a `<JSSEvent>` document with the
 * same `webhook` and `event` members as the JSON one, every value as text. It is converted to the
 * JSON shape so one schema checks both.
 */

const parser = new XMLParser({
  ignoreAttributes: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  parseTagValue: false,
  trimValues: true,
  processEntities: true,
  maxNestedTags: 16,
});

const NUMBER_FIELDS = new Set(['id', 'eventTimestamp', 'jssID', 'jssid', 'policyId']);
const BOOLEAN_FIELDS = new Set(['computer', 'smartGroup', 'successful']);
const ID_LIST_FIELDS = new Set([
  'groupAddedDevicesIds',
  'groupRemovedDevicesIds',
  'groupAddedUserIds',
  'groupRemovedUserIds',
]);
const LIST_FIELDS = new Set(['groupAddedDevices', 'groupRemovedDevices']);

function xmlError(message: string): PermanentError {
  return new PermanentError(message, { code: 'SSF_ERR_JAMF_PAYLOAD' });
}

function toNumber(value: unknown): unknown {
  return typeof value === 'string' && /^-?\d+$/.test(value.trim()) ? Number(value.trim()) : value;
}

function toBoolean(value: unknown): unknown {
  if (typeof value !== 'string') return value;
  const v = value.trim().toLowerCase();
  return v === 'true' ? true : v === 'false' ? false : value;
}

/**
 * An id list written any of the ways XML allows: repeated child elements
 * (`<groupAddedDevicesIds><id>1</id><id>2</id></groupAddedDevicesIds>`), repeated elements, a
 * single value, a comma-separated value, or an empty element.
 */
function toIdList(value: unknown): unknown[] {
  if (value === undefined || value === null || value === '') return [];
  if (Array.isArray(value)) return value.flatMap(toIdList);
  if (typeof value === 'object') return Object.values(value as Record<string, unknown>).flatMap(toIdList);
  if (typeof value === 'string') {
    return value
      .split(/[\s,]+/)
      .filter((t) => t.length > 0)
      .map(toNumber);
  }
  return [value];
}

function toList(value: unknown): unknown[] {
  if (value === undefined || value === null || value === '') return [];
  if (Array.isArray(value)) return value;
  if (typeof value === 'object') {
    const inner = Object.values(value as Record<string, unknown>);
    return inner.length === 1 && Array.isArray(inner[0]) ? inner[0] : inner;
  }
  return [value];
}

function convert(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(convert);
  if (value === null || typeof value !== 'object') return value;
  const out: Record<string, unknown> = {};
  for (const [key, raw] of Object.entries(value as Record<string, unknown>)) {
    if (ID_LIST_FIELDS.has(key)) out[key] = toIdList(raw);
    else if (LIST_FIELDS.has(key)) out[key] = toList(raw).map(convert);
    else if (NUMBER_FIELDS.has(key)) out[key] = toNumber(raw);
    else if (BOOLEAN_FIELDS.has(key)) out[key] = typeof raw === 'object' ? convert(raw) : toBoolean(raw);
    else out[key] = convert(raw);
  }
  return out;
}

/** Parses a `<JSSEvent>` document into `{webhook, event}`; refuses malformed XML and DTDs. */
export function parseJamfXml(text: string): unknown {
  if (/<!DOCTYPE|<!ENTITY/i.test(text)) {
    throw xmlError('XML with a DOCTYPE or entity declarations is refused (Jamf Pro never sends one)');
  }
  const valid = XMLValidator.validate(text);
  if (valid !== true) {
    throw xmlError(
      `malformed XML: ${valid.err.msg.replace(/\s+/g, ' ')} (line ${valid.err.line}, column ${valid.err.col})`,
    );
  }
  let document: Record<string, unknown>;
  try {
    document = parser.parse(text) as Record<string, unknown>;
  } catch (err) {
    throw xmlError(`malformed XML: ${(err as Error).message}`);
  }
  const root = document['JSSEvent'];
  if (root === undefined || root === null || typeof root !== 'object') {
    const found = Object.keys(document).join(', ') || 'nothing';
    throw xmlError(`not a Jamf Pro webhook: the XML root must be <JSSEvent> (found ${found})`);
  }
  return convert(root);
}
