/**
 * Push ingest: points per second one embedded Argus node takes over InfluxDB line protocol, against
 * InfluxDB 1.x (Debian's influxd 1.6, scripts/services/influxdb.ts) ingesting the same bodies in the
 * same run.
 *
 * Load: Telegraf-like lines (cpu, mem, disk, net, diskio, system, processes; several fields a line,
 * floats and `i` integers; no `u` integers, which InfluxDB 1.6 rejects) for 1,000 hosts × 10 series
 * (measurement + tags) = 10,000 series, 39 fields a host. A batch is 5,000 lines (500 hosts), POSTed to
 * `/write?db=bench&precision=s`, uncompressed; 4 requests in flight over keep-alive connections. A
 * round is BATCHES batches, each with its own timestamp (so InfluxDB appends rather than overwrites);
 * both systems get byte-identical bodies, built before the round is timed. Points = fields, counted
 * honestly (a line with 5 fields is 5 points); lines/s is printed too.
 *
 * - Argus: `createRuntime({ mode: 'embedded', shards: 8, http: false })` + `hostMetrics()` +
 *   `startHttp`. Accepted: every request answered 2xx (its points durable in the host mailboxes).
 *   Applied: the host entities applied every point and their checkpoints landed (counted through
 *   `onOutput('metrics')`: samples in durable metrics records), which is what `argus_points_per_s` is.
 * - InfluxDB: every request answered 204 (in its WAL, fsynced, and queryable).
 *
 * Cores: the machine has 2. The systems run one at a time, rounds interleaved (Argus, then InfluxDB);
 * the load generator is this process, so during an Argus round it shares Argus's event loop, and during
 * an InfluxDB round it runs beside influxd. The CPU each used is printed (cores = CPU s / wall s), and
 * points per CPU second of the ingesting process (Argus: the whole process, generator included).
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { Agent, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostMetrics, type MetricsRecord } from '../actors/host/host-metrics.ts';
import { startHttp } from '../runtime/http.ts';
import { createRuntime } from '../runtime/runtime.ts';
import { type RunningInfluxdb, startInfluxdb } from '../scripts/services/influxdb.ts';
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

const HOSTS = 1_000;
const LINES_PER_BATCH = 5_000;
const HOSTS_PER_BATCH = LINES_PER_BATCH / 10;
const IN_FLIGHT = 4;
const T0_S = 1_700_000_000;

interface Batch {
  readonly body: Buffer;
  readonly lines: number;
  readonly points: number;
}

/** The 10 series of one host at `ts` (seconds); `v` varies the values so that batches differ. */
const hostLines = (host: string, ts: number, v: number): string => {
  const f = (k: number) => `${(v * 7 + k * 13) % 100}.${(v + k) % 10}5`;
  const n = (k: number) => `${(v + 1) * 1_000 + k * 17}i`;
  const cpu = (c: string) =>
    `cpu,cpu=${c},host=${host} usage_idle=${f(1)},usage_iowait=${f(2)},usage_steal=0,usage_system=${f(3)},usage_user=${f(4)} ${ts}\n`;
  return (
    cpu('cpu-total') +
    cpu('cpu0') +
    cpu('cpu1') +
    `mem,host=${host} active=${n(1)},available=${n(2)},available_percent=${f(5)},used=${n(3)} ${ts}\n` +
    `disk,device=sda1,fstype=ext4,host=${host},mode=rw,path=/ free=${n(4)},inodes_free=${n(5)},used_percent=${f(6)} ${ts}\n` +
    `disk,device=sdb1,fstype=ext4,host=${host},mode=rw,path=/var/lib free=${n(6)},inodes_free=${n(7)},used_percent=${f(7)} ${ts}\n` +
    `net,host=${host},interface=eth0 bytes_recv=${n(8)},bytes_sent=${n(9)},packets_recv=${n(10)},packets_sent=${n(11)} ${ts}\n` +
    `diskio,host=${host},name=sda io_time=${n(12)},reads=${n(13)},writes=${n(14)} ${ts}\n` +
    `system,host=${host} load1=${f(8)},load15=${f(9)},load5=${f(10)},n_cpus=2i ${ts}\n` +
    `processes,host=${host} running=${n(15)},sleeping=${n(16)},total=${n(17)} ${ts}\n`
  );
};
const POINTS_PER_HOST = 39;

/** Batch `b` of round `r`: hosts [500·(b mod 2), +500) at second T0 + r·count + b. */
const buildRound = (round: number, count: number): Batch[] =>
  Array.from({ length: count }, (_, b) => {
    const ts = T0_S + round * count + b;
    const first = (b % 2) * HOSTS_PER_BATCH;
    let text = '';
    for (let h = first; h < first + HOSTS_PER_BATCH; h++)
      text += hostLines(`host-${String(h).padStart(4, '0')}`, ts, round * count + b + h);
    return { body: Buffer.from(text), lines: LINES_PER_BATCH, points: HOSTS_PER_BATCH * POINTS_PER_HOST };
  });

/** POSTs every batch, IN_FLIGHT at a time; resolves when all answered (any non-2xx is an error). */
const send = async (url: string, batches: readonly Batch[], agent: Agent): Promise<void> => {
  let next = 0;
  const post = (body: Buffer) =>
    new Promise<void>((resolve, reject) => {
      const req = request(url, { method: 'POST', agent, headers: { 'content-length': body.length } });
      req.on('response', (res) => {
        let text = '';
        res.on('data', (c: Buffer) => {
          text += c;
        });
        res.on('end', () =>
          res.statusCode! >= 200 && res.statusCode! < 300
            ? resolve()
            : reject(new Error(`${url} answered ${res.statusCode}: ${text.slice(0, 300)}`)),
        );
      });
      req.on('error', reject);
      req.end(body);
    });
  const worker = async () => {
    while (next < batches.length) await post(batches[next++]!.body);
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
};

/** CPU seconds of a process from /proc (utime + stime; clock ticks are 100 a second on Linux). */
const processCpuSeconds = (pid: number): number => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
};
const selfCpuSeconds = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

interface ArgusRound {
  readonly acceptedS: number;
  readonly appliedS: number;
  readonly cores: number;
}

interface ArgusNode {
  round(batches: readonly Batch[]): Promise<ArgusRound>;
  close(): Promise<void>;
}

const startArgus = async (dir: string): Promise<ArgusNode> => {
  const rt = createRuntime({
    mode: 'embedded',
    dataDir: dir,
    http: false,
    shards: 8,
    nodeId: 'bench-ingest',
  });
  rt.use(hostMetrics());
  let applied = 0;
  let target = Number.POSITIVE_INFINITY;
  let reached = () => {};
  rt.onOutput('metrics', (outputs) => {
    for (const o of outputs) applied += (o.value as MetricsRecord).samples.length;
    if (applied >= target) reached();
  });
  await rt.start();
  const http = await startHttp(rt, '127.0.0.1', 0);
  const agent = new Agent({ keepAlive: true, maxSockets: IN_FLIGHT });
  const url = `${http.url}/write?db=bench&precision=s`;
  return {
    round: async (batches) => {
      const points = batches.reduce((n, b) => n + b.points, 0);
      const done = new Promise<void>((resolve) => {
        reached = resolve;
      });
      target = applied + points;
      const cpu0 = selfCpuSeconds();
      const t0 = performance.now();
      await send(url, batches, agent);
      const acceptedS = (performance.now() - t0) / 1000;
      await done;
      const appliedS = (performance.now() - t0) / 1000;
      const cores = (selfCpuSeconds() - cpu0) / appliedS;
      // Exactly the points sent: a duplicate or a loss would show as a count off target.
      await sleep(200);
      if (applied !== target) throw new Error(`argus applied ${applied - target} points more than were sent`);
      return { acceptedS, appliedS, cores };
    },
    close: async () => {
      agent.destroy();
      await http.close();
      await rt.stop();
    },
  };
};

const influxRound = async (influx: RunningInfluxdb, batches: readonly Batch[], agent: Agent) => {
  const url = `${influx.url}/write?db=bench&precision=s`;
  const cpu0 = processCpuSeconds(influx.pid);
  const self0 = selfCpuSeconds();
  const t0 = performance.now();
  await send(url, batches, agent);
  const s = (performance.now() - t0) / 1000;
  return {
    s,
    cores: (processCpuSeconds(influx.pid) - cpu0) / s,
    generatorCores: (selfCpuSeconds() - self0) / s,
  };
};

const run = async (options: BenchOptions & { rounds: number }): Promise<Figures> => {
  const count = options.quick ? 8 : 40;
  const lines = count * LINES_PER_BATCH;
  const points = (count * LINES_PER_BATCH * POINTS_PER_HOST) / 10;
  header(
    'ingest',
    `line protocol push, ${HOSTS.toLocaleString('en')} hosts × 10 series, ${LINES_PER_BATCH.toLocaleString('en')}-line ` +
      `batches, ${IN_FLIGHT} in flight; ${count} batches (${lines.toLocaleString('en')} lines, ` +
      `${points.toLocaleString('en')} points) a round; Argus embedded vs InfluxDB 1.6`,
    options,
  );
  const samples = new Samples();
  const dir = mkdtempSync(join(tmpdir(), 'argus-bench-ingest-'));
  const influx = await startInfluxdb();
  const influxAgent = new Agent({ keepAlive: true, maxSockets: IN_FLIGHT });
  const argus = await startArgus(join(dir, 'argus'));
  try {
    const version = await fetch(`${influx.url}/ping`).then((r) => r.headers.get('x-influxdb-version'));
    const created = await fetch(`${influx.url}/query`, {
      method: 'POST',
      body: new URLSearchParams({ q: 'CREATE DATABASE bench' }),
    });
    if (created.status !== 200) throw new Error(`CREATE DATABASE answered ${created.status}`);
    log(`# influxd ${version} at ${influx.url} (pid ${influx.pid})`);
    // Warm-up, one round each: every host entity activated, InfluxDB's series index built, JIT warm.
    const warm = buildRound(0, count);
    await argus.round(warm);
    await influxRound(influx, warm, influxAgent);
    for (let round = 1; round <= options.rounds; round++) {
      const batches = buildRound(round, count);
      collect();
      const a = await argus.round(batches);
      collect();
      const i = await influxRound(influx, batches, influxAgent);
      const applied = points / a.appliedS;
      const peer = points / i.s;
      samples.add('argus_applied', applied);
      samples.add('argus_accepted', points / a.acceptedS);
      samples.add('argus_lines', lines / a.appliedS);
      samples.add('influx', peer);
      samples.add('influx_lines', lines / i.s);
      samples.add('ratio', applied / peer);
      samples.add('argus_cores', a.cores);
      samples.add('influx_cores', i.cores);
      samples.add('generator_cores', i.generatorCores);
      // Points per CPU second of the ingesting process: less at the mercy of other people's load.
      samples.add('argus_per_cpu_s', points / (a.cores * a.appliedS));
      samples.add('influx_per_cpu_s', peer / i.cores);
      log(
        `round ${round}: argus accepted ${fmt(points / a.acceptedS)} points/s, applied ${fmt(applied)} points/s ` +
          `(${fmt(lines / a.appliedS)} lines/s, ${tidy(a.cores)} cores); influxdb ${fmt(peer)} points/s ` +
          `(${fmt(lines / i.s)} lines/s, influxd ${tidy(i.cores)} + generator ${tidy(i.generatorCores)} cores); ` +
          `ratio ${tidy(applied / peer)}; ${loadAverage()}`,
      );
    }
  } finally {
    await argus.close();
    influxAgent.destroy();
    await influx.stop();
    rmSync(dir, { recursive: true, force: true });
  }
  log();
  log(`argus applied points/s   ${withRuns(samples.of('argus_applied'))}`);
  log(`argus accepted points/s  ${withRuns(samples.of('argus_accepted'))}`);
  log(`argus applied lines/s    ${withRuns(samples.of('argus_lines'))}`);
  log(`influxdb points/s        ${withRuns(samples.of('influx'))}`);
  log(`influxdb lines/s         ${withRuns(samples.of('influx_lines'))}`);
  log(`ratio (applied/influxdb) ${withRuns(samples.of('ratio'))}`);
  log(`argus points/CPU-s      ${withRuns(samples.of('argus_per_cpu_s'))}`);
  log(`influxd points/CPU-s    ${withRuns(samples.of('influx_per_cpu_s'))}`);
  log(
    `cores: argus process ${tidy(samples.median('argus_cores'))}; influxd ${tidy(samples.median('influx_cores'))} ` +
      `+ generator ${tidy(samples.median('generator_cores'))}`,
  );
  return {
    argus_points_per_s: tidy(samples.median('argus_applied')),
    influxdb_points_per_s: tidy(samples.median('influx')),
    ratio: tidy(samples.median('ratio')),
  };
};

export const benchmark: Benchmark = {
  name: 'ingest',
  summary: 'line protocol push: points/s applied by embedded Argus vs InfluxDB 1.6 on the same batches',
  defaultRounds: 3,
  run,
};
