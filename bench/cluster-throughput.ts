/**
 * Cluster throughput: messages per second processed end to end (consume → apply → snapshot → commit in
 * a Kafka transaction) by a 1-node cluster and by a 3-node cluster on this machine, same work.
 *
 * Node processes are the cluster tests' fixture (test/fixtures/cluster-node.ts: a Kafka-mode runtime with
 * an etcd coordinator running the counter kind), 16 shards, 1,000 entities. One measurement:
 *  1. start the nodes, wait until placement is rendezvous hashing over them and every claim matches,
 *     then process a small warm-up (2,000 increments) so every shard is running and has fetched;
 *  2. freeze every node (SIGSTOP) and append the backlog (200,000 uniquely numbered increments, 50,000
 *     with --quick) straight into the Kafka mailbox;
 *  3. resume every node at once (SIGCONT) and time until the last shard commits its end offset (from the
 *     nodes' `@argus.batch` events, checked against the committed offsets in Kafka).
 * A preloaded backlog, not a paced rate: it measures the cluster's capacity with no sender competing for
 * the two cores, and freezing the nodes (rather than starting them after the append) keeps startup,
 * joining and the first placement's handoffs out of the figure: processing starts on a settled cluster,
 * on every node at the same instant. The lease TTL is 30 s (not 5) only so that the pause cannot expire
 * a lease; steady processing does not touch etcd, and the pause stays under the fetch group's 10 s
 * session timeout (a warning is printed if not).
 * Every measurement is checked: every entity's durable state holds exactly the numbers sent to it, no
 * shard had two owners at once, no offset was committed twice. A broken run throws.
 *
 * The peer is the 1-node cluster, measured in the same run, rounds interleaved (the order alternates);
 * ratio = 3 nodes / 1 node. Also printed: CPU the node processes used (cores, from /proc) and how busy
 * the whole machine was (the Kafka broker, etcd and anyone else's work included), to read the figures
 * against: on 2 cores this is CPU-bound.
 */
import { readFileSync } from 'node:fs';
import { cpus } from 'node:os';
import {
  type ClusterSetup,
  exactStateProblems,
  KIND,
  ownershipViolations,
  replayedOffsets,
  Sender,
  waitForDrained,
  waitForSettled,
} from '../test/cluster/support.ts';
import { waitFor } from '../test/helpers/wait.ts';
import {
  benchPrefix,
  type ClusterServices,
  closeCluster,
  clusterServices,
  dropPrefix,
  EventTail,
  openCluster,
} from './cluster-common.ts';
import {
  type Benchmark,
  type BenchOptions,
  type Figures,
  fmt,
  header,
  log,
  Samples,
  tidy,
  withRuns,
} from './common.ts';

const SHARDS = 16;
const ENTITIES = 1_000;
const WARM_UP_MESSAGES = 2_000;
/** The backlog is appended in chunks of this many records, all issued at once. */
const APPEND_CHUNK = 5_000;
/** The fetch group's session timeout (runtime/kafka/mailbox.ts): a longer pause makes the nodes rejoin. */
const SESSION_TIMEOUT_MS = 10_000;
const DRAIN_GIVE_UP_MS = 10 * 60_000;
/** Clock ticks per second of /proc/<pid>/stat (USER_HZ, 100 on Linux). */
const USER_HZ = 100;

/** CPU seconds (user + system) a process used so far; NaN when /proc is not there. */
const cpuSeconds = (pid: number): number => {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / USER_HZ;
  } catch {
    return Number.NaN;
  }
};

/** The machine's busy and total CPU ticks so far (every process: ours, the broker's, anyone's). */
const machineTicks = (): { busy: number; total: number } => {
  try {
    const cpu = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
    const total = cpu.slice(0, 8).reduce((a, b) => a + b, 0);
    return { busy: total - cpu[3]! - cpu[4]!, total };
  } catch {
    return { busy: Number.NaN, total: Number.NaN };
  }
};

interface Measurement {
  readonly msgsPerS: number;
  readonly seconds: number;
  /** How long the nodes were frozen while the backlog was appended. */
  readonly pauseMs: number;
  /** CPU the node processes used while processing, in cores. */
  readonly nodeCores: number;
  /** CPU the Kafka broker and etcd used meanwhile, in cores (NaN when their pids are not known). */
  readonly kafkaCores: number;
  readonly etcdCores: number;
  /** Fraction of the machine's CPU busy while processing (all processes). */
  readonly machineBusy: number;
  readonly batches: number;
}

const measure = async (nodes: number, services: ClusterServices, backlog: number): Promise<Measurement> => {
  const ids = Array.from({ length: nodes }, (_, i) => `n${i + 1}`);
  const setup: ClusterSetup = {
    brokers: services.brokers,
    etcd: services.etcd,
    prefix: benchPrefix(`throughput-${nodes}`),
    shards: SHARDS,
    cluster: { leaseTtlS: 30, fenceMarginMs: 1_000, settleMs: 100 },
  };
  const cluster = openCluster(setup);
  const tail = new EventTail(cluster.dir);
  const sender = new Sender(setup, ENTITIES);
  const frozen = new Set<number>();
  const thaw = () => {
    for (const pid of frozen) process.kill(pid, 'SIGCONT');
    frozen.clear();
  };
  try {
    await sender.mailbox.ensureKinds([{ kind: KIND, partitions: SHARDS }]);
    await Promise.all(ids.map((id) => cluster.start(id)));
    const view = await waitForSettled(setup, ids, 60_000);
    await sender.sendBatch(WARM_UP_MESSAGES);
    await waitForDrained(sender.mailbox, SHARDS, 60_000);

    const pids = ids.map((id) => cluster.nodes.get(id)!.proc.pid!);
    const pausedAt = performance.now();
    let ends: number[];
    try {
      for (const pid of pids) {
        process.kill(pid, 'SIGSTOP');
        frozen.add(pid);
      }
      const appends: Promise<void>[] = [];
      for (let sent = 0; sent < backlog; sent += APPEND_CHUNK)
        appends.push(sender.sendBatch(Math.min(APPEND_CHUNK, backlog - sent)));
      await Promise.all(appends);
      ends = await Promise.all(Array.from({ length: SHARDS }, (_, p) => sender.mailbox.endOffset(KIND, p)));
    } catch (e) {
      thaw();
      throw e;
    }
    const pauseMs = performance.now() - pausedAt;
    const cpu0 = pids.map(cpuSeconds);
    const services0 = [services.pids.kafka, services.pids.etcd].map((pid) =>
      pid ? cpuSeconds(pid) : Number.NaN,
    );
    const machine0 = machineTicks();
    const resumedAt = Date.now();
    thaw();

    // Done when every shard's batch ending at its end offset was committed (polling the event files costs
    // the nodes nothing; polling Kafka's committed offsets would).
    const doneAt = await waitFor(
      'every shard to commit its end offset',
      () => {
        tail.poll();
        const at = new Map<number, number>();
        for (const b of tail.batches)
          if (b.lastOffset + 1 >= ends[b.partition]!) at.set(b.partition, b.committedAt);
        return at.size === SHARDS ? Math.max(...at.values()) : false;
      },
      DRAIN_GIVE_UP_MS,
      20,
    );
    const cpu1 = pids.map(cpuSeconds);
    const services1 = [services.pids.kafka, services.pids.etcd].map((pid) =>
      pid ? cpuSeconds(pid) : Number.NaN,
    );
    const machine1 = machineTicks();
    await waitForDrained(sender.mailbox, SHARDS, 30_000);

    const problems = [
      ...(await exactStateProblems(setup, sender.sent)),
      ...ownershipViolations(tail.batches),
      ...replayedOffsets(tail.batches),
    ];
    if (problems.length > 0)
      throw new Error(
        `${nodes} node(s): the run is broken, no figure from it (${problems.length} problems):\n  ${problems.slice(0, 20).join('\n  ')}`,
      );
    const during = tail.batches.filter((b) => b.startedAt >= resumedAt);
    const moved = during.filter((b) => b.node !== view.placement[b.partition]);
    const fenced = tail.cluster.filter((e) => e.event === 'fenced');
    if (moved.length > 0 || fenced.length > 0)
      log(
        `  (not steady: ${moved.length} batches on a node other than the placed owner, ${fenced.length} self-fencing events)`,
      );
    if (pauseMs > SESSION_TIMEOUT_MS * 0.8)
      log(
        `  (the append took ${Math.round(pauseMs)} ms: near the fetch group's session timeout, nodes may rejoin)`,
      );

    const seconds = (doneAt - resumedAt) / 1000;
    const cpu = cpu1.reduce((sum, c, i) => sum + c - cpu0[i]!, 0);
    return {
      msgsPerS: backlog / seconds,
      seconds,
      pauseMs,
      nodeCores: cpu / seconds,
      kafkaCores: (services1[0]! - services0[0]!) / seconds,
      etcdCores: (services1[1]! - services0[1]!) / seconds,
      machineBusy: (machine1.busy - machine0.busy) / (machine1.total - machine0.total),
      batches: during.length,
    };
  } finally {
    thaw();
    await sender.close().catch(() => undefined);
    await closeCluster(cluster);
    await dropPrefix(setup);
  }
};

const describe = (nodes: number, m: Measurement): string =>
  `${nodes} node${nodes === 1 ? ' ' : 's'}: ${Math.round(m.msgsPerS).toLocaleString('en')} msg/s ` +
  `(${m.seconds.toFixed(2)} s, ${m.batches.toLocaleString('en')} batches); cores used: nodes ${fmt(m.nodeCores)}, ` +
  `Kafka ${fmt(m.kafkaCores)}, etcd ${fmt(m.etcdCores)}, whole ` +
  `machine ${fmt(m.machineBusy * cpus().length)} of ${cpus().length}; nodes frozen ${(m.pauseMs / 1000).toFixed(1)} s for the append`;

const run = async (options: BenchOptions & { rounds: number }): Promise<Figures> => {
  const backlog = options.quick ? 50_000 : 200_000;
  header(
    'cluster-throughput',
    `a preloaded backlog of ${backlog.toLocaleString('en')} increments (${ENTITIES.toLocaleString('en')} entities, ` +
      `${SHARDS} shards) processed end to end by 1 node vs 3 nodes; 1 warm-up round`,
    options,
  );
  const services = await clusterServices();
  log(
    `# services: Kafka ${services.brokers.join(',')}, etcd ${services.etcd.join(',')} (${services.origin})`,
  );
  const samples = new Samples();
  try {
    for (let round = 0; round <= options.rounds; round++) {
      const label = round === 0 ? 'warm-up' : `round ${round}`;
      // Alternate the order, so neither size always runs on the machine the other just warmed (or loaded).
      const order = round % 2 === 0 ? [1, 3] : [3, 1];
      const rates = new Map<number, number>();
      for (const nodes of order) {
        const m = await measure(nodes, services, backlog);
        log(`${label.padEnd(8)} ${describe(nodes, m)}`);
        rates.set(nodes, m.msgsPerS);
        if (round > 0) {
          samples.add(`rate_${nodes}`, m.msgsPerS);
          samples.add(`cores_${nodes}`, m.nodeCores);
          samples.add(`busy_${nodes}`, m.machineBusy * cpus().length);
          samples.add(`kafka_${nodes}`, m.kafkaCores);
        }
      }
      if (round > 0) samples.add('ratio', rates.get(3)! / rates.get(1)!);
    }
  } finally {
    await services.stop();
  }

  log();
  log(`1 node   msg/s                 ${withRuns(samples.of('rate_1'))}`);
  log(`3 nodes  msg/s                 ${withRuns(samples.of('rate_3'))}`);
  log(`ratio 3 nodes / 1 node         ${withRuns(samples.of('ratio'))}`);
  log(
    `cores used (1 / 3 nodes)       nodes ${fmt(samples.median('cores_1'))} / ${fmt(samples.median('cores_3'))}, ` +
      `Kafka ${fmt(samples.median('kafka_1'))} / ${fmt(samples.median('kafka_3'))}, ` +
      `whole machine ${fmt(samples.median('busy_1'))} / ${fmt(samples.median('busy_3'))} of ${cpus().length}`,
  );
  return {
    one_node_msgs_per_s: tidy(samples.median('rate_1')),
    three_nodes_msgs_per_s: tidy(samples.median('rate_3')),
    ratio: tidy(samples.median('ratio')),
    one_node_cores: tidy(samples.median('cores_1')),
    three_nodes_cores: tidy(samples.median('cores_3')),
  };
};

export const benchmark: Benchmark = {
  name: 'cluster-throughput',
  summary: 'msg/s of a preloaded backlog end to end: 1-node vs 3-node cluster (16 shards, Kafka + etcd)',
  defaultRounds: 3,
  run,
};
