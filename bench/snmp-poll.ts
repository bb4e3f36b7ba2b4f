/**
 * Polling capacity of one node: how many hosts a minute one embedded Argus node polls over SNMPv2c with
 * under 1 % of its slots missed or late, and what Argus costs per request over the bare net-snmp client.
 *
 * Agents: one simulated agent per host (test/helpers/snmp-agents.ts, `hostAgentSpec`), each on its own
 * loopback port, split over two child processes (a process holds one UDP socket per agent and the fd
 * limit is 20,000); every poll is one GET of the 20 scalar OIDs of bench/snmp-common.ts. Ports bound the
 * sizes: agents plus the raw client's sockets (one per session; Argus's sessions share one socket) must
 * fit Linux's ~28,000 ephemeral ports (past that a client's bind fails and net-snmp's request never
 * answers), hence 16,000 agents and a 5 s interval. The agents and
 * Argus share the machine's 2 cores: no core is pinned, the kernel schedules the three processes, and
 * the CPU time each one used in every measurement is printed (cores = CPU seconds / wall seconds).
 *
 * Argus: `createRuntime({ mode: 'embedded', shards: 16, http: false })` + `hostMetrics({ inventory,
 * concurrency })`, the real poller, net-snmp poller (session cache, one shared UDP socket), mailbox, host entities
 * (derive: 14 counter rates, CPU %), checkpoints and the metrics stream. A poll counts once its result is
 * durable in the host's mailbox.
 *
 * 1. Saturation: the first SAT_HOSTS hosts at a 1 s interval (far more than the node can do): Argus's
 *    completed polls/s (answered, less any growth of the mailbox lag: applied by the entities) →
 *    `argus_req_per_s`. Peer, same agents and hosts, same in-flight count: the bare
 *    client, `snmp.createSession` v2c per host kept open, `session.get` of the 20 OIDs round-robin →
 *    `raw_client_req_per_s`; `ratio` = argus / raw. Also shown: the bare client with a session per request
 *    (what Argus's LRU amounts to once hosts outnumber its sessions).
 * 2. Steps: N hosts at a 5 s interval; after one full interval of warm-up, a window of WINDOW_MS
 *    counts due slots (N × window / interval) against the poller's stats: `missed_pct` = (missed + late +
 *    slots not reached) / due, late = started more than LATE_MS after the slot (0.5 s: a tenth of
 *    the interval, as the default 5 s is of a 60 s one). A step passes with missed_pct < 1 %, failed < 1 %
 *    and the mailbox lag under two seconds of polls. The first step is 85 % of what saturation
 *    predicts, then +10 % after a pass and −15 % after a fail, at most 4 steps: `hosts_per_min` =
 *    largest passing N × 60 s / interval.
 *
 * With --deep the agent processes and this one write CPU profiles (--cpu-prof) into a temp directory.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import snmp from 'net-snmp';
import { type HostMetrics, hostMetrics } from '../actors/host/host-metrics.ts';
import type { PollerStats } from '../actors/host/poller.ts';
import type { InventoryHost } from '../actors/host/types.ts';
import type { InventorySource } from '../actors/inventory/sources.ts';
import { MemoryConfigSource } from '../runtime/memory-config.ts';
import { createRuntime, type Runtime } from '../runtime/runtime.ts';
import {
  type Benchmark,
  type BenchOptions,
  collect,
  type Figures,
  header,
  log,
  Samples,
  sleep,
  tidy,
  withRuns,
} from './common.ts';
import {
  BENCH_OIDS,
  BENCH_SERVICE,
  type BenchAgents,
  benchMetricSetDoc,
  ownCpuSeconds,
  startBenchAgents,
  v2cSettings,
} from './snmp-common.ts';

const INTERVAL_MS = 5_000;
const SATURATION_INTERVAL_MS = 1_000;
const LATE_MS = 500;
/** The poller's default (HostPollerOptions.concurrency); the bare client gets the same. */
const CONCURRENCY = 512;
const AGENT_PROCESSES = 2;

interface Sizes {
  readonly maxHosts: number;
  readonly satHosts: number;
  readonly windowMs: number;
  readonly satWindowMs: number;
  readonly steps: number;
}

/** CPU seconds of this process and of each agent process between two readings, over wall time. */
const cpuMeter = (agents: BenchAgents) => {
  const t0 = performance.now();
  const own0 = ownCpuSeconds();
  const agents0 = agents.cpuSeconds();
  return (): string => {
    const wall = (performance.now() - t0) / 1000;
    const own = (ownCpuSeconds() - own0) / wall;
    const a = agents.cpuSeconds().map((c, i) => (c - agents0[i]!) / wall);
    return `cores: bench process ${own.toFixed(2)}, agents ${a.map((x) => x.toFixed(2)).join(' + ')}`;
  };
};

/** The bare client: `inFlight` GETs at a time round-robin over `ports`, for `ms` after a warm-up. */
const rawClient = async (
  agents: BenchAgents,
  count: number,
  inFlight: number,
  ms: number,
  sessionPerRequest: boolean,
): Promise<{ rate: number; errors: number; cpu: string }> => {
  const ports = agents.ports.slice(0, count);
  const sessions = new Map<number, snmp.Session>();
  const open = (port: number) =>
    snmp.createSession('127.0.0.1', 'public', {
      port,
      version: snmp.Version2c,
      timeout: 5_000,
      retries: 0,
    });
  const sessionFor = (port: number): snmp.Session => {
    if (sessionPerRequest) return open(port);
    let s = sessions.get(port);
    if (!s) {
      s = open(port);
      sessions.set(port, s);
    }
    return s;
  };
  const oids = [...BENCH_OIDS];
  let next = 0;
  let done = 0;
  let errors = 0;
  let measuring = false;
  let stopping = false;
  let active = 0;
  let finished: () => void = () => {};
  const allDone = new Promise<void>((resolve) => {
    finished = resolve;
  });
  const one = (): void => {
    if (stopping) {
      if (--active === 0) finished();
      return;
    }
    const session = sessionFor(ports[next++ % ports.length]!);
    session.get(oids, (error, varbinds) => {
      if (error || !varbinds || snmp.isVarbindError(varbinds[0]!)) errors++;
      else if (measuring) done++;
      if (sessionPerRequest) session.close();
      one();
    });
  };
  for (let i = 0; i < inFlight; i++) {
    active++;
    one();
  }
  await sleep(2_000); // warm-up: every session open (reused mode), JIT warm
  measuring = true;
  const cpu = cpuMeter(agents);
  const t0 = performance.now();
  await sleep(ms);
  const rate = done / ((performance.now() - t0) / 1000);
  const cpuLine = cpu();
  stopping = true;
  await allDone;
  for (const s of sessions.values()) s.close();
  return { rate, errors, cpu: cpuLine };
};

/** An inventory whose hosts the benchmark changes between reads (then `reload()`). */
class BenchInventory implements InventorySource {
  readonly describe = 'bench';
  private hosts: InventoryHost[] = [];
  private readonly settings;

  constructor(private readonly ports: readonly number[]) {
    this.settings = ports.map((port) => v2cSettings(port));
  }

  /** The first `count` hosts polled every `intervalMs`; the others listed without an address (not polled). */
  set(count: number, intervalMs: number): void {
    this.hosts = this.ports.map((_, i) => ({
      id: `h-${i}`,
      ...(i < count ? { address: '127.0.0.1', snmp: this.settings[i]! } : {}),
      service: BENCH_SERVICE,
      labels: { rack: `r${i % 40}`, env: 'bench' },
      intervalMs,
    }));
  }

  async load() {
    return { hosts: this.hosts, errors: [] };
  }
}

interface StepResult {
  readonly hosts: number;
  readonly missedPct: number;
  readonly failedPct: number;
  readonly lag: number;
  readonly passed: boolean;
}

const delta = (a: PollerStats, b: PollerStats, k: keyof PollerStats): number => b[k] - a[k];

const hostLag = async (rt: Runtime): Promise<number> =>
  (await rt.lag()).filter((l) => l.kind === 'host').reduce((n, l) => n + l.lag, 0);

/** One Argus node through saturation and the steps; fresh data directory each round. */
const argusRound = async (agents: BenchAgents, sizes: Sizes, samples: Samples): Promise<void> => {
  const dir = mkdtempSync(join(tmpdir(), 'argus-bench-snmp-'));
  const inventory = new BenchInventory(agents.ports.slice(0, sizes.maxHosts));
  const configSource = new MemoryConfigSource({ metricsets: { [BENCH_SERVICE]: benchMetricSetDoc() } });
  const warnings: string[] = [];
  const hm: HostMetrics = hostMetrics({
    inventory,
    cycleMs: 3_600_000, // reloaded by the benchmark only
    concurrency: CONCURRENCY,
    lateAfterMs: LATE_MS,
    warn: (m) => {
      if (warnings.push(m) <= 3) log(`warning: ${m}`);
    },
  });
  const rt = createRuntime(
    { nodeId: 'bench-snmp', mode: 'embedded', dataDir: dir, http: false, shards: 16 },
    { configSource },
  ).use(hm);
  const stats = (): PollerStats => hm.pollerStats()!;
  const apply = async (count: number, intervalMs: number) => {
    inventory.set(count, intervalMs);
    await hm.reload();
  };
  try {
    await rt.start();
    // Warm-up: every host's entity activated (one poll each, at a pace the node keeps) and applied.
    await apply(sizes.satHosts, INTERVAL_MS);
    await sleep(INTERVAL_MS + 1_000);
    for (let waited = 0; waited < 30_000 && (await hostLag(rt)) > 200; waited += 500) await sleep(500);
    // Saturation: SAT_HOSTS hosts every second, far more than the node does.
    await apply(sizes.satHosts, SATURATION_INTERVAL_MS);
    await sleep(3_000);
    collect();
    const s0 = stats();
    const lag0 = await hostLag(rt);
    const cpu = cpuMeter(agents);
    const t0 = performance.now();
    await sleep(sizes.satWindowMs);
    const s1 = stats();
    const seconds = (performance.now() - t0) / 1000;
    const satLag = await hostLag(rt);
    // Completed = answered and applied by the host entities: a growing mailbox lag does not count (a
    // shrinking one, the warm-up's activations being worked off, does not add either).
    const answered = delta(s0, s1, 'succeeded') / seconds;
    const rate = Math.min(answered, answered - (satLag - lag0) / seconds);
    samples.add('argus', rate);
    log(
      `argus saturated (${sizes.satHosts.toLocaleString('en')} hosts every 1 s, ${CONCURRENCY} in flight): ` +
        `${Math.round(rate).toLocaleString('en')} polls/s completed (${Math.round(answered).toLocaleString('en')}/s answered, lag ${lag0} → ${satLag}), failed ${delta(s0, s1, 'failed')}, ` +
        `latency p50 ${tidy(s1.latencyP50Ms)} ms p99 ${tidy(s1.latencyP99Ms)} ms; ${cpu()}`,
    );

    // Steps at the real interval: first 85 % of what saturation predicts.
    const results: StepResult[] = [];
    const round500 = (n: number) => Math.max(500, Math.min(sizes.maxHosts, Math.round(n / 500) * 500));
    let hosts = round500(0.85 * rate * (INTERVAL_MS / 1000));
    for (let step = 0; step < sizes.steps; step++) {
      // A clean start: no host scheduled (an overloaded phase leaves overdue slots behind), and what it
      // left in the mailboxes applied (at most 30 s).
      await apply(0, INTERVAL_MS);
      for (let waited = 0; waited < 30_000 && (await hostLag(rt)) > 200; waited += 500) await sleep(500);
      await apply(hosts, INTERVAL_MS);
      await sleep(INTERVAL_MS + 2_000); // a full interval: new entities activated, the old rate drained
      collect();
      const a = stats();
      const stepCpu = cpuMeter(agents);
      const w0 = performance.now();
      await sleep(sizes.windowMs);
      const b = stats();
      const windowMs = performance.now() - w0;
      const lag = await hostLag(rt);
      const due = (hosts * windowMs) / INTERVAL_MS;
      const started = delta(a, b, 'started');
      const missed = delta(a, b, 'missed');
      const late = delta(a, b, 'late');
      const failed = delta(a, b, 'failed');
      const unreached = Math.max(0, due - started - missed);
      const missedPct = ((missed + late + unreached) / due) * 100;
      const failedPct = (failed / due) * 100;
      const maxLag = (2 * hosts * 1000) / INTERVAL_MS;
      const passed = missedPct < 1 && failedPct < 1 && lag < maxLag;
      results.push({ hosts, missedPct, failedPct, lag, passed });
      log(
        `step ${step + 1}: ${hosts.toLocaleString('en')} hosts every ${INTERVAL_MS / 1000} s ` +
          `(${((hosts * 60_000) / INTERVAL_MS).toLocaleString('en')} hosts/min): due ${Math.round(due)}, ` +
          `started ${started}, missed ${missed}, late ${late}, not reached ${Math.round(unreached)} → ` +
          `${tidy(missedPct)} %; failed ${failed}; lag ${lag}; p50 ${tidy(b.latencyP50Ms)} ms ` +
          `p99 ${tidy(b.latencyP99Ms)} ms; ${stepCpu()} → ${passed ? 'sustained' : 'NOT sustained'}`,
      );
      const best = Math.max(0, ...results.filter((r) => r.passed).map((r) => r.hosts));
      const worstFail = Math.min(...results.filter((r) => !r.passed).map((r) => r.hosts));
      if (passed && hosts >= sizes.maxHosts) break;
      const next = passed ? round500(hosts * 1.1) : round500(hosts * 0.85);
      if (best > 0 && next >= worstFail) break; // bracketed: the answer is between two steps tried
      if (results.some((r) => r.hosts === next)) break;
      hosts = next;
    }
    const passing = results.filter((r) => r.passed);
    const chosen = passing.length
      ? passing.reduce((x, y) => (y.hosts > x.hosts ? y : x))
      : results[results.length - 1]!;
    samples.add('hosts_per_min', passing.length ? (chosen.hosts * 60_000) / INTERVAL_MS : 0);
    samples.add('missed_pct', chosen.missedPct);
    if (warnings.length > 3) log(`(${warnings.length} warnings in all)`);
  } finally {
    await rt.stop();
    rmSync(dir, { recursive: true, force: true });
  }
};

const run = async (options: BenchOptions & { readonly rounds: number }): Promise<Figures> => {
  const sizes: Sizes = options.quick
    ? { maxHosts: 8_000, satHosts: 4_000, windowMs: 10_000, satWindowMs: 6_000, steps: 2 }
    : { maxHosts: 16_000, satHosts: 6_000, windowMs: 20_000, satWindowMs: 12_000, steps: 4 };
  header(
    'snmp-poll',
    `SNMPv2c GET of ${BENCH_OIDS.length} OIDs per poll, ${CONCURRENCY} in flight, ` +
      `up to ${sizes.maxHosts.toLocaleString('en')} simulated agents in ${AGENT_PROCESSES} processes`,
    options,
  );
  const profileDir = options.deep ? mkdtempSync(join(tmpdir(), 'argus-bench-snmp-prof-')) : undefined;
  const t0 = performance.now();
  const agents = await startBenchAgents(sizes.maxHosts, AGENT_PROCESSES, {
    ...(profileDir ? { execArgv: ['--cpu-prof', `--cpu-prof-dir=${profileDir}`] } : {}),
  });
  log(
    `${agents.ports.length.toLocaleString('en')} agents listening in ${tidy((performance.now() - t0) / 1000)} s`,
  );
  const samples = new Samples();
  try {
    for (let round = 0; round < options.rounds; round++) {
      const raw = await rawClient(agents, sizes.satHosts, CONCURRENCY, sizes.satWindowMs, false);
      samples.add('raw', raw.rate);
      log(
        `raw net-snmp, a session per host (${sizes.satHosts.toLocaleString('en')} hosts, ${CONCURRENCY} in flight): ` +
          `${Math.round(raw.rate).toLocaleString('en')} GET/s, errors ${raw.errors}; ${raw.cpu}`,
      );
      const perRequest = await rawClient(agents, sizes.satHosts, CONCURRENCY, sizes.satWindowMs / 2, true);
      samples.add('raw_per_request', perRequest.rate);
      log(
        `raw net-snmp, a session per request: ${Math.round(perRequest.rate).toLocaleString('en')} GET/s, ` +
          `errors ${perRequest.errors}; ${perRequest.cpu}`,
      );
      collect();
      await argusRound(agents, sizes, samples);
      samples.add('ratio', samples.of('argus').at(-1)! / raw.rate);
    }
  } finally {
    await agents.close();
  }
  if (profileDir) log(`CPU profiles of the agent processes in ${profileDir}`);

  log();
  log(
    `hosts/min sustained (< 1 % missed/late)  ${withRuns(samples.of('hosts_per_min'))}   target >= 100,000`,
  );
  log(`missed_pct at that step                  ${withRuns(samples.of('missed_pct'))}`);
  log(`argus polls/s at saturation              ${withRuns(samples.of('argus'))}`);
  log(`raw net-snmp GET/s (session per host)    ${withRuns(samples.of('raw'))}   <- peer`);
  log(`raw net-snmp GET/s (session per request) ${withRuns(samples.of('raw_per_request'))}`);
  log(`ratio argus / raw                        ${withRuns(samples.of('ratio'))}   target >= 0.8`);
  return {
    hosts_per_min: tidy(samples.median('hosts_per_min')),
    missed_pct: tidy(samples.median('missed_pct')),
    argus_req_per_s: tidy(samples.median('argus')),
    raw_client_req_per_s: tidy(samples.median('raw')),
    ratio: tidy(samples.median('ratio')),
  };
};

export const benchmark: Benchmark = {
  name: 'snmp-poll',
  summary: 'hosts/min one node polls with < 1 % missed (target >= 100k) and req/s vs bare net-snmp (>= 0.8)',
  defaultRounds: 1,
  run,
};
