import { describe, expect, it } from 'vitest';
import { parseSyslog, type SyslogOptions, type SyslogRecord } from './syslog.ts';

/** 2026-12-02T00:46:16Z: the clock 3164 years come from. */
const NOW = Date.UTC(2026, 11, 2, 0, 46, 16);
const options: SyslogOptions = { now: NOW };
const BOM = '\uFEFF';

const record = (line: Buffer | string, opts: SyslogOptions = options): SyslogRecord => {
  const result = parseSyslog(line, opts);
  if (!result.ok) throw new Error(`expected a record, got: ${result.error}`);
  return result.record;
};
const error = (line: Buffer | string, opts: SyslogOptions = options): string => {
  const result = parseSyslog(line, opts);
  if (result.ok) throw new Error(`expected an error, got ${JSON.stringify(result.record)}`);
  return result.error;
};

const nil5424 = {
  timestamp: null,
  host: null,
  app: null,
  procid: null,
  msgid: null,
  structuredData: {},
  message: '',
  format: '5424',
  invalidUtf8: false,
} as const;

describe('parseSyslog: RFC 5424 section 6.5 examples', () => {
  it('example 1: no STRUCTURED-DATA, a BOM before MSG', () => {
    const line = `<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - ${BOM}'su root' failed for lonvick on /dev/pts/8`;
    expect(record(line)).toEqual({
      facility: 4,
      severity: 2,
      timestamp: Date.UTC(2003, 9, 11, 22, 14, 15, 3),
      host: 'mymachine.example.com',
      app: 'su',
      procid: null,
      msgid: 'ID47',
      structuredData: {},
      message: "'su root' failed for lonvick on /dev/pts/8",
      format: '5424',
      invalidUtf8: false,
    });
  });

  it('example 1 as bytes: the BOM is EF BB BF', () => {
    const line = Buffer.concat([
      Buffer.from('<34>1 2003-10-11T22:14:15.003Z mymachine.example.com su - ID47 - '),
      Buffer.from([0xef, 0xbb, 0xbf]),
      Buffer.from("'su root' failed for lonvick on /dev/pts/8"),
    ]);
    expect(record(line).message).toBe("'su root' failed for lonvick on /dev/pts/8");
    expect(record(line).invalidUtf8).toBe(false);
  });

  it('example 2: microseconds and a -07:00 offset, no MSGID, a non-UTF-8-marked MSG', () => {
    const line =
      "<165>1 2003-08-24T05:14:15.000003-07:00 192.0.2.1 myproc 8710 - - %% It's time to make the do-nuts.";
    expect(record(line)).toEqual({
      facility: 20,
      severity: 5,
      timestamp: Date.UTC(2003, 7, 24, 12, 14, 15, 0),
      host: '192.0.2.1',
      app: 'myproc',
      procid: '8710',
      msgid: null,
      structuredData: {},
      message: "%% It's time to make the do-nuts.",
      format: '5424',
      invalidUtf8: false,
    });
  });

  it('example 3: one SD element with three params, then a BOM and MSG', () => {
    const line = `<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"] ${BOM}An application event log entry...`;
    expect(record(line)).toEqual({
      facility: 20,
      severity: 5,
      timestamp: Date.UTC(2003, 9, 11, 22, 14, 15, 3),
      host: 'mymachine.example.com',
      app: 'evntslog',
      procid: null,
      msgid: 'ID47',
      structuredData: { 'exampleSDID@32473': { iut: '3', eventSource: 'Application', eventID: '1011' } },
      message: 'An application event log entry...',
      format: '5424',
      invalidUtf8: false,
    });
  });

  it('example 4: two SD elements and no MSG', () => {
    const line =
      '<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"]';
    expect(record(line)).toEqual({
      facility: 20,
      severity: 5,
      timestamp: Date.UTC(2003, 9, 11, 22, 14, 15, 3),
      host: 'mymachine.example.com',
      app: 'evntslog',
      procid: null,
      msgid: 'ID47',
      structuredData: {
        'exampleSDID@32473': { iut: '3', eventSource: 'Application', eventID: '1011' },
        'examplePriority@32473': { class: 'high' },
      },
      message: '',
      format: '5424',
      invalidUtf8: false,
    });
  });
});

describe('parseSyslog: RFC 5424 details', () => {
  it('reads an all-NILVALUE header', () => {
    expect(record('<0>1 - - - - - -')).toEqual({ ...nil5424, facility: 0, severity: 0 });
    expect(record('<191>1 - - - - - - hi')).toEqual({ ...nil5424, facility: 23, severity: 7, message: 'hi' });
  });

  it('removes the escapes \\" \\\\ \\] from param values and keeps any other backslash', () => {
    const line = String.raw`<13>1 - h a - - [x@1 q="say \"hi\"" b="C:\\dir" r="a\]b" o="\n\d"] m`;
    expect(record(line).structuredData).toEqual({
      'x@1': { q: 'say "hi"', b: 'C:\\dir', r: 'a]b', o: '\\n\\d' },
    });
  });

  it('keeps an element with no params, a repeated param (last wins) and `__proto__` as plain keys', () => {
    const sd = record('<13>1 - h a - - [a][b x="1" x="2"][__proto__ __proto__="p"]').structuredData;
    expect(Object.keys(sd)).toEqual(['a', 'b', '__proto__']);
    expect(sd.b).toEqual({ x: '2' });
    expect(Object.getOwnPropertyDescriptor(sd, '__proto__')?.value).toEqual(
      Object.defineProperty({}, '__proto__', { value: 'p', enumerable: true }),
    );
    expect(Object.getPrototypeOf(sd)).toBe(Object.prototype);
  });

  it.each([
    ['2003-10-11T22:14:15Z', Date.UTC(2003, 9, 11, 22, 14, 15)],
    ['2003-10-11T22:14:15.1Z', Date.UTC(2003, 9, 11, 22, 14, 15, 100)],
    ['2003-10-11T22:14:15.123456Z', Date.UTC(2003, 9, 11, 22, 14, 15, 123)],
    ['2003-10-11T22:14:15+05:30', Date.UTC(2003, 9, 11, 16, 44, 15)],
    ['2003-10-11T00:00:00-00:00', Date.UTC(2003, 9, 11)],
    ['2024-02-29T12:00:00Z', Date.UTC(2024, 1, 29, 12)],
    // Years below 100 too (Date.UTC would read 50 as 1950): 1920 years with 465 leap days before 1970.
    ['0050-01-01T00:00:00Z', -(1920 * 365 + 465) * 86_400_000],
  ])('TIMESTAMP %s', (ts, ms) => {
    expect(record(`<13>1 ${ts} h a - - -`).timestamp).toBe(ms);
  });

  it('strips one trailing LF, CRLF or NUL and nothing else', () => {
    expect(record('<13>1 - h a - - - msg\n').message).toBe('msg');
    expect(record('<13>1 - h a - - - msg\r\n').message).toBe('msg');
    expect(record('<13>1 - h a - - - msg\0').message).toBe('msg');
    expect(record('<13>1 - h a - - - msg  ').message).toBe('msg  ');
    expect(record('<13>1 - h a - - - a\nb').message).toBe('a\nb');
  });
});

describe('parseSyslog: real RFC 3164 senders', () => {
  it.each([
    [
      'RFC 3164 section 5.4, example 1',
      "<34>Oct 11 22:14:15 mymachine su: 'su root' failed for lonvick on /dev/pts/8",
      { facility: 4, severity: 2, at: [2026, 9, 11, 22, 14, 15], host: 'mymachine', app: 'su', procid: null },
      "'su root' failed for lonvick on /dev/pts/8",
    ],
    [
      'RFC 3164 section 5.4, example 2 (no TAG)',
      '<13>Feb  5 17:32:18 10.0.0.99 Use the BFG!',
      { facility: 1, severity: 5, at: [2026, 1, 5, 17, 32, 18], host: '10.0.0.99', app: null, procid: null },
      'Use the BFG!',
    ],
    [
      'rsyslog RSYSLOG_TraditionalForwardFormat (space-padded day)',
      '<86>Dec  2 00:40:01 web-1 sshd[1234]: Accepted publickey for deploy from 10.1.2.3 port 50122 ssh2',
      { facility: 10, severity: 6, at: [2026, 11, 2, 0, 40, 1], host: 'web-1', app: 'sshd', procid: '1234' },
      'Accepted publickey for deploy from 10.1.2.3 port 50122 ssh2',
    ],
    [
      'rsyslog RSYSLOG_ForwardFormat (RFC 3339 timestamp)',
      '<30>2026-12-02T01:40:01.123456+01:00 web-1 systemd[1]: Started Session 42 of user deploy.',
      {
        facility: 3,
        severity: 6,
        at: [2026, 11, 2, 0, 40, 1, 123],
        host: 'web-1',
        app: 'systemd',
        procid: '1',
      },
      'Started Session 42 of user deploy.',
    ],
    [
      'rsyslog RSYSLOG_TraditionalForwardFormat of a 5424 message (tag[pid] without the colon)',
      '<165>Dec  2 00:40:01 web1 nginx[123] hello rsyslog',
      { facility: 20, severity: 5, at: [2026, 11, 2, 0, 40, 1], host: 'web1', app: 'nginx', procid: '123' },
      'hello rsyslog',
    ],
    [
      'util-linux logger --rfc3164 -n host',
      '<13>Dec  2 00:45:59 web-1 alice: hello world',
      { facility: 1, severity: 5, at: [2026, 11, 2, 0, 45, 59], host: 'web-1', app: 'alice', procid: null },
      'hello world',
    ],
    [
      'util-linux logger to /dev/log (no hostname), with --id',
      '<13>Dec  2 00:45:59 alice[4242]: hello world',
      { facility: 1, severity: 5, at: [2026, 11, 2, 0, 45, 59], host: null, app: 'alice', procid: '4242' },
      'hello world',
    ],
    [
      'syslog(3) without hostname, no pid; a date a little ahead of the clock stays in its year',
      '<38>Dec 12 08:00:00 CRON: pam_unix(cron:session): session closed',
      { facility: 4, severity: 6, at: [2026, 11, 12, 8, 0, 0], host: null, app: 'CRON', procid: null },
      'pam_unix(cron:session): session closed',
    ],
    [
      'a single-digit day written without padding',
      '<13>Dec 2 00:45:59 web-1 app: x',
      { facility: 1, severity: 5, at: [2026, 11, 2, 0, 45, 59], host: 'web-1', app: 'app', procid: null },
      'x',
    ],
    [
      'a tag with dots, dashes and slashes (postfix)',
      '<22>Dec  1 23:59:59 mx1 postfix/smtpd[77]: connect from unknown[192.0.2.7]\n',
      {
        facility: 2,
        severity: 6,
        at: [2026, 11, 1, 23, 59, 59],
        host: 'mx1',
        app: 'postfix/smtpd',
        procid: '77',
      },
      'connect from unknown[192.0.2.7]',
    ],
  ] as const)('%s', (_name, line, want, message) => {
    const [y, mo, d, h, mi, s, ms = 0] = want.at;
    expect(record(line)).toEqual({
      facility: want.facility,
      severity: want.severity,
      timestamp: Date.UTC(y, mo, d, h, mi, s, ms),
      host: want.host,
      app: want.app,
      procid: want.procid,
      msgid: null,
      structuredData: {},
      message,
      format: '3164',
      invalidUtf8: false,
    });
  });

  it('reads util-linux logger --rfc5424 (its default over the network) with timeQuality', () => {
    const line =
      '<13>1 2015-10-01T14:07:59.168662+02:00 ws kzak - - [timeQuality tzKnown="1" isSynced="1" syncAccuracy="218616"] hello';
    expect(record(line)).toMatchObject({
      timestamp: Date.UTC(2015, 9, 1, 12, 7, 59, 168),
      host: 'ws',
      app: 'kzak',
      procid: null,
      msgid: null,
      structuredData: { timeQuality: { tzKnown: '1', isSynced: '1', syncAccuracy: '218616' } },
      message: 'hello',
      format: '5424',
    });
  });

  it('reads rsyslog RSYSLOG_SyslogProtocol23Format (trailing LF)', () => {
    const line = '<86>1 2026-12-02T00:40:01.000123+00:00 web-1 sshd 1234 - - Accepted publickey\n';
    expect(record(line)).toMatchObject({
      host: 'web-1',
      app: 'sshd',
      procid: '1234',
      message: 'Accepted publickey',
    });
  });

  it('takes the year from the clock, the previous one for a December line read in January', () => {
    const jan = { now: Date.UTC(2027, 0, 1, 0, 0, 5) };
    expect(record('<13>Dec 31 23:59:58 h a: x', jan).timestamp).toBe(Date.UTC(2026, 11, 31, 23, 59, 58));
    expect(record('<13>Jan  1 00:00:01 h a: x', jan).timestamp).toBe(Date.UTC(2027, 0, 1, 0, 0, 1));
  });

  it('reads the timestamp in the configured zone', () => {
    const cet = { now: NOW, utcOffsetMinutes: 60 };
    expect(record('<13>Dec  2 01:40:01 h a: x', cet).timestamp).toBe(Date.UTC(2026, 11, 2, 0, 40, 1));
  });

  it('keeps a message with no timestamp whole (RFC 3164 section 4.3.3)', () => {
    expect(record('<0>1990 Oct 22 10:52:01 TZ-6 scapegoat.dmz.example.org sched[0]: Folks!')).toMatchObject({
      timestamp: null,
      host: null,
      app: null,
      message: '1990 Oct 22 10:52:01 TZ-6 scapegoat.dmz.example.org sched[0]: Folks!',
    });
    expect(record('<13>May I help you')).toMatchObject({ timestamp: null, message: 'May I help you' });
    expect(record('<13>kernel: oops')).toMatchObject({ timestamp: null, app: 'kernel', message: 'oops' });
  });
});

describe('parseSyslog: invalid UTF-8', () => {
  it('decodes bad bytes as U+FFFD and flags the record', () => {
    const line = Buffer.concat([
      Buffer.from('<13>1 - h a - - - caf'),
      Buffer.from([0xc3, 0x28, 0xff]),
      Buffer.from('!'),
    ]);
    expect(record(line)).toMatchObject({ message: 'caf\uFFFD(\uFFFD!', invalidUtf8: true });
  });

  it('flags a bad byte in a 3164 line and in a host name, which then fails as non-printable', () => {
    expect(record(Buffer.from([...Buffer.from('<13>Dec  2 00:00:00 h a: '), 0xfe]))).toMatchObject({
      message: '\uFFFD',
      invalidUtf8: true,
    });
    expect(error(Buffer.from([...Buffer.from('<13>1 - h'), 0x80, ...Buffer.from(' a - - -')]))).toBe(
      'RFC 5424: HOSTNAME: character U+FFFD at 1 is not printable ASCII',
    );
  });

  it('does not flag valid multi-byte UTF-8', () => {
    expect(record(Buffer.from('<13>1 - h a - - - größe ✓ 🚀'))).toMatchObject({
      message: 'größe ✓ 🚀',
      invalidUtf8: false,
    });
  });
});

describe('parseSyslog: rejected input', () => {
  it.each([
    ['', 'empty message'],
    ['hello', `PRI: the message must start with '<', not "hello"`],
    ['<', "PRI: the message ends before the closing '>'"],
    ['<13', "PRI: the message ends before the closing '>'"],
    ['<>1 -', `PRI: "<" is not '<' 1–3 digits '>'`],
    ['<1x>1 -', `PRI: "<1x" is not '<' 1–3 digits '>'`],
    ['<1234>x', `PRI: "<1234" is not '<' 1–3 digits '>'`],
    ['<192>1 - - - - - -', 'PRI: 192 is out of range (0–191: facility 0–23 × 8 + severity)'],
    ['<999>Dec  2 00:00:00 h a: x', 'PRI: 999 is out of range (0–191: facility 0–23 × 8 + severity)'],
    ['<13>2 - - - - - -', 'RFC 5424: unsupported VERSION 2 (only 1 is defined)'],
    ['<13>1', 'RFC 5424: the header ends after VERSION: TIMESTAMP missing'],
    ['<13>1 ', 'RFC 5424: the header ends after VERSION: TIMESTAMP missing'],
    ['<13>1 -', 'RFC 5424: the header ends after TIMESTAMP: HOSTNAME missing'],
    ['<13>1 - h', 'RFC 5424: the header ends after HOSTNAME: APP-NAME missing'],
    ['<13>1 - h a', 'RFC 5424: the header ends after APP-NAME: PROCID missing'],
    ['<13>1 - h a -', 'RFC 5424: the header ends after PROCID: MSGID missing'],
    ['<13>1 - h a - -', 'RFC 5424: the header ends after MSGID: STRUCTURED-DATA missing'],
    ['<13>1 - h a - - ', 'RFC 5424: the header ends after MSGID: STRUCTURED-DATA missing'],
    ['<13>1 -  a - - -', 'RFC 5424: HOSTNAME is empty (two spaces after TIMESTAMP)'],
    [
      '<13>1 2003-10-11 h a - - -',
      'RFC 5424: TIMESTAMP "2003-10-11" is not RFC 3339 (YYYY-MM-DDThh:mm:ss[.ffffff](Z|±hh:mm))',
    ],
    [
      '<13>1 2003-10-11t22:14:15Z h a - - -',
      'RFC 5424: TIMESTAMP "2003-10-11t22:14:15Z" is not RFC 3339 (YYYY-MM-DDThh:mm:ss[.ffffff](Z|±hh:mm))',
    ],
    ['<13>1 2003-02-29T00:00:00Z h a - - -', 'RFC 5424: TIMESTAMP "2003-02-29T00:00:00Z": no such date'],
    [
      '<13>1 2003-10-11T24:00:00Z h a - - -',
      'RFC 5424: TIMESTAMP "2003-10-11T24:00:00Z": no such time of day',
    ],
    [
      '<13>1 2003-10-11T22:14:15+24:00 h a - - -',
      'RFC 5424: TIMESTAMP "2003-10-11T22:14:15+24:00": no such UTC offset',
    ],
    [`<13>1 - ${'h'.repeat(256)} a - - -`, 'RFC 5424: HOSTNAME is longer than 255 characters'],
    [`<13>1 - h ${'a'.repeat(49)} - - -`, 'RFC 5424: APP-NAME is longer than 48 characters'],
    [`<13>1 - h a - ${'m'.repeat(33)} -`, 'RFC 5424: MSGID is longer than 32 characters'],
    ['<13>1 - h a - - x', `RFC 5424: STRUCTURED-DATA must be '-' or start with '[', not "x"`],
    ['<13>1 - h a - - -x', `RFC 5424: STRUCTURED-DATA must be '-' or start with '[', not "-x"`],
    ['<13>1 - h a - - [', 'RFC 5424: STRUCTURED-DATA: SD-ID missing (the message ends)'],
    ['<13>1 - h a - - []', 'RFC 5424: STRUCTURED-DATA: SD-ID missing (found "]")'],
    ['<13>1 - h a - - [x', "RFC 5424: STRUCTURED-DATA [x: the element has no closing ']'"],
    ['<13>1 - h a - - [x ', 'RFC 5424: STRUCTURED-DATA: PARAM-NAME in [x] missing (the message ends)'],
    ['<13>1 - h a - - [x k', `RFC 5424: STRUCTURED-DATA [x] k: expected '="' (the message ends)`],
    ['<13>1 - h a - - [x k=v]', `RFC 5424: STRUCTURED-DATA [x] k: expected '="' (found "=v]")`],
    ['<13>1 - h a - - [x k="v', `RFC 5424: STRUCTURED-DATA [x] k: the value has no closing '"'`],
    ['<13>1 - h a - - [x k="v\\"]', `RFC 5424: STRUCTURED-DATA [x] k: the value has no closing '"'`],
    ['<13>1 - h a - - [x k="v"', "RFC 5424: STRUCTURED-DATA [x: the element has no closing ']'"],
    ['<13>1 - h a - - [x k="v"x]', `RFC 5424: STRUCTURED-DATA [x: expected ' ' or ']', found "x]"`],
    ['<13>1 - h a - - [x][x]', "RFC 5424: STRUCTURED-DATA: SD-ID 'x' appears twice"],
    ['<13>1 - h a - - [x]msg', `RFC 5424: STRUCTURED-DATA must be followed by a space, not "msg"`],
    [
      `<13>1 - h a - - [${'s'.repeat(33)}]`,
      `RFC 5424: STRUCTURED-DATA: SD-ID "${'s'.repeat(33)}" is longer than 32`,
    ],
    ['<13>', 'RFC 3164: the message ends after PRI: TIMESTAMP and MSG missing'],
    ['<13>\n', 'RFC 3164: the message ends after PRI: TIMESTAMP and MSG missing'],
    ['<13>Dec  2 00:46', `RFC 3164: TIMESTAMP "Dec  2 00:46" is not 'Mmm dd hh:mm:ss' (truncated)`],
    ['<13>Dec  2 00:46:16', 'RFC 3164: the message ends after TIMESTAMP: HOSTNAME and MSG missing'],
    ['<13>Dec  2 25:46:16 h a: x', `RFC 3164: TIMESTAMP "Dec  2 25:46:16": no such time of day`],
    ['<13>Feb 30 00:00:00 h a: x', `RFC 3164: TIMESTAMP "Feb 30 00:00:00": no such date around 2026`],
    ['<13>2026-13-01T00:00:00Z h a: x', 'RFC 3164: TIMESTAMP "2026-13-01T00:00:00Z": no such date'],
  ])('%j: %s', (line, message) => {
    expect(error(line)).toBe(message);
  });
});

describe('parseSyslog: fuzz (5,000 inputs)', () => {
  it('never throws and always answers ok with a well-formed record or an error', () => {
    let seed = 5424;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const seeds = [
      '<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application" eventID="1011"][examplePriority@32473 class="high"] msg',
      '<13>1 2015-10-01T14:07:59.168662+02:00 ws kzak - - [timeQuality tzKnown="1" x="a\\"b\\]c"] hello',
      '<86>Dec  2 00:40:01 web-1 sshd[1234]: Accepted publickey',
      '<30>2026-12-02T01:40:01.123456+01:00 web-1 systemd[1]: Started.',
      '<13>Dec  2 00:45:59 alice[4242]: hello world',
    ].map((s) => Buffer.from(s));
    const alphabet = [...Buffer.from('<>[]" =\\-:1 09TZ.+\n\r\0aD'), 0x80, 0xc3, 0xef, 0xbb, 0xbf, 0xff];
    let ok = 0;
    let failed = 0;
    for (let n = 0; n < 5_000; n++) {
      let bytes: number[];
      if (n % 4 === 0) bytes = Array.from({ length: Math.floor(rand() * 60) }, () => pick(alphabet));
      else {
        bytes = [...pick(seeds)];
        for (let k = 0; k < 1 + Math.floor(rand() * 4); k++) {
          const at = Math.floor(rand() * bytes.length);
          const r = rand();
          if (r < 0.4) bytes[at] = pick(alphabet);
          else if (r < 0.6) bytes.splice(at, 1);
          else if (r < 0.8) bytes.splice(at, 0, pick(alphabet));
          else bytes = bytes.slice(0, at); // truncated
        }
      }
      const input = n % 2 === 0 ? Buffer.from(bytes) : Buffer.from(bytes).toString('latin1');
      let result: ReturnType<typeof parseSyslog> | undefined;
      expect(() => {
        result = parseSyslog(input, options);
      }).not.toThrow();
      if (result?.ok) {
        ok++;
        const r = result.record;
        expect(r.facility >= 0 && r.facility <= 23 && r.severity >= 0 && r.severity <= 7).toBe(true);
        expect(r.timestamp === null || Number.isFinite(r.timestamp)).toBe(true);
        expect(typeof r.message).toBe('string');
        expect(r.format === '5424' || r.format === '3164').toBe(true);
      } else {
        failed++;
        expect(typeof result?.error).toBe('string');
        expect(result?.error.length).toBeGreaterThan(0);
      }
    }
    expect(ok).toBeGreaterThan(500);
    expect(failed).toBeGreaterThan(500);
  });
});
