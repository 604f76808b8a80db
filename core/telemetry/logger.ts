import { pino, type DestinationStream, type Logger as PinoLogger } from 'pino';
import { scrubSecrets } from '../plugin-api/secret.ts';
import type { Logger } from '../plugin-api/types.ts';

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';

export interface LoggerOptions {
  level?: LogLevel;
  /** Where lines go; defaults to stdout. Tests pass a capturing stream. */
  destination?: DestinationStream;
  /** Fixed fields on every line (e.g. service name). */
  base?: Record<string, unknown>;
}

/** Fields that hold credentials wherever they appear in a logged object. */
const REDACT_PATHS = [
  'authorization',
  'password',
  'token',
  'secret',
  'client_secret',
  'access_token',
  'refresh_token',
  '*.authorization',
  '*.Authorization',
  '*.password',
  '*.token',
  '*.secret',
  '*.client_secret',
  '*.access_token',
  '*.refresh_token',
  'headers.authorization',
  'headers.cookie',
  'req.headers.authorization',
  'req.headers.cookie',
  'req.headers["x-api-key"]',
  // A DPoP proof (RFC 9449) is a credential for one request.
  'headers.dpop',
  'req.headers.dpop',
];

/**
 * The root logger: JSON lines (pino). Two layers keep secrets out: named credential fields are
 * redacted, and every line is scrubbed of every known secret value (each `Secret` registers its
 * value), so a token that slips into a message or an error text is still replaced.
 */
export function createLogger(options: LoggerOptions = {}): RootLogger {
  return pino(
    {
      level: options.level ?? 'info',
      base: options.base ?? { service: 'ssf-bridge' },
      timestamp: pino.stdTimeFunctions.isoTime,
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      formatters: { level: (label) => ({ level: label }) },
      serializers: { err: pino.stdSerializers.err, error: pino.stdSerializers.err },
      hooks: { streamWrite: scrubSecrets },
    },
    options.destination ?? pino.destination({ dest: 1, sync: true }),
  );
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
