import { describe, expect, it } from 'vitest';
import { parseCef, parseExtension } from './cef.ts';
import { TcpFramer } from './framing.ts';
import { parseLeef } from './leef.ts';
import { parseLine } from './record.ts';
import { parseSyslog } from './syslog.ts';

describe('parseSyslog', () => {
  it('reads an RFC 5424 message with structured data', () => {
    const m = parseSyslog(
      '<165>1 2026-01-15T17:05:11.482Z fw01.example.com idsd 4242 ID47 [exampleSDID@32473 iut="3" eventSource="App\\"x\\]"][meta seq="1"] BOMless message',
    );
    expect(m).toEqual({
      format: 'rfc5424',
      facility: 20,
      severity: 5,
      timestamp: '2026-01-15T17:05:11.482Z',
      hostname: 'fw01.example.com',
      app_name: 'idsd',
      procid: '4242',
      msgid: 'ID47',
      structured_data: { 'exampleSDID@32473': { iut: '3', eventSource: 'App"x]' }, meta: { seq: '1' } },
      message: 'BOMless message',
    });
  });

  it('reads RFC 5424 nil values and strips a BOM', () => {
    const m = parseSyslog('<13>1 - - - - - - \uFEFFhello');
    expect(m).toMatchObject({ timestamp: null, hostname: null, app_name: null, message: 'hello' });
  });

  it('reads an RFC 3164 message with a tag and pid', () => {
    const m = parseSyslog("<34>Oct 11 22:14:15 mymachine su[230]: 'su root' failed for lonvick");
    expect(m).toMatchObject({
      format: 'rfc3164',
      facility: 4,
      severity: 2,
      timestamp: 'Oct 11 22:14:15',
      hostname: 'mymachine',
      app_name: 'su',
      procid: '230',
      message: "'su root' failed for lonvick",
    });
  });

  it('reads an RFC 3164 message whose payload is CEF with no tag', () => {
    const m = parseSyslog('<134>Jan  5 09:01:02 host CEF:0|a|b|1|2|n|3|');
    expect(m).toMatchObject({ hostname: 'host', app_name: null, message: 'CEF:0|a|b|1|2|n|3|' });
  });

  it('reads an RFC 3164 message with no hostname whose payload is LEEF or CEF', () => {
    expect(parseSyslog('<13>Mar  2 09:20:00 LEEF:2.0|V|P|1|id|^|a=b c').message).toBe(
      'LEEF:2.0|V|P|1|id|^|a=b c',
    );
    expect(parseSyslog('<13>Mar  2 09:20:00 CEF:0|V|P|1|s|n has spaces|5|')).toMatchObject({
      hostname: null,
      message: 'CEF:0|V|P|1|s|n has spaces|5|',
    });
  });

  it('reads an RFC 3164 header with an RFC 3339 timestamp (rsyslog RSYSLOG_ForwardFormat) and finds its CEF payload', () => {
    const line =
      '<134>2026-03-02T09:14:27.123456+01:00 fw01 arcsight: CEF:0|Acme|Sentinel IDS|4.2|3001|Impossible travel|9|suser=dana.lee@example.com';
    expect(parseSyslog(line)).toMatchObject({
      format: 'rfc3164',
      timestamp: '2026-03-02T09:14:27.123456+01:00',
      hostname: 'fw01',
      app_name: 'arcsight',
    });
    const record = parseLine(line);
    expect(record.format).toBe('cef');
    expect(record.cef).toMatchObject({ signature_id: '3001', extension: { suser: 'dana.lee@example.com' } });
    expect(parseSyslog('<13>2026-03-02T09:20:00Z CEF:0|V|P|1|s|n|5|')).toMatchObject({
      timestamp: '2026-03-02T09:20:00Z',
      hostname: null,
      message: 'CEF:0|V|P|1|s|n|5|',
    });
  });

  it('refuses lines that are not syslog', () => {
    expect(() => parseSyslog('hello')).toThrow('no <PRI>');
    expect(() => parseSyslog('<999>1 - - - - - -')).toThrow('out of range');
    expect(() => parseSyslog('<13>1 2026-01-15T17:05Z host')).toThrow('incomplete');
    expect(() => parseSyslog('<13>1 notadate h a p m -')).toThrow('not a date');
    expect(() => parseSyslog('<13>1 - h a p m [x a="b"')).toThrow('not closed');
  });
});

describe('parseCef', () => {
  it('unescapes the header and the extension', () => {
    const e = parseCef(
      'CEF:0|Sec\\|Corp|IDS\\\\Pro|1.0|100|Pipe \\| and slash \\\\|9|suser=dana.lee@example.com msg=line one\\nline two \\= ok\\r act=blocked path=C:\\\\temp',
    );
    expect(e).toEqual({
      version: 0,
      device_vendor: 'Sec|Corp',
      device_product: 'IDS\\Pro',
      device_version: '1.0',
      signature_id: '100',
      name: 'Pipe | and slash \\',
      severity: '9',
      extension: {
        suser: 'dana.lee@example.com',
        msg: 'line one\nline two = ok\r',
        act: 'blocked',
        path: 'C:\\temp',
      },
    });
  });

  it('keeps spaces inside values and reads an empty extension', () => {
    expect(parseExtension('msg=two words here cs1Label=Reason  ')).toEqual({
      msg: 'two words here',
      cs1Label: 'Reason',
    });
    expect(parseCef('CEF:1|v|p|1|s|n|Low|').extension).toEqual({});
  });

  it('refuses a short header and an unreadable extension', () => {
    expect(() => parseCef('CEF:0|v|p|1|s')).toThrow('5 of 8 fields');
    expect(() => parseCef('CEF:x|v|p|1|s|n|1|')).toThrow('not a number');
    expect(() => parseCef('CEF:0|v|p|1|s|n|1|just words')).toThrow('no key=value');
  });
});

describe('parseLeef', () => {
  it('reads LEEF 1.0 with tab-delimited attributes', () => {
    const e = parseLeef('LEEF:1.0|Lancope|StealthWatch|1.0|41|src=10.0.1.8\tusrName=dana\tsev=5');
    expect(e).toMatchObject({
      version: '1.0',
      vendor: 'Lancope',
      event_id: '41',
      delimiter: '\t',
      attributes: { src: '10.0.1.8', usrName: 'dana', sev: '5' },
    });
  });

  it('reads LEEF 2.0 with a character or hex delimiter', () => {
    expect(parseLeef('LEEF:2.0|V|P|2|login|^|usrName=a b^sev=7').attributes).toEqual({
      usrName: 'a b',
      sev: '7',
    });
    expect(parseLeef('LEEF:2.0|V|P|2|login|0x7C|usrName=c|sev=1').attributes).toEqual({
      usrName: 'c',
      sev: '1',
    });
    expect(parseLeef('LEEF:2.0|V|P|2|login|x5E').delimiter).toBe('^');
  });

  it('refuses malformed LEEF', () => {
    expect(() => parseLeef('LEEF:3.0|V|P|2|id|a=b')).toThrow('not 1.0 or 2.0');
    expect(() => parseLeef('LEEF:1.0|V|P')).toThrow('header has');
    expect(() => parseLeef('LEEF:1.0|V|P|1|id|noequals')).toThrow('not key=value');
    expect(() => parseLeef('LEEF:2.0|V|P|1|id|abc|a=b')).toThrow('delimiter');
  });
});

describe('parseLine', () => {
  it('gives the record the rules see', () => {
    const r = parseLine('<134>1 2026-01-15T17:05:11Z fw app - - - CEF:0|v|p|1|s|n|5|suser=x\n');
    expect(r.format).toBe('cef');
    expect(r.syslog?.hostname).toBe('fw');
    expect(r.cef?.extension).toEqual({ suser: 'x' });
    expect(parseLine('CEF:0|v|p|1|s|n|5|').syslog).toBeNull();
    expect(parseLine('<13>Jan  1 00:00:00 h app: plain').format).toBe('text');
    expect(() => parseLine('')).toThrow('empty');
  });

  it('drops the NUL a C-string sender ends its line with, as it drops CR and LF', () => {
    const line =
      '<134>1 2026-03-02T09:14:27Z h a - - - CEF:0|A|B|1|2|n|9|suser=a@example.com externalId=ev-1';
    for (const end of ['\0', '\0\n', '\r\n\0', '\0\0'])
      expect(parseLine(`${line}${end}`).cef?.extension).toEqual({
        suser: 'a@example.com',
        externalId: 'ev-1',
      });
    expect(parseLine('<13>Jan  1 00:00:00 h app: plain\0').message).toBe('plain');
    expect(() => parseLine('\0\r\n')).toThrow('empty');
  });

  it('finds a CEF or LEEF payload after an RFC 3164 header it does not read whole', () => {
    const cef = 'CEF:0|Acme|IDS|4.2|3001|Impossible travel|9|suser=dana@example.com externalId=x1';
    for (const header of [
      '<134>Mar  2 2026 09:14:27 host', // a year
      '<134>Mar 02 09:14:27.123 host', // milliseconds
      '<134>Mar  2 09:14:27 host app', // a tag without a colon
      '<134>Mar  2 09:14:27 host app[42] -', // text before the payload
    ]) {
      const record = parseLine(`${header} ${cef}`);
      expect(record.format).toBe('cef');
      expect(record.cef).toMatchObject({
        name: 'Impossible travel',
        extension: { suser: 'dana@example.com', externalId: 'x1' },
      });
    }
    expect(parseLine('<134>Mar  2 09:14:27 host app CEF:0|A|B|1|2|n|9|').syslog).toMatchObject({
      hostname: 'host',
    });
    const leef = parseLine('<13>Mar  2 2026 09:20:00 qradar LEEF:2.0|V|P|1|login|^|usrName=a^sev=7');
    expect(leef.format).toBe('leef');
    expect(leef.leef?.attributes).toEqual({ usrName: 'a', sev: '7' });
    // Inside a message a version digit must follow: prose that names CEF stays text.
    expect(parseLine('<13>Jan  1 00:00:00 h app: forwarding CEF: disabled').format).toBe('text');
    expect(parseLine('<13>Jan  1 00:00:00 h app: sent as xCEF:0|a').format).toBe('text');
    // A payload the message begins with is read as before, a broken one refused.
    expect(() => parseLine('<13>Jan  1 00:00:00 h CEF:x|v|p|1|s|n|1|')).toThrow('not a number');
    expect(() => parseLine('<13>Mar  2 2026 09:14:27 h CEF:0|v|p')).toThrow('of 8 fields');
  });

  it('takes time linear in runs of spaces or line ends inside a line, which any sender may put there', () => {
    // Trailing-whitespace regexes (/\s+$/) take time quadratic in such a run: a 1 MiB line
    // (max_line_bytes allows it) held the event loop for minutes.
    const run = 400_000;
    const started = performance.now();
    const spaced = parseLine(`CEF:0|v|p|1|s|n|5|suser=a@example.com msg=a${' '.repeat(run)}b  \r\n`);
    const broken = parseLine(`CEF:0|v|p|1|s|n|5|msg=a${'\r'.repeat(run)}b\r\n\r\n`);
    const elapsed = performance.now() - started;
    expect(spaced.cef?.extension).toEqual({ suser: 'a@example.com', msg: `a${' '.repeat(run)}b` });
    expect(broken.cef?.extension).toEqual({ msg: `a${'\r'.repeat(run)}b` });
    // Linear: milliseconds. Quadratic: 400,000² steps, far beyond this bound on any machine.
    expect(elapsed).toBeLessThan(5_000);
  });
});

describe('TcpFramer', () => {
  function frames(max: number, chunks: string[]) {
    const out: string[] = [];
    let oversized = 0;
    const framer = new TcpFramer(max, { frame: (m) => out.push(m), oversized: () => (oversized += 1) });
    for (const c of chunks) framer.push(Buffer.from(c));
    return { out, oversized };
  }

  it('splits LF-framed and octet-counted messages, across chunk boundaries', () => {
    const { out } = frames(100, ['<1>a\r\n<2>b', '\n9 <3>c\nd e\n', '5 <4>f', 'g<5>h\n']);
    expect(out).toEqual(['<1>a', '<2>b', '<3>c\nd e', '<4>fg', '<5>h']);
  });

  it('skips oversized frames whole, of either kind', () => {
    const long = 'x'.repeat(50);
    const { out, oversized } = frames(20, [
      `<1>${long}`,
      `${long}\n<2>ok\n`,
      `60 ${'y'.repeat(30)}`,
      `${'y'.repeat(30)}<3>ok\n`,
    ]);
    expect(out).toEqual(['<2>ok', '<3>ok']);
    expect(oversized).toBe(2);
  });

  it('ends a frame at a NUL as at an LF (RFC 6587 names both trailers)', () => {
    const m = (i: number) => `<134>Mar  2 09:14:27 host CEF:0|A|B|1|2|n|9|externalId=e${i}`;
    expect(frames(2048, [`${m(1)}\0${m(2)}\0${m(3)}`, `\0`]).out).toEqual([m(1), m(2), m(3)]);
    // NUL and LF both (one frame, not an empty one), and CR before the NUL.
    expect(frames(2048, [`${m(1)}\0\n${m(2)}\r\0${m(3)}\n`]).out).toEqual([m(1), m(2), m(3)]);
    // A NUL trailer counted into an octet-counted frame is not part of the message.
    const counted = `${m(4)}\0`;
    expect(frames(2048, [`${counted.length} ${counted}`]).out).toEqual([m(4)]);
  });

  it('skips each oversized NUL-ended frame alone, counting each one', () => {
    const big = 'x'.repeat(50);
    const { out, oversized } = frames(20, [
      `<1>${big}`,
      `${big}\0<2>ok\0<3>${big}\0<4>ok\0`,
      `<5>${big}`,
      `\0<6>ok\0`,
    ]);
    expect(out).toEqual(['<2>ok', '<4>ok', '<6>ok']);
    expect(oversized).toBe(3);
  });

  it('frames a stream of NUL-ended messages in time linear in its length', () => {
    const m = (i: number) => `<134>Mar  2 09:14:27 host CEF:0|A|B|1|2|n|9|externalId=e${i}\0`;
    const chunk = Buffer.from(Array.from({ length: 40_000 }, (_, i) => m(i)).join(''));
    const started = performance.now();
    const out: string[] = [];
    const framer = new TcpFramer(1_048_576, { frame: (x) => out.push(x), oversized: () => undefined });
    framer.push(chunk);
    expect(out).toHaveLength(40_000);
    // Linear: milliseconds. Reading to the end of a 2.5 MB chunk once per frame: 10^11 steps.
    expect(performance.now() - started).toBeLessThan(5_000);
  });
});
