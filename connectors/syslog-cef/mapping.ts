import {
  compileRules,
  PermanentError,
  type CompiledRules,
  type MappingResult,
} from '../../core/plugin-api/index.ts';
import type { SyslogCefConfig } from './config.ts';
import { parseLine, type SyslogRecord } from './parse/record.ts';

/** The error code of a line that is not syslog, CEF or LEEF as written. */
export const MALFORMED_LINE_CODE = 'SSF_ERR_SYSLOG_MALFORMED';

/** Compiled once per config: the same rule list always maps through the same compiled set. */
const compiledByRules = new WeakMap<SyslogCefConfig['rules'], CompiledRules>();

export function compiledRules(config: SyslogCefConfig): CompiledRules {
  let compiled = compiledByRules.get(config.rules);
  if (!compiled) {
    compiled = compileRules(config.rules);
    compiledByRules.set(config.rules, compiled);
  }
  return compiled;
}

/** Parses one line into the record the rules see; a malformed line throws a PermanentError. */
export function recordOf(line: unknown): SyslogRecord {
  if (typeof line !== 'string')
    throw new PermanentError('a syslog line is text', { code: MALFORMED_LINE_CODE });
  try {
    return parseLine(line);
  } catch (err) {
    throw new PermanentError(`malformed line: ${err instanceof Error ? err.message : String(err)}`, {
      code: MALFORMED_LINE_CODE,
    });
  }
}

/** Parses one raw syslog line and maps it through the instance's rules. */
export function mapLine(line: unknown, config: SyslogCefConfig): MappingResult {
  return compiledRules(config).map(recordOf(line));
}
