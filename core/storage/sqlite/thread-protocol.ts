/**
 * What the event loop and the SQLite store's thread say to each other (see threaded-store.ts).
 * Calls name a method of the Store by its path (`['deliveries', 'lease']`); arguments and
 * results are plain data, Dates and Maps, which the structured clone carries as they are.
 */
import {
  BridgeError,
  ConfigError,
  NotConnectedError,
  PermanentError,
  RetryableError,
} from '../../plugin-api/errors.ts';
import type {
  CheckpointStore,
  DeadLetterStore,
  DeliveryStore,
  EventStore,
  LeaderLeaseStore,
  OneTimeIdStore,
  OperatorStore,
  Store,
  StreamStore,
} from '../types.ts';
import type { LogLevelName } from '../../plugin-api/logger.ts';
import type { SqliteStoreOptions } from './store.ts';

/** What the thread needs to open the store: its options minus the logger, which stays here. */
export type ThreadStoreOptions = Omit<SqliteStoreOptions, 'logger'>;

export interface CallMessage {
  id: number;
  method: readonly [string] | readonly [string, string];
  args: unknown[];
}

export interface SerializedError {
  name: string;
  message: string;
  code?: string;
  stack?: string;
  detail?: Record<string, unknown>;
}

export type HostMessage =
  | { kind: 'ready' }
  | { kind: 'failed'; error: SerializedError }
  | { kind: 'result'; id: number; ok: true; value: unknown }
  | { kind: 'result'; id: number; ok: false; error: SerializedError }
  | { kind: 'log'; level: LogLevelName; fields: object; message: string };

/** Lists every method of an interface; the type fails to compile if one is missing. */
function methodsOf<T>() {
  return <const K extends readonly (keyof T & string)[]>(
    ...keys: K & (Exclude<keyof T, K[number]> extends never ? unknown : never)
  ): K => keys;
}

type SubStore =
  'events' | 'deliveries' | 'deadLetters' | 'checkpoints' | 'streams' | 'leases' | 'oneTimeIds' | 'operator';

/** The Store's own methods the thread serves (`close` has its own message). */
export const STORE_METHODS = methodsOf<Omit<Store, 'driver' | 'close' | SubStore>>()(
  'accept',
  'stats',
  'prune',
  'schemaVersion',
);

/** The methods of each part of the Store. */
export const SUB_STORE_METHODS = {
  events: methodsOf<EventStore>()('get', 'dueSchedules', 'releaseSchedules', 'findDuplicates'),
  deliveries: methodsOf<DeliveryStore>()(
    'lease',
    'complete',
    'get',
    'forEvent',
    'nextDueAt',
    'backlog',
    'discardUnfinished',
  ),
  deadLetters: methodsOf<DeadLetterStore>()('list', 'get', 'count', 'replay', 'purge'),
  checkpoints: methodsOf<CheckpointStore>()('get', 'set', 'delete', 'list'),
  streams: methodsOf<StreamStore>()(
    'create',
    'get',
    'list',
    'update',
    'delete',
    'putSubject',
    'deleteSubject',
    'listSubjects',
    'enqueuePoll',
    'poll',
    'ack',
    'recordErrors',
    'listErrors',
    'pollQueueDepth',
  ),
  leases: methodsOf<LeaderLeaseStore>()('tryAcquire', 'release', 'current'),
  oneTimeIds: methodsOf<OneTimeIdStore>()('claim', 'used'),
  operator: methodsOf<OperatorStore>()(
    'listEvents',
    'listDeliveries',
    'deliveriesOf',
    'destinationHealth',
    'activity',
    'recordAudit',
    'listAudit',
  ),
} as const satisfies Record<SubStore, readonly string[]>;

export function serializeError(err: unknown): SerializedError {
  if (!(err instanceof Error)) return { name: 'Error', message: String(err) };
  const code = (err as { code?: unknown }).code;
  const detail = err instanceof BridgeError ? err.detail : undefined;
  return {
    name: err.name,
    message: err.message,
    ...(typeof code === 'string' ? { code } : {}),
    ...(err.stack === undefined ? {} : { stack: err.stack }),
    ...(detail === undefined ? {} : { detail }),
  };
}

const BRIDGE_ERRORS: Record<
  string,
  new (message: string, options: { code?: string; detail?: Record<string, unknown> }) => BridgeError
> = {
  ConfigError,
  RetryableError,
  PermanentError,
  NotConnectedError,
};

/**
 * Rebuilds an error thrown on the thread: the bridge's own error classes come back as
 * themselves (callers tell them apart with instanceof); others as an Error with the same
 * name, message and code (SQLite's SQLITE_BUSY and the like).
 */
export function deserializeError(serialized: SerializedError): Error {
  const Class = BRIDGE_ERRORS[serialized.name];
  const options = {
    ...(serialized.code === undefined ? {} : { code: serialized.code }),
    ...(serialized.detail === undefined ? {} : { detail: serialized.detail }),
  };
  const err: Error = Class ? new Class(serialized.message, options) : new Error(serialized.message);
  if (!Class) {
    err.name = serialized.name;
    if (serialized.code !== undefined) (err as { code?: string }).code = serialized.code;
  }
  if (serialized.stack !== undefined) err.stack = serialized.stack;
  return err;
}
