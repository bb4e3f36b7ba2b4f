/**
 * Failover: how long after a node dies (SIGKILL) every shard it owned commits a batch on a survivor.
 *
 * Three node processes (test/fixtures/cluster-node.ts, the cluster tests' fixture: a Kafka-mode runtime
 * with an etcd coordinator running the counter kind) share 16 shards; a steady stream of uniquely
 * numbered increments (1,000 msg/s over 1,000 entities) keeps every shard busy. One round: wait until
 * placement is rendezvous hashing over the three and every shard committed a batch on its owner; SIGKILL
 * one node (the leader and a follower in turn); the figure is the time from the kill to the moment the
 * *last* of its shards committed its first batch on a survivor (the nodes' `@argus.batch` events, wall
 * clock on this machine). Then the node is started again under the same id and the cluster settles on
 * three before the next round: one cluster per setting, so each kill sees the same shape.
 *
 * Two settings, each over a warm-up kill and `--rounds` kills (default 5):
 * - default: leaseTtlS 5, fenceMarginMs 1000, settleMs 200 (runtime/config.ts defaults);
 * - tuned:   leaseTtlS 2 (etcd's minimum), fenceMarginMs 500 (must stay under 2/3 of the TTL), settleMs 0.
 *
 * After each setting the stream stops and the run is checked: every entity's durable state holds exactly
 * the numbers sent to it, no shard ever had two nodes' batches overlap, no offset was committed twice. A
 * broken run throws instead of reporting a figure.
 *
 * Where the time goes, from the nodes' `@argus.cluster` events (first survivor to see each step):
 * kill → `member-left` (the victim's lease expired at etcd: etcd checks leases every 500 ms, and the last
 * renewal was up to one renewal period before the kill) → `leader` (leader kills: the victim's election lease) →
 * `placement` (the leader's write, after settleMs) → `shard-acquired` (claim in etcd, fence the old
 * writer and open a new transactional one in Kafka, load snapshots) → first batch committed.
 *
 * With --deep, after each setting every node is SIGKILLed mid-stream and the Kafka steps of `acquire` are
 * timed one by one from this process: open the shard's writer (the fence: it waits for the broker to abort
 * a transaction the dead writer left open), read the committed offset, load the snapshots.
 *
 * Peers: not measured here (no JVM/.NET cluster on this machine); quoted defaults of Akka Cluster
 * Sharding and Orleans, labelled as such, with the ratio.
 *
 * Services: ARGUS_KAFKA_BROKERS / ARGUS_ETCD_ENDPOINTS when set (e.g. from `npm run services start`),
 * else a throwaway broker and etcd from scripts/services.ts, stopped at the end.
 */
import type { ClusterEvent } from '../runtime/events.ts';
import { KafkaCheckpointStore } from '../runtime/kafka/checkpoints.ts';
import { KafkaMailbox } from '../runtime/kafka/mailbox.ts';
import { KafkaSnapshotStore } from '../runtime/kafka/snapshots.ts';
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
  percentile,
} from './cluster-common.ts';
import { type Benchmark, type BenchOptions, type Figures, fmt, header, log, median, tidy } from './common.ts';

// ---- the failover benchmark ---------------------------------------------------------------------------

const SHARDS = 16;
const ENTITIES = 1_000;
const IDS = ['n1', 'n2', 'n3'];
/** The stream: STREAM_CHUNK increments every STREAM_EVERY_MS (1,000 msg/s, about 60 per shard per second). */
const STREAM_CHUNK = 20;
const STREAM_EVERY_MS = 20;
/** No setting may take longer than this (the stream's own bound). */
const SETTING_MAX_MS = 20 * 60_000;
/** A failover slower than this is a failure, not a figure. */
const FAILOVER_GIVE_UP_MS = 60_000;

const SETTINGS = {
  default: { leaseTtlS: 5, fenceMarginMs: 1_000, settleMs: 200 },
  tuned: { leaseTtlS: 2, fenceMarginMs: 500, settleMs: 0 },
} as const;
type SettingName = keyof typeof SETTINGS;
const TARGET_S: Record<SettingName, number> = { default: 10, tuned: 3 };

/** Quoted, not measured: failover with each system's defaults (failure detection + downing + handoff). */
const PEERS = [
  {
    name: 'Akka Cluster Sharding',
    seconds: 45,
    how: 'failure detection ~5 s + SBR stable-after 20 s + down-removal-margin 20 s',
  },
  { name: 'Orleans', seconds: 15, how: 'silo declared dead by membership probes, grains re-activated' },
] as const;

/** One kill: when each step was first seen by a survivor, in ms after the kill. */
interface KillTimeline {
  readonly victim: string;
  readonly role: 'leader' | 'follower';
  readonly shards: number;
  /** The victim's member key deleted (its lease expired at etcd). */
  readonly memberLeftMs: number;
  /** A survivor became leader (leader kills only). */
  readonly leaderMs: number | undefined;
  /** The new placement seen by a survivor. */
  readonly placementMs: number;
  /** The first and the last of the victim's shards acquired on a survivor. */
  readonly firstAcquiredMs: number;
  readonly acquiredMs: number;
  /** The last of the victim's shards committed its first batch on a survivor: the figure. */
  readonly failoverMs: number;
}

const firstAt = (events: readonly ClusterEvent[], match: (e: ClusterEvent) => boolean): number => {
  let at = Number.POSITIVE_INFINITY;
  for (const e of events) if (e.at < at && match(e)) at = e.at;
  return at;
};

/** When each moved shard first committed a batch on a survivor (started after the kill); undefined if not all did yet. */
const resumedAt = (tail: EventTail, victim: string, moved: readonly number[], killedAt: number) => {
  const at = new Map<number, number>();
  for (const b of tail.batches) {
    if (b.node === victim || b.startedAt < killedAt || !moved.includes(b.partition)) continue;
    const prev = at.get(b.partition);
    if (prev === undefined || b.committedAt < prev) at.set(b.partition, b.committedAt);
  }
  return at.size === moved.length ? at : undefined;
};

const timelineOf = (
  tail: EventTail,
  kill: { victim: string; role: 'leader' | 'follower'; moved: number[]; killedAt: number },
  resumed: Map<number, number>,
): KillTimeline => {
  const { victim, moved, killedAt } = kill;
  const after = tail.cluster.filter((e) => e.node !== victim && e.at >= killedAt);
  const memberLeft = firstAt(after, (e) => e.event === 'member-left' && e.member === victim);
  const leader =
    kill.role === 'leader'
      ? firstAt(after, (e) => e.event === 'leader' && e.member !== undefined && e.member !== victim)
      : undefined;
  const placement = firstAt(after, (e) => e.event === 'placement' && e.kind === KIND);
  const acquiredAt = moved.map((shard) =>
    firstAt(after, (e) => e.event === 'shard-acquired' && e.kind === KIND && e.partition === shard),
  );
  return {
    victim,
    role: kill.role,
    shards: moved.length,
    memberLeftMs: memberLeft - killedAt,
    leaderMs: leader === undefined ? undefined : leader - killedAt,
    placementMs: placement - killedAt,
    firstAcquiredMs: Math.min(...acquiredAt) - killedAt,
    acquiredMs: Math.max(...acquiredAt) - killedAt,
    failoverMs: Math.max(...resumed.values()) - killedAt,
  };
};

const s = (ms: number | undefined): string => (ms === undefined ? '–' : (ms / 1000).toFixed(2));

const describeKill = (t: KillTimeline): string =>
  `kill ${t.role.padEnd(8)} ${t.victim} (${String(t.shards).padStart(2)} shards): ${s(t.failoverMs)} s   ` +
  `[member-left +${s(t.memberLeftMs)}, ${t.leaderMs === undefined ? '' : `leader +${s(t.leaderMs)}, `}` +
  `placement +${s(t.placementMs)}, acquired +${s(t.firstAcquiredMs)}..+${s(t.acquiredMs)}, ` +
  `last first batch +${s(t.failoverMs)}]`;

/** Waits until every shard committed a batch on its placed owner after `since`: the stream reaches every shard. */
const waitForSteady = async (
  tail: EventTail,
  placement: readonly (string | null | undefined)[],
  since: number,
) => {
  await waitFor(
    'every shard to commit a batch on its owner',
    () => {
      tail.poll();
      const busy = new Set<number>();
      for (const b of tail.batches)
        if (b.startedAt >= since && b.node === placement[b.partition]) busy.add(b.partition);
      return busy.size === SHARDS;
    },
    30_000,
    50,
  );
};

/** How many shards a survivor takes at once in a kill (16 shards, 3 nodes → 5 or 6 over 2 survivors). */
const SHARDS_PER_SURVIVOR = 3;

interface AcquireParts {
  readonly openWriterMs: number[];
  readonly committedMs: number[];
  readonly snapshotsMs: number[];
  readonly snapshotKeys: number[];
}

/**
 * --deep: the Kafka side of `acquire` step by step (runtime.ts: open the shard's checkpoint writer, which
 * fences the last one; read the committed offset; load the shard's snapshots from the beginning of its
 * state partition), for SHARDS_PER_SURVIVOR shards at once from one process with warm connections, after
 * every node was SIGKILLed mid-stream (so the fence may have to wait for the broker to abort a transaction
 * the dead writer left open, as in a failover). No node runs any more: the kill rounds add what the
 * survivors' own work and the loaded machine cost.
 */
const acquireParts = async (setup: ClusterSetup): Promise<AcquireParts> => {
  const connection = { brokers: setup.brokers, clientId: 'bench-acquire', topicPrefix: setup.prefix };
  const snapshots = new KafkaSnapshotStore(connection);
  const checkpoints = new KafkaCheckpointStore({ ...connection, snapshots });
  const mailbox = new KafkaMailbox(connection);
  const timed = async <T>(work: () => Promise<T>): Promise<[T, number]> => {
    const t0 = performance.now();
    const value = await work();
    return [value, performance.now() - t0];
  };
  const acquireShard = async (partition: number) => {
    const [writer, openWriterMs] = await timed(() => checkpoints.open(KIND, partition));
    const [, committedMs] = await timed(() => mailbox.committed(KIND, partition));
    const [view, snapshotsMs] = await timed(() => snapshots.openShard(KIND, partition));
    await writer.close();
    return { openWriterMs, committedMs, snapshotsMs, keys: view.size };
  };
  try {
    await snapshots.ensureKinds([{ kind: KIND, partitions: SHARDS }]);
    await mailbox.ensureKinds([{ kind: KIND, partitions: SHARDS }]);
    await acquireShard(SHARDS - 1); // connections, metadata, coordinators: a node has them already
    const parts = await Promise.all(
      Array.from({ length: SHARDS_PER_SURVIVOR }, (_, partition) => acquireShard(partition)),
    );
    return {
      openWriterMs: parts.map((p) => p.openWriterMs),
      committedMs: parts.map((p) => p.committedMs),
      snapshotsMs: parts.map((p) => p.snapshotsMs),
      snapshotKeys: parts.map((p) => p.keys),
    };
  } finally {
    await checkpoints.close().catch(() => undefined);
    await snapshots.close().catch(() => undefined);
    await mailbox.close().catch(() => undefined);
  }
};

const describeAcquireParts = (p: AcquireParts): string => {
  const range = (ms: number[]) => `${Math.round(Math.min(...ms))}–${Math.round(Math.max(...ms))} ms`;
  return (
    `acquire's Kafka steps after killing every node mid-stream (--deep; ${SHARDS_PER_SURVIVOR} shards at once, ` +
    `${Math.round(median(p.snapshotKeys))} entities each): open writer (fence) ${range(p.openWriterMs)}, ` +
    `committed offset ${range(p.committedMs)}, load snapshots ${range(p.snapshotsMs)}`
  );
};

/** One setting: a cluster of three, a warm-up kill and `rounds` measured kills, then the correctness check. */
const runSetting = async (
  name: SettingName,
  services: ClusterServices,
  rounds: number,
  warmups: number,
  deep: boolean,
): Promise<KillTimeline[]> => {
  const settings = SETTINGS[name];
  const setup: ClusterSetup = {
    brokers: services.brokers,
    etcd: services.etcd,
    prefix: benchPrefix(`failover-${name}`),
    shards: SHARDS,
    cluster: { ...settings },
  };
  log();
  log(
    `${name}: leaseTtlS ${settings.leaseTtlS}, fenceMarginMs ${settings.fenceMarginMs}, settleMs ${settings.settleMs} ` +
      `(the victim's lease expires at most ${settings.leaseTtlS} s after its last renewal, ` +
      'and etcd revokes expired leases every 0.5 s)',
  );
  const cluster = openCluster(setup);
  const tail = new EventTail(cluster.dir);
  const sender = new Sender(setup, ENTITIES);
  let stream: { stop(): Promise<void> } | undefined;
  const measured: KillTimeline[] = [];
  try {
    await sender.mailbox.ensureKinds([{ kind: KIND, partitions: SHARDS }]);
    await Promise.all(IDS.map((id) => cluster.start(id)));
    stream = sender.stream(STREAM_CHUNK, STREAM_EVERY_MS, SETTING_MAX_MS);
    for (let round = 0; round < warmups + rounds; round++) {
      const view = await waitForSettled(setup, IDS, 60_000);
      await waitForSteady(tail, view.placement, Date.now());
      // Alternate: the leader first (the longer path: a new leader must be elected too), then a follower.
      const role = round % 2 === 0 ? 'leader' : 'follower';
      const followers = IDS.filter((id) => id !== view.leader);
      const victim = role === 'leader' ? view.leader : followers[(round >> 1) % followers.length];
      if (victim === undefined || !IDS.includes(victim))
        throw new Error(`no ${role} to kill (etcd says the leader is ${view.leader})`);
      const moved = view.placement.flatMap((owner, shard) => (owner === victim ? [shard] : []));
      const killedAt = await cluster.kill(victim);
      const resumed = await waitFor(
        `every shard of ${victim} to commit a batch on a survivor`,
        () => resumedAt(tail.poll(), victim, moved, killedAt),
        FAILOVER_GIVE_UP_MS,
        50,
      );
      // The survivors' cluster events of the last step may land a moment after their batch events.
      await new Promise((r) => setTimeout(r, 200));
      const timeline = timelineOf(tail.poll(), { victim, role, moved, killedAt }, resumed);
      const label = round < warmups ? 'warm-up' : `round ${round - warmups + 1}`;
      log(`  ${label.padEnd(8)} ${describeKill(timeline)}`);
      if (round >= warmups) measured.push(timeline);
      await cluster.start(victim);
    }
    await stream.stop();
    stream = undefined;
    await waitForDrained(sender.mailbox, SHARDS, 120_000);
    await waitForSettled(setup, IDS, 60_000);
    tail.poll();
    const problems = [
      ...(await exactStateProblems(setup, sender.sent)),
      ...ownershipViolations(tail.batches),
      ...replayedOffsets(tail.batches),
    ];
    if (problems.length > 0)
      throw new Error(
        `${name}: the run is broken, no figure from it (${problems.length} problems):\n  ${problems.slice(0, 20).join('\n  ')}`,
      );
    const fenced = tail.cluster.filter((e) => e.event === 'fenced');
    log(
      `  checked: ${sender.total.toLocaleString('en')} messages, every entity's state exact, no two owners ` +
        `of a shard at once, no offset committed twice; ${fenced.length} self-fencing events` +
        (fenced.length > 0 ? ` (${fenced.map((e) => `${e.node}: ${e.detail}`).join('; ')})` : ''),
    );
    if (deep) {
      // Kill every node mid-stream, as a failover finds its victim (a checkpoint transaction may be open);
      // the parts of acquire below fence the shards' writers, so no node may run them any more.
      stream = sender.stream(STREAM_CHUNK, STREAM_EVERY_MS, 10_000);
      await new Promise((r) => setTimeout(r, 2_000));
      await closeCluster(cluster);
      await stream.stop();
      stream = undefined;
      log(`  ${describeAcquireParts(await acquireParts(setup))}`);
    }
    return measured;
  } finally {
    await stream?.stop().catch(() => undefined);
    await sender.close().catch(() => undefined);
    await closeCluster(cluster);
    await dropPrefix(setup);
  }
};

/** The median step times over the rounds, as consecutive segments that add up to the failover. */
const breakdown = (kills: readonly KillTimeline[]) => {
  const lease = median(kills.map((k) => k.memberLeftMs));
  const placement = median(kills.map((k) => k.placementMs - k.memberLeftMs));
  const acquire = median(kills.map((k) => k.acquiredMs - k.placementMs));
  const firstAcquire = median(kills.map((k) => k.firstAcquiredMs - k.placementMs));
  const firstBatch = median(kills.map((k) => k.failoverMs - k.acquiredMs));
  const leaderKills = kills.filter((k) => k.leaderMs !== undefined);
  const leaderAfterLeft = median(leaderKills.map((k) => k.leaderMs! - k.memberLeftMs));
  return {
    lease,
    placement,
    acquire,
    firstAcquire,
    firstBatch,
    leaderAfterLeft,
    leaderKills: leaderKills.length,
  };
};

const run = async (options: BenchOptions & { rounds: number }): Promise<Figures> => {
  const warmups = options.quick ? 0 : 1;
  header(
    'failover',
    `SIGKILL one of ${IDS.length} nodes (${SHARDS} shards, ${ENTITIES.toLocaleString('en')} entities, ` +
      `stream ${((STREAM_CHUNK * 1000) / STREAM_EVERY_MS).toLocaleString('en')} msg/s) → every shard it owned ` +
      `commits a batch on a survivor; ${warmups} warm-up + ${options.rounds} kills per setting, leader and follower in turn`,
    options,
  );
  const services = await clusterServices();
  log(
    `# services: Kafka ${services.brokers.join(',')}, etcd ${services.etcd.join(',')} (${services.origin})`,
  );
  const results = {} as Record<SettingName, KillTimeline[]>;
  try {
    for (const name of Object.keys(SETTINGS) as SettingName[])
      results[name] = await runSetting(name, services, options.rounds, warmups, options.deep);
  } finally {
    await services.stop();
  }

  const figures: Figures = {};
  log();
  log(`failover, s (p99 is the nearest-rank 99th percentile: with ${options.rounds} kills, the largest)`);
  for (const name of Object.keys(SETTINGS) as SettingName[]) {
    const values = results[name].map((k) => k.failoverMs / 1000);
    const p50 = median(values);
    const p99 = percentile(values, 99);
    figures[`${name}_p50_s`] = tidy(p50);
    figures[`${name}_p99_s`] = tidy(p99);
    log(
      `  ${name.padEnd(8)} p50 ${p50.toFixed(2)}  p99 ${p99.toFixed(2)}   target <= ${TARGET_S[name]} s ` +
        `${p99 <= TARGET_S[name] ? 'met' : 'MISSED'}   (runs: ${values.map((v) => v.toFixed(2)).join(' | ')})`,
    );
    results[name].forEach((k, i) => {
      figures[`${name}_round${i + 1}_s`] = tidy(k.failoverMs / 1000);
    });
  }

  log();
  log('where the time goes (median of each step over the kills, s; the steps add up to about the failover):');
  log("  lease expiry: kill → member-left (the victim's lease expired at etcd and its keys went)");
  log(
    "  placement:    member-left → new placement seen (settleMs, the leader's write; after a leader kill also",
  );
  log(
    '                waiting for the victim\'s election lease: "new leader" is when a survivor led, from member-left)',
  );
  log(
    '  acquire:      placement → the last moved shard acquired (etcd claim, Kafka writer fenced and opened,',
  );
  log('                snapshots loaded); in brackets when the first one was');
  log("  first batch:  last acquired → the last moved shard's first batch committed");
  log('  setting   lease expiry   placement   acquire (first)   first batch   new leader (leader kills)');
  for (const name of Object.keys(SETTINGS) as SettingName[]) {
    const b = breakdown(results[name]);
    log(
      `  ${name.padEnd(8)}  ${s(b.lease).padStart(12)}   ${s(b.placement).padStart(9)}   ` +
        `${`${s(b.acquire)} (${s(b.firstAcquire)})`.padStart(15)}   ${s(b.firstBatch).padStart(11)}   ` +
        `${b.leaderKills > 0 ? `${s(b.leaderAfterLeft)} (${b.leaderKills} kills)` : '–'}`,
    );
    figures[`${name}_lease_expiry_s`] = tidy(b.lease / 1000);
    figures[`${name}_placement_s`] = tidy(b.placement / 1000);
    figures[`${name}_acquire_s`] = tidy(b.acquire / 1000);
    figures[`${name}_first_batch_s`] = tidy(b.firstBatch / 1000);
  }

  log();
  log('peers, quoted defaults, NOT measured here:');
  const defaultP50 = figures.default_p50_s!;
  const tunedP50 = figures.tuned_p50_s!;
  for (const peer of PEERS) {
    log(
      `  ${peer.name.padEnd(22)} ~${peer.seconds} s (${peer.how}); ` +
        `that / Argus default p50 = ${fmt(peer.seconds / defaultP50)}, / tuned p50 = ${fmt(peer.seconds / tunedP50)}`,
    );
  }
  figures.akka_quoted_s = PEERS[0].seconds;
  figures.orleans_quoted_s = PEERS[1].seconds;
  return figures;
};

export const benchmark: Benchmark = {
  name: 'failover',
  summary: 'SIGKILL a node of 3 → its shards commit on a survivor: p50/p99, default and tuned lease settings',
  defaultRounds: 5,
  run,
};
