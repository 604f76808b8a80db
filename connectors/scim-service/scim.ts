/**
 * SCIM 2.0 protocol pieces (RFC 7643, RFC 7644): error bodies, attribute paths, filters and
 * PatchOp, with the variants identity providers really send — path-less `value` objects (Okta),
 * capitalised `Replace` and `"False"` strings (Microsoft Entra), URN-qualified paths.
 */

export const SCIM_CONTENT_TYPE = 'application/scim+json; charset=utf-8';
export const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const ENTERPRISE_SCHEMA = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
export const PATCH_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';
export const ERROR_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:Error';
export const LIST_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';
export const SEARCH_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:SearchRequest';

export type ScimType =
  | 'invalidFilter'
  | 'tooMany'
  | 'uniqueness'
  | 'mutability'
  | 'invalidSyntax'
  | 'invalidPath'
  | 'noTarget'
  | 'invalidValue'
  | 'invalidVers'
  | 'sensitive';

/** A failure answered with an RFC 7644 §3.12 error body. */
export class ScimError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly scimType?: ScimType,
  ) {
    super(message);
    this.name = 'ScimError';
  }

  body(): Record<string, unknown> {
    return {
      schemas: [ERROR_SCHEMA],
      status: String(this.status),
      ...(this.scimType ? { scimType: this.scimType } : {}),
      detail: this.message,
    };
  }
}

export type Resource = Record<string, unknown>;

// ---------------------------------------------------------------------------------------------
// Attribute access: names are case-insensitive (RFC 7643 §2.1).

/** The key under which `name` is stored in `obj`, matched without regard to case. */
export function keyOf(obj: Resource, name: string): string | undefined {
  if (Object.prototype.hasOwnProperty.call(obj, name)) return name;
  const lower = name.toLowerCase();
  return Object.keys(obj).find((k) => k.toLowerCase() === lower);
}

export function getAttr(obj: Resource, name: string): unknown {
  const key = keyOf(obj, name);
  return key === undefined ? undefined : obj[key];
}

function setAttr(obj: Resource, name: string, value: unknown): void {
  obj[keyOf(obj, name) ?? name] = value;
}

function isObject(value: unknown): value is Resource {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** Parenthesised groups one filter may nest. */
const MAX_FILTER_DEPTH = 32;

const BOOLEAN_ATTRS = new Set(['active', 'primary']);

/** `"False"`/`"true"` strings (Entra) become booleans for boolean attributes. */
function coerce(name: string, value: unknown): unknown {
  if (BOOLEAN_ATTRS.has(name.toLowerCase()) && typeof value === 'string') {
    const v = value.trim().toLowerCase();
    if (v === 'true') return true;
    if (v === 'false') return false;
    throw new ScimError(400, `${name} must be true or false, not "${value}"`, 'invalidValue');
  }
  if (isObject(value)) {
    const out: Resource = {};
    for (const [k, v] of Object.entries(value)) out[k] = coerce(k, v);
    return out;
  }
  if (Array.isArray(value)) return value.map((v) => coerce(name, v));
  return value;
}

// ---------------------------------------------------------------------------------------------
// Filters (RFC 7644 §3.4.2.2)

type Token =
  | { kind: 'word'; text: string }
  | { kind: 'string'; value: string }
  | { kind: 'punct'; text: '(' | ')' | '[' | ']' };

function tokenize(input: string): Token[] {
  const tokens: Token[] = [];
  let i = 0;
  while (i < input.length) {
    const c = input[i] as string;
    if (/\s/.test(c)) {
      i += 1;
    } else if (c === '(' || c === ')' || c === '[' || c === ']') {
      tokens.push({ kind: 'punct', text: c });
      i += 1;
    } else if (c === '"') {
      let j = i + 1;
      while (j < input.length && input[j] !== '"') j += input[j] === '\\' ? 2 : 1;
      if (j >= input.length)
        throw new ScimError(400, 'a string in the filter is not closed', 'invalidFilter');
      try {
        tokens.push({ kind: 'string', value: JSON.parse(input.slice(i, j + 1)) as string });
      } catch {
        throw new ScimError(400, `invalid string ${input.slice(i, j + 1)} in the filter`, 'invalidFilter');
      }
      i = j + 1;
    } else {
      let j = i;
      while (j < input.length && !/[\s()[\]"]/.test(input[j] as string)) j += 1;
      tokens.push({ kind: 'word', text: input.slice(i, j) });
      i = j;
    }
  }
  return tokens;
}

const COMPARE = new Set(['eq', 'ne', 'co', 'sw', 'ew', 'gt', 'lt', 'ge', 'le']);
/** The operators that compare dateTime values as instants; co, sw and ew stay text matches. */
const CHRONOLOGICAL = new Set(['eq', 'ne', 'gt', 'lt', 'ge', 'le']);

export type Filter =
  | { op: 'and' | 'or'; left: Filter; right: Filter }
  | { op: 'not'; filter: Filter }
  | { op: 'pr'; path: string[] }
  | { op: 'cmp'; cmp: string; path: string[]; value: string | number | boolean | null }
  | { op: 'value'; path: string[]; filter: Filter };

/** An attribute path as its parts: `name.givenName` → [name, givenName]; URN-qualified too. */
export function splitAttrPath(text: string): string[] {
  let rest = text;
  const parts: string[] = [];
  if (/^urn:/i.test(rest)) {
    const last = rest.lastIndexOf(':');
    const urn = rest.slice(0, last);
    rest = rest.slice(last + 1);
    if (urn.toLowerCase() !== USER_SCHEMA.toLowerCase()) parts.push(urn);
  }
  if (!/^[A-Za-z$][\w$-]*(\.[A-Za-z$][\w$-]*)?$/.test(rest)) {
    throw new ScimError(400, `"${text}" is not an attribute path`, 'invalidPath');
  }
  parts.push(...rest.split('.'));
  return parts;
}

export function parseFilter(input: string): Filter {
  const tokens = tokenize(input);
  let pos = 0;
  const peek = () => tokens[pos];
  const word = (t: Token | undefined, w: string) => t?.kind === 'word' && t.text.toLowerCase() === w;
  const fail = (message: string): never => {
    throw new ScimError(400, `${message} in filter "${input}"`, 'invalidFilter');
  };

  function or(): Filter {
    let left = and();
    while (word(peek(), 'or')) {
      pos += 1;
      left = { op: 'or', left, right: and() };
    }
    return left;
  }
  function and(): Filter {
    let left = not();
    while (word(peek(), 'and')) {
      pos += 1;
      left = { op: 'and', left, right: not() };
    }
    return left;
  }
  function not(): Filter {
    if (word(peek(), 'not')) {
      pos += 1;
      return { op: 'not', filter: group() };
    }
    return atom();
  }
  let depth = 0;
  function group(): Filter {
    const open = tokens[pos++];
    if (open?.kind !== 'punct' || open.text !== '(') fail('expected "("');
    // The parser recurses per group: a bound keeps a hostile filter off the call stack's end.
    if (++depth > MAX_FILTER_DEPTH) fail(`more than ${MAX_FILTER_DEPTH} nested groups`);
    const inner = or();
    depth -= 1;
    const close = tokens[pos++];
    if (close?.kind !== 'punct' || close.text !== ')') fail('expected ")"');
    return inner;
  }
  function atom(): Filter {
    const t = peek();
    if (t?.kind === 'punct' && t.text === '(') return group();
    if (t?.kind !== 'word') return fail('expected an attribute');
    pos += 1;
    let path: string[];
    try {
      path = splitAttrPath(t.text);
    } catch {
      return fail(`"${t.text}" is not an attribute`);
    }
    const next = peek();
    if (next?.kind === 'punct' && next.text === '[') {
      pos += 1;
      const inner = or();
      const close = tokens[pos++];
      if (close?.kind !== 'punct' || close.text !== ']') fail('expected "]"');
      return { op: 'value', path, filter: inner };
    }
    const op = tokens[pos++];
    if (op?.kind !== 'word') return fail(`expected an operator after ${t.text}`);
    const name = op.text.toLowerCase();
    if (name === 'pr') return { op: 'pr', path };
    if (!COMPARE.has(name)) return fail(`unknown operator "${op.text}"`);
    const v = tokens[pos++];
    if (v?.kind === 'string') {
      // RFC 7644 §3.4.2.2: a dateTime is compared chronologically, so the value must be one.
      if (isDateTimeAttr(path) && CHRONOLOGICAL.has(name) && instantOf(v.value) === undefined) {
        fail(`"${v.value}" is not a dateTime such as "2026-05-01T00:00:00Z"`);
      }
      return { op: 'cmp', cmp: name, path, value: v.value };
    }
    if (v?.kind === 'word') {
      const lower = v.text.toLowerCase();
      if (lower === 'true' || lower === 'false')
        return { op: 'cmp', cmp: name, path, value: lower === 'true' };
      if (lower === 'null') return { op: 'cmp', cmp: name, path, value: null };
      if (/^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(v.text))
        return { op: 'cmp', cmp: name, path, value: Number(v.text) };
    }
    return fail(`expected a value after ${t.text} ${op.text}`);
  }

  const result = or();
  if (pos !== tokens.length) fail('unexpected text at the end');
  return result;
}

/** xsd:dateTime (RFC 7643 §2.3.5), e.g. `2008-01-23T04:56:22Z`; RFC 3339 allows a lowercase t and z. */
const DATE_TIME = /^(-?\d{4,})-(\d{2})-(\d{2})t(\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(z|[+-]\d{2}:\d{2})?$/i;

/**
 * The instant an xsd:dateTime names, in milliseconds since the epoch (fractions kept), or
 * undefined when `text` is none. A value without a zone is read as UTC, so the answer does not
 * depend on the bridge's time zone.
 */
export function instantOf(text: string): number | undefined {
  const m = DATE_TIME.exec(text);
  if (!m) return undefined;
  const [year = 0, month = 0, day = 0, hour = 0, minute = 0, second = 0] = m.slice(1, 7).map(Number);
  const date = new Date(0);
  // setUTCFullYear, not Date.UTC: that reads the years 0-99 as 1900-1999.
  date.setUTCFullYear(year, month - 1, day);
  date.setUTCHours(hour, minute, second, 0);
  // A day or time out of range (2026-02-30, 25:00) would roll over into another instant.
  if (date.getUTCMonth() !== month - 1 || date.getUTCDate() !== day || date.getUTCHours() !== hour) {
    return undefined;
  }
  const zone = (m[8] ?? 'z').toLowerCase();
  const [zoneHours, zoneMinutes] = zone === 'z' ? [0, 0] : [Number(zone.slice(1, 3)), Number(zone.slice(4))];
  if (minute > 59 || second > 59 || zoneHours > 14 || zoneMinutes > 59) return undefined;
  const offset = (zone[0] === '-' ? -1 : 1) * (zoneHours * 60 + zoneMinutes) * 60_000;
  const fraction = m[7] ? Number(`0.${m[7]}`) * 1000 : 0;
  return date.getTime() + fraction - offset;
}

/** meta.created and meta.lastModified are dateTime (RFC 7643 §3.1). */
function isDateTimeAttr(path: string[]): boolean {
  return (
    path.length === 2 &&
    (path[0] as string).toLowerCase() === 'meta' &&
    ['created', 'lastmodified'].includes((path[1] as string).toLowerCase())
  );
}

/** Attributes compared case-sensitively (RFC 7643 §4.1: id and externalId are caseExact). */
const CASE_EXACT = new Set(['id', 'externalid']);

/** Every value found at `path` in `node`, flattening multi-valued attributes. */
function valuesAt(node: unknown, path: string[]): unknown[] {
  if (path.length === 0) return Array.isArray(node) ? node : [node];
  if (Array.isArray(node)) return node.flatMap((n) => valuesAt(n, path));
  if (!isObject(node)) return [];
  const [head, ...rest] = path as [string, ...string[]];
  const value = getAttr(node, head);
  if (value === undefined || value === null) return [];
  // `emails eq "x"` compares the `value` sub-attribute of a multi-valued complex attribute.
  if (rest.length === 0 && Array.isArray(value)) {
    return value.map((v) => (isObject(v) && getAttr(v, 'value') !== undefined ? getAttr(v, 'value') : v));
  }
  return valuesAt(value, rest);
}

/** eq, ne, gt, ge, lt, le over numbers, booleans or instants. */
function ordered(cmp: string, actual: number | boolean, expected: number | boolean): boolean {
  switch (cmp) {
    case 'eq':
      return actual === expected;
    case 'ne':
      return actual !== expected;
    case 'gt':
      return actual > expected;
    case 'ge':
      return actual >= expected;
    case 'lt':
      return actual < expected;
    case 'le':
      return actual <= expected;
    default:
      return false;
  }
}

function compare(
  cmp: string,
  actual: unknown,
  expected: string | number | boolean | null,
  exact: boolean,
): boolean {
  if (expected === null) return cmp === 'eq' ? actual === null || actual === undefined : cmp === 'ne';
  if (typeof expected === 'boolean' || typeof expected === 'number') {
    if (typeof actual !== typeof expected) return cmp === 'ne';
    return ordered(cmp, actual as number, expected as number);
  }
  if (typeof actual !== 'string') return cmp === 'ne';
  // RFC 7644 §3.4.2.2: dateTime values compare chronologically; as text, `…00.500Z` sorts
  // before `…00Z`, and `+02:00` zones sort by their digits.
  const at = CHRONOLOGICAL.has(cmp) ? instantOf(actual) : undefined;
  const et = at === undefined ? undefined : instantOf(expected);
  if (at !== undefined && et !== undefined) return ordered(cmp, at, et);
  const a = exact ? actual : actual.toLowerCase();
  const e = exact ? expected : expected.toLowerCase();
  switch (cmp) {
    case 'eq':
      return a === e;
    case 'ne':
      return a !== e;
    case 'co':
      return a.includes(e);
    case 'sw':
      return a.startsWith(e);
    case 'ew':
      return a.endsWith(e);
    case 'gt':
      return a > e;
    case 'ge':
      return a >= e;
    case 'lt':
      return a < e;
    case 'le':
      return a <= e;
    default:
      return false;
  }
}

export function matches(filter: Filter, node: unknown): boolean {
  switch (filter.op) {
    case 'and':
      return matches(filter.left, node) && matches(filter.right, node);
    case 'or':
      return matches(filter.left, node) || matches(filter.right, node);
    case 'not':
      return !matches(filter.filter, node);
    case 'pr':
      return valuesAt(node, filter.path).some((v) => v !== '' && !(Array.isArray(v) && v.length === 0));
    case 'value': {
      const items = isObject(node) ? getAttr(node, filter.path[0] as string) : undefined;
      const list = Array.isArray(items) ? items : items === undefined ? [] : [items];
      return list.some((item) => matches(filter.filter, item));
    }
    case 'cmp': {
      const exact = CASE_EXACT.has((filter.path[filter.path.length - 1] as string).toLowerCase());
      const values = valuesAt(node, filter.path);
      if (filter.cmp === 'ne')
        return values.length === 0 || values.every((v) => compare('ne', v, filter.value, exact));
      return values.some((v) => compare(filter.cmp, v, filter.value, exact));
    }
  }
}

// ---------------------------------------------------------------------------------------------
// PatchOp (RFC 7644 §3.5.2)

interface PatchPath {
  /** Attribute (with a URN extension first when qualified), e.g. [emails] or [urn…:User, manager]. */
  attr: string[];
  /** Filter on the elements of a multi-valued attribute. */
  filter?: Filter;
  /** Sub-attribute after the filter: `emails[type eq "work"].value` → value. */
  sub?: string;
}

export function parsePatchPath(text: string): PatchPath {
  const open = text.indexOf('[');
  if (open < 0) return { attr: splitAttrPath(text) };
  const close = text.lastIndexOf(']');
  if (close < open) throw new ScimError(400, `"${text}" is not a valid path`, 'invalidPath');
  const attr = splitAttrPath(text.slice(0, open));
  const filter = parseFilter(text.slice(open + 1, close));
  const after = text.slice(close + 1);
  if (after !== '' && !/^\.[A-Za-z$][\w$-]*$/.test(after)) {
    throw new ScimError(400, `"${text}" is not a valid path`, 'invalidPath');
  }
  return { attr, filter, ...(after ? { sub: after.slice(1) } : {}) };
}

/** The object that holds the last part of `attr`, created on the way when `create`. */
function container(resource: Resource, attr: string[], create: boolean): Resource | undefined {
  let node: Resource = resource;
  for (const part of attr.slice(0, -1)) {
    let next = getAttr(node, part);
    if (!isObject(next)) {
      if (!create) return undefined;
      next = {};
      setAttr(node, part, next);
    }
    node = next as Resource;
  }
  return node;
}

/** Attributes clients may not change. */
const READ_ONLY = new Set(['id', 'meta', 'schemas']);

/** The `eq` conditions of a simple filter, used to create the element a filtered path names. */
function eqTemplate(filter: Filter): Resource | undefined {
  if (filter.op === 'cmp' && filter.cmp === 'eq' && filter.path.length === 1) {
    return { [filter.path[0] as string]: filter.value };
  }
  if (filter.op === 'and') {
    const l = eqTemplate(filter.left);
    const r = eqTemplate(filter.right);
    return l && r ? { ...l, ...r } : undefined;
  }
  return undefined;
}

function sameValue(a: unknown, b: unknown): boolean {
  if (isObject(a) && isObject(b))
    return getAttr(a, 'value') !== undefined && getAttr(a, 'value') === getAttr(b, 'value');
  return a === b;
}

function isPrimary(item: unknown): boolean {
  return isObject(item) && getAttr(item, 'primary') === true;
}

/**
 * RFC 7644 §3.5.2: a value set primary makes the service provider set `primary` to false on
 * the attribute's other values (RFC 7643 §2.4: true appears at most once). `chosen` are the
 * values the operation set.
 */
function onePrimary(list: unknown[], chosen: readonly unknown[]): unknown[] {
  if (!chosen.some(isPrimary)) return list;
  return list.map((item) => {
    if (chosen.includes(item) || !isPrimary(item)) return item;
    const copy = { ...(item as Resource) };
    copy[keyOf(copy, 'primary') ?? 'primary'] = false;
    return copy;
  });
}

function setPath(resource: Resource, path: PatchPath, rawValue: unknown, op: 'add' | 'replace'): void {
  const last = path.attr[path.attr.length - 1] as string;
  if (path.attr.length === 1 && READ_ONLY.has(last.toLowerCase())) {
    throw new ScimError(400, `${last} cannot be changed`, 'mutability');
  }
  const value = coerce(path.sub ?? last, rawValue);
  const holder = container(resource, path.attr, true) as Resource;
  if (!path.filter) {
    const current = getAttr(holder, last);
    if (op === 'add' && Array.isArray(current)) {
      const additions = Array.isArray(value) ? value : [value];
      const added = additions.filter((a) => !current.some((c) => sameValue(c, a)));
      setAttr(holder, last, onePrimary([...current, ...added], added));
    } else if (op === 'add' && isObject(current) && isObject(value)) {
      setAttr(holder, last, { ...current, ...value });
    } else {
      setAttr(holder, last, value);
    }
    return;
  }
  const current = getAttr(holder, last);
  const list = Array.isArray(current) ? [...current] : [];
  let hit = false;
  const changed: unknown[] = [];
  const updated = list.map((item) => {
    if (!matches(path.filter as Filter, item)) return item;
    hit = true;
    const next = path.sub
      ? { ...(item as Resource), [keyOf(item as Resource, path.sub) ?? path.sub]: value }
      : isObject(value)
        ? { ...(item as Resource), ...value }
        : value;
    changed.push(next);
    return next;
  });
  if (!hit) {
    const template = eqTemplate(path.filter);
    if (!template) {
      throw new ScimError(400, `no value of ${last} matches the filter of the path`, 'noTarget');
    }
    const added = path.sub
      ? { ...template, [path.sub]: value }
      : { ...template, ...(isObject(value) ? value : {}) };
    changed.push(added);
    updated.push(added);
  }
  setAttr(holder, last, onePrimary(updated, changed));
}

function removePath(resource: Resource, path: PatchPath, value: unknown): void {
  const last = path.attr[path.attr.length - 1] as string;
  if (path.attr.length === 1 && READ_ONLY.has(last.toLowerCase())) {
    throw new ScimError(400, `${last} cannot be removed`, 'mutability');
  }
  // Unassigned, `active` would read as true (RFC 7643 §4.1.1 gives no default): a deactivated
  // user would come back without anyone saying so. Set it to true or false instead.
  if (path.attr.length === 1 && !path.filter && last.toLowerCase() === 'active') {
    throw new ScimError(400, 'active cannot be removed; replace it with true or false', 'mutability');
  }
  const holder = container(resource, path.attr, false);
  if (!holder) return;
  const key = keyOf(holder, last);
  if (key === undefined) return;
  const current = holder[key];
  if (path.filter && Array.isArray(current)) {
    const filter = path.filter;
    if (path.sub) {
      const sub = path.sub;
      holder[key] = current.map((item) => {
        if (!matches(filter, item) || !isObject(item)) return item;
        const copy = { ...item };
        const subKey = keyOf(copy, sub);
        if (subKey !== undefined) delete copy[subKey];
        return copy;
      });
    } else {
      holder[key] = current.filter((item) => !matches(filter, item));
    }
    return;
  }
  // Entra removes one member of a multi-valued attribute with `value: [{value: …}]`.
  if (Array.isArray(current) && Array.isArray(value) && value.length > 0) {
    holder[key] = current.filter((item) => !value.some((v) => sameValue(item, v)));
    return;
  }
  delete holder[key];
}

const OPS = new Set(['add', 'remove', 'replace']);
const KNOWN_SCHEMAS = [USER_SCHEMA, ENTERPRISE_SCHEMA];

/** The members of a path-less add or replace's value object, set one by one. */
function setMembers(out: Resource, value: Resource, op: 'add' | 'replace', i: number): void {
  for (const [name, v] of Object.entries(value)) {
    const lower = name.toLowerCase();
    // `urn:…:User:name` is one attribute of a known schema, not an extension object.
    const qualified = KNOWN_SCHEMAS.some((schema) => lower.startsWith(`${schema.toLowerCase()}:`));
    if (lower === USER_SCHEMA.toLowerCase()) {
      // RFC 7644 §3.5.2: value members are keyed by attribute or by schema URN. The core schema's
      // attributes live at the resource's root, not under their URN (RFC 7643 §3).
      if (!isObject(v)) {
        throw new ScimError(400, `Operations[${i}]: the value of ${name} must be an object`, 'invalidValue');
      }
      setMembers(out, v, op, i);
    } else if (/^urn:/i.test(name) && isObject(v) && !qualified) {
      // An extension object: its members are set one by one.
      for (const [sub, sv] of Object.entries(v)) setPath(out, { attr: [name, sub] }, sv, op);
    } else {
      setPath(out, parsePatchPath(name), v, op);
    }
  }
}

/** Applies a PatchOp request to a copy of `resource` and returns the copy. */
export function applyPatch(resource: Resource, body: unknown): Resource {
  if (!isObject(body)) throw new ScimError(400, 'a PatchOp body is a JSON object', 'invalidSyntax');
  const ops = getAttr(body, 'Operations');
  if (!Array.isArray(ops) || ops.length === 0) {
    throw new ScimError(400, 'a PatchOp needs a non-empty "Operations" array', 'invalidSyntax');
  }
  const out = structuredClone(resource);
  ops.forEach((raw, i) => {
    if (!isObject(raw)) throw new ScimError(400, `Operations[${i}] is not an object`, 'invalidSyntax');
    const opName = String(getAttr(raw, 'op') ?? '').toLowerCase();
    if (!OPS.has(opName)) {
      throw new ScimError(400, `Operations[${i}].op must be add, remove or replace`, 'invalidSyntax');
    }
    const pathText = getAttr(raw, 'path');
    const value = getAttr(raw, 'value');
    if (pathText === undefined || pathText === '') {
      if (opName === 'remove') throw new ScimError(400, `Operations[${i}]: remove needs a path`, 'noTarget');
      if (!isObject(value)) {
        throw new ScimError(400, `Operations[${i}]: without a path, value must be an object`, 'invalidValue');
      }
      setMembers(out, value, opName as 'add' | 'replace', i);
      return;
    }
    if (typeof pathText !== 'string')
      throw new ScimError(400, `Operations[${i}].path is not a string`, 'invalidPath');
    const path = parsePatchPath(pathText);
    if (opName === 'remove') removePath(out, path, value);
    else {
      if (value === undefined) throw new ScimError(400, `Operations[${i}] needs a value`, 'invalidValue');
      setPath(out, path, value, opName as 'add' | 'replace');
    }
  });
  return withoutWriteOnly(out);
}

/**
 * Attributes a client may send but that are never kept nor returned: `password` is writeOnly,
 * returned "never" (RFC 7643 §4.1.1; Okta sends it when password sync is on). The bridge needs
 * none of it, so it keeps none of it, in memory or in its checkpoints.
 */
const WRITE_ONLY = new Set(['password']);

/** `resource` without its write-only attributes (the same object when it has none). */
export function withoutWriteOnly(resource: Resource): Resource {
  const names = Object.keys(resource).filter((k) => WRITE_ONLY.has(k.toLowerCase()));
  if (names.length === 0) return resource;
  const out = { ...resource };
  for (const name of names) delete out[name];
  return out;
}

/** Normalises a User body (POST/PUT): known attribute names in their canonical case, booleans coerced. */
export function normaliseUser(body: unknown): Resource {
  if (!isObject(body)) throw new ScimError(400, 'a User is a JSON object', 'invalidSyntax');
  const out: Resource = {};
  const canonical = ['userName', 'externalId', 'active', 'emails', 'name', 'displayName', 'schemas'];
  for (const [key, value] of Object.entries(body)) {
    const name = canonical.find((c) => c.toLowerCase() === key.toLowerCase()) ?? key;
    if (name === 'id' || name.toLowerCase() === 'meta' || WRITE_ONLY.has(name.toLowerCase())) continue;
    out[name] = coerce(name, value);
  }
  const userName = out.userName;
  if (typeof userName !== 'string' || userName.trim() === '') {
    throw new ScimError(400, 'userName is required', 'invalidValue');
  }
  if (out.active !== undefined && typeof out.active !== 'boolean') {
    throw new ScimError(400, 'active must be true or false', 'invalidValue');
  }
  if (out.emails !== undefined && !Array.isArray(out.emails)) {
    throw new ScimError(400, 'emails must be an array', 'invalidValue');
  }
  return out;
}
