/**
 * The syslog listeners against real peers: util-linux `logger` (RFC 5424 and 3164, UDP and TCP with
 * octet counting) and Debian's rsyslogd forwarding what it receives over UDP and TCP (octet-counted
 * and traditional framing) in RSYSLOG_SyslogProtocol23Format and RSYSLOG_TraditionalForwardFormat.
 * The listeners are real (loopback, port 0); the sink is the recording fake, so exact records are
 * asserted. A missing peer fails the test (scripts/install-test-deps.sh installs them). The forward
 * protocol's peers are in forward-peers.test.ts.
 */
import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, createServer } from 'node:net';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type SyslogListeners, startSyslogListeners } from '../../runtime/logs/syslog-listener.ts';
import { RecordingSink } from '../helpers/log-sink.ts';
import { waitFor } from '../helpers/wait.ts';
import { expectTime, portOf, requireBinary } from './support.ts';

const run = promisify(execFile);
const LOGGER = '/usr/bin/logger';
const RSYSLOGD = '/usr/sbin/rsyslogd';
const HOST = hostname();

/** Every listener's warnings: a peer test expects none. */
const warnings: string[] = [];
afterAll(() => expect(warnings).toEqual([]));

const syslogListeners = (sink: RecordingSink): Promise<SyslogListeners> =>
  startSyslogListeners({
    udp: '127.0.0.1:0',
    tcp: '127.0.0.1:0',
    maxFrameBytes: 64 * 1024,
    defaultStream: 'syslog',
    sink,
    now: () => Date.now(),
    warn: (m) => warnings.push(m),
  });

describe('util-linux logger → syslog listeners', () => {
  const sink = new RecordingSink();
  let l: SyslogListeners;
  beforeAll(async () => {
    requireBinary(LOGGER);
    l = await syslogListeners(sink);
  });
  afterAll(() => l?.close());

  const logger = async (transport: 'udp' | 'tcp', args: string[], input?: string) => {
    const port = portOf(transport === 'udp' ? l.udpAddress! : l.tcpAddress!);
    const argv = ['--server', '127.0.0.1', '--port', port, `--${transport}`, ...args];
    if (input === undefined) return run(LOGGER, argv);
    const child = spawn(LOGGER, argv, { stdio: ['pipe', 'ignore', 'inherit'] });
    child.stdin.end(input);
    const code = await new Promise((resolve) => child.once('exit', resolve));
    expect(code).toBe(0);
  };

  it('RFC 5424 over UDP: tag, priority, PROCID, MSGID and structured data from --sd-id/--sd-param', async () => {
    const from = Date.now();
    await logger('udp', [
      '--rfc5424=notq',
      '--tag',
      'myapp',
      '--priority',
      'local3.warning',
      '--id=4242',
      '--msgid',
      'ID7',
      '--sd-id',
      'test@32473',
      '--sd-param',
      'k="v"',
      '--sd-param',
      'q="a\\"b\\]"',
      'hello udp',
    ]);
    await waitFor('the record', () => sink.records('myapp').length === 1);
    const [r] = sink.records('myapp');
    expectTime(r!.log.time, from, Date.now(), 1);
    expect(r).toEqual({
      stream: 'myapp',
      log: {
        time: r!.log.time,
        host: HOST,
        fields: {
          facility: 19,
          severity: 4,
          host: HOST,
          app: 'myapp',
          procid: '4242',
          msgid: 'ID7',
          message: 'hello udp',
          structuredData: { 'test@32473': { k: 'v', q: 'a"b]' } },
          format: '5424',
        },
      },
    });
  });

  it('RFC 5424 over TCP with --octet-count: every stdin line a message, timeQuality kept', async () => {
    const from = Date.now();
    await logger(
      'tcp',
      ['--octet-count', '--rfc5424', '--tag', 'tcpapp', '-p', 'daemon.info'],
      'one\ntwo\nthree\n',
    );
    await waitFor('3 records', () => sink.records('tcpapp').length === 3);
    const records = sink.records('tcpapp');
    expect(records.map((r) => r.log.fields.message)).toEqual(['one', 'two', 'three']);
    for (const r of records) {
      expectTime(r.log.time, from, Date.now(), 1);
      const synced = (r.log.fields.structuredData as { timeQuality: { isSynced: string } }).timeQuality
        .isSynced;
      expect(['0', '1']).toContain(synced); // whether this machine's clock is NTP-synced
      expect(r.log).toEqual({
        time: r.log.time,
        host: HOST,
        fields: {
          facility: 3,
          severity: 6,
          host: HOST,
          app: 'tcpapp',
          message: r.log.fields.message,
          structuredData: { timeQuality: { tzKnown: '1', isSynced: synced } },
          format: '5424',
        },
      });
    }
  });

  it.each(['udp', 'tcp'] as const)('RFC 3164 over %s', async (transport) => {
    const from = Date.now();
    const tag = `bsd-${transport}`;
    await logger(transport, ['--rfc3164', '--tag', tag, '-p', 'local0.notice', `hello ${transport}`]);
    await waitFor('the record', () => sink.records(tag).length === 1);
    const [r] = sink.records(tag);
    expectTime(r!.log.time, from, Date.now(), 1000);
    const host = HOST.split('.')[0]!;
    expect(r).toEqual({
      stream: tag,
      log: {
        time: r!.log.time,
        host,
        fields: { facility: 16, severity: 5, host, app: tag, message: `hello ${transport}`, format: '3164' },
      },
    });
  });
});

/** A free loopback port (bound and released: rsyslogd binds it next). */
const freePort = (): Promise<number> =>
  new Promise((resolve) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
  });

describe('rsyslogd (Debian) forwarding → syslog listeners', () => {
  // One listener pair per rsyslog action, so each record says which action and framing brought it.
  const sinks = {
    udp23: new RecordingSink(),
    tcp23: new RecordingSink(),
    tcpTrad: new RecordingSink(),
    udpTrad: new RecordingSink(),
  };
  const started: SyslogListeners[] = [];
  let dir: string;
  let rsyslogd: ChildProcess | undefined;
  let inputPort: number;

  beforeAll(async () => {
    requireBinary(RSYSLOGD);
    const l = Object.fromEntries(
      await Promise.all(
        Object.entries(sinks).map(async ([name, sink]) => {
          const listener = await syslogListeners(sink);
          started.push(listener);
          return [name, listener] as const;
        }),
      ),
    ) as Record<keyof typeof sinks, SyslogListeners>;
    dir = mkdtempSync(join(tmpdir(), 'argus-rsyslog-'));
    inputPort = await freePort();
    const forward = (port: string, protocol: string, template: string, framing = '') =>
      `  action(type="omfwd" target="127.0.0.1" port="${port}" protocol="${protocol}" ${framing} template="${template}")`;
    // No imuxsock, no /dev/log: only what the test sends to imtcp on loopback is forwarded, and
    // rsyslogd's own messages stay in the default ruleset, which has no actions.
    const conf = [
      `global(workDirectory="${dir}")`,
      'module(load="imtcp")',
      `input(type="imtcp" address="127.0.0.1" port="${inputPort}" ruleset="toArgus")`,
      'ruleset(name="toArgus") {',
      forward(portOf(l.udp23.udpAddress!), 'udp', 'RSYSLOG_SyslogProtocol23Format'),
      forward(
        portOf(l.tcp23.tcpAddress!),
        'tcp',
        'RSYSLOG_SyslogProtocol23Format',
        'TCP_Framing="octet-counted"',
      ),
      forward(portOf(l.tcpTrad.tcpAddress!), 'tcp', 'RSYSLOG_TraditionalForwardFormat'),
      forward(portOf(l.udpTrad.udpAddress!), 'udp', 'RSYSLOG_TraditionalForwardFormat'),
      '}',
    ].join('\n');
    writeFileSync(join(dir, 'rsyslog.conf'), conf);
    rsyslogd = spawn(RSYSLOGD, ['-n', '-f', join(dir, 'rsyslog.conf'), '-i', join(dir, 'rsyslogd.pid')], {
      stdio: ['ignore', 'inherit', 'inherit'],
      env: { ...process.env, TZ: 'UTC' },
    });
    await waitFor(
      'rsyslogd listening',
      () =>
        new Promise<boolean>((resolve) => {
          const probe = createServer().listen(inputPort, '127.0.0.1');
          probe.once('listening', () => probe.close(() => resolve(false)));
          probe.once('error', () => resolve(true));
        }),
      15_000,
      50,
    );
  });

  afterAll(async () => {
    if (rsyslogd?.pid !== undefined && rsyslogd.exitCode === null) {
      const exited = new Promise((resolve) => rsyslogd!.once('exit', resolve));
      process.kill(rsyslogd.pid, 'SIGTERM');
      await exited;
    }
    await Promise.all(started.map((l) => l.close()));
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('forwards RFC 5424 and RFC 3164 input in SyslogProtocol23 and traditional format, exactly', async () => {
    // Times an hour back, whole seconds: the 3164 forms carry no year nor fraction.
    const t = Math.floor((Date.now() - 3_600_000) / 1000) * 1000;
    const iso = new Date(t).toISOString().replace('.000Z', '.456789Z');
    const d = new Date(t + 1000);
    const bsdTime = `${d.toUTCString().slice(8, 11)} ${String(d.getUTCDate()).padStart(2, ' ')} ${d.toISOString().slice(11, 19)}`;
    const m5424 = `<165>1 ${iso} web1 nginx 123 ID47 [exampleSDID@32473 iut="3" eventSource="App"] hello rsyslog`;
    const m3164 = `<34>${bsdTime} web2 su[99]: bsd via rsyslog`;
    // To rsyslogd's imtcp: the 5424 message octet-counted, the 3164 one LF-framed.
    await new Promise<void>((resolve, reject) => {
      const s = connect({ host: '127.0.0.1', port: inputPort }, () =>
        s.end(`${Buffer.byteLength(m5424)} ${m5424}${m3164}\n`, () => resolve()),
      );
      s.once('error', reject);
    });
    for (const sink of Object.values(sinks))
      await waitFor('2 records per action', () => sink.count === 2, 15_000);

    const nginx = {
      facility: 20,
      severity: 5,
      host: 'web1',
      app: 'nginx',
      procid: '123',
      msgid: 'ID47',
      message: 'hello rsyslog',
      structuredData: { 'exampleSDID@32473': { iut: '3', eventSource: 'App' } },
      format: '5424',
    };
    // rsyslog keeps the space after a 3164 TAG as the first character of MSG, and writes it out.
    const su = {
      facility: 4,
      severity: 2,
      host: 'web2',
      app: 'su',
      procid: '99',
      message: ' bsd via rsyslog',
      format: '5424',
    };
    const as23 = [
      { stream: 'nginx', log: { time: t + 456, host: 'web1', fields: nginx } },
      { stream: 'su', log: { time: t + 1000, host: 'web2', fields: su } },
    ];
    expect(sinks.udp23.records()).toEqual(as23);
    expect(sinks.tcp23.records()).toEqual(as23);
    // The traditional format writes a 5424 message's TAG as rsyslog emulates it, `nginx[123]` with no
    // colon: still the app and its pid (syslog.ts reads that form too).
    const traditional = [
      {
        stream: 'nginx',
        log: {
          time: t,
          host: 'web1',
          fields: {
            facility: 20,
            severity: 5,
            host: 'web1',
            app: 'nginx',
            procid: '123',
            message: 'hello rsyslog',
            format: '3164',
          },
        },
      },
      {
        stream: 'su',
        log: {
          time: t + 1000,
          host: 'web2',
          fields: {
            facility: 4,
            severity: 2,
            host: 'web2',
            app: 'su',
            procid: '99',
            message: 'bsd via rsyslog',
            format: '3164',
          },
        },
      },
    ];
    expect(sinks.tcpTrad.records()).toEqual(traditional);
    expect(sinks.udpTrad.records()).toEqual(traditional);
    for (const l of started) expect(l.stats()).toMatchObject({ invalid: 0, stored: 2, sinkFailures: 0 });
  }, 30_000);
});
