/**
 * Maps a batch of vendor records for an EDR connector instance and accounts for every record:
 * mapped, ignored (with its reason code) or rejected as malformed. A malformed record is logged
 * and skipped; it never stops the instance or the rest of its batch.
 */
import {
  isBridgeError,
  type ConnectorContext,
  type EventDraft,
  type MappingResult,
} from '../../core/plugin-api/index.ts';
import { ignoredCode } from './edr-mapping.ts';

export interface IntakeResult {
  events: EventDraft[];
  mapped: number;
  ignored: number;
  rejected: Array<{ index: number; message: string }>;
}

export interface Intake {
  /** Maps records; `describe` names a record in logs (its id), when it can be read. */
  map(records: readonly unknown[]): IntakeResult;
  /** Counts records skipped before mapping (e.g. already processed in the overlap window). */
  skipped(reason: string, count: number): void;
  /** Counts records rejected before mapping (e.g. a stream record that is not JSON). */
  malformed(count: number): void;
}

export function createIntake(
  ctx: ConnectorContext,
  mapRecord: (record: unknown) => MappingResult,
  describe: (record: unknown) => string | undefined,
): Intake {
  const records = ctx.metrics.counter(
    'edr_records_total',
    'Vendor records read, by outcome (mapped, ignored, rejected) and reason',
    ['outcome', 'reason'],
  );
  return {
    map(batch) {
      const out: IntakeResult = { events: [], mapped: 0, ignored: 0, rejected: [] };
      batch.forEach((record, index) => {
        let result: MappingResult;
        try {
          result = mapRecord(record);
        } catch (err) {
          const message = err instanceof Error ? err.message : String(err);
          if (!isBridgeError(err))
            ctx.logger.error({ err, record: describe(record) }, 'mapping failed unexpectedly');
          else
            ctx.logger.warn(
              { record: describe(record), problem: message },
              'malformed vendor record skipped',
            );
          records.inc({ outcome: 'rejected', reason: 'malformed' });
          out.rejected.push({ index, message });
          return;
        }
        if (result.ignored !== undefined) {
          const code = ignoredCode(result.ignored);
          records.inc({ outcome: 'ignored', reason: code });
          out.ignored += 1;
          if (code === 'subject_unresolved') {
            ctx.logger.info(
              { record: describe(record), reason: result.ignored },
              'no subject for a detection',
            );
          } else {
            ctx.logger.debug({ record: describe(record), reason: result.ignored }, 'record ignored');
          }
          return;
        }
        records.inc({ outcome: 'mapped', reason: 'none' });
        out.mapped += 1;
        out.events.push(...result.events);
      });
      return out;
    },
    skipped(reason, count) {
      if (count > 0) records.inc({ outcome: 'ignored', reason }, count);
    },
    malformed(count) {
      if (count > 0) records.inc({ outcome: 'rejected', reason: 'malformed' }, count);
    },
  };
}
