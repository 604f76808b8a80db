/**
 * The memory of an EDR instance of the detections it raised the risk level for: what decides
 * whether a closed detection may send its downgrade (current_level LOW), on every path records
 * arrive by — the poll, the webhook, the Falcon datafeed. A detection this instance never raised
 * the level for sends none: it would lower a level never raised here, and may undo a raise sent
 * by another source. Nor does one whose downgrade it sent last: the vendor updates a closed
 * record (a comment, a tag), and each update would lower the level again, undoing a newer raise
 * for the same user.
 *
 * The memory is spread over RAISED_BUCKETS checkpoints of the instance (`raised-detections-<n>`,
 * a detection in the bucket its hash names), each holding a short hash of each detection id with
 * the time of the last raise sent for it (`raised`) and what that raise was sent with: its level,
 * principal and subject (`targets`), so that the downgrade names the level actually raised and the
 * subject it was raised for. Entries written before `targets` existed have none: their closure is
 * decided by the closed record, as it was then. A downgrade sent is recorded too (`cleared`: the
 * vendor's update time of the closed record it was sent for, and `raised` the time it was sent),
 * until a raise of the detection is sent again. A bucket is written in the same transaction as the
 * raise and downgrade events naming it (compare-and-set, tried again when another bridge process
 * sharing the database wrote it meanwhile), so a raise or downgrade is remembered exactly when it
 * is durable in the outbox;
 * a write moves one bucket (about RAISED_MAX_ENTRIES / RAISED_BUCKETS entries), and processes
 * raising detections of different buckets never conflict. A bucket is pruned when written:
 * entries older than RAISED_MAX_AGE_MS go, and of more than its share of RAISED_MAX_ENTRIES the
 * oldest go. The core commits one checkpoint per emit: events raising detections of several
 * buckets are handed over in consecutive parts, each with its bucket (see `parts`).
 *
 * When the memory began, and whether the instance had processed records before (`predates`), is
 * kept once in a small checkpoint (`raised-detections-meta`), stored with the first events the
 * instance hands over (after them when they raise detections, in any case before any other
 * checkpoint of the instance). An instance that had processed records before the memory began (an
 * upgrade: a poll watermark or a datafeed offset is stored) cannot know what it raised until then:
 * a detection created before the memory began is decided as it was before (`predates`). A new
 * instance remembers everything from its first record on.
 */
import { createHash } from 'node:crypto';
import {
  formatDuration,
  retryOnCheckpointConflict,
  z,
  type EmitOptions,
  type EmitResult,
  type EventDraft,
  type InboundContext,
} from '../../core/plugin-api/index.ts';
import {
  clearedDetectionOf,
  raisedDetectionId,
  raisedTargetOf,
  type ClearedMark,
  type RaisedLookup,
  type RaisedTarget,
} from './edr-mapping.ts';

/** When the memory began, and whether it began on an instance that processed records before. */
export const RAISED_META_CHECKPOINT = 'raised-detections-meta';
/** How many checkpoints the memory is spread over. */
export const RAISED_BUCKETS = 64;
/** Most detections remembered in all; each bucket keeps its share, the oldest raises going first. */
export const RAISED_MAX_ENTRIES = 20_000;
/** How long a raise is remembered after it was last sent. */
export const RAISED_MAX_AGE_MS = 180 * 86_400_000;

/** The name of bucket `n`. */
export function raisedBucketName(n: number): string {
  return `raised-detections-${n}`;
}

const isoTime = z.iso.datetime({ offset: true });
const metaSchema = z.object({
  /** When the memory began. */
  since: isoTime,
  /** Set when the instance had processed records before the memory began (see RaisedLookup). */
  predates: isoTime.optional(),
});
/**
 * Key of a detection id (raisedKey) → epoch seconds of the last raise sent for it (or of its
 * downgrade, when that was sent last).
 */
const entriesSchema = z.record(z.string(), z.number());
/** What the last raise was sent with (RaisedTarget); an entry that cannot be read is left out. */
const targetSchema = z.object({
  level: z.enum(['MEDIUM', 'HIGH']),
  principal: z.enum(['USER', 'DEVICE']),
  subject: z.record(z.string(), z.unknown()),
});
const bucketSchema = z.object({
  raised: entriesSchema,
  /** Key of a detection id → what the last raise sent for it was sent with (absent before). */
  targets: z.record(z.string(), z.unknown()).optional(),
  /**
   * Key of a detection id whose downgrade was the last event sent for it → the vendor's update
   * time (epoch ms) of the closed record it was sent for, 0 when that had none.
   */
  cleared: z.record(z.string(), z.number()).optional(),
});

type Meta = z.output<typeof metaSchema>;
type Entries = z.output<typeof entriesSchema>;
type Targets = Record<string, RaisedTarget>;
/** Key of a detection id → update time (epoch ms, 0: none) of the closure whose downgrade was sent last. */
type Cleared = Record<string, number>;
/** A bucket as read and written. */
interface Bucket {
  raised: Entries;
  targets: Targets;
  cleared: Cleared;
}
type Checkpoint = NonNullable<EmitOptions['checkpoint']>;

function digestOf(id: string): Buffer {
  return createHash('sha256').update(id, 'utf8').digest();
}

/** The key of a detection id in the memory: 96 bits of its SHA-256, whatever the id's length. */
export function raisedKey(id: string): string {
  return digestOf(id).toString('base64url').slice(0, 16);
}

export interface RaisedMemoryOptions {
  /**
   * Checkpoints of the instance whose presence shows it processed records before the memory
   * began (the poll's watermark, the first datafeed partition's offset).
   */
  priorCheckpoints: readonly string[];
  maxEntries?: number;
  maxAgeMs?: number;
  buckets?: number;
}

/** The memory as the mapping of one batch asks it (see RaisedMemory.view). */
export interface RaisedView extends RaisedLookup {
  target(id: string): RaisedTarget | undefined;
  cleared(id: string): ClearedMark | undefined;
  /**
   * Reads again, as stored, the buckets of the detections `has` did not find since the view was
   * made or last refreshed (another bridge process may have raised them meanwhile), each at most
   * once per view. Resolves true when it read any: the answers may have changed.
   */
  refresh(): Promise<boolean>;
}

/**
 * Events to hand over in one emit, with the bucket naming their raises and downgrades, if they
 * send any.
 */
export interface RaisedPart {
  events: EventDraft[];
  bucket?: number;
  raises: string[];
  /** What the last raise of each detection of `raises` is sent with, when the event says. */
  targets: Map<string, RaisedTarget>;
  /**
   * Detections whose last event in the part is their downgrade → the update time (epoch ms, 0:
   * none) of the closed record it is sent for.
   */
  cleared: Map<string, number>;
}

export class RaisedMemory {
  readonly #ctx: InboundContext;
  readonly #prior: readonly string[];
  readonly #buckets: number;
  readonly #perBucket: number;
  readonly #maxAgeMs: number;
  #meta: Meta | undefined;
  /** The beginning as last read (undefined: none stored), what storing it expects. */
  #metaRaw: unknown;
  #stored = false;
  /** Buckets as this process last read or wrote them. */
  readonly #cache = new Map<number, Bucket>();
  #queue: Promise<unknown> = Promise.resolve();

  constructor(ctx: InboundContext, options: RaisedMemoryOptions) {
    this.#ctx = ctx;
    this.#prior = options.priorCheckpoints;
    this.#buckets = Math.max(1, Math.floor(options.buckets ?? RAISED_BUCKETS));
    this.#perBucket = Math.max(1, Math.ceil((options.maxEntries ?? RAISED_MAX_ENTRIES) / this.#buckets));
    this.#maxAgeMs = options.maxAgeMs ?? RAISED_MAX_AGE_MS;
  }

  /** Runs `work` after the memory work this process started before it. */
  #serial<T>(work: () => Promise<T>): Promise<T> {
    const run = this.#queue.then(work, work);
    this.#queue = run.catch(() => undefined);
    return run;
  }

  /** Whether the memory is known to be stored (else `store` stores its beginning). */
  get stored(): boolean {
    return this.#stored;
  }

  /** The bucket of a detection id. */
  bucketOf(id: string): number {
    return digestOf(id).readUInt32BE(0) % this.#buckets;
  }

  /**
   * The memory for the mapping of one batch: as this process last read or wrote each bucket, a
   * bucket not read yet being read by `refresh`. When none is stored yet, the memory begins here —
   * whether the instance processed records before is decided now, before this instance commits
   * any checkpoint — and is stored before the first events the instance hands over (`store`).
   */
  view(): Promise<RaisedView> {
    return this.#serial(async () => {
      const meta = await this.#loadMeta();
      const fresh = new Set<number>();
      const wanted = new Set<number>();
      const floorS = (this.#ctx.clock.now().getTime() - this.#maxAgeMs) / 1000;
      return {
        has: (id) => {
          const bucket = this.bucketOf(id);
          const at = this.#cache.get(bucket)?.raised[raisedKey(id)];
          if (at !== undefined && at >= floorS) return true;
          if (!fresh.has(bucket)) wanted.add(bucket);
          return false;
        },
        target: (id) => {
          const cached = this.#cache.get(this.bucketOf(id));
          const key = raisedKey(id);
          const at = cached?.raised[key];
          return at !== undefined && at >= floorS ? cached?.targets[key] : undefined;
        },
        cleared: (id) => {
          const cached = this.#cache.get(this.bucketOf(id));
          const key = raisedKey(id);
          const at = cached?.raised[key];
          const version = cached?.cleared[key];
          if (at === undefined || at < floorS || version === undefined) return undefined;
          return { version: version > 0 ? new Date(version) : undefined };
        },
        predates: meta.predates === undefined ? undefined : new Date(meta.predates),
        keeps: formatDuration(this.#maxAgeMs),
        refresh: () =>
          this.#serial(async () => {
            const read = [...wanted];
            wanted.clear();
            for (const bucket of read) {
              this.#cache.set(bucket, this.#parseBucket(bucket, await this.#read(raisedBucketName(bucket))));
              fresh.add(bucket);
            }
            return read.length > 0;
          }),
      };
    });
  }

  /**
   * Stores the beginning of the memory when it is not known to be stored, with the events
   * `emitWith` hands over (in one transaction; without `emitWith`, alone). When another process
   * stored one first, that one is kept and the events are handed over without it. Resolves with
   * what `emitWith` resolved with, if it was called.
   */
  store(
    emitWith: (checkpoint: Checkpoint) => Promise<EmitResult> = (checkpoint) =>
      this.#ctx.emit([], { checkpoint }),
  ): Promise<EmitResult | undefined> {
    return this.#serial(async () => {
      await this.#loadMeta();
      if (this.#stored) return undefined;
      return this.#storeMeta(this.#meta!, this.#metaRaw, emitWith);
    });
  }

  /**
   * Splits events to hand over into consecutive parts, in order, each raising or lowering the
   * level for detections of one bucket at most: the core commits one checkpoint with an emit.
   * Events doing neither go with the part before them (or the first part).
   */
  parts(events: readonly EventDraft[]): RaisedPart[] {
    const out: RaisedPart[] = [];
    const empty = (): RaisedPart => ({ events: [], raises: [], targets: new Map(), cleared: new Map() });
    let current = empty();
    for (const event of events) {
      const id = raisedDetectionId(event);
      const lowered = id === undefined ? clearedDetectionOf(event) : undefined;
      const marked = id ?? lowered?.id;
      const bucket = marked === undefined ? undefined : this.bucketOf(marked);
      if (bucket !== undefined && current.bucket !== undefined && bucket !== current.bucket) {
        out.push(current);
        current = empty();
      }
      current.events.push(event);
      if (bucket !== undefined) current.bucket = bucket;
      if (id !== undefined) {
        if (!current.raises.includes(id)) current.raises.push(id);
        // The last raise of a detection is what the receiver holds.
        const target = raisedTargetOf(event);
        if (target) current.targets.set(id, target);
        else current.targets.delete(id);
        current.cleared.delete(id);
      } else if (lowered !== undefined) {
        current.cleared.set(lowered.id, lowered.version?.getTime() ?? 0);
      }
    }
    if (current.events.length > 0 || out.length === 0) out.push(current);
    return out;
  }

  /**
   * Hands events to the core with the bucket of `ids` naming them as raised (in one transaction:
   * `emitWith` passes the checkpoint to ctx.emit), and keeps it, with what each raise was sent
   * with (`targets`; an id without one keeps none). The ids of `cleared` are named as lowered
   * instead: their downgrade is the last event sent for them (with the update time of the closed
   * record, epoch ms, 0 for none), and they keep the target of their raise. All `ids` are of one
   * bucket (see `parts`).
   */
  record(
    ids: readonly string[],
    emitWith: (checkpoint: Checkpoint) => Promise<EmitResult>,
    targets: ReadonlyMap<string, RaisedTarget> = new Map(),
    cleared: ReadonlyMap<string, number> = new Map(),
  ): Promise<EmitResult> {
    const buckets = new Set(ids.map((id) => this.bucketOf(id)));
    if (buckets.size !== 1) {
      return Promise.reject(new Error(`raises of ${buckets.size} buckets cannot be recorded in one emit`));
    }
    const bucket = this.bucketOf(ids[0]!);
    const nowS = this.#nowS();
    const add = new Map(
      ids.map((id) => [raisedKey(id), { at: nowS, target: targets.get(id), cleared: cleared.get(id) }]),
    );
    return this.#serial(() => this.#merge(bucket, add, emitWith));
  }

  #nowS(): number {
    return Math.floor(this.#ctx.clock.now().getTime() / 1000);
  }

  /** Writes bucket `n` with `add` merged in (compare-and-set, merged again on a conflict). */
  #merge(
    n: number,
    add: ReadonlyMap<string, { at: number; target: RaisedTarget | undefined; cleared: number | undefined }>,
    emitWith: (checkpoint: Checkpoint) => Promise<EmitResult>,
  ): Promise<EmitResult> {
    const name = raisedBucketName(n);
    return retryOnCheckpointConflict(
      async () => {
        const raw = await this.#read(name);
        const stored = this.#parseBucket(n, raw);
        const entries = { ...stored.raised };
        const targets = { ...stored.targets };
        const lowered = { ...stored.cleared };
        for (const [key, { at, target, cleared }] of add) {
          entries[key] = Math.max(at, entries[key] ?? 0);
          if (cleared !== undefined) {
            // The downgrade was sent last; the raise before it keeps what it was sent with.
            lowered[key] = cleared;
            if (target) targets[key] = target;
            continue;
          }
          delete lowered[key];
          // What this raise was sent with replaces what an earlier one was.
          if (target) targets[key] = target;
          else delete targets[key];
        }
        const bucket = this.#prune({ raised: entries, targets, cleared: lowered });
        const value = {
          raised: bucket.raised,
          ...(Object.keys(bucket.targets).length > 0 ? { targets: bucket.targets } : {}),
          ...(Object.keys(bucket.cleared).length > 0 ? { cleared: bucket.cleared } : {}),
        };
        const result = await emitWith({ name, value, expected: { value: raw } });
        this.#cache.set(n, bucket);
        return result;
      },
      (tries) =>
        this.#ctx.logger.debug(
          { tries, checkpoint: name },
          'the memory of raised detections changed meanwhile; merging again',
        ),
    );
  }

  #read(name: string): Promise<unknown> {
    return this.#ctx.checkpoints.get(name);
  }

  /** The memory's beginning, as stored, or begun now. */
  async #loadMeta(): Promise<Meta> {
    if (this.#meta !== undefined && this.#stored) return this.#meta;
    const raw = await this.#read(RAISED_META_CHECKPOINT);
    this.#metaRaw = raw;
    if (raw !== undefined) {
      const parsed = metaSchema.safeParse(raw);
      if (parsed.success) {
        this.#meta = parsed.data;
        this.#stored = true;
        return parsed.data;
      }
      this.#unreadable(RAISED_META_CHECKPOINT);
    }
    if (this.#meta !== undefined) return this.#meta;
    this.#meta = await this.#begin(raw !== undefined);
    return this.#meta;
  }

  /**
   * Stores the beginning (compare-and-set) with what `emitWith` hands over; when another process
   * stored one first, that one is kept and `emitWith` is called again with it as it is.
   */
  async #storeMeta(
    meta: Meta,
    expected: unknown,
    emitWith: (checkpoint: Checkpoint) => Promise<EmitResult>,
  ): Promise<EmitResult> {
    try {
      const result = await emitWith({
        name: RAISED_META_CHECKPOINT,
        value: meta,
        expected: { value: expected },
      });
      this.#meta = meta;
      this.#metaRaw = meta;
      this.#stored = true;
      return result;
    } catch (err) {
      if ((err as { code?: unknown }).code !== 'SSF_ERR_CHECKPOINT_CONFLICT') throw err;
      const raw = await this.#read(RAISED_META_CHECKPOINT);
      const stored = metaSchema.safeParse(raw);
      if (!stored.success) throw err;
      this.#meta = stored.data;
      this.#metaRaw = raw;
      this.#stored = true;
      return emitWith({ name: RAISED_META_CHECKPOINT, value: raw, expected: { value: raw } });
    }
  }

  #unreadable(checkpoint: string): void {
    this.#ctx.logger.warn(
      { checkpoint },
      'the stored memory of raised detections is not readable; beginning it again (detections created before now are decided as before it existed)',
    );
  }

  #parseBucket(n: number, raw: unknown): Bucket {
    if (raw === undefined) return { raised: {}, targets: {}, cleared: {} };
    const parsed = bucketSchema.safeParse(raw);
    if (parsed.success) {
      const targets: Targets = {};
      for (const [key, value] of Object.entries(parsed.data.targets ?? {})) {
        const target = targetSchema.safeParse(value);
        if (target.success && key in parsed.data.raised) targets[key] = target.data as RaisedTarget;
      }
      const cleared: Cleared = {};
      for (const [key, version] of Object.entries(parsed.data.cleared ?? {})) {
        if (key in parsed.data.raised) cleared[key] = version;
      }
      return { raised: parsed.data.raised, targets, cleared };
    }
    this.#ctx.logger.warn(
      { checkpoint: raisedBucketName(n) },
      'a bucket of the memory of raised detections is not readable; it is written again from empty',
    );
    return { raised: {}, targets: {}, cleared: {} };
  }

  /** A new memory; `known` when the instance evidently processed records before. */
  async #begin(known: boolean): Promise<Meta> {
    const now = this.#ctx.clock.now().toISOString();
    let prior = known;
    for (const name of this.#prior) {
      if (prior) break;
      prior = (await this.#read(name)) !== undefined;
    }
    if (prior) {
      this.#ctx.logger.info(
        { since: now },
        'began remembering the detections this instance raises the level for; closures of detections created before now are decided as before',
      );
    }
    return { since: now, ...(prior ? { predates: now } : {}) };
  }

  /** Drops raises older than the age bound, then the oldest beyond the bucket's size bound. */
  #prune(bucket: Bucket): Bucket {
    const floorS = this.#nowS() - this.#maxAgeMs / 1000;
    const kept = Object.entries(bucket.raised).filter(([, at]) => at >= floorS);
    if (kept.length > this.#perBucket) {
      kept.sort((a, b) => b[1] - a[1]);
      kept.length = this.#perBucket;
    }
    const raised = Object.fromEntries(kept);
    const targets: Targets = {};
    for (const [key, target] of Object.entries(bucket.targets)) if (key in raised) targets[key] = target;
    const cleared: Cleared = {};
    for (const [key, version] of Object.entries(bucket.cleared)) if (key in raised) cleared[key] = version;
    return { raised, targets, cleared };
  }
}
