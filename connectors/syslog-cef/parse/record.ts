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
  const at = payloadStart(message);
  if (at >= 0 && message.startsWith('CEF:', at))
    return { format: 'cef', syslog, message, cef: parseCef(message.slice(at)) };
  if (at >= 0) return { format: 'leef', syslog, message, leef: parseLeef(message.slice(at)) };
  return { format: 'text', syslog, message };
}

/** `CEF:` or `LEEF:` and a version digit, after white space inside a message. */
const EMBEDDED_PAYLOAD = /\s(?:CEF|LEEF):\d/;

/**
 * Where the CEF or LEEF payload of a message begins, -1 when it has none: at its start (after
 * white space), or else after white space within it, so a header this parser does not read
 * whole (a BSD timestamp with a year or milliseconds, a tag with no colon) still leaves its
 * payload found. Inside the message a version digit must follow, so prose naming CEF is text.
 */
function payloadStart(message: string): number {
  const lead = message.length - message.trimStart().length;
  if (message.startsWith('CEF:', lead) || message.startsWith('LEEF:', lead)) return lead;
  const embedded = EMBEDDED_PAYLOAD.exec(message);
  return embedded ? embedded.index + 1 : -1;
}

/**
 * The line without its trailing CR, LF and NUL characters (a NUL ends a C string, and some
 * senders send it along). A loop, not /[\r\n\0]+$/: the regex takes time quadratic in a run of
 * them that is not at the end (a line may carry any bytes).
 */
function withoutLineEnd(line: string): string {
  let end = line.length;
  while (end > 0 && (line[end - 1] === '\n' || line[end - 1] === '\r' || line[end - 1] === '\0')) end -= 1;
  return line.slice(0, end);
}
