import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';
import type { Logger } from '../plugin-api/types.ts';
import { redactFields, scrubLogLine } from './redact.ts';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

export interface LoggerOptions {
  level?: LogLevel;
  /** Where lines go; defaults to stdout. Tests pass a capturing stream. */
  destination?: DestinationStream;
  /** Fixed fields on every line (e.g. service name). */
  base?: Record<string, unknown>;
}

/**
 * Credential fields in a child logger's bindings, which pino writes without the log formatter:
 * the top level and one below, as `redactFields` does for what is logged at any depth.
 */
const BINDING_PATHS = [
  'authorization',
  'Authorization',
  'password',
  'token',
  'secret',
  'client_secret',
  'access_token',
  'refresh_token',
  'cookie',
  'dpop',
  '*.authorization',
  '*.Authorization',
  '*.password',
  '*.token',
  '*.secret',
  '*.client_secret',
  '*.access_token',
  '*.refresh_token',
  '*.cookie',
  '*.Cookie',
  '*.dpop',
  '*.DPoP',
  '*["x-api-key"]',
  '*["X-Api-Key"]',
];

/** A credential's value shows as `[redacted]`; flags and counts under such names stay. */
function censorCredential(value: unknown): unknown {
  return typeof value === 'string' || (typeof value === 'object' && value !== null) ? '[redacted]' : value;
}

/**
 * The root logger: JSON lines (pino). Two layers keep secrets out: credential fields are
 * redacted at any depth and in any case (see redact.ts), and every line is scrubbed of every known
 * secret value (each `Secret` registers its value), URL passwords and the credentials after an
 * auth scheme, so a token that slips into a message or an error text is still replaced.
 */
export function createLogger(options: LoggerOptions = {}): RootLogger {
  return pino(
    {
      level: options.level ?? 'info',
      base: options.base ?? { service: 'ssf-bridge' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: BINDING_PATHS, censor: censorCredential },
      formatters: {
        level: (label) => ({ level: label }),
        bindings: (bindings) => redactFields(bindings) as Record<string, unknown>,
        log: (object) => redactFields(object) as Record<string, unknown>,
      },
      serializers: { err: serializeError, error: serializeError },
      hooks: { streamWrite: scrubLogLine },
    },
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
}

/** An error as pino writes it, with credential fields it carries (a request's headers) redacted. */
function serializeError(err: unknown): unknown {
  const serialized = pino.stdSerializers.err(err as Error) as unknown;
  if (serialized === null || typeof serialized !== 'object') return serialized;
  const fields = { ...(serialized as Record<string, unknown>) };
  return redactFields(fields);
}

export type RootLogger = PinoLogger;

/** A logger labelled with a connector instance, as handed to connectors. */
export function instanceLogger(root: Logger, connectorId: string, instanceId: string): Logger {
  return root.child({ connector: connectorId, instance: instanceId });
}

/** A logger that drops everything (for tools that must print nothing but their output). */
export function silentLogger(): RootLogger {
  return pino({ level: 'silent' });
}
