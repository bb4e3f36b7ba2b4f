import { createSocket } from 'node:dgram';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { RecordingSink } from '../../test/helpers/log-sink.ts';
import { sleep, waitFor } from '../../test/helpers/wait.ts';
import { type SyslogListeners, startSyslogListeners } from './syslog-listener.ts';

const NOW = Date.UTC(2026, 11, 2, 3, 0, 0);
const RFC5424 =
  '<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog - ID47 [exampleSDID@32473 iut="3" eventSource="Application"] An application event';
const RFC5424_RECORD = {
  stream: 'evntslog',
  log: {
    time: Date.UTC(2003, 9, 11, 22, 14, 15, 3),
    host: 'mymachine.example.com',
    fields: {
      facility: 20,
      severity: 5,
      host: 'mymachine.example.com',
      app: 'evntslog',
      msgid: 'ID47',
      message: 'An application event',
      structuredData: { 'exampleSDID@32473': { iut: '3', eventSource: 'Application' } },
      format: '5424',
    },
  },
};
const bsd = (n: number, app = 'app') => `<13>Dec  2 02:00:0${n % 10} web ${app}[${n}]: message ${n}`;
const bsdRecord = (n: number, app = 'app') => ({
  stream: app,
  log: {
    time: Date.UTC(2026, 11, 2, 2, 0, n % 10),
    host: 'web',
    fields: {
      facility: 1,
      severity: 5,
      host: 'web',
      app,
      procid: String(n),
      message: `message ${n}`,
      format: '3164',
    },
  },
});
const octet = (msg: string) => `${Buffer.byteLength(msg)} ${msg}`;

let listeners: SyslogListeners | undefined;
let sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets) s.destroy();
  sockets = [];
  await listeners?.close();
  listeners = undefined;
});

const start = async (
  sink: RecordingSink,
  extra: Partial<Parameters<typeof startSyslogListeners>[0]> = {},
) => {
  const warnings: string[] = [];
  listeners = await startSyslogListeners({
    udp: '127.0.0.1:0',
    tcp: '127.0.0.1:0',
    maxFrameBytes: 64 * 1024,
    defaultStream: 'syslog',
    sink,
    now: () => NOW,
    warn: (m) => warnings.push(m),
    ...extra,
  });
  return { l: listeners, warnings };
};

const portOf = (address: string) => Number(address.slice(address.lastIndexOf(':') + 1));
const holderOptions = () => ({
  maxFrameBytes: 64 * 1024,
  defaultStream: 'syslog',
  sink: new RecordingSink(),
  now: () => NOW,
  warn: () => {},
});

const sendUdp = async (address: string, datagrams: (string | Buffer)[]) => {
  const socket = createSocket('udp4');
  for (const d of datagrams)
    await new Promise<void>((resolve, reject) =>
      socket.send(d, portOf(address), '127.0.0.1', (e) => (e ? reject(e) : resolve())),
    );
  socket.close();
};

const tcp = (address: string): Promise<Socket> =>
  new Promise((resolve, reject) => {
    const s = connect({ host: '127.0.0.1', port: portOf(address) }, () => resolve(s));
    s.once('error', reject);
    sockets.push(s);
  });
const write = (s: Socket, data: string | Buffer) =>
  new Promise<void>((resolve, reject) => s.write(data, (e) => (e ? reject(e) : resolve())));

describe('syslog over UDP (RFC 5426)', () => {
  it('stores an RFC 5424 datagram with every field, and RFC 3164 ones with a trailing LF', async () => {
    const sink = new RecordingSink();
    const { l } = await start(sink);
    await sendUdp(l.udpAddress!, [RFC5424, `${bsd(1)}\n`, '<14>no header at all']);
    await waitFor('3 records', () => sink.count === 3);
    expect(sink.records()).toEqual([
      RFC5424_RECORD,
      bsdRecord(1),
      {
        stream: 'syslog',
        log: {
          time: NOW,
          host: '127.0.0.1',
          fields: { facility: 1, severity: 6, message: 'no header at all', format: '3164' },
        },
      },
    ]);
    expect(l.stats()).toMatchObject({ received: 3, stored: 3, invalid: 0, dropped: 0 });
  });

  it('keeps invalid UTF-8 flagged, refuses a truncated message and an oversized datagram', async () => {
    const sink = new RecordingSink();
    const { l, warnings } = await start(sink, { maxFrameBytes: 480 });
    const bad = Buffer.concat([Buffer.from('<13>1 - - app - - - caf'), Buffer.from([0xc3, 0x28])]);
    await sendUdp(l.udpAddress!, ['<13>1 2003-10-11T22:14:15.003Z host', `<13>${'x'.repeat(600)}`, bad]);
    await waitFor('1 record', () => sink.count === 1);
    await waitFor('2 refused', () => l.stats().invalid === 2);
    expect(sink.records()[0]!.log.fields).toEqual({
      facility: 1,
      severity: 5,
      app: 'app',
      message: 'caf\uFFFD(',
      format: '5424',
      invalidUtf8: true,
    });
    // One warning per 10 s: the second refusal is counted, not warned.
    expect(warnings).toEqual([
      'syslog udp from 127.0.0.1: message refused: RFC 5424: the header ends after HOSTNAME: APP-NAME missing',
    ]);
  });

  it('drops datagrams over the in-flight bound while the sink is slow, and counts them', async () => {
    const sink = new RecordingSink();
    sink.hold();
    const { l } = await start(sink, { maxInFlightRecords: 2 });
    await sendUdp(l.udpAddress!, [bsd(1), bsd(2), bsd(3), bsd(4), bsd(5)]);
    await waitFor('5 datagrams seen', () => l.stats().received + l.stats().dropped === 5);
    expect(l.stats()).toMatchObject({ received: 2, dropped: 3, stored: 0 });
    sink.release();
    await waitFor('stored', () => l.stats().stored === 2);
    expect(sink.records()).toEqual([bsdRecord(1), bsdRecord(2)]);
  });
});

describe('syslog over TCP (RFC 6587)', () => {
  const mixed = `${octet(bsd(1))}${bsd(2)}\n${octet(RFC5424)}${bsd(3, 'other')}\r\n${octet(bsd(4))}`;
  const expected = [bsdRecord(1), bsdRecord(2), bsdRecord(4), RFC5424_RECORD, bsdRecord(3, 'other')];
  const byStream = (sink: RecordingSink) =>
    [...sink.records('app'), ...sink.records('evntslog'), ...sink.records('other')].map((r) => r);

  it('reads octet-counted and LF framing mixed on one connection', async () => {
    const sink = new RecordingSink();
    const { l } = await start(sink);
    const s = await tcp(l.tcpAddress!);
    await write(s, mixed);
    await waitFor('5 records', () => sink.count === 5);
    expect(byStream(sink)).toEqual(expected);
    // One append per stream per read.
    expect(sink.calls.map((c) => [c.stream, c.records.length])).toEqual([
      ['app', 3],
      ['evntslog', 1],
      ['other', 1],
    ]);
    expect(l.stats()).toMatchObject({ connections: 1, received: 5, stored: 5, invalid: 0 });
  });

  it('gives the same records split in two at every byte, and fed byte by byte', async () => {
    const bytes = Buffer.from(mixed);
    const sink = new RecordingSink();
    const { l } = await start(sink);
    for (let i = 1; i < bytes.length; i++) {
      const s = await tcp(l.tcpAddress!);
      s.setNoDelay(true);
      await write(s, bytes.subarray(0, i));
      await sleep(1);
      await write(s, bytes.subarray(i));
      s.end();
    }
    const runs = bytes.length - 1;
    await waitFor('every run', () => sink.count === 5 * runs, 20_000);
    expect(sink.records('app')).toEqual(
      Array.from({ length: runs }, () => [bsdRecord(1), bsdRecord(2), bsdRecord(4)]).flat(),
    );
    const one = new RecordingSink();
    const { l: l2 } = await start(one);
    listeners = l2;
    const s = await tcp(l2.tcpAddress!);
    s.setNoDelay(true);
    for (const b of bytes) await write(s, Buffer.from([b]));
    await waitFor('5 records byte by byte', () => one.count === 5);
    expect(byStream(one)).toEqual(expected);
    await l.close();
  });

  it('drops a 100 MB line fed in chunks with bounded memory, and keeps the next message', async () => {
    const sink = new RecordingSink();
    const { l, warnings } = await start(sink);
    const s = await tcp(l.tcpAddress!);
    const chunk = Buffer.alloc(1 << 20, 'x');
    globalThis.gc?.();
    const before = process.memoryUsage();
    let peakHeap = 0;
    await write(s, '<13>Dec  2 00:00:00 h a: ');
    for (let i = 0; i < 100; i++) {
      if (!s.write(chunk)) await new Promise((r) => s.once('drain', r));
      peakHeap = Math.max(peakHeap, process.memoryUsage().heapUsed);
    }
    await write(s, `\n${bsd(5)}\n`);
    await waitFor('the next message', () => sink.count === 1, 20_000);
    const after = process.memoryUsage();
    expect(sink.records()).toEqual([bsdRecord(5)]);
    expect(peakHeap - before.heapUsed).toBeLessThan(64 << 20);
    expect(after.rss - before.rss).toBeLessThan(128 << 20);
    expect(l.stats()).toMatchObject({ invalid: 1, stored: 1, connections: 1 });
    expect(warnings).toEqual([
      expect.stringMatching(
        /^syslog tcp from 127\.0\.0\.1:\d+: frame longer than maxFrameBytes \(65536\) without a newline: dropped up to the next newline$/,
      ),
    ]);
    // Still listening: a new connection is served.
    const again = await tcp(l.tcpAddress!);
    await write(again, `${bsd(6)}\n`);
    await waitFor('second connection', () => sink.count === 2);
  }, 60_000);

  it('skips a truncated message and an unparsable one, keeping the others of the connection', async () => {
    const sink = new RecordingSink();
    const { l, warnings } = await start(sink, { warnEveryMs: 0 });
    const s = await tcp(l.tcpAddress!);
    await write(s, `${bsd(1)}\n<13>1 2003-10-11T22:14:15.003Z host\nnot syslog\n${bsd(2)}\n20 <13>cut short`);
    s.end();
    await waitFor('closed', () => l.stats().connections === 0);
    await waitFor('2 records', () => sink.count === 2);
    expect(sink.records()).toEqual([bsdRecord(1), bsdRecord(2)]);
    expect(warnings.map((w) => w.replace(/:\d+:/, ':P:'))).toEqual([
      'syslog tcp from 127.0.0.1:P: message refused: RFC 5424: the header ends after HOSTNAME: APP-NAME missing',
      `syslog tcp from 127.0.0.1:P: message refused: PRI: the message must start with '<', not "not syslog"`,
      'syslog tcp from 127.0.0.1:P: connection closed inside an octet-counted frame: 13 of 20 bytes received',
    ]);
    expect(l.stats()).toMatchObject({ invalid: 3, stored: 2 });
  });

  it('counts and warns a sink rejection; the connection stays open', async () => {
    const sink = new RecordingSink();
    sink.fail(new Error('mailbox down'));
    const { l, warnings } = await start(sink);
    const s = await tcp(l.tcpAddress!);
    await write(s, `${bsd(1)}\n`);
    await waitFor('rejected', () => l.stats().sinkFailures === 1);
    sink.release();
    await write(s, `${bsd(2)}\n`);
    await waitFor('stored', () => l.stats().stored === 1);
    expect(sink.calls.map((c) => c.state)).toEqual(['rejected', 'resolved']);
    expect(warnings).toEqual([
      expect.stringMatching(/: 1 records of stream 'app' not stored: mailbox down$/),
    ]);
    expect(s.destroyed).toBe(false);
  });

  it('pauses a connection while its appends in flight pass the bound, resumes when they land', async () => {
    const sink = new RecordingSink();
    sink.hold();
    const { l } = await start(sink, { maxInFlightRecords: 3 });
    const s = await tcp(l.tcpAddress!);
    await write(s, [1, 2, 3, 4].map((n) => `${bsd(n)}\n`).join(''));
    await waitFor('paused', () => l.stats().pausedConnections === 1);
    await write(s, `${bsd(5)}\n`);
    await sleep(100);
    expect(sink.count).toBe(4);
    sink.release();
    await waitFor('the rest', () => sink.count === 5);
    expect(l.stats()).toMatchObject({ pausedConnections: 0, stored: 5 });
    expect(sink.records()).toEqual([1, 2, 3, 4, 5].map((n) => bsdRecord(n)));
  });

  it('unwinds a failed start: the UDP socket it bound is closed again', async () => {
    const { l } = await start(new RecordingSink());
    const udpPort = portOf(l.udpAddress!);
    const busy = `127.0.0.1:${portOf(l.tcpAddress!)}`;
    await l.close();
    listeners = undefined;
    const holder = await start(new RecordingSink(), { udp: false, tcp: busy });
    await expect(
      startSyslogListeners({ ...holderOptions(), udp: `127.0.0.1:${udpPort}`, tcp: busy }),
    ).rejects.toThrow(/EADDRINUSE/);
    const again = await startSyslogListeners({ ...holderOptions(), udp: `127.0.0.1:${udpPort}`, tcp: false });
    expect(again.udpAddress).toBe(`127.0.0.1:${udpPort}`);
    await again.close();
    expect(holder.l.tcpAddress).toBe(busy); // closed by afterEach
  });

  it('reports the bound addresses, and refuses a bad one with a coded error', async () => {
    const { l } = await start(new RecordingSink());
    expect(l.udpAddress).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(l.tcpAddress).toMatch(/^127\.0\.0\.1:\d+$/);
    await expect(start(new RecordingSink(), { udp: 'nope' })).rejects.toThrow(
      "ARGUS_ERR_INVALID_CONFIG: logs.syslog.udp: 'nope' is not host:port",
    );
  });
});
