/**
 * The memory of an EDR instance of the detections it raised the risk level for: what decides
 * whether a closed detection may send its downgrade (current_level LOW), on every path records
 * arrive by — the poll, the webhook, the Falcon datafeed. A detection this instance never raised
 * the level for sends none: it would lower a level never raised here, and may undo a raise sent
 * by another source.
 *
 * The memory is one checkpoint of the instance (`raised-detections`), written in the same
 * transaction as the raise events themselves (compare-and-set, tried again when another bridge
 * process sharing the database wrote it meanwhile), so a raise is remembered exactly when it is
 * durable in the outbox. It holds a short hash of each detection id with the time of the last
 * raise sent for it, and is pruned on every write: entries older than RAISED_MAX_AGE_MS go, and
 * of more than RAISED_MAX_ENTRIES the oldest go.
 *
 * An instance that had processed records before the memory began (an upgrade: a poll watermark
 * or a datafeed offset is stored) cannot know what it raised until then: a detection created
 * before the memory began is decided as it was before (`predates`). A new instance remembers
 * everything from its first record on.
 */
import { createHash } from 'node:crypto';
import {
  formatDuration,
  retryOnCheckpointConflict,
  z,
  type EmitOptions,
  type EmitResult,
  type InboundContext,
} from '../../core/plugin-api/index.ts';
import type { RaisedLookup } from './edr-mapping.ts';

export const RAISED_CHECKPOINT = 'raised-detections';
/** Most detections remembered; the oldest raises are forgotten first. */
export const RAISED_MAX_ENTRIES = 20_000;
/** How long a raise is remembered after it was last sent. */
export const RAISED_MAX_AGE_MS = 180 * 86_400_000;

const memorySchema = z.object({
  /** When the memory began. */
  since: z.iso.datetime({ offset: true }),
  /** Set when the instance had processed records before the memory began (see RaisedLookup). */
  predates: z.iso.datetime({ offset: true }).optional(),
  /** Key of a detection id (raisedKey) → epoch seconds of the last raise sent for it. */
  raised: z.record(z.string(), z.number()),
});
export type RaisedState = z.output<typeof memorySchema>;

/** The key of a detection id in the memory: 96 bits of its SHA-256, whatever the id's length. */
export function raisedKey(id: string): string {
  return createHash('sha256').update(id, 'utf8').digest('base64url').slice(0, 16);
}

export interface RaisedMemoryOptions {
  /**
   * Checkpoints of the instance whose presence shows it processed records before the memory
   * began (the poll's watermark, the first datafeed partition's offset).
   */
  priorCheckpoints: readonly string[];
  maxEntries?: number;
  maxAgeMs?: number;
}

export class RaisedMemory {
  readonly #ctx: InboundContext;
  readonly #prior: readonly string[];
  readonly #maxEntries: number;
  readonly #maxAgeMs: number;
  #state: RaisedState | undefined;
  /** The memory begun by this process while none is stored. */
  #begun: RaisedState | undefined;
  #stored = false;
  #queue: Promise<unknown> = Promise.resolve();

  constructor(ctx: InboundContext, options: RaisedMemoryOptions) {
    this.#ctx = ctx;
    this.#prior = options.priorCheckpoints;
    this.#maxEntries = options.maxEntries ?? RAISED_MAX_ENTRIES;
    this.#maxAgeMs = options.maxAgeMs ?? RAISED_MAX_AGE_MS;
  }

  /** Runs `work` after the memory work this process started before it. */
  #serial<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(work, work);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Whether the memory is known to be stored (else the next hand-over stores it). */
  get stored(): boolean {
    return this.#stored;
  }

  /**
   * The memory as a lookup: as this process last read or wrote it, or (`fresh`, or on first use)
   * as stored. When none is stored yet, the memory begins here — whether the instance processed
   * records before is decided now, before this instance commits any checkpoint — and is stored
   * with the first events or checkpoint the instance hands over (`record`).
   */
  lookup(fresh = false): Promise<RaisedLookup> {
    return this.#serial(async () => {
      if (fresh || this.#state === undefined) {
        const raw = await this.#ctx.checkpoints.get(RAISED_CHECKPOINT);
        const stored = this.#parse(raw);
        this.#stored = stored !== undefined;
        this.#state = stored ?? this.#begun ?? (this.#begun = await this.#begin(raw !== undefined));
      }
      return this.#lookupOf(this.#state);
    });
  }

  /**
   * Hands events to the core with the memory naming `ids` as raised (in one transaction:
   * `emitWith` passes the checkpoint to ctx.emit), and keeps it. With no ids, stores the memory
   * as it is (its beginning) with the events.
   */
  record(
    ids: readonly string[],
    emitWith: (checkpoint: NonNullable<EmitOptions['checkpoint']>) => Promise<EmitResult>,
  ): Promise<EmitResult> {
    return this.#serial(() =>
      retryOnCheckpointConflict(
        async () => {
          const raw = await this.#ctx.checkpoints.get(RAISED_CHECKPOINT);
          const state =
            this.#parse(raw) ?? this.#begun ?? (this.#begun = await this.#begin(raw !== undefined));
          const nowS = Math.floor(this.#ctx.clock.now().getTime() / 1000);
          const raised = { ...state.raised };
          for (const id of ids) raised[raisedKey(id)] = nowS;
          const value: RaisedState = { ...state, raised: this.#prune(raised, nowS) };
          const result = await emitWith({ name: RAISED_CHECKPOINT, value, expected: { value: raw } });
          this.#state = value;
          this.#stored = true;
          return result;
        },
        (tries) =>
          this.#ctx.logger.debug(
            { tries },
            'the memory of raised detections changed meanwhile; merging again',
          ),
      ),
    );
  }

  #lookupOf(state: RaisedState): RaisedLookup {
    const floorS = (this.#ctx.clock.now().getTime() - this.#maxAgeMs) / 1000;
    return {
      has: (id) => {
        const at = state.raised[raisedKey(id)];
        return at !== undefined && at >= floorS;
      },
      predates: state.predates === undefined ? undefined : new Date(state.predates),
      keeps: formatDuration(this.#maxAgeMs),
    };
  }

  #parse(raw: unknown): RaisedState | undefined {
    if (raw === undefined) return undefined;
    const parsed = memorySchema.safeParse(raw);
    if (parsed.success) return parsed.data;
    this.#ctx.logger.warn(
      { checkpoint: RAISED_CHECKPOINT },
      'the stored memory of raised detections is not readable; beginning it again (detections created before now are decided as before it existed)',
    );
    return undefined;
  }

  /** A new memory; `known` when the instance evidently processed records before. */
  async #begin(known: boolean): Promise<RaisedState> {
    const now = this.#ctx.clock.now().toISOString();
    let prior = known;
    for (const name of this.#prior) {
      if (prior) break;
      prior = (await this.#ctx.checkpoints.get(name)) !== undefined;
    }
    if (prior) {
      this.#ctx.logger.info(
        { since: now },
        'began remembering the detections this instance raises the level for; closures of detections created before now are decided as before',
      );
    }
    return { since: now, ...(prior ? { predates: now } : {}), raised: {} };
  }

  /** Drops raises older than the age bound, then the oldest beyond the size bound. */
  #prune(raised: Record<string, number>, nowS: number): Record<string, number> {
    const floorS = nowS - this.#maxAgeMs / 1000;
    const kept = Object.entries(raised).filter(([, at]) => at >= floorS);
    if (kept.length > this.#maxEntries) {
      kept.sort((a, b) => b[1] - a[1]);
      kept.length = this.#maxEntries;
    }
    return Object.fromEntries(kept);
  }
}
