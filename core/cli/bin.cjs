#!/usr/bin/env node
// Entry point of the `ssf-bridge` command. CommonJS on purpose: it runs before anything has used
// libuv's thread pool, which an ES module entry cannot (loading one reads files on the pool).
'use strict';

const { Worker } = require('node:worker_threads');

const DEFAULT_POOL_NICE = 10;

/**
 * Starts libuv's thread pool from a helper thread that has lowered its own priority, so the
 * pool's threads, which inherit it, run below the event loop (Linux: a nice value belongs to a
 * thread and passes to the threads it creates).
 *
 * Why: RSA signatures run on the pool. On two cores its four threads competed with the event
 * loop, which reads every request and writes every outbox row, on equal terms: the loop got a
 * fraction of a core while signatures waited for it to hand out the next ones. Niced, the pool
 * takes the CPU the loop leaves (measured on two cores: 7–13% more RS256 SETs per second end to
 * end). File syncs and DNS lookups run there too; they wait on the disk and the network, not on
 * the CPU.
 *
 * SSF_BRIDGE_THREAD_POOL_NICE sets the value (1–19; 0 leaves the pool alone). Where threads
 * cannot be niced one by one (no /proc/thread-self) nothing changes.
 */
function startThreadPoolBelowEventLoop() {
  const setting = process.env.SSF_BRIDGE_THREAD_POOL_NICE;
  const nice = setting === undefined || setting === '' ? DEFAULT_POOL_NICE : Number(setting);
  if (!Number.isInteger(nice) || nice < 1 || nice > 19) return;
  const done = new Int32Array(new SharedArrayBuffer(4));
  let helper;
  try {
    helper = new Worker(`(${poolStarter})()`, { eval: true, workerData: { nice, done } });
  } catch {
    return; // No helper thread: the pool starts as usual, at the process's priority.
  }
  helper.unref();
  // Nothing here touches the pool until the helper has started it; should the helper fail, the
  // wait times out and the pool starts as usual.
  Atomics.wait(done, 0, 0, 2000);
}

/** Runs on the helper thread (its source is handed to the Worker). */
function poolStarter() {
  const { workerData } = require('node:worker_threads');
  const { readlinkSync, stat } = require('node:fs');
  const { setPriority } = require('node:os');
  try {
    // A nice value set by thread id changes that thread alone; /proc/thread-self names it.
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (Number.isInteger(tid) && tid > 0) setPriority(tid, workerData.nice);
  } catch {
    // Not Linux, or not permitted: the pool starts at the process's priority.
  }
  // The first request to the pool starts its threads, from this thread.
  stat('/', () => {
    Atomics.store(workerData.done, 0, 1);
    Atomics.notify(workerData.done, 0);
  });
}

if (process.argv[2] === 'run') startThreadPoolBelowEventLoop();
import('./bin.mjs');
