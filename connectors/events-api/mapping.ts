import { createHash } from 'node:crypto';
import { MAX_EVENT_NESTING, nestsDeeperThan, z, type EventDraft } from '../../core/plugin-api/index.ts';

const shallow = (value: unknown) => !nestsDeeperThan(value, MAX_EVENT_NESTING);
const TOO_DEEP = `nests more than ${MAX_EVENT_NESTING} levels deep`;

/**
 * One event in ssf-bridge's normalised form, as senders post it. Strict: an unknown key is a
 * mistake worth telling the sender about (e.g. `subjet`).
 */
export const normalisedEventSchema = z.strictObject({
  type: z.string().min(1).meta({ description: 'Event type URI or short name, e.g. caep.session-revoked.' }),
  subject: z
    .looseObject({ format: z.string().min(1) })
    .refine(shallow, TOO_DEEP)
    .meta({ description: 'RFC 9493 subject identifier, e.g. {"format":"email","email":"a@example.com"}.' }),
  claims: z.record(z.string(), z.unknown()).refine(shallow, TOO_DEEP).optional(),
  id: z
    .string()
    .min(1)
    .max(512)
    .optional()
    .meta({ description: 'Source record id; repeats are de-duplicated. Default: a hash of the event.' }),
  occurred_at: z.iso.datetime({ offset: true }).optional(),
  txn: z.string().min(1).max(256).optional(),
  severity: z.enum(['low', 'medium', 'high', 'critical']).optional(),
});

export type NormalisedEvent = z.infer<typeof normalisedEventSchema>;

export interface PayloadProblem {
  path: string;
  message: string;
}

export type PayloadResult =
  | {
      ok: true;
      events: EventDraft[];
      /** Where the event at `index` sits in the body: `[3]`, `events[3]`, or '' for one event. */
      pathOf(index: number): string;
    }
  | { ok: false; problems: PayloadProblem[] };

/**
 * Maps a request body — one event, an array, or `{ "events": [...] }` — to event drafts, or
 * to every problem found, each with its path (`[3].subject.format`).
 */
export function mapPayload(body: unknown, maxEvents: number): PayloadResult {
  if (body === undefined || body === null) {
    return {
      ok: false,
      problems: [{ path: '(body)', message: 'a JSON body is required (Content-Type: application/json)' }],
    };
  }
  const wrapped = isEnvelope(body);
  const list: unknown[] = Array.isArray(body)
    ? body
    : wrapped
      ? (body as { events: unknown[] }).events
      : [body];
  const prefix = wrapped ? 'events' : '';
  if (list.length === 0)
    return { ok: false, problems: [{ path: prefix || '(body)', message: 'no events given' }] };
  if (list.length > maxEvents) {
    return {
      ok: false,
      problems: [
        {
          path: prefix || '(body)',
          message: `${list.length} events in one request; the limit is ${maxEvents}`,
        },
      ],
    };
  }
  const problems: PayloadProblem[] = [];
  const events: EventDraft[] = [];
  const pathOf = (index: number) => (Array.isArray(body) || wrapped ? `${prefix}[${index}]` : '');
  list.forEach((item, index) => {
    const at = pathOf(index);
    const parsed = normalisedEventSchema.safeParse(item);
    if (!parsed.success) {
      for (const issue of parsed.error.issues) {
        const keys = issue.code === 'unrecognized_keys' ? issue.keys.map((k) => [k]) : [[]];
        for (const key of keys) {
          problems.push({ path: joinPath(at, [...issue.path, ...key]) || '(body)', message: issue.message });
        }
      }
      return;
    }
    events.push(toDraft(parsed.data));
  });
  return problems.length > 0 ? { ok: false, problems } : { ok: true, events, pathOf };
}

/** The core's names for the fields this connector takes under other names. */
const SENT_AS: Record<string, string> = { sourceRecordId: 'id', occurredAt: 'occurred_at' };

/**
 * The core's problems with the events of a body (`[i].sourceRecordId`), at the paths the
 * sender wrote: the event where it sits in the body, and its fields by the names it sent. An
 * `event_timestamp` the sender did not give was made from `occurred_at`, and is reported there.
 */
export function sentPaths(
  problems: readonly PayloadProblem[],
  events: readonly EventDraft[],
  pathOf: (index: number) => string,
): PayloadProblem[] {
  return problems.map((problem) => {
    const m = /^\[(\d+)\](?:\.(.*))?$/.exec(problem.path);
    if (!m) return problem;
    const index = Number(m[1]);
    const [head = '', ...tail] = (m[2] ?? '').split('.');
    let field = [SENT_AS[head] ?? head, ...tail].join('.');
    const claims = events[index]?.claims as Record<string, unknown> | undefined;
    if (field === 'claims.event_timestamp' && claims?.event_timestamp === undefined) field = 'occurred_at';
    const at = pathOf(index);
    return { ...problem, path: at && field ? `${at}.${field}` : at || field || '(body)' };
  });
}

function isEnvelope(body: unknown): boolean {
  return (
    typeof body === 'object' &&
    body !== null &&
    !Array.isArray(body) &&
    Array.isArray((body as { events?: unknown }).events) &&
    !('type' in body)
  );
}

function joinPath(prefix: string, path: readonly PropertyKey[]): string {
  let out = prefix;
  for (const part of path)
    out += typeof part === 'number' ? `[${part}]` : out ? `.${String(part)}` : String(part);
  return out;
}

export function toDraft(event: NormalisedEvent): EventDraft {
  return {
    type: event.type,
    subject: event.subject,
    claims: event.claims ?? {},
    sourceRecordId: event.id ?? contentId(event),
    ...(event.occurred_at ? { occurredAt: event.occurred_at } : {}),
    ...(event.txn ? { txn: event.txn } : {}),
    ...(event.severity ? { severity: event.severity } : {}),
  };
}

/** A stable id for an event posted without one, so an identical retry is de-duplicated. */
function contentId(event: NormalisedEvent): string {
  return `sha256:${createHash('sha256').update(canonicalJson(event)).digest('hex')}`;
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}
