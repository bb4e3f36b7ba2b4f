/**
 * What the cluster benchmarks (failover, cluster-throughput) share: Kafka and etcd (from the env or
 * started here), prefixes and their cleanup, node clusters that die with this process, an incremental
 * reader of the nodes' event files, and percentiles.
 */
import { randomBytes } from 'node:crypto';
import {
  closeSync,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  readSync,
  rmSync,
  statSync,
} from 'node:fs';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { Kafka, logLevel } from 'kafkajs';
import type { BatchEvent, ClusterEvent } from '../runtime/events.ts';
import { startEtcd, startKafka } from '../scripts/services.ts';
import { type ClusterSetup, TestCluster } from '../test/cluster/support.ts';
import { log } from './common.ts';

export interface ClusterServices {
  readonly brokers: string[];
  readonly etcd: string[];
  /** Where they came from, for the header. */
  readonly origin: string;
  /** The broker's and etcd's processes, when known (started here, or listed in .argus/services.json). */
  readonly pids: { readonly kafka?: number; readonly etcd?: number };
  stop(): Promise<void>;
}

/** The pids `npm run services start` recorded, if that is what the env points at. */
const recordedPids = (brokers: string[], etcd: string[]): { kafka?: number; etcd?: number } => {
  try {
    const state = JSON.parse(readFileSync(new URL('../.argus/services.json', import.meta.url), 'utf8')) as {
      kafkaBrokers?: string[];
      etcdEndpoints?: string[];
      pids?: { kafka?: number; etcd?: number };
    };
    return {
      kafka: state.kafkaBrokers?.join() === brokers.join() ? state.pids?.kafka : undefined,
      etcd: state.etcdEndpoints?.join() === etcd.join() ? state.pids?.etcd : undefined,
    };
  } catch {
    return {};
  }
};

const listFromEnv = (name: string): string[] =>
  (process.env[name] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');

/** Kafka and etcd from ARGUS_KAFKA_BROKERS / ARGUS_ETCD_ENDPOINTS, or throwaway ones started here. */
export const clusterServices = async (): Promise<ClusterServices> => {
  let brokers = listFromEnv('ARGUS_KAFKA_BROKERS');
  let etcd = listFromEnv('ARGUS_ETCD_ENDPOINTS');
  const stops: (() => Promise<void>)[] = [];
  const started: string[] = [];
  const pids: { kafka?: number; etcd?: number } = {};
  const stop = async () => {
    for (const s of stops.splice(0).reverse()) await s().catch(() => undefined);
  };
  try {
    if (brokers.length === 0) {
      log('# starting a Kafka broker (scripts/services.ts)…');
      const kafka = await startKafka();
      stops.push(() => kafka.stop());
      brokers = kafka.brokers;
      pids.kafka = kafka.pid;
      started.push('Kafka');
    }
    if (etcd.length === 0) {
      log('# starting etcd (scripts/services.ts)…');
      const e = await startEtcd();
      stops.push(() => e.stop());
      etcd = e.endpoints;
      pids.etcd = e.pid;
      started.push('etcd');
    }
  } catch (e) {
    await stop();
    throw e;
  }
  const origin =
    started.length === 0
      ? 'from ARGUS_KAFKA_BROKERS / ARGUS_ETCD_ENDPOINTS'
      : `${started.join(' and ')} started here (no ARGUS_* env)`;
  const recorded = recordedPids(brokers, etcd);
  return { brokers, etcd, origin, pids: { ...recorded, ...pids }, stop };
};

/** A prefix for topics and etcd keys no one else uses. */
export const benchPrefix = (name: string): string => `bench-${name}-${randomBytes(4).toString('hex')}`;

/** Deletes the prefix's topics and etcd keys, so repeated runs do not fill the shared services. */
export const dropPrefix = async (setup: ClusterSetup): Promise<void> => {
  const kafka = new Kafka({ clientId: 'bench-cleanup', brokers: setup.brokers, logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  try {
    await admin.connect();
    const topics = (await admin.listTopics()).filter((t) => t.startsWith(`${setup.prefix}.`));
    if (topics.length > 0) await admin.deleteTopics({ topics, timeout: 10_000 });
  } catch (e) {
    log(`# (cleanup: deleting the ${setup.prefix}.* topics failed: ${(e as Error).message})`);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
  const client = new Etcd3({ hosts: setup.etcd, dialTimeout: 2_000 });
  try {
    await client.delete().prefix(`/${setup.prefix}/`);
  } catch (e) {
    log(`# (cleanup: deleting /${setup.prefix}/ in etcd failed: ${(e as Error).message})`);
  } finally {
    client.close();
  }
};

/** Clusters still running: SIGKILLed when this process exits, however it exits. */
const live = new Set<TestCluster>();
let exitHookInstalled = false;

/** A TestCluster whose node processes die with this process (Ctrl-C, a throw, process.exit). */
export const openCluster = (setup: ClusterSetup): TestCluster => {
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    process.on('exit', () => {
      for (const c of live) {
        for (const n of c.nodes.values()) n.proc.kill('SIGKILL');
        rmSync(c.dir, { recursive: true, force: true });
      }
    });
    for (const sig of ['SIGINT', 'SIGTERM'] as const) process.on(sig, () => process.exit(130));
  }
  const cluster = new TestCluster(setup);
  live.add(cluster);
  return cluster;
};

export const closeCluster = async (cluster: TestCluster): Promise<void> => {
  await cluster.close();
  live.delete(cluster);
};

/**
 * The nodes' event files (one per node process, `<dir>/<node>.<n>.jsonl`), read incrementally: only the
 * bytes appended since the last poll are parsed, so watching them costs the measured nodes no CPU.
 */
export class EventTail {
  readonly batches: BatchEvent[] = [];
  readonly cluster: ClusterEvent[] = [];
  private readonly read = new Map<string, { offset: number; rest: Buffer }>();

  constructor(private readonly dir: string) {}

  poll(): this {
    if (!existsSync(this.dir)) return this;
    for (const name of readdirSync(this.dir)) {
      if (!name.endsWith('.jsonl')) continue;
      const file = join(this.dir, name);
      const state = this.read.get(file) ?? { offset: 0, rest: Buffer.alloc(0) };
      this.read.set(file, state);
      const size = statSync(file).size;
      if (size <= state.offset) continue;
      const fresh = Buffer.alloc(size - state.offset);
      const fd = openSync(file, 'r');
      try {
        readSync(fd, fresh, 0, fresh.length, state.offset);
      } finally {
        closeSync(fd);
      }
      state.offset = size;
      const bytes = Buffer.concat([state.rest, fresh]);
      const end = bytes.lastIndexOf(0x0a);
      // A line without its newline yet (or cut by a SIGKILL) waits for the next poll.
      state.rest = Buffer.from(bytes.subarray(end + 1));
      if (end < 0) continue;
      for (const line of bytes.subarray(0, end).toString('utf8').split('\n')) {
        if (line === '') continue;
        try {
          const e = JSON.parse(line) as BatchEvent | ClusterEvent;
          if (e.type === '@argus.batch') this.batches.push(e);
          else if (e.type === '@argus.cluster') this.cluster.push(e);
        } catch {
          // a SIGKILL can leave a half line behind
        }
      }
    }
    return this;
  }
}

/** Nearest-rank percentile: with fewer than 100 samples, p99 is the largest one. */
export const percentile = (values: readonly number[], p: number): number => {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)]!;
};
