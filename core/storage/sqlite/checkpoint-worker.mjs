// The WAL checkpointer's thread (see checkpointer.ts). Plain JavaScript: worker threads do not
// inherit the TypeScript loader the command registers.
import { parentPort, workerData } from 'node:worker_threads';
import Database from 'better-sqlite3';

const db = new Database(workerData.path, { fileMustExist: true });
// FULL: the log is synced before its pages are copied and the database file after.
db.pragma('synchronous = FULL');
db.pragma(`busy_timeout = ${workerData.busyTimeoutMs}`);

parentPort.on('message', (message) => {
  if (message.type === 'close') {
    db.close();
    parentPort.close();
    return;
  }
  try {
    const [result] = db.pragma(`wal_checkpoint(${message.mode})`);
    parentPort.postMessage({
      seq: message.seq,
      busy: result.busy,
      log: result.log,
      checkpointed: result.checkpointed,
    });
  } catch (err) {
    parentPort.postMessage({ seq: message.seq, error: err instanceof Error ? err.message : String(err) });
  }
});
