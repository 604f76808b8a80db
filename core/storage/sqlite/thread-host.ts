/**
 * The SQLite store's thread: opens the store on its own connection and answers the calls the
 * event loop sends (threaded-store.ts). Calls that arrive in the same turn share one group commit,
 * exactly as they would on the event loop.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { callbackLogger } from '../../plugin-api/logger.ts';
import { SqliteStore } from './store.ts';
import {
  serializeError,
  type CallMessage,
  type HostMessage,
  type ThreadStoreOptions,
} from './thread-protocol.ts';

const port = parentPort!;
const post = (message: HostMessage) => port.postMessage(message);

/** The store logs rarely (a checkpoint fallback); its lines go to the event loop's logger. */
const forwardingLogger = callbackLogger((level, fields, message) =>
  post({ kind: 'log', level, fields, message: message ?? '' }),
);

type Method = (...args: unknown[]) => Promise<unknown>;

async function serve(store: SqliteStore, message: CallMessage): Promise<void> {
  try {
    const [first, second] = message.method;
    const owner = (second === undefined ? store : store[first as keyof SqliteStore]) as unknown as Record<
      string,
      Method
    >;
    const value = await owner[second ?? first]!(...message.args);
    post({ kind: 'result', id: message.id, ok: true, value });
  } catch (err) {
    post({ kind: 'result', id: message.id, ok: false, error: serializeError(err) });
  }
}

function main(): void {
  let store: SqliteStore;
  try {
    store = SqliteStore.open({ ...(workerData as ThreadStoreOptions), logger: forwardingLogger });
  } catch (err) {
    post({ kind: 'failed', error: serializeError(err) });
    port.close();
    return;
  }
  post({ kind: 'ready' });
  port.on('message', (message: CallMessage | 'close') => {
    if (message !== 'close') {
      void serve(store, message);
      return;
    }
    // Writes already requested are committed and synced by the store's own close.
    void store.close().finally(() => port.close());
  });
}

main();
