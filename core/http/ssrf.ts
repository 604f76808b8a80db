/**
 * SSRF protection for URLs that remote parties choose, such as the `endpoint_url` an SSF
 * receiver registers for push delivery. Two layers:
 *
 * - `validateTargetUrl` / `checkTargetUrl` when the URL is accepted (a structured verdict with a
 *   reason code, so the API can answer 400 with it);
 * - `createGuardedAgents` at connection time: a `lookup` that resolves the name once, checks every
 *   address, and hands the socket exactly the address it checked, so a DNS answer that changes
 *   between validation and connection (DNS rebinding) cannot reach an internal address.
 */
import http from 'node:http';
import https from 'node:https';
import dns from 'node:dns';
import type { Duplex } from 'node:stream';
import { isIPv4, isIPv6 } from 'node:net';
import { ConfigError, PermanentError } from '../plugin-api/errors.ts';
import { z } from 'zod';

export type SsrfReason =
  | 'invalid_url'
  | 'unsupported_scheme'
  | 'insecure_scheme'
  | 'credentials_in_url'
  | 'unresolvable'
  | 'loopback'
  | 'private'
  | 'link_local'
  | 'cgnat'
  | 'unspecified'
  | 'multicast'
  | 'reserved'
  | 'metadata';

export interface ResolvedAddress {
  address: string;
  family: 4 | 6;
}

/** Resolves a host name to every address it has. Injectable so tests control DNS answers. */
export type Resolver = (hostname: string) => Promise<ResolvedAddress[]>;

export interface SsrfPolicy {
  /** Hosts (names or IP literals) that may be reached over plain http; https is required otherwise. */
  allowHttpHosts?: readonly string[];
  /** Hosts (names or IP literals) trusted whatever they resolve to. */
  allowHosts?: readonly string[];
  /**
   * Addresses or CIDRs reachable although they sit in a refused range. A cloud-metadata address
   * is only reachable when listed exactly (a /32 or /128), never through a wider range.
   */
  allowCidrs?: readonly string[];
  /** Further addresses or CIDRs to refuse. */
  denyCidrs?: readonly string[];
  /** DNS resolver; defaults to the system resolver (`dns.lookup`, all addresses). */
  resolve?: Resolver;
}

export type SsrfCheckResult =
  { ok: true; url: URL; addresses?: string[] } | { ok: false; reason: SsrfReason; message: string };

/** A request refused by the SSRF policy. Permanent: the same URL will be refused again. */
export class SsrfRefusedError extends PermanentError {
  readonly reason: SsrfReason;
  constructor(message: string, reason: SsrfReason) {
    super(message, { code: 'SSF_ERR_HTTP_SSRF_REFUSED', detail: { reason } });
    this.reason = reason;
  }
}

// ---------------------------------------------------------------------------------------------
// Addresses and ranges

interface ParsedIp {
  family: 4 | 6;
  bytes: Uint8Array;
}

interface Cidr extends ParsedIp {
  prefix: number;
}

function parseIpv6Bytes(text: string): Uint8Array | undefined {
  let body = text;
  const tail: number[] = [];
  const lastColon = body.lastIndexOf(':');
  const last = body.slice(lastColon + 1);
  if (last.includes('.')) {
    if (!isIPv4(last)) return undefined;
    tail.push(...last.split('.').map(Number));
    body = body.slice(0, lastColon + 1) + '0:0';
  }
  const halves = body.split('::');
  if (halves.length > 2) return undefined;
  const groups = (part: string | undefined) => (part ? part.split(':') : []);
  const head = groups(halves[0]);
  const rest = groups(halves[1]);
  const missing = 8 - head.length - rest.length;
  if (halves.length === 1 ? missing !== 0 : missing < 0) return undefined;
  const all = [...head, ...Array<string>(Math.max(0, missing)).fill('0'), ...rest];
  const bytes = new Uint8Array(16);
  all.forEach((group, i) => {
    const v = parseInt(group, 16);
    bytes[i * 2] = v >> 8;
    bytes[i * 2 + 1] = v & 0xff;
  });
  if (tail.length === 4) bytes.set(tail, 12);
  return bytes;
}

/** Parses an IPv4 or IPv6 literal (brackets and zone id tolerated); undefined for host names. */
export function parseIp(text: string): ParsedIp | undefined {
  const host = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  const bare = host.split('%')[0] ?? host;
  if (isIPv4(bare)) return { family: 4, bytes: Uint8Array.from(bare.split('.').map(Number)) };
  if (!isIPv6(bare)) return undefined;
  const bytes = parseIpv6Bytes(bare);
  return bytes ? { family: 6, bytes } : undefined;
}

function parseCidr(text: string): Cidr | undefined {
  const [addr, prefixText, extra] = text.trim().split('/');
  if (addr === undefined || extra !== undefined) return undefined;
  const ip = parseIp(addr);
  if (!ip) return undefined;
  const max = ip.family === 4 ? 32 : 128;
  if (prefixText === undefined) return { ...ip, prefix: max };
  if (!/^\d{1,3}$/.test(prefixText)) return undefined;
  const prefix = Number(prefixText);
  return prefix <= max ? { ...ip, prefix } : undefined;
}

/** Whether text is an IPv4 or IPv6 address or a CIDR block. */
export function isIpOrCidr(text: string): boolean {
  return parseCidr(text) !== undefined;
}

function cidrContains(cidr: Cidr, ip: ParsedIp): boolean {
  if (cidr.family !== ip.family) return false;
  const full = Math.floor(cidr.prefix / 8);
  for (let i = 0; i < full; i += 1) if (cidr.bytes[i] !== ip.bytes[i]) return false;
  const bits = cidr.prefix % 8;
  if (bits === 0) return true;
  const mask = (0xff << (8 - bits)) & 0xff;
  return ((cidr.bytes[full] ?? 0) & mask) === ((ip.bytes[full] ?? 0) & mask);
}

function mustCidr(text: string): Cidr {
  const cidr = parseCidr(text);
  if (!cidr) throw new Error(`invalid built-in CIDR ${text}`);
  return cidr;
}

// Specific addresses first, so they report `metadata` rather than the range they sit in.
const METADATA_ADDRESSES = [
  '169.254.169.254', // AWS, Azure, GCP, OCI, DigitalOcean
  '169.254.170.2', // AWS ECS task metadata
  '100.100.100.200', // Alibaba Cloud
  'fd00:ec2::254', // AWS IMDS over IPv6
].map((text) => mustCidr(text));

const REFUSED_RANGES: Array<{ cidr: Cidr; reason: SsrfReason }> = (
  [
    ['0.0.0.0/8', 'unspecified'],
    ['10.0.0.0/8', 'private'],
    ['100.64.0.0/10', 'cgnat'],
    ['127.0.0.0/8', 'loopback'],
    ['169.254.0.0/16', 'link_local'],
    ['172.16.0.0/12', 'private'],
    ['192.0.0.0/24', 'reserved'],
    ['192.168.0.0/16', 'private'],
    ['198.18.0.0/15', 'reserved'],
    ['224.0.0.0/4', 'multicast'],
    ['240.0.0.0/4', 'reserved'],
    ['::/128', 'unspecified'],
    ['::1/128', 'loopback'],
    ['64:ff9b:1::/48', 'private'],
    ['100::/64', 'reserved'],
    ['fc00::/7', 'private'],
    ['fe80::/10', 'link_local'],
    ['fec0::/10', 'private'],
    ['ff00::/8', 'multicast'],
  ] as const
).map(([text, reason]) => ({ cidr: mustCidr(text), reason }));

// IPv6 forms that carry an IPv4 address the packet may end up at.
const EMBEDDED_V4: Array<{ cidr: Cidr; offset: number }> = [
  { cidr: mustCidr('::ffff:0:0/96'), offset: 12 }, // IPv4-mapped
  { cidr: mustCidr('::ffff:0:0:0/96'), offset: 12 }, // IPv4-translated (RFC 2765 SIIT)
  { cidr: mustCidr('::/96'), offset: 12 }, // IPv4-compatible (deprecated)
  { cidr: mustCidr('64:ff9b::/96'), offset: 12 }, // NAT64
  { cidr: mustCidr('2002::/16'), offset: 2 }, // 6to4
];

function embeddedIpv4(ip: ParsedIp): ParsedIp | undefined {
  if (ip.family !== 6) return undefined;
  for (const { cidr, offset } of EMBEDDED_V4) {
    if (cidrContains(cidr, ip)) return { family: 4, bytes: ip.bytes.slice(offset, offset + 4) };
  }
  return undefined;
}

function sameIp(a: ParsedIp, b: ParsedIp): boolean {
  return a.family === b.family && a.bytes.every((v, i) => v === b.bytes[i]);
}

/** Why an address is refused by default (undefined for a public address). */
function builtInRefusal(ip: ParsedIp): SsrfReason | undefined {
  if (METADATA_ADDRESSES.some((m) => sameIp(m, ip))) return 'metadata';
  for (const { cidr, reason } of REFUSED_RANGES) if (cidrContains(cidr, ip)) return reason;
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Policy

interface CompiledPolicy {
  httpHosts: Set<string>;
  hosts: Set<string>;
  allow: Cidr[];
  deny: Cidr[];
  resolve: Resolver;
}

const defaultResolver: Resolver = async (hostname) => {
  const answers = await dns.promises.lookup(hostname, { all: true, verbatim: true });
  return answers.map((a) => ({ address: a.address, family: a.family === 6 ? 6 : 4 }));
};

/** Lower case, no trailing dot, IP literals in one canonical spelling. */
function normalizeHost(host: string): string {
  const lower = host.toLowerCase().replace(/\.$/, '');
  const ip = parseIp(lower);
  if (!ip) return lower;
  return ip.family === 4 ? ip.bytes.join('.') : `[${Buffer.from(ip.bytes).toString('hex')}]`;
}

function compileCidrs(list: readonly string[] | undefined, field: string): Cidr[] {
  return (list ?? []).map((text) => {
    const cidr = parseCidr(text);
    if (!cidr) {
      throw new ConfigError(`${field}: "${text}" is not an IP address or CIDR`, {
        code: 'SSF_ERR_CONFIG_SSRF_POLICY',
      });
    }
    return cidr;
  });
}

const compiledPolicies = new WeakMap<SsrfPolicy, CompiledPolicy>();

/** Validates a policy (ConfigError on a malformed CIDR) and prepares it for fast checks. */
function compile(policy: SsrfPolicy): CompiledPolicy {
  let compiled = compiledPolicies.get(policy);
  if (!compiled) {
    compiled = {
      httpHosts: new Set((policy.allowHttpHosts ?? []).map(normalizeHost)),
      hosts: new Set((policy.allowHosts ?? []).map(normalizeHost)),
      allow: compileCidrs(policy.allowCidrs, 'allowCidrs'),
      deny: compileCidrs(policy.denyCidrs, 'denyCidrs'),
      resolve: policy.resolve ?? defaultResolver,
    };
    compiledPolicies.set(policy, compiled);
  }
  return compiled;
}

/** Checks a policy up front, so a bad CIDR in the configuration is reported at load time. */
export function assertValidSsrfPolicy(policy: SsrfPolicy): void {
  compile(policy);
}

function refusalFor(ip: ParsedIp, policy: CompiledPolicy): SsrfReason | undefined {
  const embedded = embeddedIpv4(ip);
  const forms = embedded ? [ip, embedded] : [ip];
  if (policy.deny.some((c) => forms.some((f) => cidrContains(c, f)))) return 'reserved';
  const reason = builtInRefusal(ip) ?? (embedded && builtInRefusal(embedded));
  if (reason === undefined) return undefined;
  const allowed = policy.allow.some((c) =>
    reason === 'metadata'
      ? c.prefix === (c.family === 4 ? 32 : 128) && forms.some((f) => sameIp(c, f))
      : forms.some((f) => cidrContains(c, f)),
  );
  return allowed ? undefined : reason;
}

const REASON_TEXT: Record<SsrfReason, string> = {
  invalid_url: 'is not a valid absolute URL',
  unsupported_scheme: 'must use https',
  insecure_scheme: 'must use https (http is allowed only for hosts listed in allowHttpHosts)',
  credentials_in_url: 'must not carry a user name or password',
  unresolvable: 'has a host name that does not resolve',
  loopback: 'points at a loopback address',
  private: 'points at a private network address',
  link_local: 'points at a link-local address',
  cgnat: 'points at a carrier-grade NAT (100.64.0.0/10) address',
  unspecified: 'points at an unspecified address',
  multicast: 'points at a multicast address',
  reserved: 'points at a reserved or denied address',
  metadata: 'points at a cloud metadata service',
};

function refuse(reason: SsrfReason, subject: string): { ok: false; reason: SsrfReason; message: string } {
  return { ok: false, reason, message: `${subject} ${REASON_TEXT[reason]}` };
}

/**
 * Why an address may not be contacted under `policy`, or undefined when it may.
 * IPv4-mapped, IPv4-translated, IPv4-compatible, NAT64 and 6to4 IPv6 forms are judged by the IPv4
 * address inside.
 */
export function checkAddress(address: string, policy: SsrfPolicy = {}): SsrfReason | undefined {
  const ip = parseIp(address);
  if (!ip) return 'invalid_url';
  return refusalFor(ip, compile(policy));
}

const LOOPBACK_NAMES = /^(localhost|.+\.localhost)$/;
const METADATA_NAMES = new Set(['metadata.google.internal']);

/**
 * The checks that need no DNS: scheme, credentials, IP-literal hosts and well-known internal
 * names. A URL that passes may still resolve to a refused address; `validateTargetUrl` and the
 * guarded agents check that.
 */
export function checkTargetUrl(url: string | URL, policy: SsrfPolicy = {}): SsrfCheckResult {
  const compiled = compile(policy);
  let parsed: URL;
  try {
    parsed = new URL(String(url));
  } catch {
    return refuse('invalid_url', 'the URL');
  }
  const host = normalizeHost(parsed.hostname);
  const subject = `the URL's host ${parsed.hostname}`;
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:')
    return refuse('unsupported_scheme', 'the URL');
  if (parsed.protocol === 'http:' && !compiled.httpHosts.has(host))
    return refuse('insecure_scheme', 'the URL');
  if (parsed.username !== '' || parsed.password !== '') return refuse('credentials_in_url', 'the URL');
  if (host.length === 0) return refuse('invalid_url', 'the URL');
  if (compiled.hosts.has(host)) return { ok: true, url: parsed };
  const ip = parseIp(parsed.hostname);
  if (ip) {
    const reason = refusalFor(ip, compiled);
    return reason ? refuse(reason, subject) : { ok: true, url: parsed, addresses: [parsed.hostname] };
  }
  if (LOOPBACK_NAMES.test(host)) return refuse('loopback', subject);
  if (METADATA_NAMES.has(host)) return refuse('metadata', subject);
  return { ok: true, url: parsed };
}

/**
 * Resolves `hostname` and checks every address it has. An error the resolver throws (EAI_AGAIN,
 * SERVFAIL, a resolver timeout, even ENOTFOUND) is thrown on as it is: a failed lookup says
 * nothing about the addresses, and may pass, so it is the caller's to judge; an answer with no
 * address is refused as `unresolvable`.
 */
async function resolveAndCheck(
  hostname: string,
  policy: CompiledPolicy,
): Promise<{ ok: true; addresses: ResolvedAddress[] } | { ok: false; reason: SsrfReason; message: string }> {
  const addresses = await policy.resolve(hostname);
  if (addresses.length === 0) return refuse('unresolvable', `the host ${hostname}`);
  if (policy.hosts.has(normalizeHost(hostname))) return { ok: true, addresses };
  for (const { address } of addresses) {
    const ip = parseIp(address);
    const reason = ip ? refusalFor(ip, policy) : 'unresolvable';
    if (reason) return refuse(reason, `the host ${hostname} resolves to ${address}, which`);
  }
  return { ok: true, addresses };
}

/**
 * Everything `checkTargetUrl` checks, plus: a host name must resolve, and every address it
 * resolves to must be allowed. Used when a URL is accepted (e.g. on stream creation), where the
 * party giving the URL is there to be told: a name whose lookup fails, for whatever reason, is
 * refused as `unresolvable` and can be given again.
 */
export async function validateTargetUrl(
  url: string | URL,
  policy: SsrfPolicy = {},
): Promise<SsrfCheckResult> {
  const first = checkTargetUrl(url, policy);
  if (!first.ok || first.addresses !== undefined) return first;
  const compiled = compile(policy);
  const hostname = first.url.hostname;
  if (compiled.hosts.has(normalizeHost(hostname))) return first;
  const resolved = await resolveAndCheck(hostname, compiled).catch(() =>
    refuse('unresolvable', `the host ${hostname}`),
  );
  if (!resolved.ok) return resolved;
  return { ok: true, url: first.url, addresses: resolved.addresses.map((a) => a.address) };
}

// ---------------------------------------------------------------------------------------------
// Connection-time guard

type LookupCallback = (
  err: NodeJS.ErrnoException | null,
  address: string | dns.LookupAddress[],
  family?: number,
) => void;

export type GuardedLookup = (hostname: string, options: dns.LookupOptions, callback: LookupCallback) => void;

/** What a resolver threw, as the error a socket expects from `lookup` (its code kept). */
function lookupError(err: unknown, hostname: string): NodeJS.ErrnoException {
  if (err instanceof Error) return err;
  return Object.assign(new Error(`cannot resolve ${hostname}: ${String(err)}`), { hostname });
}

/**
 * A `lookup` for sockets: resolves once, refuses the connection if any address is refused, and
 * answers with the first checked address only, so the socket connects to an address that was
 * checked in this very call. A lookup that fails (EAI_AGAIN, SERVFAIL, a resolver timeout, …)
 * fails the connection with the resolver's own error, a network error like on any other client
 * (retryable), not a refusal: nothing was refused, and the next attempt may resolve.
 */
export function createGuardedLookup(policy: SsrfPolicy): GuardedLookup {
  const compiled = compile(policy);
  return (hostname, options, callback) => {
    resolveAndCheck(hostname, compiled).then(
      (result) => {
        if (!result.ok) {
          callback(new SsrfRefusedError(result.message, result.reason), '');
          return;
        }
        const wanted = options.family === 4 || options.family === 6 ? options.family : undefined;
        const pick = result.addresses.find((a) => wanted === undefined || a.family === wanted);
        if (!pick) {
          callback(
            new SsrfRefusedError(`the host ${hostname} has no IPv${wanted} address`, 'unresolvable'),
            '',
          );
          return;
        }
        if (options.all) callback(null, [{ address: pick.address, family: pick.family }]);
        else callback(null, pick.address, pick.family);
      },
      (err: unknown) => callback(lookupError(err, hostname), ''),
    );
  };
}

type ConnectionOptions = { host?: string | null; hostname?: string | null };
type CreateCallback = (err: Error | null, stream: Duplex) => void;

/** The refusal for an IP-literal host (which `lookup` never sees) or a plain-http host. */
function connectionRefusal(options: ConnectionOptions, secure: boolean, policy: CompiledPolicy) {
  const host = options.host ?? options.hostname ?? '';
  const normalized = normalizeHost(host);
  if (!secure && !policy.httpHosts.has(normalized)) {
    return new SsrfRefusedError(`plain http to ${host} is not allowed`, 'insecure_scheme');
  }
  if (policy.hosts.has(normalized)) return undefined;
  const ip = parseIp(host);
  const reason = ip ? refusalFor(ip, policy) : undefined;
  return reason ? new SsrfRefusedError(refuse(reason, `the address ${host}`).message, reason) : undefined;
}

export interface GuardedAgents {
  http: http.Agent;
  https: https.Agent;
}

/**
 * http and https agents that enforce `policy` on every connection they open, including
 * redirects and connections to IP literals.
 */
export function createGuardedAgents(policy: SsrfPolicy, options: http.AgentOptions = {}): GuardedAgents {
  const compiled = compile(policy);
  const lookup = createGuardedLookup(policy);

  class GuardedHttpAgent extends http.Agent {
    override createConnection(opts: http.ClientRequestArgs, cb?: CreateCallback) {
      const refusal = connectionRefusal(opts, false, compiled);
      if (refusal) {
        // Agent.createSocket accepts an error through the callback and fails the request with it.
        cb?.(refusal, undefined as unknown as Duplex);
        return undefined;
      }
      return super.createConnection(opts, cb);
    }
  }
  class GuardedHttpsAgent extends https.Agent {
    override createConnection(opts: https.RequestOptions, cb?: CreateCallback) {
      const refusal = connectionRefusal(opts, true, compiled);
      if (refusal) {
        cb?.(refusal, undefined as unknown as Duplex);
        return undefined;
      }
      return super.createConnection(opts, cb);
    }
  }
  return {
    http: new GuardedHttpAgent({ ...options, lookup }),
    https: new GuardedHttpsAgent({ ...options, lookup }),
  };
}

// ---------------------------------------------------------------------------------------------
// Configuration

const cidrList = z.array(z.string().refine(isIpOrCidr, { message: 'expected an IP address or CIDR' }));

/**
 * The configuration block for an SSRF policy (snake_case, as in the config file); parses into
 * an `SsrfPolicy`.
 */
export const ssrfPolicySchema = z
  .strictObject({
    allow_http_hosts: z.array(z.string().min(1)).default([]).meta({
      description:
        'Hosts that may be reached over plain http (e.g. 127.0.0.1 for a peer on loopback in a test).',
    }),
    allow_hosts: z
      .array(z.string().min(1))
      .default([])
      .meta({ description: 'Hosts trusted whatever they resolve to, e.g. a peer inside your network.' }),
    allow_cidrs: cidrList
      .default([])
      .meta({ description: 'Addresses or CIDRs that may be reached although they are internal.' }),
    deny_cidrs: cidrList.default([]).meta({ description: 'More addresses or CIDRs to refuse.' }),
  })
  .transform((c): SsrfPolicy => ({
    allowHttpHosts: c.allow_http_hosts,
    allowHosts: c.allow_hosts,
    allowCidrs: c.allow_cidrs,
    denyCidrs: c.deny_cidrs,
  }));
