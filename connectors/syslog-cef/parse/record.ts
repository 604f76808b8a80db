import { parseCef, type CefEvent } from './cef.ts';
import { parseLeef, type LeefEvent } from './leef.ts';
import { parseSyslog, type SyslogMessage } from './syslog.ts';

/** What the mapping rules see for one syslog line. */
export interface SyslogRecord {
  /** `cef`, `leef`, or `text` for a syslog message with neither payload. */
  format: 'cef' | 'leef' | 'text';
  /** The syslog header; null when the line is a bare CEF or LEEF payload. */
  syslog: Omit<SyslogMessage, 'message'> | null;
  /** The message after the syslog header. */
  message: string;
  cef?: CefEvent;
  leef?: LeefEvent;
}

/** Parses one syslog line into a record. Throws an Error naming what is malformed. */
export function parseLine(line: string): SyslogRecord {
  const text = withoutLineEnd(line);
  if (text.length === 0) throw new Error('the line is empty');
  let syslog: SyslogRecord['syslog'] = null;
  let message = text;
  if (!text.startsWith('CEF:') && !text.startsWith('LEEF:')) {
    const { message: body, ...header } = parseSyslog(text);
    syslog = header;
    message = body;
  }
  const payload = message.trimStart();
  if (payload.startsWith('CEF:')) return { format: 'cef', syslog, message, cef: parseCef(payload) };
  if (payload.startsWith('LEEF:')) return { format: 'leef', syslog, message, leef: parseLeef(payload) };
  return { format: 'text', syslog, message };
}

/**
 * The line without its trailing CR and LF characters. A loop, not /[\r\n]+$/: the regex takes
 * time quadratic in a run of them that is not at the end (a line may carry any bytes).
 */
function withoutLineEnd(line: string): string {
  let end = line.length;
  while (end > 0 && (line[end - 1] === '\n' || line[end - 1] === '\r')) end -= 1;
  return line.slice(0, end);
}
