/**
 * Maps a batch of vendor records for an EDR connector instance and accounts for every record:
 * mapped, ignored (with its reason code) or rejected as malformed. A malformed record is logged
 * and skipped; it never stops the instance or the rest of its batch. So is a record whose events
 * the event catalog refuses when they are handed to the core (`emit`). When the instance names
 * MDM instances in `subjects.device_owners`, one snapshot of their device records serves the
 * batch.
 */
import {
  isBridgeError,
  PermanentError,
  type DeviceOwnerLookup,
  type EmitOptions,
  type EmitResult,
  type EventDraft,
  type InboundContext,
  type MappingResult,
} from '../../core/plugin-api/index.ts';
import { ignoredCode, type ReadHistory } from './edr-mapping.ts';

/** The events of one mapped record. */
export interface MappedRecord {
  /** The record as `describe` names it in logs. */
  record: string | undefined;
  events: EventDraft[];
}

/**
 * Code of the PermanentError `ctx.emit()` rejects a batch with when the event catalog refuses
 * any of its events (nothing of the batch is accepted).
 */
export const INVALID_EVENT_CODE = 'SSF_ERR_PIPELINE_INVALID_EVENT';

function refusedByCatalog(err: unknown): err is PermanentError {
  return err instanceof PermanentError && err.code === INVALID_EVENT_CODE;
}

export interface IntakeResult {
  events: EventDraft[];
  /** The events of each mapped record, in order (what `emit` takes). */
  records: MappedRecord[];
  mapped: number;
  ignored: number;
  rejected: Array<{ index: number; message: string }>;
}

export interface Intake {
  /**
   * Maps records; `describe` names a record in logs (its id), when it can be read. `histories`
   * holds what a poller knows of each record (by index). Rejects (retryable) only when the device
   * records cannot be read: nothing of the batch is lost.
   */
  map(records: readonly unknown[], histories?: ReadonlyArray<ReadHistory | undefined>): Promise<IntakeResult>;
  /** Counts records skipped before mapping (e.g. already processed in the overlap window). */
  skipped(reason: string, count: number): void;
  /** Counts records rejected before mapping (e.g. a stream record that is not JSON). */
  malformed(count: number): void;
  /**
   * Hands the events of mapped records to the core, with the checkpoint they reach. When the
   * event catalog refuses the batch, each record's events are handed over alone: a record the
   * catalog refuses is logged, counted as malformed and skipped, the others are accepted, and the
   * checkpoint is committed after them. One bad record never holds the rest back.
   */
  emit(records: readonly MappedRecord[], options?: EmitOptions): Promise<EmitResult>;
}

export function createIntake(
  ctx: InboundContext,
  mapRecord: (
    record: unknown,
    owners: DeviceOwnerLookup | undefined,
    history: ReadHistory | undefined,
  ) => MappingResult,
  describe: (record: unknown) => string | undefined,
  deviceOwners: readonly string[] = [],
): Intake {
  const records = ctx.metrics.counter(
    'edr_records_total',
    'Vendor records read, by outcome (mapped, ignored, rejected) and reason',
    ['outcome', 'reason'],
  );
  return {
    async map(batch, histories) {
      const out: IntakeResult = { events: [], records: [], mapped: 0, ignored: 0, rejected: [] };
      const owners =
        deviceOwners.length > 0 && batch.length > 0 ? await ctx.devices.owners(deviceOwners) : undefined;
      batch.forEach((record, index) => {
        let result: MappingResult;
        try {
          result = mapRecord(record, owners, histories?.[index]);
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
        out.records.push({ record: describe(record), events: result.events });
      });
      return out;
    },
    skipped(reason, count) {
      if (count > 0) records.inc({ outcome: 'ignored', reason }, count);
    },
    malformed(count) {
      if (count > 0) records.inc({ outcome: 'rejected', reason: 'malformed' }, count);
    },
    async emit(mapped, options) {
      try {
        return await ctx.emit(
          mapped.flatMap((m) => m.events),
          options,
        );
      } catch (err) {
        if (!refusedByCatalog(err)) throw err;
      }
      // Events handed over one record at a time are durable before the checkpoint: a crash in
      // between reads them again, and the core drops them as duplicates.
      const out: EmitResult = { accepted: [], duplicates: 0 };
      for (const { record, events } of mapped) {
        if (events.length === 0) continue;
        try {
          const result = await ctx.emit(events);
          out.accepted.push(...result.accepted);
          out.duplicates += result.duplicates;
        } catch (err) {
          if (!refusedByCatalog(err)) throw err;
          records.inc({ outcome: 'rejected', reason: 'malformed' });
          ctx.logger.warn(
            { record, problem: err.message },
            'vendor record skipped: the event catalog refuses its events',
          );
        }
      }
      if (options?.checkpoint) await ctx.emit([], options);
      return out;
    },
  };
}
