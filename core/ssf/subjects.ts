/**
 * Subject identifiers: every RFC 9493 format, the SSF 1.0 additions (§3.3 complex, §3.5 jwt_id,
 * saml_assertion_id, ip-addresses) and formats that connectors register by agreement (§3.4).
 *
 * - `validateSubject` / `parseSubject` check a subject and return its canonical form.
 * - `normaliseSubject` returns the canonical form of a valid subject; it is idempotent.
 * - `subjectsMatch` implements the subject matching of SSF §8.1.3.1.
 * - `subjectKeys` gives stable string keys for indexing subjects (routing, stream filters).
 */
import { isIP } from 'node:net';
import type { SubjectIdentifier } from '../plugin-api/index.ts';
import { SubjectValidationError, type Problem } from './errors.ts';

export type { SubjectIdentifier };

/** Member names SSF §3.3 defines for complex subjects, in their canonical order. */
export const COMPLEX_MEMBER_NAMES = [
  'user',
  'device',
  'session',
  'application',
  'tenant',
  'org_unit',
  'group',
] as const;

/** A format whose members are all required non-empty strings. */
export interface StringSubjectFormat {
  format: string;
  /** Where the format is defined, e.g. `RFC 9493 §3.2.2`. */
  spec: string;
  /** Required members, in canonical order. */
  members: readonly string[];
  /** Returns a problem message for a member value, or undefined when it is valid. */
  check?: (member: string, value: string) => string | undefined;
  /** Canonical form of a valid member value; must be idempotent. */
  canonical?: (member: string, value: string) => string;
}

const ATEXT = "[A-Za-z0-9!#$%&'*+/=?^_`{|}~\\u0080-\\uFFFF-]";
const LABEL = '[A-Za-z0-9\\u0080-\\uFFFF](?:[A-Za-z0-9\\u0080-\\uFFFF-]{0,61}[A-Za-z0-9\\u0080-\\uFFFF])?';
/** RFC 5322 §3.4.1 domain-literal: printable ASCII but `[`, `]` and backslash, e.g. `[192.0.2.1]`, `[IPv6:2001:db8::1]`. */
const DOMAIN_LITERAL = '\\[[\\x21-\\x5A\\x5E-\\x7E]+\\]';
const ADDR_SPEC = new RegExp(
  `^(?:${ATEXT}+(?:\\.${ATEXT}+)*|"(?:[^"\\\\\\r\\n]|\\\\.)*")@(?:${LABEL}(?:\\.${LABEL})*|${DOMAIN_LITERAL})$`,
);
const E164 = /^\+[1-9][0-9]{1,14}$/;
/**
 * Characters no mailbox is written with, though the UTF-8 ranges above admit them: controls,
 * invisible format characters (zero-width space, bidi marks), line and paragraph separators,
 * and every space but the ASCII one (which only a quoted local part may hold).
 */
const INVISIBLE = /[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{Cs}\p{Co}]|(?! )\p{Zs}/u;

function isAddrSpec(value: string): boolean {
  return ADDR_SPEC.test(value) && !INVISIBLE.test(value);
}

/**
 * Whether the event catalog takes `value` as an email subject (RFC 5322 addr-spec, UTF-8
 * allowed): what connectors check before they name a user by an address.
 */
export function isEmailAddress(value: string): boolean {
  return isAddrSpec(value);
}

/**
 * `value` trimmed, when a connector may name a user by it: an address the event catalog takes,
 * whose domain is a name with a dot (a mailbox, not `admin@localhost` or `root@[10.0.0.5]`).
 * Undefined for anything else.
 */
export function usableEmail(value: unknown): string | undefined {
  if (typeof value !== 'string') return undefined;
  const text = value.trim();
  const at = text.lastIndexOf('@');
  return at > 0 && text[at + 1] !== '[' && text.includes('.', at) && isAddrSpec(text) ? text : undefined;
}
const ACCT_URI = /^acct:([^@\s]+)@([^@\s/?#]+)$/;
const DID = /^did:[a-z0-9]+:\S+$/;
const ABSOLUTE_URI = /^([A-Za-z][A-Za-z0-9+.-]*):(\S*)$/;
/** RFC 3986 §3, §2: a scheme, then only URI characters, each `%` starting a percent-encoded octet. */
const RFC3986_URI = /^[A-Za-z][A-Za-z0-9+.-]*:(?:[A-Za-z0-9\-._~:/?#[\]@!$&'()*+,;=]|%[0-9A-Fa-f]{2})*$/;
const URI_AUTHORITY = /^\/\/([^/?#]*)(.*)$/s;

/** Lowercases ASCII letters only: DNS names and URI schemes are case-insensitive in ASCII. */
function lowerAscii(text: string): string {
  return text.replace(/[A-Z]+/g, (m) => m.toLowerCase());
}

function canonicalEmail(value: string): string {
  const at = value.lastIndexOf('@');
  return `${value.slice(0, at)}@${lowerAscii(value.slice(at + 1))}`;
}

function canonicalAcct(value: string): string {
  const at = value.lastIndexOf('@');
  return `acct:${value.slice(5, at)}@${lowerAscii(value.slice(at + 1))}`;
}

/** RFC 3986 §6.2.2.1: scheme and host are case-insensitive; everything else is kept as written. */
function canonicalUri(value: string): string {
  const m = ABSOLUTE_URI.exec(value);
  if (!m) return value;
  const scheme = lowerAscii(m[1] as string);
  const rest = m[2] as string;
  const auth = URI_AUTHORITY.exec(rest);
  if (!auth) return `${scheme}:${rest}`;
  const authority = auth[1] as string;
  const at = authority.lastIndexOf('@');
  const userinfo = at >= 0 ? authority.slice(0, at + 1) : '';
  const hostPort = authority.slice(at + 1);
  return `${scheme}://${userinfo}${lowerAscii(hostPort)}${auth[2] as string}`;
}

const BUILT_IN_FORMATS: readonly StringSubjectFormat[] = [
  {
    format: 'account',
    spec: 'RFC 9493 §3.2.1',
    members: ['uri'],
    check: (_m, v) =>
      /^acct:/i.test(v) && ACCT_URI.test(`acct:${v.slice(5)}`)
        ? undefined
        : 'must be an acct: URI (RFC 7565) such as acct:user@example.com',
    canonical: (_m, v) => canonicalAcct(v),
  },
  {
    format: 'email',
    spec: 'RFC 9493 §3.2.2',
    members: ['email'],
    check: (_m, v) => (isAddrSpec(v) ? undefined : 'must be an RFC 5322 addr-spec such as user@example.com'),
    canonical: (_m, v) => canonicalEmail(v),
  },
  { format: 'iss_sub', spec: 'RFC 9493 §3.2.3', members: ['iss', 'sub'] },
  { format: 'opaque', spec: 'RFC 9493 §3.2.4', members: ['id'] },
  {
    format: 'phone_number',
    spec: 'RFC 9493 §3.2.5',
    members: ['phone_number'],
    check: (_m, v) =>
      E164.test(v) ? undefined : 'must be an E.164 number with a leading + such as +12065550100',
  },
  {
    format: 'did',
    spec: 'RFC 9493 §3.2.6',
    members: ['url'],
    check: (_m, v) => (DID.test(v) ? undefined : 'must be a DID or DID URL such as did:example:123'),
  },
  {
    format: 'uri',
    spec: 'RFC 9493 §3.2.7',
    members: ['uri'],
    check: (_m, v) =>
      RFC3986_URI.test(v)
        ? undefined
        : 'must be an absolute URI (RFC 3986): ASCII, no spaces, % only before two hex digits',
    canonical: (_m, v) => canonicalUri(v),
  },
  { format: 'jwt_id', spec: 'SSF 1.0 §3.5.1', members: ['iss', 'jti'] },
  { format: 'saml_assertion_id', spec: 'SSF 1.0 §3.5.2', members: ['issuer', 'assertion_id'] },
];

/** Formats whose members are not all strings; handled by dedicated code below. */
const STRUCTURED_FORMATS = new Set(['aliases', 'complex', 'ip-addresses']);

const stringFormats = new Map<string, StringSubjectFormat>(BUILT_IN_FORMATS.map((f) => [f.format, f]));

const FORMAT_NAME = /^[a-z][a-z0-9_.-]*$/;

function sameFormat(a: StringSubjectFormat, b: StringSubjectFormat): boolean {
  return (
    a.spec === b.spec &&
    a.check === b.check &&
    a.canonical === b.canonical &&
    a.members.length === b.members.length &&
    a.members.every((m, i) => m === b.members[i])
  );
}

/**
 * Registers a proprietary subject format agreed with a receiver (SSF §3.4). Its members are
 * required non-empty strings. Registering the same definition twice is harmless; redefining a
 * format is refused.
 */
export function registerSubjectFormat(definition: StringSubjectFormat): void {
  if (!FORMAT_NAME.test(definition.format)) {
    throw new SubjectValidationError([
      { path: 'format', message: `"${definition.format}" is not a valid format name (lowercase, a-z0-9_.-)` },
    ]);
  }
  if (definition.members.length === 0 || definition.members.includes('format')) {
    throw new SubjectValidationError([
      { path: definition.format, message: 'a format needs at least one member other than "format"' },
    ]);
  }
  const existing = stringFormats.get(definition.format);
  if (existing && sameFormat(existing, definition)) return;
  if (existing || STRUCTURED_FORMATS.has(definition.format)) {
    throw new SubjectValidationError([
      { path: 'format', message: `subject format "${definition.format}" is already defined` },
    ]);
  }
  stringFormats.set(definition.format, Object.freeze({ ...definition, members: [...definition.members] }));
}

/** Every format this process accepts, with where it is defined. */
export function listSubjectFormats(): Array<{ format: string; spec: string; members: readonly string[] }> {
  return [
    ...[...stringFormats.values()].map((f) => ({ format: f.format, spec: f.spec, members: f.members })),
    { format: 'ip-addresses', spec: 'SSF 1.0 §3.5.3', members: ['ip-addresses'] },
    { format: 'aliases', spec: 'RFC 9493 §3.2.8', members: ['identifiers'] },
    { format: 'complex', spec: 'SSF 1.0 §3.3', members: [...COMPLEX_MEMBER_NAMES] },
  ];
}

export interface SubjectCheckOptions {
  /**
   * Accept spellings of older drafts and rewrite them to the registered ones (RFC 9493
   * and SSF 1.0 drafts): `subject_type` → `format`, `phone` → `phone_number`,
   * `iss-sub` → `iss_sub`, `jwt-id` → `jwt_id`, `saml-assertion-id` → `saml_assertion_id`, a
   * phone number written with spaces, dashes or brackets (a "(0)" trunk prefix after the country
   * code dropped), and a complex subject without `format`.
   * Default false: the input must already use the registered spellings.
   */
  lenient?: boolean;
  /** JSON path used in problem messages; default `subject`. */
  path?: string;
}

export type SubjectCheckResult =
  { ok: true; subject: SubjectIdentifier } | { ok: false; problems: Problem[] };

type Json = Record<string, unknown>;

function isPlainObject(value: unknown): value is Json {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const LEGACY_FORMAT_NAMES = new Map<unknown, string>([
  ['phone', 'phone_number'],
  ['iss-sub', 'iss_sub'],
  ['jwt-id', 'jwt_id'],
  ['saml-assertion-id', 'saml_assertion_id'],
]);

/** Rewrites older-draft spellings to registered ones; returns the input unchanged otherwise. */
function upgradeLegacySpelling(input: Json): Json {
  let out = input;
  if (out.format === undefined && typeof out.subject_type === 'string') {
    const { subject_type: subjectType, ...rest } = out;
    out = { format: subjectType, ...rest };
  }
  if (out.format === undefined && Object.keys(out).length > 0 && Object.values(out).every(isPlainObject)) {
    out = { format: 'complex', ...out };
  }
  const renamed = LEGACY_FORMAT_NAMES.get(out.format);
  if (renamed) out = { ...out, format: renamed };
  if (out.format === 'phone_number') {
    if (out.phone_number === undefined && typeof out.phone === 'string') {
      const { phone, ...rest } = out;
      out = { ...rest, phone_number: phone };
    }
    if (typeof out.phone_number === 'string') {
      out = { ...out, phone_number: compactPhoneNumber(out.phone_number) };
    }
  }
  return out;
}

/** A "(0)" trunk prefix, as in "+44 (0)20 7946 0958". */
const TRUNK_ZERO = /\(\s*0\s*\)/;

/**
 * A phone number written for people, in E.164 form: "+44 (0)20 7946 0958" → "+442079460958". The
 * "(0)" right after the country code is the trunk prefix, dialled only from inside the country,
 * so it is dropped; then spaces, dots, dashes and brackets go. A "(0)" anywhere else is kept (and
 * refused by checkAny): whether its 0 belongs to the number cannot be told.
 */
function compactPhoneNumber(value: string): string {
  const withoutTrunk = value.replace(/^(\+\d{1,3})[\s.-]*\(\s*0\s*\)/, '$1');
  if (TRUNK_ZERO.test(withoutTrunk)) return value;
  return withoutTrunk.replace(/[\s().-]/g, '');
}

function describeLegacy(input: Json): string | undefined {
  if (input.format === undefined && input.subject_type !== undefined) {
    return '"subject_type" is a pre-RFC 9493 spelling; use "format"';
  }
  const registered = LEGACY_FORMAT_NAMES.get(input.format);
  if (registered)
    return `"${String(input.format)}" is an older spelling; the registered format is "${registered}"`;
  return undefined;
}

interface Checker {
  problems: Problem[];
  lenient: boolean;
  /** The complex or aliases subject being checked, while its members are. */
  inside?: string | undefined;
}

function checkStringMember(spec: StringSubjectFormat, input: Json, member: string, path: string, c: Checker) {
  const value = input[member];
  if (value === undefined) {
    c.problems.push({
      path: `${path}.${member}`,
      message: `is required by format ${spec.format} (${spec.spec})`,
    });
    return undefined;
  }
  if (typeof value !== 'string' || value.length === 0) {
    c.problems.push({ path: `${path}.${member}`, message: 'must be a non-empty string' });
    return undefined;
  }
  const message = spec.check?.(member, value);
  if (message) {
    c.problems.push({ path: `${path}.${member}`, message });
    return undefined;
  }
  return spec.canonical ? spec.canonical(member, value) : value;
}

function reportUnknownMembers(
  input: Json,
  allowed: readonly string[],
  format: string,
  path: string,
  c: Checker,
) {
  for (const key of Object.keys(input)) {
    if (key !== 'format' && !allowed.includes(key)) {
      c.problems.push({
        path: `${path}.${key}`,
        message: `is not a member of format ${format} (RFC 9493 §3)`,
      });
    }
  }
}

function checkStringFormat(spec: StringSubjectFormat, input: Json, path: string, c: Checker) {
  const out: Json = { format: spec.format };
  let valid = true;
  for (const member of spec.members) {
    const value = checkStringMember(spec, input, member, path, c);
    if (value === undefined) valid = false;
    else out[member] = value;
  }
  reportUnknownMembers(input, spec.members, spec.format, path, c);
  return valid ? (out as SubjectIdentifier) : undefined;
}

/** An IPv4-mapped IPv6 address (::ffff:0:0/96) as the URL parser writes it: ::ffff:a00:1. */
const IPV4_MAPPED = /^::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})$/;

/**
 * RFC 5952 text form for IPv6 (via the URL parser), as written for IPv4. An IPv4-mapped address
 * keeps its last 32 bits as a dotted quad (::ffff:10.0.0.1), the mixed notation RFC 5952 §5
 * recommends for it; the URL parser would write ::ffff:a00:1.
 */
function canonicalIp(ip: string): string {
  if (isIP(ip) !== 6) return ip;
  let text: string;
  try {
    text = new URL(`http://[${ip}]/`).hostname.slice(1, -1);
  } catch {
    return ip.toLowerCase();
  }
  const mapped = IPV4_MAPPED.exec(text);
  if (!mapped) return text;
  const high = parseInt(mapped[1] as string, 16);
  const low = parseInt(mapped[2] as string, 16);
  return `::ffff:${high >> 8}.${high & 0xff}.${low >> 8}.${low & 0xff}`;
}

function checkIpAddresses(input: Json, path: string, c: Checker) {
  const list = input['ip-addresses'];
  reportUnknownMembers(input, ['ip-addresses'], 'ip-addresses', path, c);
  if (!Array.isArray(list) || list.length === 0) {
    c.problems.push({
      path: `${path}.ip-addresses`,
      message: 'must be a non-empty array of IP addresses (SSF 1.0 §3.5.3)',
    });
    return undefined;
  }
  const out: string[] = [];
  list.forEach((ip, i) => {
    if (typeof ip === 'string' && isIP(ip) !== 0) out.push(canonicalIp(ip));
    else c.problems.push({ path: `${path}.ip-addresses[${i}]`, message: 'must be an IPv4 or IPv6 address' });
  });
  return out.length === list.length
    ? ({ format: 'ip-addresses', 'ip-addresses': out } as SubjectIdentifier)
    : undefined;
}

function checkNested(value: unknown, path: string, container: string, c: Checker) {
  const outer = c.inside;
  c.inside = container;
  try {
    return checkAny(value, path, c);
  } finally {
    c.inside = outer;
  }
}

function checkAliases(input: Json, path: string, c: Checker) {
  reportUnknownMembers(input, ['identifiers'], 'aliases', path, c);
  const list = input.identifiers;
  if (!Array.isArray(list) || list.length === 0) {
    c.problems.push({
      path: `${path}.identifiers`,
      message: 'must be a non-empty array of subject identifiers (RFC 9493 §3.2.8)',
    });
    return undefined;
  }
  const found = list.map((item, i) => checkNested(item, `${path}.identifiers[${i}]`, 'aliases', c));
  if (found.some((s) => s === undefined)) return undefined;
  // Aliases name one subject several ways; their order carries no meaning, so the canonical form
  // sorts them and drops repeats.
  const byKey = new Map<string, SubjectIdentifier>();
  for (const s of found as SubjectIdentifier[]) byKey.set(simpleKey(s), s);
  const identifiers = [...byKey.entries()].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([, s]) => s);
  return { format: 'aliases', identifiers } as SubjectIdentifier;
}

function complexMemberOrder(names: string[]): string[] {
  const known = COMPLEX_MEMBER_NAMES.filter((n) => names.includes(n));
  const others = names.filter((n) => !(COMPLEX_MEMBER_NAMES as readonly string[]).includes(n)).sort();
  return [...known, ...others];
}

function checkComplex(input: Json, path: string, c: Checker) {
  const names = Object.keys(input).filter((k) => k !== 'format');
  if (names.length === 0) {
    c.problems.push({
      path,
      message: `a complex subject needs at least one member such as ${COMPLEX_MEMBER_NAMES.join(', ')} (SSF 1.0 §3.3)`,
    });
    return undefined;
  }
  const out: Json = { format: 'complex' };
  let valid = true;
  for (const name of complexMemberOrder(names)) {
    if (name === '__proto__') {
      c.problems.push({ path: `${path}.${name}`, message: 'is not a usable member name' });
      valid = false;
      continue;
    }
    const member = checkNested(input[name], `${path}.${name}`, 'complex', c);
    if (member) out[name] = member;
    else valid = false;
  }
  return valid ? (out as SubjectIdentifier) : undefined;
}

function checkAny(value: unknown, path: string, c: Checker): SubjectIdentifier | undefined {
  if (!isPlainObject(value)) {
    c.problems.push({ path, message: 'must be a JSON object with a "format" member (RFC 9493 §3)' });
    return undefined;
  }
  let input = value;
  const legacy = describeLegacy(input);
  if (c.lenient) {
    input = upgradeLegacySpelling(input);
    if (
      input.format === 'phone_number' &&
      typeof input.phone_number === 'string' &&
      TRUNK_ZERO.test(input.phone_number)
    ) {
      c.problems.push({
        path: `${path}.phone_number`,
        message:
          'has a "(0)" that does not follow the country code, so whether its 0 is dialled is unknown; write the number in E.164 form such as +442079460958 (RFC 9493 §3.2.5)',
      });
      return undefined;
    }
  } else if (legacy) {
    c.problems.push({ path, message: legacy });
    return undefined;
  }
  const format = input.format;
  if (typeof format !== 'string' || format.length === 0) {
    c.problems.push({
      path: `${path}.format`,
      message: 'is required and must be a non-empty string (RFC 9493 §3)',
    });
    return undefined;
  }
  if ((format === 'complex' || format === 'aliases') && c.inside) {
    // Refused before looking inside: a subject nested thousands of levels deep must not recurse.
    c.problems.push({
      path,
      message: `${format === 'aliases' ? 'an aliases' : 'a complex'} subject cannot be nested inside ${c.inside} (RFC 9493 §3.2.8, SSF 1.0 §3.3)`,
    });
    return undefined;
  }
  if (format === 'complex') return checkComplex(input, path, c);
  if (format === 'aliases') return checkAliases(input, path, c);
  if (format === 'ip-addresses') return checkIpAddresses(input, path, c);
  const spec = stringFormats.get(format);
  if (spec) return checkStringFormat(spec, input, path, c);
  c.problems.push({
    path: `${path}.format`,
    message: `unknown subject format "${format}"; known: ${listSubjectFormats()
      .map((f) => f.format)
      .join(', ')} (proprietary formats must be registered, SSF 1.0 §3.4)`,
  });
  return undefined;
}

/** Checks a subject identifier and returns its canonical form, or every problem found. */
export function validateSubject(input: unknown, options: SubjectCheckOptions = {}): SubjectCheckResult {
  const checker: Checker = { problems: [], lenient: options.lenient ?? false };
  const subject = checkAny(input, options.path ?? 'subject', checker);
  if (subject && checker.problems.length === 0) return { ok: true, subject };
  return { ok: false, problems: checker.problems };
}

/** Like validateSubject, but throws SubjectValidationError. */
export function parseSubject(input: unknown, options: SubjectCheckOptions = {}): SubjectIdentifier {
  const result = validateSubject(input, options);
  if (!result.ok) throw new SubjectValidationError(result.problems);
  return result.subject;
}

/**
 * The canonical form of a valid subject: members in a fixed order, email and acct domains and
 * URI schemes and hosts in lowercase, IPv6 addresses in RFC 5952 form, aliases sorted without
 * repeats. normaliseSubject(normaliseSubject(s)) equals normaliseSubject(s).
 */
export function normaliseSubject(subject: SubjectIdentifier): SubjectIdentifier {
  return parseSubject(subject);
}

/** True when the value is a valid subject identifier in the registered spellings. */
export function isSubjectIdentifier(value: unknown): value is SubjectIdentifier {
  return validateSubject(value).ok;
}

function memberValues(subject: SubjectIdentifier): string[] {
  if (subject.format === 'ip-addresses') return [...(subject['ip-addresses'] as string[])];
  const spec = stringFormats.get(subject.format);
  const members = spec ? spec.members : Object.keys(subject).filter((k) => k !== 'format');
  return members.map((m) => String(subject[m]));
}

/** Key of a canonical simple subject: JSON keeps it unambiguous whatever the member values hold. */
function simpleKey(subject: SubjectIdentifier): string {
  return JSON.stringify([subject.format, ...memberValues(subject)]);
}

function complexMembers(subject: SubjectIdentifier): Array<[string, SubjectIdentifier]> {
  return Object.entries(subject).filter(([k]) => k !== 'format') as Array<[string, SubjectIdentifier]>;
}

/**
 * Stable index keys of a subject. Simple subjects have one key; an aliases subject has the key
 * of each identifier; a complex subject has one key per member, naming the member. Subjects
 * that share a key refer to a shared identifier, and any two subjects that match share a key
 * unless both are complex with no member name in common (see subjectsMatch). The format of the
 * keys is stable across releases: they may be stored.
 */
export function subjectKeys(subject: SubjectIdentifier): string[] {
  const canonical = normaliseSubject(subject);
  return keysOfCanonical(canonical);
}

/**
 * One canonical key for the whole subject: equal for subjects that normalise to the same
 * identifier (ordering and equality), unlike subjectKeys which indexes the parts.
 */
export function subjectKey(subject: SubjectIdentifier): string {
  return JSON.stringify(normaliseSubject(subject));
}

function keysOfCanonical(subject: SubjectIdentifier): string[] {
  if (subject.format === 'aliases') {
    return (subject.identifiers as SubjectIdentifier[]).map(simpleKey);
  }
  if (subject.format === 'complex') {
    return complexMembers(subject).map(([name, member]) =>
      JSON.stringify(['complex', name, member.format, ...memberValues(member)]),
    );
  }
  return [simpleKey(subject)];
}

function matchCanonical(a: SubjectIdentifier, b: SubjectIdentifier): boolean {
  if (a.format === 'aliases')
    return (a.identifiers as SubjectIdentifier[]).some((id) => matchCanonical(id, b));
  if (b.format === 'aliases') return matchCanonical(b, a);
  if (a.format === 'complex' || b.format === 'complex') {
    if (a.format !== b.format) return false;
    for (const [name, member] of complexMembers(a)) {
      const other = b[name] as SubjectIdentifier | undefined;
      if (other !== undefined && simpleKey(member) !== simpleKey(other)) return false;
    }
    return true;
  }
  return simpleKey(a) === simpleKey(b);
}

/**
 * SSF 1.0 §8.1.3.1 subject matching, after normalising both subjects. Simple subjects match when
 * identical. Complex subjects match when every member is absent from either one or identical in
 * both, so an absent member is a wildcard (in both directions, and two complex subjects with no
 * member name in common match). An aliases subject matches when any of its identifiers matches.
 * A simple subject never matches a complex one.
 */
export function subjectsMatch(a: SubjectIdentifier, b: SubjectIdentifier): boolean {
  return matchCanonical(normaliseSubject(a), normaliseSubject(b));
}
