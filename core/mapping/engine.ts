/**
 * The mapping engine: compiles a rule set once, then maps records to events. Every event is
 * checked against the event catalog; a failing rule is reported with the rule's name, the
 * field and expression at fault, and what the record holds at the paths the expression reads.
 */
import { createHash } from 'node:crypto';
import jsonata from 'jsonata';
import { PermanentError, RetryableError } from '../plugin-api/errors.ts';
import { isStorableText, unstorableTextPath } from '../plugin-api/storable-text.ts';
import type { EventDraft, MappingResult, Severity } from '../plugin-api/types.ts';
import { findEventType, validateEventDraft } from '../ssf/index.ts';
import {
  EVALUATION_DEADLINE_MS,
  EvaluationTimeout,
  EvaluatorSet,
  RecordEvaluationError,
  type FieldResult,
  type RuleResult,
  type RuleSources,
} from './evaluator.ts';
import { describePaths, recordPaths } from './paths.ts';
import type { MappingRule } from './rules.ts';

export const MAPPING_ERROR_CODE = 'SSF_ERR_MAPPING_RULE';
/** Code of the RetryableError of an evaluator that failed through no fault of the records. */
export const MAPPING_UNAVAILABLE_CODE = 'SSF_ERR_MAPPING_UNAVAILABLE';
/** How long a sender is asked to wait before sending records again after such a failure. */
const UNAVAILABLE_RETRY_AFTER_MS = 5_000;

/** One problem of one rule on one record. */
export interface RuleProblem {
  rule: string;
  /** `match`, `subject`, `claims.<name>`, `id`, `severity`, `occurred_at`, or `event_type`. */
  field: string;
  expression?: string;
  /** What the record holds at the paths the expression reads. */
  record?: string;
  message: string;
}

/** What became of one record of a batch: its mapping, or why it was refused. */
export type RecordOutcome = { ok: true; result: MappingResult } | { ok: false; error: PermanentError };

export interface CompiledRules {
  readonly names: readonly string[];
  /**
   * Maps records in order on a helper thread, never blocking the event loop: for each, one event
   * per matching rule, the reason nothing matched, or the PermanentError of a rule that failed on
   * it. Each record may take EVALUATION_DEADLINE_MS and all of them together `budgetMs` (default
   * MAPPING_BUDGET_MS); at the first record that runs out of time (or of memory) the outcomes end
   * with its error, and the records after it are not mapped. Rejects with a RetryableError (code
   * MAPPING_UNAVAILABLE_CODE) when the helper thread failed through no fault of the records (it
   * could not start, or was ended): the same records may map when tried again.
   */
  mapRecords(records: readonly unknown[], options?: { budgetMs?: number }): Promise<RecordOutcome[]>;
  /**
   * Maps one record, blocking the calling thread until it is done (at most EVALUATION_DEADLINE_MS):
   * for commands, config loading and fixtures only, never on a path that serves requests.
   * Throws PermanentError when a rule fails on the record, RetryableError as mapRecords() rejects.
   */
  map(record: unknown): MappingResult;
  /** Ends the helper thread of mapRecords(); the next call starts another. */
  close(): void;
}

/** How long the records mapped together (one request's) may take in all, by default. */
export const MAPPING_BUDGET_MS = 10_000;

const SEVERITIES: readonly Severity[] = ['low', 'medium', 'high', 'critical'];

interface CompiledRule {
  rule: MappingRule;
  /** Field key → expression source and the record paths it reads. */
  fields: Map<string, { source: string; paths: string[] }>;
}

/** Field key → source, for every expression of a rule (the match condition included). */
function sourcesOf(rule: MappingRule): Array<[string, string]> {
  const out: Array<[string, string]> = [
    ['match', rule.match],
    ['subject', rule.subject],
  ];
  for (const [name, source] of Object.entries(rule.claims)) out.push([`claims.${name}`, source]);
  if (rule.id !== undefined) out.push(['id', rule.id]);
  if (rule.severity !== undefined) out.push(['severity', rule.severity]);
  if (rule.occurred_at !== undefined) out.push(['occurred_at', rule.occurred_at]);
  return out;
}

function syntaxMessage(err: unknown): string {
  const e = err as { message?: string; position?: number; code?: string };
  return `${e.message ?? String(err)}${e.position !== undefined ? ` (at character ${e.position})` : ''}`;
}

/** Problems found without any record: syntax, unknown event types, duplicate names. */
function staticProblems(rules: readonly MappingRule[]): Array<{ path: PropertyKey[]; message: string }> {
  const problems: Array<{ path: PropertyKey[]; message: string }> = [];
  const seen = new Set<string>();
  rules.forEach((rule, index) => {
    if (seen.has(rule.name))
      problems.push({ path: [index, 'name'], message: `another rule is already named "${rule.name}"` });
    seen.add(rule.name);
    const definition = findEventType(rule.event_type);
    if (!definition) {
      problems.push({
        path: [index, 'event_type'],
        message: `unknown event type "${rule.event_type}" (see: ssf-bridge events list)`,
      });
    } else if (definition.deprecated) {
      // Every event of it would be refused at acceptance: said once, when the config loads.
      problems.push({ path: [index, 'event_type'], message: definition.deprecated });
    }
    for (const [key, source] of sourcesOf(rule)) {
      try {
        jsonata(source);
      } catch (err) {
        problems.push({
          path: [index, ...key.split('.')],
          message: `invalid JSONata: ${syntaxMessage(err)}`,
        });
      }
    }
  });
  return problems;
}

function compileRule(rule: MappingRule): CompiledRule {
  const fields = new Map<string, { source: string; paths: string[] }>();
  for (const [key, source] of sourcesOf(rule)) {
    fields.set(key, { source, paths: recordPaths(jsonata(source).ast()) });
  }
  return { rule, fields };
}

/**
 * Compiles a rule set once. Throws PermanentError listing every broken rule (syntax, unknown
 * event type, duplicate name); config validation reports the same problems with their paths.
 */
export function compileRules(rules: readonly MappingRule[]): CompiledRules {
  const problems = staticProblems(rules);
  if (problems.length > 0) {
    throw new PermanentError(
      `invalid mapping rules: ${problems.map((p) => `rules[${p.path.map(String).join('].')}: ${p.message}`).join('; ')}`,
      { code: MAPPING_ERROR_CODE },
    );
  }
  const compiled = rules.map(compileRule);
  const evaluator = new EvaluatorSet(
    compiled.map(({ fields }): RuleSources => {
      const sources: Record<string, string> = {};
      for (const [key, { source }] of fields) if (key !== 'match') sources[key] = source;
      return { match: fields.get('match')!.source, fields: sources };
    }),
  );
  return {
    names: rules.map((r) => r.name),
    mapRecords: (records, options) => mapRecords(compiled, evaluator, records, options?.budgetMs),
    map: (record) => mapBlocking(compiled, evaluator, record),
    close: () => evaluator.close(),
  };
}

/** A stable id for a record without one, so the same record always gives the same jtis. */
export function recordHash(record: unknown): string {
  return `sha256:${createHash('sha256').update(canonicalJson(record)).digest('hex')}`;
}

function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : 1));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

class RuleFailure {
  constructor(readonly problems: RuleProblem[]) {}
}

function evaluationError(message: string): PermanentError {
  return new PermanentError(`mapping rules could not be evaluated: ${message}`, { code: MAPPING_ERROR_CODE });
}

/** The evaluator failed, not the record (see RecordEvaluationError): worth trying again. */
function unavailableError(err: unknown): RetryableError {
  return new RetryableError(
    `mapping rules could not be evaluated, through no fault of the records: ${(err as Error).message}; try again`,
    { code: MAPPING_UNAVAILABLE_CODE, retryAfterMs: UNAVAILABLE_RETRY_AFTER_MS, cause: err },
  );
}

function mapBlocking(compiled: CompiledRule[], evaluator: EvaluatorSet, record: unknown): MappingResult {
  let results;
  try {
    results = evaluator.evaluateBlocking(record);
  } catch (err) {
    if (!(err instanceof RecordEvaluationError)) throw unavailableError(err);
    throw evaluationError(err.message);
  }
  return resultOf(compiled, results, record);
}

async function mapRecords(
  compiled: CompiledRule[],
  evaluator: EvaluatorSet,
  records: readonly unknown[],
  budgetMs = MAPPING_BUDGET_MS,
): Promise<RecordOutcome[]> {
  const outcomes: RecordOutcome[] = [];
  let left = budgetMs;
  for (const record of records) {
    if (left <= 0) {
      outcomes.push({
        ok: false,
        error: evaluationError(`the records before it used up the ${budgetMs} ms they may take together`),
      });
      break;
    }
    const deadline = Math.min(EVALUATION_DEADLINE_MS, left);
    let results: RuleResult[];
    try {
      const evaluation = await evaluator.evaluate(record, deadline);
      left -= evaluation.elapsedMs;
      results = evaluation.results;
    } catch (err) {
      // The thread failed, not the record: none of the records is refused for it.
      if (!(err instanceof RecordEvaluationError)) throw unavailableError(err);
      // A timeout, out of memory, a record that cannot be sent: the records after it are not
      // taken up. Only a timeout cut short by the budget is the budget's doing.
      const message =
        err instanceof EvaluationTimeout && deadline < EVALUATION_DEADLINE_MS
          ? `it ran past the ${budgetMs} ms the records mapped with it may take together`
          : err.message;
      outcomes.push({ ok: false, error: evaluationError(message) });
      break;
    }
    try {
      outcomes.push({ ok: true, result: resultOf(compiled, results, record) });
    } catch (err) {
      if (!(err instanceof PermanentError)) throw err;
      outcomes.push({ ok: false, error: err });
    }
  }
  return outcomes;
}

function resultOf(compiled: CompiledRule[], results: RuleResult[], record: unknown): MappingResult {
  const problems: RuleProblem[] = [];
  const events: EventDraft[] = [];
  const produced = new Map<string, string>();
  compiled.forEach((entry, index) => {
    const result = results[index];
    if (!result) return;
    if (!result.matched) {
      if (result.error !== undefined) problems.push(problem(entry, 'match', record, result.error));
      return;
    }
    try {
      const draft = buildDraft(entry, result.fields, record);
      const key = JSON.stringify([findEventType(draft.type)?.uri, draft.sourceRecordId]);
      const earlier = produced.get(key);
      if (earlier !== undefined) {
        problems.push({
          rule: entry.rule.name,
          field: 'id',
          message: `rule "${earlier}" already produced ${entry.rule.event_type} with id "${draft.sourceRecordId}" for this record; give the rules distinct ids`,
        });
        return;
      }
      produced.set(key, entry.rule.name);
      events.push(draft);
    } catch (err) {
      if (!(err instanceof RuleFailure)) throw err;
      problems.push(...err.problems);
    }
  });
  if (problems.length > 0) {
    throw new PermanentError(problems.map(formatProblem).join('; '), {
      code: MAPPING_ERROR_CODE,
      detail: { problems },
    });
  }
  if (events.length === 0) return { events: [], ignored: 'no mapping rule matched the record' };
  return { events };
}

export function formatProblem(p: RuleProblem): string {
  const where = [
    p.expression !== undefined ? `expression: ${p.expression}` : undefined,
    p.record ? `record: ${p.record}` : undefined,
  ].filter(Boolean);
  return `rule "${p.rule}", ${p.field}: ${p.message}${where.length ? ` (${where.join('; ')})` : ''}`;
}

function problem(entry: CompiledRule, field: string, record: unknown, message: string): RuleProblem {
  const source = entry.fields.get(field);
  return {
    rule: entry.rule.name,
    field,
    ...(source ? { expression: source.source } : {}),
    ...(source && source.paths.length > 0 ? { record: describePaths(record, source.paths) } : {}),
    message,
  };
}

function buildDraft(entry: CompiledRule, fields: Record<string, FieldResult>, record: unknown): EventDraft {
  const problems: RuleProblem[] = [];
  const value = (key: string): unknown => {
    const result = fields[key];
    if (result?.error !== undefined) {
      problems.push(problem(entry, key, record, result.error));
      return undefined;
    }
    return result?.value;
  };
  /** An optional field's value: null (what SIEM payloads carry for "none") gives nothing too. */
  const optional = (key: string): unknown => value(key) ?? undefined;
  const rule = entry.rule;
  const subject = value('subject');
  const claims: Record<string, unknown> = {};
  for (const name of Object.keys(rule.claims)) {
    const claim = optional(`claims.${name}`);
    if (claim !== undefined) claims[name] = claim;
  }
  const draft: EventDraft = {
    type: rule.event_type,
    subject: subject as EventDraft['subject'],
    claims,
    sourceRecordId: '',
  };
  if (rule.id === undefined) {
    try {
      draft.sourceRecordId = recordHash(record);
    } catch (err) {
      // canonicalJson recurses once per level: a record nested thousands deep exhausts the stack.
      if (!(err instanceof RangeError)) throw err;
      problems.push({
        rule: rule.name,
        field: 'id',
        message: 'the record is nested too deeply to derive an id from it; give the rule an id expression',
      });
    }
  } else {
    const id = value('id');
    if (typeof id === 'string' && id.length > 0) draft.sourceRecordId = id;
    else if (typeof id === 'number' && Number.isFinite(id)) draft.sourceRecordId = String(id);
    else if (!problems.some((p) => p.field === 'id'))
      problems.push(
        problem(entry, 'id', record, `gave ${describe(id)}; expected a non-empty string or a number`),
      );
  }
  const severity = rule.severity !== undefined ? optional('severity') : undefined;
  if (typeof severity === 'string' && SEVERITIES.includes(severity.toLowerCase() as Severity)) {
    draft.severity = severity.toLowerCase() as Severity;
  } else if (severity !== undefined) {
    problems.push(
      problem(
        entry,
        'severity',
        record,
        `gave ${describe(severity)}; expected one of ${SEVERITIES.join(', ')}`,
      ),
    );
  }
  const occurred = rule.occurred_at !== undefined ? optional('occurred_at') : undefined;
  // Milliseconds within the range a Date can hold (±8.64e15, ECMA-262 §21.4.1.1).
  if (typeof occurred === 'number' && Number.isFinite(occurred) && Math.abs(occurred) <= 8.64e15)
    draft.occurredAt = new Date(occurred).toISOString();
  else if (typeof occurred === 'string' && isoMillis(occurred) !== undefined)
    draft.occurredAt = new Date(isoMillis(occurred) as number).toISOString();
  else if (occurred !== undefined)
    problems.push(
      problem(
        entry,
        'occurred_at',
        record,
        `gave ${describe(occurred)}; expected an ISO 8601 date or epoch milliseconds`,
      ),
    );
  if (problems.length > 0) throw new RuleFailure(problems);
  if (typeof subject !== 'object' || subject === null || Array.isArray(subject)) {
    throw new RuleFailure([
      problem(
        entry,
        'subject',
        record,
        `gave ${describe(subject)}; expected an object such as {"format": "email", "email": …}`,
      ),
    ]);
  }
  const checked = validateEventDraft(draft);
  if (!checked.ok) {
    throw new RuleFailure(
      checked.problems.map((p) => problem(entry, fieldOf(p.path), record, catalogMessage(p))),
    );
  }
  const unstorable = unstorableText(draft);
  if (unstorable.length > 0) {
    throw new RuleFailure(
      unstorable.map(({ field, path }) =>
        problem(
          entry,
          field,
          record,
          `${path} holds U+0000 or half of a surrogate pair, which no store keeps`,
        ),
      ),
    );
  }
  return draft;
}

/**
 * Text of an event that no store keeps (see storable-text.ts), by rule field: the pipeline would
 * refuse the event, and with it every event accepted together with it, so it is this record's
 * problem. Called once the catalog has bounded the depth of subject and claims.
 */
function unstorableText(draft: EventDraft): Array<{ field: string; path: string }> {
  const found: Array<{ field: string; path: string }> = [];
  if (!isStorableText(draft.sourceRecordId)) found.push({ field: 'id', path: 'id' });
  const subject = unstorableTextPath(draft.subject, 'subject');
  if (subject !== undefined) found.push({ field: 'subject', path: subject });
  for (const [name, claim] of Object.entries(draft.claims ?? {})) {
    const path = isStorableText(name) ? unstorableTextPath(claim, `claims.${name}`) : `claims.${name}`;
    if (path !== undefined) found.push({ field: `claims.${name}`, path });
  }
  return found;
}

/** ISO 8601 date, or date and time with an optional offset (none: UTC, as JSONata's $toMillis reads it). */
const ISO_8601 =
  /^(\d{4})-(\d{2})-(\d{2})(?:[Tt ](\d{2}):(\d{2})(?::(\d{2})(?:[.,](\d{1,9}))?)?([Zz]|[+-]\d{2}(?::?\d{2})?)?)?$/;

/**
 * Epoch milliseconds of an ISO 8601 text, or undefined. Date.parse alone is not used: it reads
 * any text it can guess at ("Mar  2 09:14:27", a syslog stamp, gives 2001; "1" gives 2001-01-01),
 * rolls 30 February over into March, and takes a time without offset in the host's zone.
 */
export function isoMillis(text: string): number | undefined {
  const m = ISO_8601.exec(text);
  if (!m) return undefined;
  const [, y, mo, d, h = '00', mi = '00', sec = '00', frac = '', zone = 'Z'] = m as unknown as string[];
  const [year, month, day, hour, minute, second] = [y, mo, d, h, mi, sec].map(Number) as number[];
  const date = new Date(Date.UTC(year!, month! - 1, day!));
  if (date.getUTCFullYear() !== year || date.getUTCMonth() !== month! - 1 || date.getUTCDate() !== day)
    return undefined;
  if (hour! > 23 || minute! > 59 || second! > 59) return undefined;
  let offsetMinutes = 0;
  if (zone !== 'Z' && zone !== 'z') {
    const digits = zone.slice(1).replace(':', '');
    const [oh, om] = [Number(digits.slice(0, 2)), Number(digits.slice(2) || '0')];
    if (oh > 23 || om > 59) return undefined;
    offsetMinutes = (zone.startsWith('-') ? -1 : 1) * (oh * 60 + om);
  }
  const millis = Number((frac + '000').slice(0, 3));
  return Date.UTC(year!, month! - 1, day!, hour, minute, second, millis) - offsetMinutes * 60_000;
}

/** The rule field a catalog problem comes from: `claims.x.y` → `claims.x`, `subject.email` → `subject`. */
function fieldOf(path: string): string {
  const [head, name] = path.split('.');
  if (head === 'claims' && name !== undefined) return `claims.${name}`;
  if (head === 'occurredAt') return 'occurred_at';
  return head === 'type' ? 'event_type' : (head ?? 'subject');
}

function catalogMessage(p: { path: string; message: string }): string {
  return p.path.includes('.') ? `${p.path} ${p.message}` : p.message;
}

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 60 ? `${text.slice(0, 59)}…` : text;
}

/**
 * Everything wrong with a rule set, with config paths relative to the rule list: static
 * problems first; when there are none, each rule's example records are mapped by that rule.
 */
export function ruleSetProblems(
  rules: readonly MappingRule[],
): Array<{ path: PropertyKey[]; message: string }> {
  const problems = staticProblems(rules);
  if (problems.length > 0) return problems;
  rules.forEach((rule, index) => {
    if (!rule.examples?.length) return;
    const single = compileRules([rule]);
    rule.examples.forEach((example, i) => {
      const path = [index, 'examples', i];
      let matched: boolean;
      try {
        matched = single.map(example.record).events.length > 0;
      } catch (err) {
        problems.push({ path, message: (err as Error).message });
        return;
      }
      if (example.matches && !matched)
        problems.push({ path, message: `rule "${rule.name}" does not match this example record` });
      if (!example.matches && matched)
        problems.push({
          path,
          message: `rule "${rule.name}" matches this example record, which it must not`,
        });
    });
  });
  return problems;
}
