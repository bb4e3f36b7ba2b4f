/**
 * Shared pieces of the host-metrics integration tests (agents.test.ts): the small metric set the
 * simulated agents serve, agent specs for it, a step clock that makes counter rates exact, a recorder
 * of what the runtime emits, and an embedded runtime with host metrics in a temp dir.
 *
 * Why a step clock: a rate is Δvalue / Δts, where ts is the poll's send time and the value is what the
 * agent computed when the request arrived a few ms later. When the poller and the agents read a clock
 * that moves in whole seconds, a poll is sent as its second begins (the poller schedules on `now()`)
 * and answered within that second, so every Δvalue is exactly rate × Δts and a test can demand the
 * scripted rate to the unit. It suits a few hosts only: every host of that poller fires as the second
 * begins, which is why the fleet test runs on the real clock.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { HostEvent, MetricsRecord } from '../../actors/host/host.ts';
import type { HostMetrics } from '../../actors/host/host-metrics.ts';
import { PollSchedule } from '../../actors/host/schedule.ts';
import type { SnmpPoller } from '../../actors/host/snmp.ts';
import type { InventoryHost } from '../../actors/host/types.ts';
import type { Clock, ConfigSource } from '../../runtime/boundaries.ts';
import { realClock } from '../../runtime/clock.ts';
import type { LifecycleEvent } from '../../runtime/events.ts';
import { MemoryConfigSource } from '../../runtime/memory-config.ts';
import { createRuntime, type Runtime } from '../../runtime/runtime.ts';
import type { AgentSpec, SimUser, SimulatedAgents, SimValue } from '../helpers/snmp-agents.ts';
import { waitFor } from '../helpers/wait.ts';

const ENTERPRISE = '1.3.6.1.4.1.99999';
/** The OIDs every simulated agent of these tests serves. */
export const OID = {
  c32: `${ENTERPRISE}.1.0`,
  resets: `${ENTERPRISE}.2.0`,
  c64: `${ENTERPRISE}.3.0`,
  load: `${ENTERPRISE}.4.0`,
  extra: `${ENTERPRISE}.5.0`,
  extra2: `${ENTERPRISE}.6.0`,
} as const;

export const SERVICE = 'sim';

/** The service's metric set: counters, plus each counter's raw value as a gauge (to see wraps). */
export const SIM_SET_YAML = `
scalars:
  - { name: sim.c32, oid: ${OID.c32}, type: counter }
  - { name: sim.c32_raw, oid: ${OID.c32}, type: gauge }
  - { name: sim.c64, oid: ${OID.c64}, type: counter }
  - { name: sim.c64_raw, oid: ${OID.c64}, type: gauge }
  - { name: sim.resets, oid: ${OID.resets}, type: counter }
  - { name: sim.resets_raw, oid: ${OID.resets}, type: gauge }
  - { name: sim.load, oid: ${OID.load}, type: gauge }
`;

/** An agent serving the set's OIDs (and the two extras of the hot-reload test); `scripts` override. */
export const simAgentSpec = (
  id: string,
  n: number,
  scripts: Partial<Record<keyof typeof OID, SimValue>> = {},
  users?: AgentSpec['users'],
): AgentSpec => {
  const values: Record<keyof typeof OID, SimValue> = {
    c32: { type: 'Counter32', start: 1_000 * n, perSecond: 10 },
    resets: { type: 'Counter32', start: 0, perSecond: 5 },
    c64: { type: 'Counter64', start: 2 ** 40, perSecond: 1_000 },
    load: { type: 'Gauge32', value: n },
    extra: { type: 'Gauge32', value: 1_000 + n },
    extra2: { type: 'Gauge32', value: 2_000 + n },
    ...scripts,
  };
  return {
    id,
    ...(users ? { users } : {}),
    scalars: Object.fromEntries(Object.entries(values).map(([k, v]) => [OID[k as keyof typeof OID], v])),
  };
};

/** Wall time that moves in whole steps (timers and monotonic time stay real). */
export const steppedClock = (stepMs: number): Clock => ({
  ...realClock,
  now: () => Math.floor(Date.now() / stepMs) * stepMs,
});

/**
 * The first `<prefix>-<n>` whose poll phase (ms into each interval) lies in [lo, hi]. Under a step
 * clock a host is polled within `phase` ms after its step begins (the poller's timer comes back every
 * `phase` ms until the step clock reaches the slot), so a small phase leaves the answer the rest of the
 * step; not too small, or the timer spins.
 */
export const idWithPhase = (prefix: string, intervalMs: number, lo: number, hi: number): string => {
  const schedule = new PollSchedule();
  for (let n = 0; ; n++) {
    const id = `${prefix}-${n}`;
    const phase = schedule.slotAfter(id, intervalMs, 0) % intervalMs;
    if (phase >= lo && phase <= hi) return id;
  }
};

/** One inventory host entry as the file holds it. */
export interface FileHost {
  readonly id: string;
  readonly address?: string;
  readonly service?: string;
  readonly interval?: number | string;
  readonly snmp?: Readonly<Record<string, unknown>>;
}

export const v2c = (port: number, timeoutMs = 300) => ({
  version: '2c' as const,
  community: 'public',
  port,
  timeoutMs,
  retries: 0,
});

/** An inventory entry's address and SNMPv2c settings for an agent on loopback. */
export const local = (port: number) => ({ address: '127.0.0.1', snmp: v2c(port) });

export const V3_USER: SimUser = {
  user: 'mon',
  level: 'authPriv',
  authProtocol: 'sha',
  authKey: 'auth-pass-1',
  privProtocol: 'aes',
  privKey: 'priv-pass-1',
};

export const v3 = (port: number, user: SimUser) => ({
  version: '3' as const,
  ...user,
  port,
  timeoutMs: 300,
  retries: 0,
});

/** One inventory host per agent (for `staticInventory`). */
export const staticHosts = (agents: SimulatedAgents, service: string, intervalMs: number): InventoryHost[] =>
  agents.agents.map((a) => ({ id: a.id, ...local(a.port), service, labels: {}, intervalMs }));

/** A memory config source holding the service's metric set. */
export const seededSets = () => new MemoryConfigSource({ metricsets: { [SERVICE]: SIM_SET_YAML } });

/** Writes the inventory file (JSON is YAML); written whole, as an editor saving it would. */
export const writeInventory = (path: string, hosts: readonly FileHost[]): void => {
  writeFileSync(path, JSON.stringify({ hosts }, null, 2));
};

/** What one observed output was, with its arrival order over both streams. */
interface Seen<T> {
  readonly seq: number;
  readonly value: T;
}

/** Everything the runtime emits to `metrics` and `host-events`, by host, in arrival order. */
export class Recorder {
  private seq = 0;
  private readonly records = new Map<string, Seen<MetricsRecord>[]>();
  private readonly events = new Map<string, Seen<HostEvent>[]>();
  /** Hosts that emitted at least one sample. */
  readonly sampled = new Set<string>();
  readonly crashes: LifecycleEvent[] = [];

  constructor(rt: Runtime) {
    rt.onOutput('metrics', (outputs) => {
      for (const o of outputs) {
        const record = o.value as MetricsRecord;
        this.push(this.records, record);
        if (record.samples.length > 0) this.sampled.add(record.host);
      }
    });
    rt.onOutput('host-events', (outputs) => {
      for (const o of outputs) this.push(this.events, o.value as HostEvent);
    });
    rt.subscribe((e) => {
      if (e.type === '@argus.lifecycle' && (e.phase === 'crashed' || e.phase === 'escalated'))
        this.crashes.push(e);
    });
  }

  private push<T extends { host: string }>(map: Map<string, Seen<T>[]>, value: T): void {
    const list = map.get(value.host) ?? [];
    list.push({ seq: ++this.seq, value });
    map.set(value.host, list);
  }

  /** The arrival number of the last output seen (of either stream). */
  get last(): number {
    return this.seq;
  }

  hostsWithSamples(): Set<string> {
    return new Set(
      [...this.records].filter(([, l]) => l.some((r) => r.value.samples.length > 0)).map(([h]) => h),
    );
  }

  recordsOf(host: string, after = 0): MetricsRecord[] {
    return (this.records.get(host) ?? []).filter((r) => r.seq > after).map((r) => r.value);
  }

  eventsOf(host: string, type?: HostEvent['type']): HostEvent[] {
    return (this.events.get(host) ?? [])
      .map((e) => e.value)
      .filter((e) => type === undefined || e.type === type);
  }

  /** Arrival number of the host's first event of `type`, or undefined. */
  eventSeq(host: string, type: HostEvent['type']): number | undefined {
    return (this.events.get(host) ?? []).find((e) => e.value.type === type)?.seq;
  }

  /** Waits for a host's readings of `raw` to go down once, then for two more; gives where it went down. */
  afterDrop(host: string, raw: string): Promise<{ values: number[]; drop: number }> {
    return waitFor(
      `${host}: ${raw} going down, then two more polls`,
      () => {
        const values = this.values(host, raw);
        const drop = values.findIndex((v, i) => i > 0 && v < values[i - 1]!);
        return drop > 0 && values.length >= drop + 3 && { values, drop };
      },
      15_000,
      50,
    );
  }

  /** The values of one metric of a host, one per record that has it, in order. */
  values(host: string, metric: string, after = 0): number[] {
    return this.recordsOf(host, after).flatMap((r) =>
      r.samples.filter((s) => s.metric === metric).map((s) => s.value as number),
    );
  }
}

export interface Embedded {
  readonly rt: Runtime;
  readonly seen: Recorder;
  stop(): Promise<void>;
}

/** An embedded runtime (journal in a temp dir, no HTTP) running `hm`, recording its outputs. */
export const startEmbedded = async (hm: HostMetrics, configSource: ConfigSource): Promise<Embedded> => {
  const dataDir = mkdtempSync(join(tmpdir(), 'argus-agents-'));
  const rt = createRuntime({ mode: 'embedded', dataDir, http: false, shards: 8 }, { configSource });
  rt.use(hm);
  const seen = new Recorder(rt);
  try {
    await rt.start();
  } catch (e) {
    rmSync(dataDir, { recursive: true, force: true });
    throw e;
  }
  return {
    rt,
    seen,
    stop: async () => {
      await rt.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
};

/** The summary a host entity answers (`ask('host', id, 'summary')`), as far as the tests read it. */
export interface Summary {
  readonly status: string;
  readonly polls: number;
  readonly failures: number;
  readonly consecutiveFailures: number;
  readonly lastError: { readonly code: string; readonly message: string } | null;
}

export const summaryOf = async (rt: Runtime, id: string): Promise<Summary> =>
  (await rt.ask('host', id, 'summary')) as Summary;

/**
 * Holds one poll's answer on its way back (a wrapper of the SNMP boundary), so a test knows a poll is
 * in flight at the moment it changes something — the inventory, say.
 */
export class PollGate {
  private holding: { port: number; reached: () => void; release?: () => void } | undefined;

  wrap(poller: SnmpPoller): SnmpPoller {
    return {
      poll: async (target, set, options) => {
        const result = await poller.poll(target, set, options);
        const h = this.holding;
        if (h && !h.release && target.snmp.port === h.port)
          await new Promise<void>((resolve) => {
            h.release = resolve;
            h.reached();
          });
        return result;
      },
      close: () => {
        this.release();
        return poller.close();
      },
    };
  }

  /** Holds the next answer from the agent on `port` until `release()`; resolves once it is held. */
  hold(port: number): Promise<void> {
    return new Promise((reached) => {
      this.holding = { port, reached };
    });
  }

  release(): void {
    const h = this.holding;
    this.holding = undefined;
    h?.release?.();
  }
}
