import { createTask, validate as validateCron, type RunCoordinator } from 'node-cron';
import { RetryableError } from '../plugin-api/errors.ts';
import type { Logger, ScheduleOptions, ScheduledTask, Scheduler } from '../plugin-api/types.ts';
import type { MetricsRegistry } from '../telemetry/metrics.ts';

export type { RunCoordinator };

export interface SchedulerDeps {
  logger: Logger;
  metrics: MetricsRegistry;
  /**
   * When several bridge instances share one database, only the elected one runs a task.
   * Plugged into node-cron's distributed coordination for cron tasks and consulted before each
   * run of interval tasks, and every interval while one runs: a run in progress is aborted when
   * this instance is no longer elected.
   */
  coordinator?: RunCoordinator;
}

interface TaskHandle {
  stop(): void;
  /** Aborts a run in progress. */
  abort(): void;
}

/**
 * The longest a rate-limited run holds later ones: a vendor (or a connector's arithmetic) asking
 * for days, or for ever, would otherwise stop the task until the bridge restarts.
 */
const MAX_HOLD_MS = 60 * 60 * 1000;
/** The lease asked of the coordinator for a cron task's run at start. */
const CRON_START_LEASE_MS = 60_000;
const RUN_SECONDS_BUCKETS = [0.1, 0.5, 1, 5, 10, 30, 60, 120, 300, 600, 1800];

/**
 * The core scheduler. Connectors reach it only through their context (`ctx.scheduler`), which
 * is scoped to their instance: stopping the instance stops its tasks and aborts running ones.
 * Every task runs in UTC, never overlaps itself, and reports runs, failures, overlaps and
 * missed runs as metrics and log lines.
 */
export class SchedulerService {
  readonly #deps: SchedulerDeps;
  readonly #byInstance = new Map<string, Set<TaskHandle>>();
  readonly #runs;
  readonly #duration;

  constructor(deps: SchedulerDeps) {
    this.#deps = deps;
    this.#runs = deps.metrics.counter(
      'ssf_bridge_scheduled_runs_total',
      'Scheduled task runs by outcome (ok, failed, missed, overlap, skipped, held)',
      ['instance_id', 'task', 'outcome'],
    );
    // Up to half an hour: a full MDM or EDR scan takes minutes, past prom-client's 10 s default.
    this.#duration = deps.metrics.histogram(
      'ssf_bridge_scheduled_run_seconds',
      'Duration of scheduled task runs',
      ['instance_id', 'task'],
      RUN_SECONDS_BUCKETS,
    );
  }

  /** The scheduler handed to one connector instance. */
  forInstance(instanceId: string, logger: Logger): Scheduler {
    return {
      schedule: (name, options, task) => this.#schedule(instanceId, logger, name, options, task),
    };
  }

  /** Stops every task of an instance and aborts the runs in progress. */
  stopInstance(instanceId: string): void {
    const handles = this.#byInstance.get(instanceId);
    if (!handles) return;
    for (const handle of handles) {
      handle.stop();
      handle.abort();
    }
    this.#byInstance.delete(instanceId);
  }

  stopAll(): void {
    for (const instanceId of [...this.#byInstance.keys()]) this.stopInstance(instanceId);
  }

  #schedule(
    instanceId: string,
    logger: Logger,
    name: string,
    options: ScheduleOptions,
    task: (signal: AbortSignal) => Promise<void>,
  ): ScheduledTask {
    if ((options.cron === undefined) === (options.everyMs === undefined)) {
      throw new Error(`task ${name}: give exactly one of cron or everyMs`);
    }
    if (options.cron !== undefined && !validateCron(options.cron)) {
      throw new Error(`task ${name}: "${options.cron}" is not a valid cron expression`);
    }
    if (options.everyMs !== undefined && !(options.everyMs > 0)) {
      throw new Error(`task ${name}: everyMs must be positive`);
    }
    let running: AbortController | undefined;
    // A run that failed with a retry-after (a vendor's 429) holds later runs until then.
    let heldUntil = 0;
    const labels = { instance_id: instanceId, task: name };
    const runOnce = async (): Promise<void> => {
      if (running) {
        this.#runs.inc({ ...labels, outcome: 'overlap' });
        return;
      }
      if (Date.now() < heldUntil) {
        this.#runs.inc({ ...labels, outcome: 'held' });
        return;
      }
      const controller = new AbortController();
      running = controller;
      const timer =
        options.timeoutMs !== undefined
          ? setTimeout(
              () => controller.abort(new Error(`run exceeded ${options.timeoutMs} ms`)),
              options.timeoutMs,
            )
          : undefined;
      const end = this.#duration.startTimer(labels);
      try {
        await task(controller.signal);
        this.#runs.inc({ ...labels, outcome: 'ok' });
      } catch (err) {
        this.#runs.inc({ ...labels, outcome: 'failed' });
        if (err instanceof RetryableError && err.retryAfterMs !== undefined && err.retryAfterMs > 0) {
          heldUntil = Date.now() + Math.min(err.retryAfterMs, MAX_HOLD_MS);
        }
        logger.warn({ err, task: name }, 'scheduled run failed');
      } finally {
        end();
        if (timer) clearTimeout(timer);
        running = undefined;
      }
    };

    const handle =
      options.cron !== undefined
        ? this.#cronTask(instanceId, logger, name, options, runOnce)
        : this.#intervalTask(instanceId, name, options, runOnce, () =>
            running?.abort(new Error('this instance is no longer the scheduler leader')),
          );
    const full: TaskHandle = {
      stop: handle.stop,
      abort: () => running?.abort(new Error('instance stopping')),
    };
    let handles = this.#byInstance.get(instanceId);
    if (!handles) this.#byInstance.set(instanceId, (handles = new Set()));
    handles.add(full);
    return {
      stop: () => {
        full.stop();
        handles.delete(full);
      },
    };
  }

  #cronTask(
    instanceId: string,
    logger: Logger,
    name: string,
    options: ScheduleOptions,
    runOnce: () => Promise<void>,
  ): { stop(): void } {
    const coordinator = this.#deps.coordinator;
    const cronTask = createTask(options.cron as string, runOnce, {
      name: `${instanceId}:${name}`,
      timezone: 'UTC',
      noOverlap: true,
      ...(options.jitterMs ? { maxRandomDelay: options.jitterMs } : {}),
      ...(coordinator ? { distributed: true, runCoordinator: coordinator } : {}),
    });
    const labels = { instance_id: instanceId, task: name };
    cronTask.on('execution:missed', () => {
      this.#runs.inc({ ...labels, outcome: 'missed' });
      logger.warn({ task: name }, 'scheduled run missed');
    });
    cronTask.on('execution:overlap', () => this.#runs.inc({ ...labels, outcome: 'overlap' }));
    cronTask.on('execution:skipped', () => this.#runs.inc({ ...labels, outcome: 'skipped' }));
    void cronTask.start();
    let stopped = false;
    if (options.runOnStart) {
      // The run at start is scheduled work like the others: on the elected instance only.
      const elected = coordinator
        ? Promise.resolve().then(() => coordinator.shouldRun(`${instanceId}:${name}`, CRON_START_LEASE_MS))
        : Promise.resolve(true);
      void elected.then(
        (yes) => {
          if (stopped) return;
          if (yes) return runOnce();
          this.#runs.inc({ ...labels, outcome: 'skipped' });
        },
        () => this.#runs.inc({ ...labels, outcome: 'failed' }),
      );
    }
    return {
      stop: () => {
        stopped = true;
        void cronTask.destroy();
      },
    };
  }

  #intervalTask(
    instanceId: string,
    name: string,
    options: ScheduleOptions,
    runOnce: () => Promise<void>,
    abortRun: () => void,
  ): { stop(): void } {
    const every = options.everyMs as number;
    const key = `${instanceId}:${name}`;
    const coordinator = this.#deps.coordinator;
    let timer: NodeJS.Timeout | undefined;
    let stopped = false;
    const next = (delay: number): void => {
      if (stopped) return;
      const jitter = options.jitterMs ? Math.floor(Math.random() * options.jitterMs) : 0;
      timer = setTimeout(() => void tick(), delay + jitter);
      timer.unref();
    };
    const tick = async (): Promise<void> => {
      try {
        const elected = coordinator ? await coordinator.shouldRun(key, every * 2) : true;
        // Stopped while the coordinator answered (a database round trip): the instance is gone.
        if (stopped) return;
        if (!elected) this.#runs.inc({ instance_id: instanceId, task: name, outcome: 'skipped' });
        else if (!coordinator) await runOnce();
        else {
          // A run outlasting its interval (a stream reader) is aborted once another instance
          // has become the leader: scheduled work runs on the leader only.
          const watch = setInterval(() => {
            void Promise.resolve(coordinator.shouldRun(key, every * 2)).then(
              (still) => {
                if (!still) abortRun();
              },
              () => undefined,
            );
          }, every);
          watch.unref();
          try {
            await runOnce();
          } finally {
            clearInterval(watch);
          }
        }
      } catch {
        this.#runs.inc({ instance_id: instanceId, task: name, outcome: 'failed' });
      }
      next(every);
    };
    next(options.runOnStart ? 0 : every);
    return {
      stop: () => {
        stopped = true;
        if (timer) clearTimeout(timer);
      },
    };
  }
}

export { validateCron };
