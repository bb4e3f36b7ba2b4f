/**
 * What the cluster tests share: node processes (test/fixtures/cluster-node.ts), a sender of uniquely
 * numbered increments straight into the Kafka mailbox, etcd's view of the cluster, the final-state
 * check and the "never two owners" checker over every node's batch events.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { unpack } from 'msgpackr';
import { afterEach } from 'vitest';
import { placeKind } from '../../cluster/placement.ts';
import { encodeEnvelope, newMessageId, shardOf } from '../../runtime/envelope.ts';
import type { BatchEvent, ClusterEvent } from '../../runtime/events.ts';
import { KafkaMailbox } from '../../runtime/kafka/mailbox.ts';
import { KafkaSnapshotStore } from '../../runtime/kafka/snapshots.ts';
import { ChildNode } from '../helpers/child.ts';
import { etcdEndpoints, kafkaBrokers, uniquePrefix } from '../helpers/services.ts';
import { waitFor } from '../helpers/wait.ts';

export const KIND = 'counter';
export const FIXTURE = 'test/fixtures/cluster-node.ts';

export interface ClusterSetup {
  readonly brokers: string[];
  readonly etcd: string[];
  readonly prefix: string;
  readonly shards: number;
  /** Extra `cluster` settings (leaseTtlS, fenceMarginMs, settleMs, …). */
  readonly cluster?: Record<string, unknown>;
  /** etcd endpoints per node, when a node must reach etcd another way (a proxy). */
  readonly etcdOf?: (nodeId: string) => string[];
}

export class TestCluster {
  readonly dir = mkdtempSync(join(tmpdir(), 'argus-cluster-'));
  readonly nodes = new Map<string, ChildNode>();
  /** The last node process of each id, stopped or not (events stay readable). */
  private readonly files = new Map<string, string[]>();
  private incarnation = 0;

  constructor(readonly setup: ClusterSetup) {}

  config(nodeId: string): Record<string, unknown> {
    const { brokers, prefix, shards } = this.setup;
    return {
      nodeId,
      mode: 'kafka',
      shards,
      passivation: { idleMs: 0 },
      kafka: { brokers, topicPrefix: prefix },
      cluster: {
        etcd: { endpoints: this.setup.etcdOf?.(nodeId) ?? this.setup.etcd },
        settleMs: 100,
        ...this.setup.cluster,
      },
      http: false,
    };
  }

  async start(nodeId: string, timeoutMs = 60_000): Promise<ChildNode> {
    const file = join(this.dir, `${nodeId}.${++this.incarnation}.jsonl`);
    this.files.set(nodeId, [...(this.files.get(nodeId) ?? []), file]);
    const node = new ChildNode(FIXTURE, [JSON.stringify(this.config(nodeId)), file]);
    this.nodes.set(nodeId, node);
    await node.waitLine('ready', timeoutMs);
    return node;
  }

  async kill(nodeId: string): Promise<number> {
    const node = this.nodes.get(nodeId)!;
    const at = Date.now();
    await node.kill9();
    this.nodes.delete(nodeId);
    return at;
  }

  async stopGracefully(nodeId: string): Promise<void> {
    const node = this.nodes.get(nodeId)!;
    node.proc.kill('SIGTERM');
    const { code } = await node.exited;
    this.nodes.delete(nodeId);
    if (code !== 0) throw new Error(`node ${nodeId} exited with ${code}: ${node.errors}`);
  }

  /** Every event every node process wrote so far. */
  events(): (BatchEvent | ClusterEvent)[] {
    const all: (BatchEvent | ClusterEvent)[] = [];
    for (const files of this.files.values()) {
      for (const f of files) {
        if (!existsSync(f)) continue;
        for (const line of readFileSync(f, 'utf8').split('\n')) {
          if (line === '') continue;
          try {
            all.push(JSON.parse(line));
          } catch {
            // a SIGKILL can cut the last line short
          }
        }
      }
    }
    return all;
  }

  batches(): BatchEvent[] {
    return this.events().filter((e): e is BatchEvent => e.type === '@argus.batch');
  }

  clusterEvents(node?: string): ClusterEvent[] {
    return this.events().filter(
      (e): e is ClusterEvent => e.type === '@argus.cluster' && (node === undefined || e.node === node),
    );
  }

  async close(): Promise<void> {
    await Promise.all([...this.nodes.values()].map((n) => n.kill9()));
    this.nodes.clear();
    rmSync(this.dir, { recursive: true, force: true });
  }
}

/** What etcd says: members, the owner of every shard by placement, and who holds each shard's claim. */
export interface EtcdView {
  readonly members: string[];
  readonly leader: string | undefined;
  readonly placement: (string | undefined)[];
  readonly epochs: number[];
  readonly claims: (string | undefined)[];
}

export const etcdView = async (endpoints: string[], prefix: string, shards: number): Promise<EtcdView> => {
  const client = new Etcd3({ hosts: endpoints, dialTimeout: 2_000 });
  try {
    const members = Object.keys(await client.getAll().prefix(`/${prefix}/members/`).strings()).map((k) =>
      k.slice(`/${prefix}/members/`.length),
    );
    const raw = await client.get(`/${prefix}/placement/${KIND}`).exec();
    const kv = raw.kvs[0];
    const doc = kv ? JSON.parse(kv.value.toString()) : { owners: [], since: [] };
    const claims: (string | undefined)[] = Array.from({ length: shards }, () => undefined);
    const owners = await client.getAll().prefix(`/${prefix}/owners/${KIND}/`).strings();
    for (const [k, v] of Object.entries(owners)) claims[Number(k.split('/').pop())] = JSON.parse(v).node;
    const election = await client
      .getAll()
      .prefix(`/${prefix}/election/leader/`)
      .sort('Create', 'Ascend')
      .limit(1)
      .strings();
    return {
      members: members.sort(),
      leader: Object.values(election)[0],
      placement: (doc.owners as (string | null)[]).map((o) => o ?? undefined),
      epochs: (doc.since as number[]).map((s) => s || Number(kv?.mod_revision ?? 0)),
      claims,
    };
  } finally {
    client.close();
  }
};

/**
 * Waits until placement is exactly what rendezvous hashing gives `members` (weight 1 each, unless
 * `weights` says otherwise) and every shard's claim is held by its placed owner.
 */
export const waitForSettled = async (
  setup: ClusterSetup,
  members: string[],
  timeoutMs = 30_000,
  weights: Record<string, number> = {},
): Promise<EtcdView> => {
  const expected = placeKind(
    KIND,
    setup.shards,
    members.map((id) => ({ id, weight: weights[id] ?? 1 })),
  );
  const sortedMembers = [...members].sort().join();
  return waitFor(
    `the cluster to settle on ${members.join(', ')}`,
    async () => {
      const v = await etcdView(setup.etcd, setup.prefix, setup.shards);
      if (v.members.join() !== sortedMembers) return false;
      if (v.placement.join() !== expected.join()) return false;
      if (!v.placement.every((p, i) => v.claims[i] === p)) return false;
      return v;
    },
    timeoutMs,
    100,
  );
};

/** Appends uniquely numbered increments (`seq` 1, 2, …) to entities `e-0` … `e-<entities-1>`, round robin. */
export class Sender {
  readonly mailbox: KafkaMailbox;
  private next = 1;
  /** key → the seqs sent to it, in order. */
  readonly sent = new Map<string, number[]>();
  private readonly streams = new Set<() => Promise<void>>();

  constructor(
    private readonly setup: ClusterSetup,
    private readonly entities: number,
  ) {
    this.mailbox = new KafkaMailbox({
      brokers: setup.brokers,
      clientId: 'test-sender',
      topicPrefix: setup.prefix,
    });
  }

  async sendBatch(count: number): Promise<void> {
    const now = Date.now();
    const byKey: { partition: number; key: string; value: Uint8Array }[] = [];
    const seqs: [string, number][] = [];
    for (let i = 0; i < count; i++) {
      const seq = this.next++;
      const key = `e-${seq % this.entities}`;
      byKey.push({
        partition: shardOf(key, this.setup.shards),
        key,
        value: encodeEnvelope({
          id: newMessageId(now),
          kind: KIND,
          key,
          type: 'inc',
          timestamp: now,
          payload: { type: 'inc', by: 1, seq },
        }),
      });
      seqs.push([key, seq]);
    }
    await this.mailbox.append(KIND, byKey);
    for (const [key, seq] of seqs) this.sent.set(key, [...(this.sent.get(key) ?? []), seq]);
  }

  /**
   * Sends `count` messages every `everyMs` until `stop()`; bounded by `maxMs`. A failed append stops the
   * loop and is thrown by `stop()` (its messages were not recorded as sent).
   */
  stream(count: number, everyMs: number, maxMs: number): { stop(): Promise<void> } {
    let stopped = false;
    const deadline = Date.now() + maxMs;
    const loop = (async () => {
      while (!stopped && Date.now() < deadline) {
        const started = Date.now();
        await this.sendBatch(count);
        const rest = everyMs - (Date.now() - started);
        if (rest > 0) await new Promise((r) => setTimeout(r, rest));
      }
    })();
    loop.catch(() => undefined); // reported by stop()
    const stop = async () => {
      stopped = true;
      await loop;
    };
    this.streams.add(stop);
    return { stop };
  }

  get total(): number {
    return this.next - 1;
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.streams].map((stop) => stop()));
    await this.mailbox.close();
  }
}

/** Waits until every shard's committed offset reached its log end (everything sent was processed). */
export const waitForDrained = async (
  mailbox: KafkaMailbox,
  shards: number,
  timeoutMs = 60_000,
): Promise<void> => {
  await waitFor(
    'every shard to commit up to its log end',
    async () => {
      for (let p = 0; p < shards; p++) {
        if ((await mailbox.committed(KIND, p)) < (await mailbox.endOffset(KIND, p))) return false;
      }
      return true;
    },
    timeoutMs,
    200,
  );
};

/** Every entity's durable state must hold exactly the seqs sent to it, each once. */
export const exactStateProblems = async (
  setup: ClusterSetup,
  sent: ReadonlyMap<string, number[]>,
): Promise<string[]> => {
  const store = new KafkaSnapshotStore({
    brokers: setup.brokers,
    clientId: 'test-reader',
    topicPrefix: setup.prefix,
  });
  const problems: string[] = [];
  try {
    await store.ensureKinds([{ kind: KIND, partitions: setup.shards }]);
    const shards = new Map<number, Awaited<ReturnType<KafkaSnapshotStore['openShard']>>>();
    for (let p = 0; p < setup.shards; p++) shards.set(p, await store.openShard(KIND, p));
    for (const [key, seqs] of sent) {
      const snap = shards.get(shardOf(key, setup.shards))!.get(key);
      if (!snap) {
        problems.push(`${key}: no snapshot (sent ${seqs.length})`);
        continue;
      }
      const state = unpack(snap.state) as { count: number; applied: number[] };
      const applied = [...state.applied].sort((a, b) => a - b);
      const expected = [...seqs].sort((a, b) => a - b);
      if (state.count !== seqs.length || applied.join() !== expected.join()) {
        const dup = applied.filter((s, i) => i > 0 && applied[i - 1] === s);
        const lost = expected.filter((s) => !applied.includes(s));
        problems.push(
          `${key}: count ${state.count}, sent ${seqs.length}; applied twice [${dup}], lost [${lost}]`,
        );
      }
    }
  } finally {
    await store.close();
  }
  return problems;
};

/**
 * "Never two owners": per shard, the processing intervals — start → checkpoint sent — of committed
 * batches of different nodes must not overlap in time, and the epoch never goes back when the owner
 * changes. (The end is when the checkpoint was *sent*, not acknowledged: a node frozen right after
 * sending sees the acknowledgement only when it thaws, long after the checkpoint landed. A checkpoint
 * sent after a new owner fenced the writer never lands, so it is not a committed batch here.)
 */
export const ownershipViolations = (batches: readonly BatchEvent[]): string[] => {
  const violations: string[] = [];
  const byShard = new Map<number, BatchEvent[]>();
  for (const b of batches) byShard.set(b.partition, [...(byShard.get(b.partition) ?? []), b]);
  for (const [shard, list] of byShard) {
    list.sort((a, b) => a.startedAt - b.startedAt);
    let holder: BatchEvent | undefined;
    for (const b of list) {
      if (holder && holder.node !== b.node) {
        if (b.startedAt < holder.checkpointAt)
          violations.push(
            `shard ${shard}: ${b.node} started a batch at ${b.startedAt} (epoch ${b.epoch}) while ${holder.node}'s batch ran until ${holder.checkpointAt} (epoch ${holder.epoch})`,
          );
        if (b.epoch < holder.epoch)
          violations.push(
            `shard ${shard}: epoch went back from ${holder.epoch} (${holder.node}) to ${b.epoch} (${b.node})`,
          );
      }
      if (!holder || b.checkpointAt >= holder.checkpointAt || holder.node === b.node) holder = b;
    }
  }
  return violations;
};

/** No offset of a shard was committed by two batches (a replay after a handoff would). */
export const replayedOffsets = (batches: readonly BatchEvent[]): string[] => {
  const problems: string[] = [];
  const byShard = new Map<number, BatchEvent[]>();
  for (const b of batches) byShard.set(b.partition, [...(byShard.get(b.partition) ?? []), b]);
  for (const [shard, list] of byShard) {
    list.sort((a, b) => a.firstOffset - b.firstOffset);
    for (let i = 1; i < list.length; i++) {
      if (list[i]!.firstOffset <= list[i - 1]!.lastOffset)
        problems.push(
          `shard ${shard}: offsets ${list[i]!.firstOffset}..${list[i - 1]!.lastOffset} committed by ${list[i - 1]!.node} and again by ${list[i]!.node}`,
        );
    }
  }
  return problems;
};

export interface Closable {
  close(): Promise<void>;
}

/** Returns `track`: what is tracked is closed after each test, newest first, also when the test failed. */
export const closeAfterEach = (): ((c: Closable) => void) => {
  const open: Closable[] = [];
  afterEach(async () => {
    for (const c of open.splice(0).reverse()) await c.close().catch(() => undefined);
  });
  return (c) => {
    open.push(c);
  };
};

export interface ClusterRun {
  readonly setup: ClusterSetup;
  readonly cluster: TestCluster;
  readonly sender: Sender;
  readonly ids: string[];
  /** etcd's view once placement settled on `ids`. */
  readonly settled: EtcdView;
}

export interface ClusterRunOptions {
  /** Names the prefix (made unique). */
  readonly name: string;
  readonly shards: number;
  /** Node ids to start (default n1, n2, n3). */
  readonly ids?: string[];
  /** Entities the sender spreads its messages over (default 600). */
  readonly entities?: number;
  /** Default: the shared services of the run. */
  readonly brokers?: string[];
  readonly etcd?: string[];
  readonly cluster?: Record<string, unknown>;
  readonly etcdOf?: (nodeId: string) => string[];
}

/**
 * A fresh prefix, the counter kind's mailbox, a sender, the node processes — started together — and
 * placement settled on them. Everything is closed after the test.
 */
export const startCluster = async (
  track: (c: Closable) => void,
  options: ClusterRunOptions,
): Promise<ClusterRun> => {
  const setup: ClusterSetup = {
    brokers: options.brokers ?? kafkaBrokers(),
    etcd: options.etcd ?? etcdEndpoints(),
    prefix: uniquePrefix(options.name),
    shards: options.shards,
    ...(options.cluster ? { cluster: options.cluster } : {}),
    ...(options.etcdOf ? { etcdOf: options.etcdOf } : {}),
  };
  const cluster = new TestCluster(setup);
  track(cluster);
  const sender = new Sender(setup, options.entities ?? 600);
  track(sender);
  await sender.mailbox.ensureKinds([{ kind: KIND, partitions: setup.shards }]);
  const ids = options.ids ?? ['n1', 'n2', 'n3'];
  await Promise.all(ids.map((id) => cluster.start(id)));
  const settled = await waitForSettled(setup, ids);
  return { setup, cluster, sender, ids, settled };
};
