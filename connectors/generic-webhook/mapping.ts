import { compileRules, type CompiledRules, type MappingResult } from '../../core/plugin-api/index.ts';
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

/** Maps one record of a request body through the instance's rules. */
export function mapRecord(record: unknown, config: GenericWebhookConfig): MappingResult {
  return compiledRules(config).map(record);
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
  return { ok: true, records };
}
