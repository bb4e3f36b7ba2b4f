/**
 * What the host-metrics benchmarks share (snmp-poll, host-memory): the benchmark's metric set of 20
 * scalar OIDs, the simulated agents serving it (test/helpers/snmp-agents.ts, in child processes), the
 * inventory hosts pointing at them, realistic `host.polled` values, and CPU time of child processes.
 *
 * The metric set is one GET of 20 varbinds per poll: the 8 UCD CPU tick counters (Counter32), 4 memory
 * gauges, the 3 load averages (DisplayString cells of laTable, read as numbers), sysUpTime, and 4 IF-MIB
 * cells of eth0 (two Counter32 error/discard counters, two Counter64 octet counters), plus the CPU
 * derivation of the default set. Gauges pass through, 14 counters become rates, the CPU ticks become
 * percentages: the host entity does all of its work on every poll.
 */
import { readFileSync } from 'node:fs';
import { LOCAL_AGENT_OIDS as O } from '../actors/host/local-agent.ts';
import type { RawValue, SnmpSettings } from '../actors/host/types.ts';
import {
  type AgentProcess,
  type AgentSpec,
  hostAgentSpec,
  startAgentProcess,
} from '../test/helpers/snmp-agents.ts';

export const BENCH_SERVICE = 'bench';

const CPU_STATES = ['user', 'nice', 'system', 'idle', 'wait', 'interrupt', 'softIrq', 'steal'] as const;

interface BenchScalar {
  readonly name: string;
  readonly oid: string;
  readonly type: 'gauge' | 'counter';
  readonly scale?: number;
}

/** The 20 scalar OIDs, as a metric-set document's `scalars`. */
export const BENCH_SCALARS: readonly BenchScalar[] = [
  ...CPU_STATES.map((s) => ({
    name: `cpu.raw.${s.toLowerCase()}`,
    oid: `${O.ssCpuRaw[s]}.0`,
    type: 'counter' as const,
  })),
  { name: 'mem.total', oid: `${O.memTotalReal}.0`, type: 'gauge', scale: 1024 },
  { name: 'mem.available', oid: `${O.memAvailReal}.0`, type: 'gauge', scale: 1024 },
  { name: 'mem.buffers', oid: `${O.memBuffer}.0`, type: 'gauge', scale: 1024 },
  { name: 'mem.cached', oid: `${O.memCached}.0`, type: 'gauge', scale: 1024 },
  { name: 'load.1', oid: `${O.laEntry}.3.1`, type: 'gauge' },
  { name: 'load.5', oid: `${O.laEntry}.3.2`, type: 'gauge' },
  { name: 'load.15', oid: `${O.laEntry}.3.3`, type: 'gauge' },
  { name: 'sys.uptime', oid: `${O.sysUpTime}.0`, type: 'gauge', scale: 0.01 },
  { name: 'if.in_discards', oid: `${O.ifEntry}.13.1`, type: 'counter' },
  { name: 'if.in_errors', oid: `${O.ifEntry}.14.1`, type: 'counter' },
  { name: 'if.in_octets', oid: `${O.ifXEntry}.6.1`, type: 'counter' },
  { name: 'if.out_octets', oid: `${O.ifXEntry}.10.1`, type: 'counter' },
];

export const BENCH_OIDS: readonly string[] = BENCH_SCALARS.map((s) => s.oid);

/** The metric-set document of the benchmark's service (JSON, validated by the runtime's MetricSets). */
export const benchMetricSetDoc = (): string =>
  JSON.stringify({
    scalars: BENCH_SCALARS,
    derived: [
      {
        kind: 'cpu',
        name: 'cpu',
        ticks: Object.fromEntries(CPU_STATES.map((s) => [s.toLowerCase(), `cpu.raw.${s.toLowerCase()}`])),
        idle: ['idle', 'wait'],
      },
    ],
  });

export const v2cSettings = (port: number): SnmpSettings => ({
  version: '2c',
  community: 'public',
  port,
  timeoutMs: 5_000,
  retries: 0,
});

export interface BenchAgents {
  /** Ports in host order: host i is served by `ports[i]`. */
  readonly ports: readonly number[];
  readonly processes: readonly AgentProcess[];
  /** CPU seconds (user + system) used so far by each agent process. */
  cpuSeconds(): number[];
  close(): Promise<void>;
}

/** CPU seconds of a process from /proc/<pid>/stat (utime + stime, in clock ticks of 1/100 s). */
export const processCpuSeconds = (pid: number): number => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
};

/** This process's CPU seconds (user + system). */
export const ownCpuSeconds = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

/**
 * `count` agents (one per host, each on its own loopback port) split over `processes` child processes;
 * each process holds one UDP socket per agent (the fd limit of 20,000 bounds a process).
 */
export const startBenchAgents = async (
  count: number,
  processes: number,
  options: { readonly execArgv?: readonly string[] } = {},
): Promise<BenchAgents> => {
  // Host i is served by process i mod `processes`: any first n hosts are spread over all of them.
  const started = await Promise.all(
    Array.from({ length: processes }, (_, p) => {
      const specs: AgentSpec[] = [];
      for (let i = p; i < count; i += processes)
        specs.push(hostAgentSpec(`h-${i}`, { interfaces: 1, disks: 1 }));
      return startAgentProcess(specs, { startTimeoutMs: 300_000, ...options });
    }),
  );
  return {
    ports: Array.from({ length: count }, (_, i) => {
      const p = i % processes;
      return started[p]!.agents[(i - p) / processes]!.port;
    }),
    processes: started,
    cpuSeconds: () => started.map((p) => processCpuSeconds(p.pid)),
    close: async () => {
      await Promise.all(started.map((p) => p.close()));
    },
  };
};

/**
 * The 20 raw values of one poll of host `i` at time `ts`, shaped as the default set yields them: the 8
 * CPU tick counters, memory, load and uptime gauges, and two tables — the 64-bit octet counters of two
 * interfaces (tagged by ifName) and size/used of two filesystems (tagged by hrStorageDescr) — with
 * counters advancing as a busy host's do.
 */
export const polledValues = (i: number, ts: number): RawValue[] => {
  const s = ts / 1000;
  const c32 = (start: number, perSecond: number): number => Math.floor(start + perSecond * s) % 2 ** 32;
  const c64 = (start: number, perSecond: number): number => Math.floor(start + perSecond * s);
  const cpuRates = [30, 0, 10, 150, 4, 0, 6, 0];
  const values: RawValue[] = CPU_STATES.map((state, k) => ({
    metric: `cpu.raw.${state.toLowerCase()}`,
    tags: {},
    type: 'counter',
    width: 32,
    value: c32(1_000_000 + i * 7, cpuRates[k]!),
  }));
  values.push(
    { metric: 'mem.total', tags: {}, type: 'gauge', value: 8_589_934_592 },
    { metric: 'mem.available', tags: {}, type: 'gauge', value: 4_294_967_296 - (i % 1000) * 4096 },
    { metric: 'load.1', tags: {}, type: 'gauge', value: 0.15 },
    { metric: 'sys.uptime', tags: {}, type: 'gauge', value: 3_600 + s },
  );
  for (const ifName of ['eth0', 'eth1']) {
    const tags = { ifName };
    values.push(
      { metric: 'if.in_octets', tags, type: 'counter', width: 64, value: c64(5e12, 125_000) },
      { metric: 'if.out_octets', tags, type: 'counter', width: 64, value: c64(7e12, 62_500) },
    );
  }
  for (const [k, mount] of ['/', '/data1'].entries()) {
    const tags = { hrStorageDescr: mount };
    values.push(
      { metric: 'disk.size', tags, type: 'gauge', value: 2_621_440 },
      { metric: 'disk.used', tags, type: 'gauge', value: 1_310_720 + k * 1000 + (i % 100) },
    );
  }
  return values;
};
