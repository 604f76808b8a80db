/**
 * The conformance cases, by stable id. Ids never change: manifests name them in
 * `conformance.skip`, and reports and docs refer to them.
 */

export type CaseGroup =
  'manifest' | 'config' | 'lifecycle' | 'mapping' | 'delivery' | 'hygiene' | 'metrics' | 'docs';
export type ConnectorKindName = 'inbound' | 'outbound';

export interface CaseInfo {
  id: string;
  group: CaseGroup;
  kinds: readonly ConnectorKindName[];
  title: string;
}

const BOTH = ['inbound', 'outbound'] as const;
const IN = ['inbound'] as const;
const OUT = ['outbound'] as const;

export const CASES: readonly CaseInfo[] = [
  {
    id: 'manifest.valid',
    group: 'manifest',
    kinds: BOTH,
    title: 'the manifest parses (kebab-case id, semantic version)',
  },
  {
    id: 'manifest.id-matches-folder',
    group: 'manifest',
    kinds: BOTH,
    title: 'the id equals the folder or package name',
  },
  {
    id: 'manifest.event-types',
    group: 'manifest',
    kinds: BOTH,
    title: 'emits/accepts name event types the catalog knows',
  },
  {
    id: 'manifest.skips',
    group: 'manifest',
    kinds: BOTH,
    title: 'every skip names a known case with a reason; stable connectors skip no delivery case',
  },
  {
    id: 'manifest.capabilities',
    group: 'manifest',
    kinds: BOTH,
    title: 'the declared capabilities match what an instance does',
  },
  {
    id: 'config.strict',
    group: 'config',
    kinds: BOTH,
    title: 'the config schema is strict and exports to JSON Schema',
  },
  { id: 'config.documented', group: 'config', kinds: BOTH, title: 'every config field has a description' },
  {
    id: 'config.secrets',
    group: 'config',
    kinds: BOTH,
    title: 'credential fields are marked secret and never print their value',
  },
  { id: 'config.examples', group: 'config', kinds: BOTH, title: 'the documented example configs validate' },
  {
    id: 'config.invalid',
    group: 'config',
    kinds: BOTH,
    title: 'invalid configs are refused with the expected message',
  },
  { id: 'lifecycle.create-no-io', group: 'lifecycle', kinds: BOTH, title: 'create() performs no I/O' },
  {
    id: 'lifecycle.stop-without-start',
    group: 'lifecycle',
    kinds: BOTH,
    title: 'stop() without start() settles',
  },
  { id: 'lifecycle.double-stop', group: 'lifecycle', kinds: BOTH, title: 'a second stop() settles' },
  {
    id: 'lifecycle.restart',
    group: 'lifecycle',
    kinds: BOTH,
    title: 'start and stop, then a fresh instance starts and stops',
  },
  {
    id: 'lifecycle.stop-deadline',
    group: 'lifecycle',
    kinds: BOTH,
    title: 'stop() settles within its deadline while work is in flight',
  },
  {
    id: 'lifecycle.check',
    group: 'lifecycle',
    kinds: BOTH,
    title: 'check() answers with a structured result and never throws',
  },
  {
    id: 'mapping.fixtures',
    group: 'mapping',
    kinds: IN,
    title: 'every fixture maps to exactly its expected events, ignore reason or rejection',
  },
  {
    id: 'mapping.catalog',
    group: 'mapping',
    kinds: IN,
    title: 'mapped events validate against the event catalog and the manifest',
  },
  {
    id: 'mapping.deterministic',
    group: 'mapping',
    kinds: IN,
    title: 'the same record always yields the same events and jtis',
  },
  {
    id: 'delivery.at-least-once',
    group: 'delivery',
    kinds: IN,
    title: 'after a failed persist the same records are read again and give the same jtis',
  },
  {
    id: 'delivery.checkpoint-after-persist',
    group: 'delivery',
    kinds: IN,
    title: 'checkpoints never run ahead of persisted events',
  },
  {
    id: 'delivery.stored-as-mapped',
    group: 'delivery',
    kinds: IN,
    title:
      'a running instance stores what map() gives for the fixtures it is sent, only of types manifest.emits lists',
  },
  {
    id: 'delivery.refuses-malformed',
    group: 'delivery',
    kinds: IN,
    title: 'a webhook body holding a malformed record is answered 4xx and emits nothing',
  },
  {
    id: 'delivery.webhook-ack-after-persist',
    group: 'delivery',
    kinds: IN,
    title:
      'a webhook answers 2xx only once ctx.emit() has persisted its events, and a retryable 5xx when it fails',
  },
  {
    id: 'delivery.skips-malformed',
    group: 'delivery',
    kinds: IN,
    title: 'a poll skips malformed records, persists the good ones and moves its checkpoint past them',
  },
  { id: 'delivery.empty-poll', group: 'delivery', kinds: IN, title: 'a poll that finds nothing settles' },
  {
    id: 'delivery.request-timeout',
    group: 'delivery',
    kinds: BOTH,
    title: 'every request goes through ctx.http and has a deadline',
  },
  {
    id: 'delivery.abort-signal',
    group: 'delivery',
    kinds: BOTH,
    title: 'deliver() and a poll run settle at once when the signal they are given is aborted',
  },
  { id: 'delivery.deliver', group: 'delivery', kinds: OUT, title: 'a SET is delivered and acknowledged' },
  {
    id: 'delivery.classification',
    group: 'delivery',
    kinds: OUT,
    title: 'error responses are classified retryable, permanent or credentials',
  },
  {
    id: 'delivery.no-network',
    group: 'delivery',
    kinds: OUT,
    title: 'a local destination makes no network connection',
  },
  {
    id: 'hygiene.secrets-not-logged',
    group: 'hygiene',
    kinds: BOTH,
    title: 'no secret value appears in a log line, an output or an error',
  },
  {
    id: 'metrics.counters',
    group: 'metrics',
    kinds: BOTH,
    title: "the connector's counters match the test traffic",
  },
  {
    id: 'hygiene.webhook-auth',
    group: 'hygiene',
    kinds: IN,
    title: 'a webhook request without its credentials, or with wrong ones, is refused with 401 or 403',
  },
  {
    id: 'docs.readme-current',
    group: 'docs',
    kinds: BOTH,
    title: 'the generated reference section of README.md is current',
  },
];

const BY_ID = new Map(CASES.map((c) => [c.id, c]));

export function caseInfo(id: string): CaseInfo {
  const info = BY_ID.get(id);
  if (!info) throw new Error(`unknown conformance case "${id}"`);
  return info;
}

export function isCaseId(id: string): boolean {
  return BY_ID.has(id);
}

/** Reasons shorter than this say nothing a reviewer can check. */
export const MIN_SKIP_REASON = 10;
