/**
 * Error classes every connector and core service uses. The class decides what the core
 * does next: retry (optionally after a delay), dead-letter, flag the instance, or refuse
 * to start. Codes are stable (`SSF_ERR_<AREA>_<WHAT>`) so operators can search for them.
 */

export type ErrorClass = 'retryable' | 'permanent' | 'not_connected' | 'config';

export interface BridgeErrorOptions {
  code?: string;
  cause?: unknown;
  /** Extra structured detail that is safe to log (never secrets). */
  detail?: Record<string, unknown>;
}

export abstract class BridgeError extends Error {
  abstract readonly errorClass: ErrorClass;
  readonly code: string;
  readonly detail: Record<string, unknown> | undefined;

  constructor(message: string, defaultCode: string, options: BridgeErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = options.code ?? defaultCode;
    this.detail = options.detail;
  }
}

/** A transient failure: the same operation may succeed later. */
export class RetryableError extends BridgeError {
  readonly errorClass = 'retryable' as const;
  /** Milliseconds the remote asked us to wait (Retry-After, rate-limit reset). */
  readonly retryAfterMs: number | undefined;

  constructor(message: string, options: BridgeErrorOptions & { retryAfterMs?: number } = {}) {
    super(message, 'SSF_ERR_RETRYABLE', options);
    this.retryAfterMs = options.retryAfterMs;
  }
}

/** A failure that will not go away by retrying the same input. */
export class PermanentError extends BridgeError {
  readonly errorClass = 'permanent' as const;
  /** True when the remote refused our credentials (HTTP 401/403): the instance is flagged. */
  readonly authFailure: boolean;

  constructor(message: string, options: BridgeErrorOptions & { authFailure?: boolean } = {}) {
    super(message, 'SSF_ERR_PERMANENT', options);
    this.authFailure = options.authFailure ?? false;
  }
}

/** The connector is not (or no longer) connected; the core waits for it to recover. */
export class NotConnectedError extends BridgeError {
  readonly errorClass = 'not_connected' as const;
  constructor(message: string, options: BridgeErrorOptions = {}) {
    super(message, 'SSF_ERR_NOT_CONNECTED', options);
  }
}

/** The configuration is wrong; nothing works until an operator changes it. */
export class ConfigError extends BridgeError {
  readonly errorClass = 'config' as const;
  constructor(message: string, options: BridgeErrorOptions = {}) {
    super(message, 'SSF_ERR_CONFIG_INVALID', options);
  }
}

/**
 * Code of the RetryableError `ctx.emit()` rejects with when a checkpoint written with
 * `expected` changed meanwhile (another instance committed first): read it again and redo.
 */
export const CHECKPOINT_CONFLICT = 'SSF_ERR_CHECKPOINT_CONFLICT';

/** The error a store or test harness rejects a compare-and-set checkpoint write with. */
export function checkpointConflict(instanceId: string, name: string): RetryableError {
  return new RetryableError(
    `the checkpoint ${name} of ${instanceId} changed since it was read (another instance committed first); nothing was written`,
    { code: CHECKPOINT_CONFLICT },
  );
}

/**
 * Runs `work` (read the state, decide, emit compare-and-set) again while its emit meets a state
 * another instance committed meanwhile, at most `tries` times in all; then the conflict is thrown.
 */
export async function retryOnCheckpointConflict<T>(
  work: () => Promise<T>,
  onRetry: (tries: number) => void,
  tries = 4,
): Promise<T> {
  for (let run = 1; ; run += 1) {
    try {
      return await work();
    } catch (err) {
      if ((err as { code?: unknown }).code !== CHECKPOINT_CONFLICT || run >= tries) throw err;
      onRetry(run);
    }
  }
}

export function isBridgeError(err: unknown): err is BridgeError {
  return err instanceof BridgeError;
}

/**
 * The class of any thrown value. Errors that are not BridgeErrors are unexpected bugs or
 * library failures; the core treats them as retryable so an event is never dropped on a
 * crash in a connector, and the attempt limit still bounds the retries.
 */
export function classOf(err: unknown): ErrorClass {
  return isBridgeError(err) ? err.errorClass : 'retryable';
}
