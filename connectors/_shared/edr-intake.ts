/**
 * Maps a batch of vendor records for an EDR connector instance and accounts for every record:
 * mapped, ignored (with its reason code) or rejected as malformed. A malformed record is logged
 * and skipped; it never stops the instance or the rest of its batch. So is a record whose events
 * the event catalog refuses when they are handed to the core (`emit`). When the instance names
 * MDM instances in `subjects.device_owners`, one snapshot of their device records serves the
 * batch. Every path (poll, webhook, stream) consults and feeds the instance's memory of the
 * detections it raised the level for (RaisedMemory): a closed detection it does not name sends
 * no downgrade, nor one whose downgrade it sent last, and the events of a raise or a downgrade are
 * handed over together with the memory naming it.
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
import {
  clearedDetectionOf,
  ignoredCode,
  raisedDetectionId,
  raisedTargetOf,
  type ClearedMark,
  type RaisedLookup,
  type RaisedTarget,
  type ReadHistory,
} from './edr-mapping.ts';
import { RaisedMemory } from './edr-raised.ts';

/** The events of one mapped record. */
export interface MappedRecord {
  /** The record as `describe` names it in logs. */
  record: string | undefined;
  events: EventDraft[];
  /** Ids of the detections these events raise the level for (see raisedDetectionId). */
  raises: string[];
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
   * holds what a poller knows of each record (by index). `earlier` are records mapped before and
   * not handed over yet (a datafeed batch): their raises count as raised. Rejects (retryable)
   * only when the device records or the memory of raised detections cannot be read: nothing of
   * the batch is lost.
   */
  map(
    records: readonly unknown[],
    histories?: ReadonlyArray<ReadHistory | undefined>,
    earlier?: readonly MappedRecord[],
  ): Promise<IntakeResult>;
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
  /**
   * Hands the events of mapped records to the core in one batch, all or nothing (a webhook
   * request): rejects with the core's error when it refuses any of them. Only when the records
   * raise detections of several buckets of the memory of raised detections are they handed over
   * in one emit per bucket (see RaisedMemory.parts): a refusal of a later part leaves the
   * earlier ones accepted, which the sender's retry finds as duplicates.
   */
  emitAll(records: readonly MappedRecord[]): Promise<EmitResult>;
}

export interface IntakeOptions {
  /** MDM instances whose device records name a device's assigned user. */
  deviceOwners?: readonly string[];
  /**
   * Checkpoints whose presence shows the instance processed records before its memory of raised
   * detections began (see RaisedMemoryOptions).
   */
  priorCheckpoints: readonly string[];
}

export function createIntake(
  ctx: InboundContext,
  mapRecord: (
    record: unknown,
    owners: DeviceOwnerLookup | undefined,
    history: ReadHistory | undefined,
  ) => MappingResult,
  describe: (record: unknown) => string | undefined,
  options: IntakeOptions,
): Intake {
  const deviceOwners = options.deviceOwners ?? [];
  const memory = new RaisedMemory(ctx, { priorCheckpoints: options.priorCheckpoints });
  const records = ctx.metrics.counter(
    'edr_records_total',
    'Vendor records read, by outcome (mapped, ignored, rejected) and reason',
    ['outcome', 'reason'],
  );
  return {
    async map(batch, histories, earlier = []) {
      const out: IntakeResult = { events: [], records: [], mapped: 0, ignored: 0, rejected: [] };
      if (batch.length === 0) return out;
      const owners = deviceOwners.length > 0 ? await ctx.devices.owners(deviceOwners) : undefined;
      const remembered = await memory.view();
      // Raises and downgrades of this batch and of records not handed over yet count as sent:
      // they are handed over in the same transaction as anything that follows them. The last one
      // of a detection is what the receiver will hold.
      const pending = new Map<string, { target: RaisedTarget | undefined; cleared?: ClearedMark }>();
      const sending = (events: readonly EventDraft[]) => {
        for (const event of events) {
          const id = raisedDetectionId(event);
          if (id !== undefined) {
            pending.set(id, { target: raisedTargetOf(event) });
            continue;
          }
          const lowered = clearedDetectionOf(event);
          if (lowered === undefined) continue;
          const raise = pending.has(lowered.id)
            ? pending.get(lowered.id)?.target
            : remembered.target(lowered.id);
          pending.set(lowered.id, { target: raise, cleared: { version: lowered.version } });
        }
      };
      for (const m of earlier) sending(m.events);
      let missed = false;
      const lookup = (): RaisedLookup => ({
        ...remembered,
        has: (id) => {
          if (pending.has(id) || remembered.has(id)) return true;
          missed = true;
          return false;
        },
        target: (id) => (pending.has(id) ? pending.get(id)?.target : remembered.target(id)),
        cleared: (id) => (pending.has(id) ? pending.get(id)?.cleared : remembered.cleared(id)),
      });
      const mapOne = (record: unknown, index: number): MappingResult | { failed: unknown } => {
        missed = false;
        try {
          return mapRecord(record, owners, { ...histories?.[index], raised: lookup() });
        } catch (err) {
          return { failed: err };
        }
      };
      for (const [index, record] of batch.entries()) {
        let result = mapOne(record, index);
        // Another bridge process sharing the database may have raised it meanwhile.
        if (missed && (await remembered.refresh())) result = mapOne(record, index);
        if ('failed' in result) {
          const err = result.failed;
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
          continue;
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
          continue;
        }
        records.inc({ outcome: 'mapped', reason: 'none' });
        out.mapped += 1;
        out.events.push(...result.events);
        const raises = raisesOf(result.events);
        sending(result.events);
        out.records.push({ record: describe(record), events: result.events, raises });
      }
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
        return await handOver(mapped, options);
      } catch (err) {
        if (!refusedByCatalog(err)) throw err;
      }
      // Events handed over one record at a time are durable before the checkpoint: a crash in
      // between reads them again, and the core drops them as duplicates.
      const out: EmitResult = { accepted: [], duplicates: 0 };
      for (const one of mapped) {
        if (one.events.length === 0) continue;
        try {
          const result = await handOver([one]);
          out.accepted.push(...result.accepted);
          out.duplicates += result.duplicates;
        } catch (err) {
          if (!refusedByCatalog(err)) throw err;
          records.inc({ outcome: 'rejected', reason: 'malformed' });
          ctx.logger.warn(
            { record: one.record, problem: err.message },
            'vendor record skipped: the event catalog refuses its events',
          );
        }
      }
      if (options?.checkpoint) await ctx.emit([], options);
      return out;
    },
    async emitAll(mapped) {
      if (mapped.every((m) => m.events.length === 0)) return { accepted: [], duplicates: 0 };
      return handOver(mapped);
    },
  };

  /**
   * One ctx.emit of the records' events with `options` when they raise or lower the level for no
   * detection. Events that do are committed with the bucket of the memory naming their raises and
   * downgrades: in one emit when they fall in one bucket (a webhook request of one alert), else
   * in consecutive parts, one per bucket (RaisedMemory.parts), the order of the events kept; the
   * checkpoint of `options` (a poll watermark, a datafeed offset) right after them. A crash in
   * between reads the records again, which the core drops as duplicates. The beginning of the
   * memory is stored with the first events (after them when they raise or lower the level), before
   * the checkpoint of `options`.
   */
  async function handOver(mapped: readonly MappedRecord[], options?: EmitOptions): Promise<EmitResult> {
    const events = mapped.flatMap((m) => m.events);
    const parts = memory.parts(events);
    if (parts.every((part) => part.bucket === undefined)) {
      if (memory.stored) return ctx.emit(events, options);
      const stored = await memory.store((checkpoint) => ctx.emit(events, { checkpoint }));
      const result = stored ?? (await ctx.emit(events));
      if (options?.checkpoint) await ctx.emit([], options);
      return result;
    }
    const out: EmitResult = { accepted: [], duplicates: 0 };
    for (const part of parts) {
      const marked = [...new Set([...part.raises, ...part.cleared.keys()])];
      const result =
        marked.length === 0
          ? await ctx.emit(part.events)
          : await memory.record(
              marked,
              (checkpoint) => ctx.emit(part.events, { checkpoint }),
              part.targets,
              part.cleared,
            );
      out.accepted.push(...result.accepted);
      out.duplicates += result.duplicates;
    }
    if (!memory.stored) await memory.store();
    if (options?.checkpoint) await ctx.emit([], options);
    return out;
  }
}

function raisesOf(events: readonly EventDraft[]): string[] {
  const ids = events.map(raisedDetectionId).filter((id): id is string => id !== undefined);
  return [...new Set(ids)];
}
