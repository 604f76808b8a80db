import type { Worker } from 'node:worker_threads';

/**
 * Asks a helper thread to finish (`message`), waits up to `deadlineMs` for it to exit, then ends
 * it. The thread keeps the process alive meanwhile: a close awaited with nothing else pending must
 * not leave the caller's await unsettled.
 */
export async function stopWorker(worker: Worker, message: unknown, deadlineMs: number): Promise<void> {
  worker.ref();
  let timer: NodeJS.Timeout | undefined;
  const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
  worker.postMessage(message);
  await Promise.race([exited, new Promise((resolve) => (timer = setTimeout(resolve, deadlineMs)))]);
  clearTimeout(timer);
  await worker.terminate();
}
