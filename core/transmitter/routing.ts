/**
 * Routing of events to streams: which streams get an event, found through indexes rather than by
 * scanning streams or subjects.
 *
 * - by event type: the streams whose events_delivered contain it (and are not disabled);
 * - by subject key (`subjectKeys` of core/ssf): the subjects streams added or removed. A simple
 *   or aliases subject matches through any shared key. A complex subject is a candidate through
 *   any shared member key and then compared member by member (SSF 1.0 §8.1.3.1: a member absent
 *   from either side is a wildcard);
 * - by complex shape (the set of member names): complex subjects with no member name in common
 *   with the event's match it, so they are found per shape, never per subject.
 *
 * With default_subjects ALL a stream gets every event unless a subject it removed matches; with
 * NONE only events whose subject matches a subject it added. An added subject wins over a removed
 * one when both match.
 */
import type { SubjectIdentifier } from '../plugin-api/types.ts';
import type { DefaultSubjects, StreamStatus } from '../storage/types.ts';
import { streamDestinationId } from '../storage/types.ts';
import { normaliseSubject, subjectKeys } from '../ssf/subjects.ts';

export interface IndexedStream {
  streamId: string;
  clientId: string;
  /** SET aud of the stream. */
  audience: string | string[];
  status: StreamStatus;
  eventsDelivered: ReadonlySet<string>;
  method: 'push' | 'poll';
  /** Revision of the stored stream this entry reflects. */
  rev: string;
}

interface Entry {
  streamId: string;
  included: boolean;
  complex: boolean;
  keys: string[];
  /** Complex subjects: member name → member key. */
  members?: Map<string, string>;
  shape?: string;
}

interface ShapeCounts {
  names: string[];
  /** stream id → how many added / removed subjects of this shape it has. */
  streams: Map<string, { included: number; excluded: number }>;
}

/** What route() decided for streams a subject matched. */
type Hit = 'in' | 'out';

/**
 * The storage key of a canonical subject: its JSON, which is what core/ssf's subjectKey gives for
 * any spelling of it (so the pipeline's event keys and stored stream subjects agree).
 */
export function subjectStorageKey(canonical: SubjectIdentifier): string {
  return JSON.stringify(canonical);
}

function memberName(key: string): string {
  return (JSON.parse(key) as string[])[1] as string;
}

function complexMembers(keys: readonly string[]): Map<string, string> {
  return new Map(keys.map((k) => [memberName(k), k]));
}

/** A complex candidate matches when every member both sides name is identical. */
function membersCompatible(entry: Map<string, string>, event: Map<string, string>): boolean {
  for (const [name, key] of entry) {
    const other = event.get(name);
    if (other !== undefined && other !== key) return false;
  }
  return true;
}

export interface RouteOptions {
  defaultSubjects: DefaultSubjects;
  /** Events held for a paused stream beyond this are dropped (SSF 1.0 §8.1.2: MAY drop). */
  pausedHoldLimit: number;
  /** Told about every event dropped because a paused stream's hold is full. */
  onHoldFull?: (streamId: string) => void;
}

export class RoutingIndex {
  readonly #streams = new Map<string, IndexedStream>();
  readonly #byType = new Map<string, Set<string>>();
  readonly #byKey = new Map<string, Set<Entry>>();
  readonly #byShape = new Map<string, ShapeCounts>();
  readonly #entries = new Map<string, Map<string, Entry>>();
  /** Events currently held per paused stream (refreshed from the outbox, counted up by route). */
  readonly #held = new Map<string, number>();
  /** Paused streams, with when this index saw them paused (ms). */
  readonly #paused = new Map<string, number>();
  /** Per event type, the destination ids of its streams (cached for default_subjects ALL). */
  readonly #destinations = new Map<string, string[]>();

  get(streamId: string): IndexedStream | undefined {
    return this.#streams.get(streamId);
  }

  streams(): IterableIterator<IndexedStream> {
    return this.#streams.values();
  }

  get size(): number {
    return this.#streams.size;
  }

  hasSubject(streamId: string, storageKey: string): boolean {
    return this.#entries.get(streamId)?.has(storageKey) ?? false;
  }

  subjectCount(streamId: string): number {
    return this.#entries.get(streamId)?.size ?? 0;
  }

  /** Adds or updates a stream (not its subjects). */
  setStream(stream: IndexedStream): void {
    this.#unindexType(stream.streamId);
    this.#streams.set(stream.streamId, stream);
    if (stream.status !== 'disabled') {
      for (const type of stream.eventsDelivered) {
        let set = this.#byType.get(type);
        if (!set) this.#byType.set(type, (set = new Set()));
        set.add(stream.streamId);
      }
    }
    if (stream.status === 'paused') {
      if (!this.#paused.has(stream.streamId)) this.#paused.set(stream.streamId, Date.now());
    } else {
      this.#paused.delete(stream.streamId);
      this.#held.delete(stream.streamId);
    }
    this.#destinations.clear();
  }

  removeStream(streamId: string): void {
    this.#unindexType(streamId);
    this.clearSubjects(streamId);
    this.#streams.delete(streamId);
    this.#held.delete(streamId);
    this.#paused.delete(streamId);
    this.#entries.delete(streamId);
    this.#destinations.clear();
  }

  #unindexType(streamId: string): void {
    const old = this.#streams.get(streamId);
    if (!old) return;
    for (const type of old.eventsDelivered) {
      const set = this.#byType.get(type);
      set?.delete(streamId);
      if (set?.size === 0) this.#byType.delete(type);
    }
  }

  /** Records an added (included) or removed (excluded) subject of a stream. */
  putSubject(streamId: string, subject: SubjectIdentifier, included: boolean): void {
    const canonical = normaliseSubject(subject);
    const storageKey = subjectStorageKey(canonical);
    this.deleteSubject(streamId, storageKey);
    const keys = subjectKeys(canonical);
    const complex = canonical.format === 'complex';
    const entry: Entry = { streamId, included, complex, keys };
    if (complex) {
      entry.members = complexMembers(keys);
      entry.shape = [...entry.members.keys()].sort().join(' ');
      this.#countShape(entry, 1);
    }
    for (const key of keys) {
      let set = this.#byKey.get(key);
      if (!set) this.#byKey.set(key, (set = new Set()));
      set.add(entry);
    }
    let perStream = this.#entries.get(streamId);
    if (!perStream) this.#entries.set(streamId, (perStream = new Map()));
    perStream.set(storageKey, entry);
  }

  deleteSubject(streamId: string, storageKey: string): boolean {
    const entry = this.#entries.get(streamId)?.get(storageKey);
    if (!entry) return false;
    this.#entries.get(streamId)?.delete(storageKey);
    for (const key of entry.keys) {
      const set = this.#byKey.get(key);
      set?.delete(entry);
      if (set?.size === 0) this.#byKey.delete(key);
    }
    if (entry.complex) this.#countShape(entry, -1);
    return true;
  }

  clearSubjects(streamId: string): void {
    for (const key of [...(this.#entries.get(streamId)?.keys() ?? [])]) this.deleteSubject(streamId, key);
  }

  #countShape(entry: Entry, delta: 1 | -1): void {
    const shape = entry.shape as string;
    let counts = this.#byShape.get(shape);
    if (!counts) {
      counts = { names: [...(entry.members as Map<string, string>).keys()], streams: new Map() };
      this.#byShape.set(shape, counts);
    }
    const perStream = counts.streams.get(entry.streamId) ?? { included: 0, excluded: 0 };
    if (entry.included) perStream.included += delta;
    else perStream.excluded += delta;
    if (perStream.included + perStream.excluded === 0) counts.streams.delete(entry.streamId);
    else counts.streams.set(entry.streamId, perStream);
    if (counts.streams.size === 0) this.#byShape.delete(shape);
  }

  setHeld(streamId: string, count: number): void {
    if (this.#streams.get(streamId)?.status === 'paused') this.#held.set(streamId, count);
  }

  held(streamId: string): number {
    return this.#held.get(streamId) ?? 0;
  }

  /** When this index saw the stream paused (epoch ms), if it is paused. */
  pausedSince(streamId: string): number | undefined {
    return this.#paused.get(streamId);
  }

  /**
   * The destination ids (`stream:<id>`) of every stream that should get an event of `type` about
   * `subject`: enabled streams, and paused ones (which hold it) while their hold has room.
   */
  route(type: string, subject: SubjectIdentifier, options: RouteOptions): string[] {
    const candidates = this.#byType.get(type);
    if (!candidates || candidates.size === 0) return [];
    const hits = this.#matchSubject(subject, candidates);
    const out: string[] = [];
    const accept = (streamId: string) => {
      const stream = this.#streams.get(streamId) as IndexedStream;
      if (stream.status === 'paused') {
        const held = this.#held.get(streamId) ?? 0;
        if (held >= options.pausedHoldLimit) {
          options.onHoldFull?.(streamId);
          return;
        }
        this.#held.set(streamId, held + 1);
      }
      out.push(streamDestinationId(streamId));
    };
    if (options.defaultSubjects === 'NONE') {
      for (const [streamId, hit] of hits) if (hit === 'in') accept(streamId);
      return out;
    }
    if (this.#paused.size === 0 && ![...hits.values()].includes('out')) {
      return [...this.#typeDestinations(type, candidates)];
    }
    for (const streamId of candidates) if (hits.get(streamId) !== 'out') accept(streamId);
    return out;
  }

  #typeDestinations(type: string, candidates: Set<string>): string[] {
    let list = this.#destinations.get(type);
    if (!list) {
      list = [...candidates].map(streamDestinationId);
      this.#destinations.set(type, list);
    }
    return list;
  }

  #matchSubject(subject: SubjectIdentifier, candidates: Set<string>): Map<string, Hit> {
    const hits = new Map<string, Hit>();
    if (this.#byKey.size === 0) return hits;
    const canonical = normaliseSubject(subject);
    const keys = subjectKeys(canonical);
    const record = (streamId: string, included: boolean) => {
      if (!candidates.has(streamId)) return;
      if (included) hits.set(streamId, 'in');
      else if (hits.get(streamId) !== 'in') hits.set(streamId, 'out');
    };
    if (canonical.format === 'complex') {
      const members = complexMembers(keys);
      for (const key of keys) {
        for (const entry of this.#byKey.get(key) ?? []) {
          if (entry.complex && membersCompatible(entry.members as Map<string, string>, members)) {
            record(entry.streamId, entry.included);
          }
        }
      }
      for (const counts of this.#byShape.values()) {
        if (counts.names.some((name) => members.has(name))) continue;
        for (const [streamId, n] of counts.streams) {
          if (n.excluded > 0) record(streamId, false);
          if (n.included > 0) record(streamId, true);
        }
      }
      return hits;
    }
    for (const key of keys) {
      for (const entry of this.#byKey.get(key) ?? [])
        if (!entry.complex) record(entry.streamId, entry.included);
    }
    return hits;
  }
}
