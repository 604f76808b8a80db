import {
  compileRules,
  isBridgeError,
  MAPPING_ERROR_CODE,
  PermanentError,
  type CompiledRules,
  type EventDraft,
  type MappingResult,
} from '../../core/plugin-api/index.ts';
import type { GenericWebhookConfig } from './config.ts';

/** Compiled once per config: the same rule list always maps through the same compiled set. */
const compiledByRules = new WeakMap<GenericWebhookConfig['rules'], CompiledRules>();

export function compiledRules(config: GenericWebhookConfig): CompiledRules {
  let compiled = compiledByRules.get(config.rules);
  if (!compiled) {
    compiled = compileRules(config.rules);
    compiledByRules.set(config.rules, compiled);
  }
  return compiled;
}

/**
 * Maps a request body as the running connector does (for `ssf-bridge simulate` and fixtures):
 * split into its records, each through the instance's rules, all of them refused when one is.
 * Blocks until done; the connector itself maps off the event loop.
 */
export function mapBody(body: unknown, config: GenericWebhookConfig): MappingResult {
  const list = recordsOf(body, config);
  if (!list.ok) throw new PermanentError(list.message);
  const rules = compiledRules(config);
  // An index only means something when the body held a list of records.
  const listed = config.records_field !== undefined || Array.isArray(body);
  const events: EventDraft[] = [];
  const problems: Array<{ record: number; message: string }> = [];
  let ignored: string | undefined;
  list.records.forEach((record, index) => {
    try {
      const mapped = rules.map(record);
      if (mapped.ignored !== undefined) ignored ??= mapped.ignored;
      events.push(...mapped.events);
    } catch (err) {
      if (!isBridgeError(err) || err.errorClass !== 'permanent') throw err;
      problems.push({ record: index, message: err.message });
    }
  });
  if (problems.length > 0) {
    const message = listed
      ? problems.map((p) => `record ${p.record}: ${p.message}`).join('; ')
      : (problems[0] as { message: string }).message;
    throw new PermanentError(message, { code: MAPPING_ERROR_CODE, detail: { problems } });
  }
  if (events.length > 0) return { events };
  return {
    events: [],
    ignored:
      list.records.length === 1
        ? (ignored as string)
        : `no mapping rule matched any of the ${list.records.length} records`,
  };
}

export type RecordList = { ok: true; records: unknown[] } | { ok: false; message: string };

/** The records of a request body: one object, an array, or the array in `records_field`. */
export function recordsOf(body: unknown, config: GenericWebhookConfig): RecordList {
  if (body === undefined || body === null)
    return { ok: false, message: 'a JSON body is required (Content-Type: application/json)' };
  let records: unknown[];
  if (config.records_field !== undefined) {
    const list =
      typeof body === 'object' && !Array.isArray(body)
        ? (body as Record<string, unknown>)[config.records_field]
        : undefined;
    if (!Array.isArray(list))
      return { ok: false, message: `the body has no array "${config.records_field}"` };
    records = list;
  } else {
    records = Array.isArray(body) ? body : [body];
  }
  if (records.length === 0) return { ok: false, message: 'no records given' };
  if (records.length > config.max_records_per_request) {
    return {
      ok: false,
      message: `${records.length} records in one request; the limit is ${config.max_records_per_request}`,
    };
  }
  // An alert is a JSON object: a bare string or number is a sender's mistake, not a record the
  // rules would merely ignore.
  const stray = records.findIndex((r) => typeof r !== 'object' || r === null || Array.isArray(r));
  if (stray !== -1) {
    const value = records[stray];
    const what = value === null ? 'null' : Array.isArray(value) ? 'an array' : `a ${typeof value}`;
    const single = config.records_field === undefined && !Array.isArray(body);
    return {
      ok: false,
      message: single
        ? `the body is ${what}, not a JSON object (an alert) or an array of them`
        : `record ${stray} is ${what}, not a JSON object`,
    };
  }
  return { ok: true, records };
}
