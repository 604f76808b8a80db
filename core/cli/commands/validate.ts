import { Writable } from 'node:stream';
import type { Command } from 'commander';
import { loadConfigFile, type LoadedConfig, type ResolvedInstance } from '../../config/index.ts';
import {
  createInstanceContainer,
  createRootContainer,
  disposeInstanceContainer,
} from '../../di/container.ts';
import { staticDeviceDirectory } from '../../devices/owners.ts';
import { createHttpClientFactory } from '../../http/client.ts';
import { PermanentError } from '../../plugin-api/errors.ts';
import { scrubSecrets } from '../../plugin-api/secret.ts';
import type { CheckResult } from '../../plugin-api/types.ts';
import { defaultRegistry, configCrossChecks } from '../../runtime/defaults.ts';
import type { CheckpointStore, EventSink } from '../../runtime/ports.ts';
import { StatusBoard } from '../../runtime/status.ts';
import { SchedulerService } from '../../scheduling/scheduler.ts';
import { createLogger } from '../../telemetry/logger.ts';
import { MetricsRegistry } from '../../telemetry/metrics.ts';
import { CliExit, EXIT, type CliIo } from '../io.ts';
import { memoryOneTimeIds } from '../../runtime/ports.ts';

/** The longest one check() may take; its requests keep the deadlines the instance's config gives them. */
export const CHECK_TIMEOUT_MS = 30_000;
/** How long a checked instance gets to release what create() or check() opened. */
const STOP_DEADLINE_MS = 2_000;

export interface InstanceCheck {
  instance: string;
  kind: 'inbound' | 'outbound';
  connector: string;
  /** `ok`, `failed`, or `skipped` (disabled, or the connector has no check()). */
  outcome: 'ok' | 'failed' | 'skipped';
  /** What check() said, scrubbed of every secret the config holds. */
  message?: string;
}

interface ValidateOptions {
  config: string;
  json?: boolean;
  check?: boolean;
  instance?: string;
}

/**
 * `ssf-bridge validate --config FILE [--check [--instance ID]]`: every problem at once, non-zero
 * exit when any; with --check, each instance's connection test too.
 */
export function registerValidate(program: Command, io: CliIo): void {
  program
    .command('validate')
    .description('Check a config file and report every problem at once; --check also tests each connection')
    .requiredOption('-c, --config <file>', 'config file (YAML or JSON)')
    .option('--json', 'print the result as JSON')
    .option('--check', "run each enabled instance's connection test (check()) against its real target")
    .option('--instance <id>', 'with --check: test only this instance (even when disabled)')
    .action(async (options: ValidateOptions) => {
      if (options.instance !== undefined && !options.check) {
        throw new CliExit(EXIT.invalid, 'validate: --instance needs --check');
      }
      const result = await loadConfigFile(options.config, {
        registry: defaultRegistry(),
        crossChecks: configCrossChecks(),
      });
      if (result.ok) {
        const { instances } = result.config;
        if (options.instance !== undefined && !instances.some((i) => i.id === options.instance)) {
          throw new CliExit(
            EXIT.invalid,
            `${options.config}: no instance "${options.instance}"; instances: ${instances.map((i) => i.id).join(', ') || 'none'}`,
          );
        }
        const inbound = instances.filter((i) => i.kind === 'inbound').length;
        const summary = `${options.config}: valid (${inbound} inbound, ${instances.length - inbound} outbound instances)`;
        const warnings = disabledRouteTargets(result.config);
        const checks = options.check ? await checkInstances(result.config, options.instance, io) : undefined;
        if (options.json) {
          io.out(
            JSON.stringify({
              valid: true,
              problems: [],
              ...(warnings.length > 0 ? { warnings } : {}),
              ...(checks ? { checks } : {}),
            }),
          );
        } else {
          io.out(summary);
          for (const w of warnings) io.err(`  warning: ${w.path}: ${w.message}`);
          for (const c of checks ?? []) io.out(checkLine(c));
        }
        if (checks?.some((c) => c.outcome === 'failed')) throw new CliExit(EXIT.failure, '');
        return;
      }
      if (options.json) {
        io.out(JSON.stringify({ valid: false, problems: result.problems }, null, 2));
      } else {
        const count = result.problems.length;
        io.err(`${options.config}: ${count} problem${count === 1 ? '' : 's'}`);
        for (const problem of result.problems) io.err(`  ${problem.path}: ${problem.message}`);
      }
      throw new CliExit(EXIT.invalid, '');
    });
}

/**
 * Routes naming an outbound instance that is disabled: valid (an instance may be switched off for
 * a while), but the bridge queues nothing for it meanwhile, so the operator hears of it here.
 */
export function disabledRouteTargets(config: LoadedConfig): Array<{ path: string; message: string }> {
  const disabled = new Set(
    config.instances.filter((i) => i.kind === 'outbound' && !i.enabled).map((i) => i.id),
  );
  return config.root.routes.flatMap((route, index) =>
    route.to
      .filter((id) => disabled.has(id))
      .map((id) => ({
        path: `routes[${index}].to`,
        message: `outbound instance ${id} is disabled: events this route matches are not queued for it while it is`,
      })),
  );
}

function checkLine(c: InstanceCheck): string {
  const head = `${c.kind} ${c.instance} (${c.connector}):`;
  if (c.outcome === 'ok') return `${head} ok${c.message ? ` (${c.message})` : ''}`;
  if (c.outcome === 'skipped') return `${head} not checked: ${c.message ?? ''}`;
  return `${head} failed: ${c.message ?? 'no message'}`;
}

/** Everything an operator is shown passes through the core's secret scrubbing first. */
function scrubbed(text: string): string {
  return scrubSecrets(text);
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/**
 * Builds each instance (or the one named) as `ssf-bridge run` does, through the runtime's
 * instance containers with the real HTTP client factory, and runs its check() without starting
 * it: nothing is scheduled, no event is taken and no checkpoint is written.
 */
async function checkInstances(
  config: LoadedConfig,
  only: string | undefined,
  io: CliIo,
): Promise<InstanceCheck[]> {
  const clock = { now: () => new Date() };
  const metrics = new MetricsRegistry({ collectDefault: false });
  // Connector logs go to standard error, scrubbed and redacted as the bridge's own are.
  const logger = createLogger({
    level: 'warn',
    destination: new Writable({
      write: (chunk, _enc, done) => {
        io.err(String(chunk));
        done();
      },
    }) as unknown as NodeJS.WritableStream & { write(s: string): boolean },
  });
  const status = new StatusBoard(clock);
  const checkpoints: CheckpointStore = {
    getCheckpoint: async () => undefined,
    setCheckpoint: async () => {
      throw new PermanentError('validate --check writes no checkpoint');
    },
  };
  const sink: EventSink = {
    accept: async () => {
      throw new PermanentError('validate --check takes no events');
    },
  };
  const scheduler = new SchedulerService({ logger, metrics });
  const root = createRootContainer({
    config,
    logger,
    metrics,
    clock,
    status,
    scheduler,
    httpFactoryMaker: (deps) => createHttpClientFactory(deps),
    checkpointStore: checkpoints,
    eventSink: sink,
    devices: staticDeviceDirectory(),
    // validate --check runs connectors' checks only; nothing it does outlives the command.
    oneTimeIds: memoryOneTimeIds(),
  });
  const chosen = config.instances.filter((i) => (only === undefined ? true : i.id === only));
  try {
    return await Promise.all(
      chosen.map((instance) => {
        status.register(instance.id, instance.definition.manifest.id, instance.kind);
        return checkOne(root, instance, only !== undefined);
      }),
    );
  } finally {
    scheduler.stopAll();
  }
}

async function checkOne(
  root: ReturnType<typeof createRootContainer>,
  instance: ResolvedInstance,
  named: boolean,
): Promise<InstanceCheck> {
  const base = { instance: instance.id, kind: instance.kind, connector: instance.definition.manifest.id };
  if (!instance.enabled && !named) return { ...base, outcome: 'skipped', message: 'disabled' };
  let scope: ReturnType<typeof createInstanceContainer>;
  try {
    scope = createInstanceContainer(root, instance);
  } catch (err) {
    return { ...base, outcome: 'failed', message: scrubbed(`create() failed: ${describe(err)}`) };
  }
  try {
    const check = scope.connector.check;
    if (typeof check !== 'function') {
      return { ...base, outcome: 'skipped', message: 'the connector has no connection test' };
    }
    const signal = AbortSignal.any([scope.abort.signal, AbortSignal.timeout(CHECK_TIMEOUT_MS)]);
    const result = await answerOf(check.call(scope.connector, signal), signal);
    const message = result.message ? scrubbed(result.message) : undefined;
    return result.ok
      ? { ...base, outcome: 'ok', ...(message ? { message } : {}) }
      : { ...base, outcome: 'failed', message: message ?? 'check() reported a failure without a message' };
  } finally {
    scope.abort.abort(new Error('validate --check is done'));
    await scope.connector.stop(STOP_DEADLINE_MS).catch(() => undefined);
    disposeInstanceContainer(scope);
  }
}

/** check()'s answer; a throw, or no answer once the signal ends, is a failure too. */
async function answerOf(pending: Promise<CheckResult>, signal: AbortSignal): Promise<CheckResult> {
  let onAbort: (() => void) | undefined;
  const timedOut = new Promise<CheckResult>((resolve) => {
    onAbort = () => resolve({ ok: false, message: `no answer within ${CHECK_TIMEOUT_MS / 1000} s` });
    signal.addEventListener('abort', onAbort, { once: true });
  });
  try {
    return await Promise.race([
      pending.then(
        (result) => result ?? { ok: false, message: 'check() answered nothing' },
        (err: unknown) => ({ ok: false, message: `check() threw: ${describe(err)}` }),
      ),
      timedOut,
    ]);
  } finally {
    if (onAbort) signal.removeEventListener('abort', onAbort);
  }
}
