/** Syslog message parsing: RFC 5424 and RFC 3164 (BSD) framing of one message. */

export interface SyslogMessage {
  format: 'rfc5424' | 'rfc3164';
  facility: number;
  severity: number;
  /** As written: RFC 3339 for RFC 5424, `Mmm dd hh:mm:ss` for RFC 3164; null when absent. */
  timestamp: string | null;
  hostname: string | null;
  app_name: string | null;
  procid: string | null;
  msgid: string | null;
  /** RFC 5424 structured data, by SD-ID; empty for RFC 3164. */
  structured_data: Record<string, Record<string, string>>;
  message: string;
}

export class SyslogParseError extends Error {
  override name = 'SyslogParseError';
}

const PRI = /^<(\d{1,3})>/;
const BSD_TIME = /^([A-Z][a-z]{2}) {1,2}(\d{1,2}) (\d{2}:\d{2}:\d{2}) /;
/**
 * An RFC 3339 timestamp in place of the BSD one, as rsyslog's RSYSLOG_ForwardFormat and
 * syslog-ng's ts-format(iso) write the RFC 3164 header.
 */
const ISO_TIME = /^(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})) /i;
const BSD_TAG = /^([^\s:[\]]{1,48})(?:\[([^\]\s]{1,32})\])?: ?/;

function nil(value: string): string | null {
  return value === '-' ? null : value;
}

/** Parses one syslog message (no trailing newline). Throws SyslogParseError when it is not syslog. */
export function parseSyslog(line: string): SyslogMessage {
  const pri = PRI.exec(line);
  if (!pri) throw new SyslogParseError('no <PRI> at the start of the line');
  const value = Number(pri[1]);
  if (value > 191) throw new SyslogParseError(`priority ${value} is out of range (0-191)`);
  const rest = line.slice(pri[0].length);
  const base = { facility: value >> 3, severity: value & 7 };
  return /^\d{1,2} /.test(rest) ? parse5424(rest, base) : parse3164(rest, base);
}

function parse5424(rest: string, base: { facility: number; severity: number }): SyslogMessage {
  // VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP STRUCTURED-DATA [SP MSG]
  const parts: string[] = [];
  let at = 0;
  for (let i = 0; i < 6; i += 1) {
    const space = rest.indexOf(' ', at);
    if (space < 0) throw new SyslogParseError('RFC 5424 header is incomplete');
    parts.push(rest.slice(at, space));
    at = space + 1;
  }
  const [version, timestamp, hostname, appName, procid, msgid] = parts as [
    string,
    string,
    string,
    string,
    string,
    string,
  ];
  if (version !== '1') throw new SyslogParseError(`unsupported syslog version ${version}`);
  if (timestamp !== '-' && Number.isNaN(Date.parse(timestamp)))
    throw new SyslogParseError(`RFC 5424 timestamp "${timestamp.slice(0, 40)}" is not a date`);
  const { data, end } = structuredData(rest, at);
  let message = rest.slice(end);
  if (message.startsWith(' ')) message = message.slice(1);
  if (message.startsWith('\uFEFF')) message = message.slice(1);
  return {
    format: 'rfc5424',
    ...base,
    timestamp: nil(timestamp),
    hostname: nil(hostname),
    app_name: nil(appName),
    procid: nil(procid),
    msgid: nil(msgid),
    structured_data: data,
    message,
  };
}

function structuredData(
  text: string,
  start: number,
): { data: Record<string, Record<string, string>>; end: number } {
  const data: Record<string, Record<string, string>> = {};
  if (text[start] === '-') return { data, end: start + 1 };
  let at = start;
  if (text[at] !== '[') throw new SyslogParseError('RFC 5424 structured data must be "-" or "[...]"');
  while (text[at] === '[') {
    at += 1;
    const idEnd = text.slice(at).search(/[ \]]/);
    if (idEnd <= 0) throw new SyslogParseError('structured data element has no SD-ID');
    const id = text.slice(at, at + idEnd);
    at += idEnd;
    const params: Record<string, string> = {};
    while (text[at] === ' ') {
      at += 1;
      const eq = text.indexOf('="', at);
      if (eq <= at) throw new SyslogParseError(`structured data "${id}" has a malformed parameter`);
      const name = text.slice(at, eq);
      at = eq + 2;
      let value = '';
      for (;;) {
        const ch = text[at];
        if (ch === undefined) throw new SyslogParseError(`structured data "${id}" is not closed`);
        if (ch === '\\' && (text[at + 1] === '"' || text[at + 1] === '\\' || text[at + 1] === ']')) {
          value += text[at + 1];
          at += 2;
        } else if (ch === '"') {
          at += 1;
          break;
        } else {
          value += ch;
          at += 1;
        }
      }
      params[name] = value;
    }
    if (text[at] !== ']') throw new SyslogParseError(`structured data "${id}" is not closed`);
    at += 1;
    data[id] = params;
  }
  return { data, end: at };
}

function parse3164(rest: string, base: { facility: number; severity: number }): SyslogMessage {
  let at = rest;
  let timestamp: string | null = null;
  let hostname: string | null = null;
  const bsd = BSD_TIME.exec(at);
  const iso = bsd ? null : ISO_TIME.exec(at);
  const time = bsd ?? iso;
  if (time) {
    timestamp = bsd ? `${bsd[1]} ${bsd[2]} ${bsd[3]}` : (time[1] as string);
    at = at.slice(time[0].length);
    // The HOSTNAME follows the timestamp unless the next word is already the tag.
    const word = /^(\S+) /.exec(at);
    const isTag = (w: string) => w.endsWith(':') || /^(CEF|LEEF):/.test(w);
    if (word && !isTag(word[1] as string)) {
      hostname = word[1] as string;
      at = at.slice(word[0].length);
    }
  }
  let appName: string | null = null;
  let procid: string | null = null;
  // A CEF or LEEF payload begins right here when the sender writes no tag.
  if (!/^(CEF|LEEF):/.test(at)) {
    const tag = BSD_TAG.exec(at);
    if (tag) {
      appName = tag[1] as string;
      procid = tag[2] ?? null;
      at = at.slice(tag[0].length);
    }
  }
  return {
    format: 'rfc3164',
    ...base,
    timestamp,
    hostname,
    app_name: appName,
    procid,
    msgid: null,
    structured_data: {},
    message: at,
  };
}
