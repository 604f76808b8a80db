import type { Logger } from './types.ts';

export type LogLevelName = 'trace' | 'debug' | 'info' | 'warn' | 'error';

/**
 * A Logger that hands each line to `write`: the level, the fields (with the bindings of the
 * child it was logged on) and the message. For forwarding lines elsewhere or recording them in tests.
 */
export function callbackLogger(
  write: (level: LogLevelName, fields: Record<string, unknown>, message: string | undefined) => void,
  bindings: Record<string, unknown> = {},
): Logger {
  const at = (level: LogLevelName) => (fields: object | string, message?: string) =>
    typeof fields === 'string'
      ? write(level, { ...bindings }, fields)
      : write(level, { ...bindings, ...(fields as Record<string, unknown>) }, message);
  return {
    trace: at('trace'),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (more) => callbackLogger(write, { ...bindings, ...more }),
  };
}
