/**
 * Log ingest: records per second one Argus node takes in and durably applies to its log stream
 * entity with 5 SQL log rules running on that stream, over syslog TCP and over the Fluentd forward
 * protocol, in embedded mode and in Kafka mode (one node); Debian's rsyslogd fed the same syslog
 * bytes by the same client in the same run is the peer.
 *
 * - Load: nginx-like access records (50 hosts, 20 paths, 5,000 users, 5 % 503 "upstream timeout",
 *   some 404s), built by the client before the round is timed. Syslog: RFC 5424 lines (~200 bytes)
 *   with the fields as structured data (`[req@32473 status="503" latency=… path=… user=… bytes=…]`),
 *   octet-counted (RFC 6587), APP-NAME `nginx` → stream `nginx`. Forward: the same records as flat
 *   msgpack maps, PackedForward requests of 1,000 entries with a `chunk` option, tag `nginx.access`
 *   → stream `nginx.access`; each connection keeps 2 chunks in flight and sends the next when an ack
 *   comes back (Fluent Bit's `require_ack_response` behaviour).
 * - Rules (the config source's `logrules` section, 5 per stream): count of status >= 500 by host
 *   (HAVING, so alerts fire), avg(latency) by path, count(DISTINCT user), max(bytes) of status < 400
 *   by host, count of `message LIKE '%timeout%'`; TUMBLE(1 minute). Event times are a minute ahead of
 *   the clock, so no window closes under a round's records (a record for a closed window is late and
 *   skipped, which would make the rules look cheaper); each round checks that none was late.
 * - Timing: from the client's first byte to the stream entity having applied the last record
 *   (`ask('log', stream, 'summary').records`, polled every 10 ms; applied = in a checkpoint). The count
 *   applied must be exactly what was sent.
 * - Client: a child process (this file run as a script), 4 connections in parallel, so the load
 *   generator does not take the node's event loop. The machine has 2 cores: the client, the node and
 *   (in Kafka mode) the broker share them; the CPU each used is printed.
 * - Peer: rsyslogd (imtcp on loopback, octet-counted, omfile RSYSLOG_FileFormat, no sync) started
 *   here with its own config in a temp dir, fed the same bytes over 4 connections; timed from the
 *   first byte until its file has every line. Interleaved with the embedded rounds; forward has no
 *   peer measured here (no Fluent Bit / Fluentd on the machine).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import {
  closeSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readFileSync,
  readSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { connect, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Kafka, logLevel } from 'kafkajs';
import { hostMetrics } from '../actors/host/host-metrics.ts';
import { LOG_KIND } from '../actors/log/entity.ts';
import { type LogsConfig, logs } from '../actors/log/extension.ts';
import { alerting } from '../actors/rule/alerting.ts';
import { MemoryConfigSource } from '../runtime/memory-config.ts';
import { createRuntime, type Runtime } from '../runtime/runtime.ts';
import { type ClientEntry, ForwardClient, packedForwardRequest } from '../test/helpers/forward-client.ts';
import { benchPrefix, clusterServices } from './cluster-common.ts';
import {
  type Benchmark,
  type BenchOptions,
  collect,
  type Figures,
  fmt,
  header,
  loadAverage,
  log,
  Samples,
  sleep,
  tidy,
  withRuns,
} from './common.ts';

const SYSLOG_STREAM = 'nginx';
const FORWARD_STREAM = 'nginx.access';
const CONNECTIONS = 4;
const FORWARD_BATCH = 1_000;
const FORWARD_IN_FLIGHT = 2;
const AHEAD_MS = 60_000;
const RSYSLOGD = '/usr/sbin/rsyslogd';
const HOSTS = 50;
const PATHS = Array.from(
  { length: 20 },
  (_, i) => `/api/v1/${['orders', 'users', 'carts', 'items'][i % 4]}/${i}`,
);

/** The 5 rules of a stream; `f` names a record field as that stream's records carry it. */
const rulesFor = (prefix: string, stream: string, f: (name: string) => string): Record<string, string> => ({
  [`${prefix}-5xx-by-host`]: `SELECT host, count(*) AS errors FROM "${stream}" WHERE ${f('status')} >= 500 GROUP BY host, TUMBLE(1 minute) HAVING count(*) > 100`,
  [`${prefix}-latency-by-path`]: `SELECT ${f('path')} AS path, avg(${f('latency')}) AS latency FROM "${stream}" GROUP BY ${f('path')}, TUMBLE(1 minute)`,
  [`${prefix}-distinct-users`]: `SELECT count(DISTINCT ${f('user')}) AS users FROM "${stream}" GROUP BY TUMBLE(1 minute)`,
  [`${prefix}-max-bytes`]: `SELECT host, max(${f('bytes')}) AS biggest FROM "${stream}" WHERE ${f('status')} < 400 GROUP BY host, TUMBLE(1 minute)`,
  [`${prefix}-timeouts`]: `SELECT count(*) AS timeouts FROM "${stream}" WHERE message LIKE '%timeout%' GROUP BY TUMBLE(1 minute)`,
});

const logRules = (): Record<string, string> => ({
  ...rulesFor('syslog', SYSLOG_STREAM, (name) => `"structuredData.req@32473.${name}"`),
  ...rulesFor('fwd', FORWARD_STREAM, (name) => name),
});

// ---------------------------------------------------------------------------------------------------
// The client (child process)

interface AccessRecord {
  readonly host: string;
  readonly status: number;
  readonly latency: number;
  readonly path: string;
  readonly user: string;
  readonly bytes: number;
  readonly message: string;
}

const recordAt = (i: number): AccessRecord => {
  const path = PATHS[(i * 7) % PATHS.length]!;
  const status = i % 20 === 0 ? 503 : i % 13 === 0 ? 404 : 200;
  return {
    host: `web-${String(i % HOSTS).padStart(3, '0')}`,
    status,
    latency: ((i * 7919) % 2000) / 1000,
    path,
    user: `u-${String((i * 31) % 5000).padStart(4, '0')}`,
    bytes: (i * 37) % 20_000,
    message:
      status === 503
        ? `upstream timeout while reading response header from upstream, request "GET ${path}"`
        : `"GET ${path} HTTP/1.1" ${status} referer "-" agent "curl/8.5.0"`,
  };
};

/** One octet-counted RFC 5424 frame. */
const syslogFrame = (r: AccessRecord, time: number, i: number): string => {
  const line =
    `<134>1 ${new Date(time).toISOString()} ${r.host} nginx ${1000 + (i % 64)} access ` +
    `[req@32473 status="${r.status}" latency="${r.latency}" path="${r.path}" user="${r.user}" bytes="${r.bytes}"] ${r.message}`;
  return `${Buffer.byteLength(line)} ${line}`;
};

type ToClient =
  | { readonly type: 'build'; readonly count: number; readonly base: number }
  | { readonly type: 'syslog'; readonly address: string }
  | { readonly type: 'forward'; readonly address: string };
type FromClient =
  | { readonly type: 'built'; readonly syslogBytes: number; readonly forwardBytes: number }
  | { readonly type: 'started'; readonly at: number }
  | { readonly type: 'sent'; readonly at: number };

/** Wall-clock ms with sub-ms precision, comparable across processes. */
const wallNow = (): number => performance.timeOrigin + performance.now();

const split = (address: string) => {
  const at = address.lastIndexOf(':');
  return { host: address.slice(0, at), port: Number(address.slice(at + 1)) };
};

const runClient = (): void => {
  let syslogParts: Buffer[] = [];
  let forwardParts: Buffer[][] = [];
  const reply = (m: FromClient) => process.send!(m);
  const build = (count: number, base: number) => {
    const per = Math.ceil(count / CONNECTIONS);
    syslogParts = [];
    forwardParts = [];
    let chunk = 0;
    for (let c = 0; c < CONNECTIONS; c++) {
      const frames: string[] = [];
      const requests: Buffer[] = [];
      let entries: ClientEntry[] = [];
      for (let i = c * per; i < Math.min(count, (c + 1) * per); i++) {
        const time = base + i / 100; // 10 µs apart
        const r = recordAt(i);
        frames.push(syslogFrame(r, time, i));
        const ms = Math.floor(time);
        entries.push({
          seconds: Math.floor(ms / 1000),
          nanos: (ms % 1000) * 1_000_000,
          record: { ...r },
        });
        if (entries.length === FORWARD_BATCH) {
          requests.push(packedForwardRequest(FORWARD_STREAM, entries, { chunk: `c${chunk++}` }));
          entries = [];
        }
      }
      if (entries.length > 0)
        requests.push(packedForwardRequest(FORWARD_STREAM, entries, { chunk: `c${chunk++}` }));
      syslogParts.push(Buffer.from(frames.join('')));
      forwardParts.push(requests);
    }
    reply({
      type: 'built',
      syslogBytes: syslogParts.reduce((n, b) => n + b.length, 0),
      forwardBytes: forwardParts.flat().reduce((n, b) => n + b.length, 0),
    });
  };
  const sendSyslog = async (address: string) => {
    const sockets = await Promise.all(
      syslogParts.map(
        () =>
          new Promise<ReturnType<typeof connect>>((resolve, reject) => {
            const s = connect(split(address), () => resolve(s));
            s.once('error', reject);
          }),
      ),
    );
    reply({ type: 'started', at: wallNow() });
    await Promise.all(
      sockets.map((s, c) => new Promise<void>((resolve) => s.end(syslogParts[c]!, () => resolve()))),
    );
    reply({ type: 'sent', at: wallNow() });
  };
  const sendForward = async (address: string) => {
    const clients = await Promise.all(forwardParts.map(() => ForwardClient.connect(address)));
    reply({ type: 'started', at: wallNow() });
    await Promise.all(
      clients.map(async (client, c) => {
        const requests = forwardParts[c]!;
        for (let i = 0; i < requests.length; i++) {
          if (i >= FORWARD_IN_FLIGHT) await client.waitForAcks(i - FORWARD_IN_FLIGHT + 1, 120_000);
          await client.send(requests[i]!);
        }
        await client.waitForAcks(requests.length, 120_000);
        client.end();
      }),
    );
    reply({ type: 'sent', at: wallNow() });
  };
  process.on('message', (m: ToClient) => {
    const done =
      m.type === 'build'
        ? Promise.resolve(build(m.count, m.base))
        : m.type === 'syslog'
          ? sendSyslog(m.address)
          : sendForward(m.address);
    done.catch((e: unknown) => {
      process.stderr.write(`log-ingest client: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
      process.exit(1);
    });
  });
  process.on('disconnect', () => process.exit(0));
};

if (process.argv[1] === fileURLToPath(import.meta.url) && process.send) runClient();

// ---------------------------------------------------------------------------------------------------
// The benchmark (parent)

/** CPU seconds of a process from /proc (utime + stime; 100 clock ticks a second on Linux). */
const processCpuSeconds = (pid: number): number => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
};
const selfCpuSeconds = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

interface Client {
  readonly pid: number;
  ask(m: ToClient): Promise<FromClient[]>;
  stop(): void;
}

/** The client process; `ask` resolves with its replies up to `built` or `sent`. */
const startClient = (): Client => {
  const child: ChildProcess = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(import.meta.url)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  let replies: FromClient[] = [];
  let waiting: ((r: FromClient[]) => void) | undefined;
  let failed: ((e: Error) => void) | undefined;
  child.on('message', (m: FromClient) => {
    replies.push(m);
    if (m.type !== 'started' && waiting) {
      const r = replies;
      replies = [];
      waiting(r);
    }
  });
  child.on('exit', (code) => failed?.(new Error(`the client exited (${code})`)));
  return {
    pid: child.pid!,
    ask: (m) =>
      new Promise((resolve, reject) => {
        waiting = resolve;
        failed = reject;
        child.send(m);
      }),
    stop: () => {
      failed = undefined;
      child.disconnect();
    },
  };
};

interface Phase {
  readonly records: number;
  readonly seconds: number;
  readonly nodeCores: number;
  readonly clientCores: number;
  readonly peerCores?: number;
}

/** Times one phase: from the client's first byte until `done()` resolves (the last record in). */
const timed = async (
  client: Client,
  m: ToClient,
  done: () => Promise<void>,
  records: number,
  peerPid?: number,
): Promise<Phase> => {
  collect();
  const cpu0 = selfCpuSeconds();
  const client0 = processCpuSeconds(client.pid);
  const peer0 = peerPid === undefined ? 0 : processCpuSeconds(peerPid);
  const sent = client.ask(m);
  await done();
  const end = wallNow();
  const replies = await sent;
  const started = replies.find((r) => r.type === 'started');
  if (started?.type !== 'started') throw new Error('the client did not say when it started');
  const seconds = (end - started.at) / 1000;
  return {
    records,
    seconds,
    nodeCores: (selfCpuSeconds() - cpu0) / seconds,
    clientCores: (processCpuSeconds(client.pid) - client0) / seconds,
    ...(peerPid === undefined ? {} : { peerCores: (processCpuSeconds(peerPid) - peer0) / seconds }),
  };
};

interface ArgusNode {
  readonly rt: Runtime;
  readonly syslog: string;
  readonly forward: string;
  applied(stream: string): Promise<number>;
  late(): Promise<number>;
  stop(): Promise<void>;
}

const startArgus = async (config: Record<string, unknown>): Promise<ArgusNode> => {
  const configSource = new MemoryConfigSource({ logrules: logRules() });
  const rt = createRuntime(
    {
      ...config,
      http: false,
      logs: { syslog: { udp: false, tcp: '127.0.0.1:0' }, forward: { address: '127.0.0.1:0' } },
    },
    { configSource },
  );
  const alerts = alerting();
  const logExtension = logs({ config: rt.config.logs as LogsConfig, alerting: alerts });
  rt.use(alerts)
    .use(hostMetrics({ observer: alerts.observer }))
    .use(logExtension);
  await rt.start();
  const summary = async (stream: string) =>
    (await rt.ask(LOG_KIND, stream, 'summary')) as {
      records: number;
      rules: Record<string, { late: number }>;
    };
  return {
    rt,
    syslog: logExtension.addresses.syslogTcp!,
    forward: logExtension.addresses.forward!,
    applied: async (stream) => (await summary(stream)).records,
    late: async () => {
      let late = 0;
      for (const stream of [SYSLOG_STREAM, FORWARD_STREAM])
        for (const r of Object.values((await summary(stream)).rules)) late += r.late;
      return late;
    },
    stop: () => rt.stop(),
  };
};

/** Resolves once `stream` has applied `target` records (polled every 10 ms; bounded: 10 minutes). */
const appliedReaches = async (node: ArgusNode, stream: string, target: number): Promise<void> => {
  const deadline = performance.now() + 600_000;
  while (performance.now() < deadline) {
    if ((await node.applied(stream)) >= target) return;
    await sleep(10);
  }
  throw new Error(`${stream}: ${target} records not applied within 10 minutes`);
};

interface Rsyslog {
  readonly address: string;
  readonly pid: number;
  /** Resolves once the output file holds `lines` lines in all. */
  linesReach(lines: number): Promise<void>;
  stop(): Promise<void>;
}

const freePort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });

const startRsyslog = async (dir: string): Promise<Rsyslog> => {
  const port = await freePort();
  const out = join(dir, 'out.log');
  // Only imtcp, only this ruleset: no /dev/log, nothing written outside the temp dir.
  const conf = [
    `global(workDirectory="${dir}")`,
    'module(load="imtcp")',
    `input(type="imtcp" address="127.0.0.1" port="${port}" ruleset="bench")`,
    `ruleset(name="bench") { action(type="omfile" file="${out}" template="RSYSLOG_FileFormat") }`,
  ].join('\n');
  writeFileSync(join(dir, 'rsyslog.conf'), conf);
  writeFileSync(out, '');
  const proc = spawn(RSYSLOGD, ['-n', '-f', join(dir, 'rsyslog.conf'), '-i', join(dir, 'rsyslogd.pid')], {
    stdio: ['ignore', 'inherit', 'inherit'],
    env: { ...process.env, TZ: 'UTC' },
  });
  const exited = new Promise<void>((resolve) => proc.once('exit', () => resolve()));
  for (let i = 0; ; i++) {
    const up = await new Promise<boolean>((resolve) => {
      const s = connect({ host: '127.0.0.1', port }, () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (up) break;
    if (i >= 300 || proc.exitCode !== null) throw new Error('rsyslogd did not start listening within 15 s');
    await sleep(50);
  }
  const fd = openSync(out, 'r');
  let position = 0;
  let lines = 0;
  const buffer = Buffer.alloc(1 << 20);
  const readNew = () => {
    for (;;) {
      const n = readSync(fd, buffer, 0, buffer.length, position);
      if (n === 0) return;
      position += n;
      for (let i = buffer.indexOf(10, 0); i >= 0 && i < n; i = buffer.indexOf(10, i + 1)) lines++;
    }
  };
  return {
    address: `127.0.0.1:${port}`,
    pid: proc.pid!,
    linesReach: async (target) => {
      const deadline = performance.now() + 600_000;
      while (performance.now() < deadline) {
        readNew();
        if (lines >= target) return;
        await sleep(10);
      }
      throw new Error(`rsyslogd: ${target} lines not written within 10 minutes (have ${lines})`);
    },
    stop: async () => {
      closeSync(fd);
      if (proc.exitCode === null) {
        proc.kill('SIGTERM');
        await exited;
      }
    },
  };
};

/**
 * Kafka from ARGUS_KAFKA_BROKERS, else .argus/services.json (`npm run services start`), else started
 * here (log-rule-latency.ts uses it too).
 */
export const kafkaBrokers = async (): Promise<{
  brokers: string[];
  origin: string;
  stop(): Promise<void>;
}> => {
  if (!process.env.ARGUS_KAFKA_BROKERS) {
    try {
      const state = JSON.parse(readFileSync(new URL('../.argus/services.json', import.meta.url), 'utf8')) as {
        kafkaBrokers?: string[];
      };
      if (state.kafkaBrokers?.length)
        return { brokers: state.kafkaBrokers, origin: '.argus/services.json', stop: async () => {} };
    } catch {
      // no recorded services: clusterServices starts a broker
    }
  }
  const services = await clusterServices();
  return { brokers: services.brokers, origin: services.origin, stop: () => services.stop() };
};

export const dropTopics = async (brokers: string[], prefix: string): Promise<void> => {
  const admin = new Kafka({ clientId: 'bench-cleanup', brokers, logLevel: logLevel.NOTHING }).admin();
  try {
    await admin.connect();
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(`${prefix}.`));
    if (topics.length > 0) await admin.deleteTopics({ topics, timeout: 10_000 });
  } catch (e) {
    log(`# (cleanup: deleting the ${prefix}.* topics failed: ${(e as Error).message})`);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
};

const describePhase = (name: string, p: Phase, bytes: number): string =>
  `${name} ${fmt(p.records / p.seconds)} records/s, ${fmt(bytes / p.seconds / 1e6)} MB/s ` +
  `(${tidy(p.seconds)} s; node ${tidy(p.nodeCores)} cores, client ${tidy(p.clientCores)}` +
  `${p.peerCores === undefined ? '' : `, rsyslogd ${tidy(p.peerCores)}`} cores)`;

/** Warm-up + rounds of one mode: syslog, [rsyslogd], forward, each round on fresh records. */
const measureMode = async (
  mode: 'embedded' | 'kafka',
  node: ArgusNode,
  client: Client,
  rsyslog: Rsyslog | undefined,
  count: number,
  rounds: number,
  samples: Samples,
): Promise<void> => {
  let syslogTarget = 0;
  let forwardTarget = 0;
  let rsyslogLines = 0;
  for (let round = 0; round <= rounds; round++) {
    const built = await client.ask({ type: 'build', count, base: Date.now() + AHEAD_MS });
    const b = built.find((r) => r.type === 'built');
    if (b?.type !== 'built') throw new Error('the client did not build the round');
    syslogTarget += count;
    const syslog = await timed(
      client,
      { type: 'syslog', address: node.syslog },
      () => appliedReaches(node, SYSLOG_STREAM, syslogTarget),
      count,
    );
    let peer: Phase | undefined;
    if (rsyslog) {
      rsyslogLines += count;
      const target = rsyslogLines;
      peer = await timed(
        client,
        { type: 'syslog', address: rsyslog.address },
        () => rsyslog.linesReach(target),
        count,
        rsyslog.pid,
      );
    }
    forwardTarget += count;
    const forward = await timed(
      client,
      { type: 'forward', address: node.forward },
      () => appliedReaches(node, FORWARD_STREAM, forwardTarget),
      count,
    );
    await sleep(300);
    const applied = [await node.applied(SYSLOG_STREAM), await node.applied(FORWARD_STREAM)];
    if (applied[0] !== syslogTarget || applied[1] !== forwardTarget)
      throw new Error(`applied ${applied.join(' / ')} records, sent ${syslogTarget} / ${forwardTarget}`);
    const late = await node.late();
    if (late > 0) throw new Error(`${late} records were late for their window: the rules skipped them`);
    const label = round === 0 ? 'warm-up' : `round ${round}`;
    log(
      `${mode} ${label}: ${describePhase('syslog', syslog, b.syslogBytes)}; ` +
        (peer ? `${describePhase('rsyslogd', peer, b.syslogBytes)}; ` : '') +
        `${describePhase('forward', forward, b.forwardBytes)}; ${loadAverage()}`,
    );
    if (round === 0) continue;
    const rate = (p: Phase) => p.records / p.seconds;
    samples.add(`${mode}_syslog`, rate(syslog));
    samples.add(`${mode}_syslog_mb`, b.syslogBytes / syslog.seconds / 1e6);
    samples.add(`${mode}_forward`, rate(forward));
    samples.add(`${mode}_forward_mb`, b.forwardBytes / forward.seconds / 1e6);
    samples.add(`${mode}_syslog_cores`, syslog.nodeCores);
    samples.add(`${mode}_forward_cores`, forward.nodeCores);
    // Records per CPU second of the node process: less at the mercy of the machine's other work.
    samples.add(`${mode}_syslog_per_cpu_s`, rate(syslog) / syslog.nodeCores);
    samples.add(`${mode}_forward_per_cpu_s`, rate(forward) / forward.nodeCores);
    if (peer) {
      samples.add('rsyslog', rate(peer));
      samples.add('rsyslog_cores', peer.peerCores ?? Number.NaN);
      samples.add('ratio', rate(syslog) / rate(peer));
      samples.add('rsyslog_per_cpu_s', rate(peer) / (peer.peerCores ?? Number.NaN));
    }
  }
};

const run = async (options: BenchOptions & { rounds: number }): Promise<Figures> => {
  const embeddedCount = options.quick ? 50_000 : 500_000;
  const kafkaCount = options.quick ? 20_000 : 200_000;
  header(
    'log-ingest',
    `syslog TCP (octet-counted RFC 5424) and forward (PackedForward ${FORWARD_BATCH}, acks, ${FORWARD_IN_FLIGHT} in flight) ` +
      `over ${CONNECTIONS} connections into one node with 5 log rules a stream; ${embeddedCount.toLocaleString('en')} ` +
      `(embedded) / ${kafkaCount.toLocaleString('en')} (Kafka) records a phase; peer rsyslogd (imtcp → omfile)`,
    options,
  );
  const samples = new Samples();
  const client = startClient();
  const dir = mkdtempSync(join(tmpdir(), 'argus-bench-log-ingest-'));
  try {
    mkdirSync(join(dir, 'rsyslog'));
    const rsyslog = await startRsyslog(join(dir, 'rsyslog'));
    log(`# rsyslogd pid ${rsyslog.pid} on ${rsyslog.address}; client pid ${client.pid}`);
    try {
      const node = await startArgus({
        mode: 'embedded',
        dataDir: join(dir, 'embedded'),
        nodeId: 'bench-logs',
      });
      try {
        await measureMode('embedded', node, client, rsyslog, embeddedCount, options.rounds, samples);
      } finally {
        await node.stop();
      }
    } finally {
      await rsyslog.stop();
    }
    const kafka = await kafkaBrokers();
    const prefix = benchPrefix('logs');
    log(`# Kafka ${kafka.brokers.join(',')} (${kafka.origin}), topic prefix ${prefix}`);
    try {
      const node = await startArgus({
        mode: 'kafka',
        dataDir: join(dir, 'kafka'),
        nodeId: 'bench-logs-kafka',
        kafka: { brokers: kafka.brokers, topicPrefix: prefix },
      });
      try {
        await measureMode('kafka', node, client, undefined, kafkaCount, options.rounds, samples);
      } finally {
        await node.stop();
      }
    } finally {
      await dropTopics(kafka.brokers, prefix);
      await kafka.stop();
    }
  } finally {
    client.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  log();
  const line = (name: string, key: string) => log(`${name.padEnd(34)} ${withRuns(samples.of(key))}`);
  line('embedded syslog records/s', 'embedded_syslog');
  line('embedded syslog MB/s', 'embedded_syslog_mb');
  line('rsyslogd records/s (same bytes)', 'rsyslog');
  line('ratio argus syslog / rsyslogd', 'ratio');
  line('embedded forward records/s', 'embedded_forward');
  line('embedded forward MB/s', 'embedded_forward_mb');
  line('kafka syslog records/s', 'kafka_syslog');
  line('kafka forward records/s', 'kafka_forward');
  line('kafka syslog MB/s', 'kafka_syslog_mb');
  line('kafka forward MB/s', 'kafka_forward_mb');
  line('embedded syslog records/node CPU-s', 'embedded_syslog_per_cpu_s');
  line('embedded forward records/node CPU-s', 'embedded_forward_per_cpu_s');
  line('rsyslogd records/CPU-s', 'rsyslog_per_cpu_s');
  line('kafka syslog records/node CPU-s', 'kafka_syslog_per_cpu_s');
  line('kafka forward records/node CPU-s', 'kafka_forward_per_cpu_s');
  log(
    `node cores: embedded syslog ${tidy(samples.median('embedded_syslog_cores'))}, forward ` +
      `${tidy(samples.median('embedded_forward_cores'))}; kafka syslog ${tidy(samples.median('kafka_syslog_cores'))}, ` +
      `forward ${tidy(samples.median('kafka_forward_cores'))}; rsyslogd ${tidy(samples.median('rsyslog_cores'))}`,
  );
  log('target: >= 100,000 records/s (~20 MB/s) embedded on 2 cores');
  return {
    syslog_records_per_s: tidy(samples.median('embedded_syslog')),
    forward_records_per_s: tidy(samples.median('embedded_forward')),
    mb_per_s: tidy(Math.max(samples.median('embedded_syslog_mb'), samples.median('embedded_forward_mb'))),
    rsyslog_records_per_s: tidy(samples.median('rsyslog')),
    ratio: tidy(samples.median('ratio')),
    kafka_syslog_records_per_s: tidy(samples.median('kafka_syslog')),
    kafka_forward_records_per_s: tidy(samples.median('kafka_forward')),
  };
};

export const benchmark: Benchmark = {
  name: 'log-ingest',
  summary: 'syslog TCP and forward records/s into one node with 5 log rules, embedded and Kafka, vs rsyslogd',
  defaultRounds: 3,
  run,
};
