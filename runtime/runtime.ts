/**
 * The embedding API: `createRuntime(config)` → register entity kinds → `start()` → `send` / observe /
 * inspect → `stop()`. Coordinator-style lifecycle (Burrow): configure validates without I/O, start
 * opens the boundaries and the supervisor tree and returns once consuming, stop unwinds in reverse.
 */

import { unpack } from 'msgpackr';
import type { ChildInfo, Supervisor } from '../supervisors/supervisor.ts';
import { type RunningTree, startTree } from '../supervisors/tree.ts';
import type {
  CheckpointStore,
  Clock,
  ClusterView,
  ConfigSource,
  Consumption,
  Coordinator,
  DeadLetter,
  DeadLetterId,
  DeadLetterStore,
  MailboxTransport,
  MemberInfo,
  OutgoingRecord,
  OutputRecord,
  PartitionRef,
  SnapshotStore,
} from './boundaries.ts';
import { realClock } from './clock.ts';
import { type ArgusConfig, parseConfig } from './config.ts';
import { type AnyEntityDefinition, defaultParse, type EntityDefinition } from './entity.ts';
import {
  decodeEnvelope,
  encodeEnvelope,
  isEntityKey,
  MAX_KEY_LENGTH,
  newMessageId,
  shardOf,
} from './envelope.ts';
import { ArgusError, describeError } from './errors.ts';
import { type ArgusEvent, EventBus, type EventObserver } from './events.ts';
import type { HttpRoute, UpgradeRoute } from './http.ts';
import { installNodeQueries } from './inspector/node.ts';
import { topicNames, validateTopicNames } from './kafka/topics.ts';
import { nodeTree } from './node-tree.ts';
import { openBoundaries } from './open-boundaries.ts';
import { openConfigSource, openCoordinator } from './open-coordinator.ts';
import { askPeer, type PeerServer, queryPeer, startPeerServer } from './peer.ts';
import { EntityRegistry } from './registry.ts';
import type { ShardRunner } from './shard.ts';
import { type RegisteredKind, ShardSet } from './shards.ts';

/** The version nodes advertise in their membership record. */
export const ARGUS_VERSION = '0.1.0';

/** The boundary implementations a runtime uses; injected for tests, opened from config otherwise. */
export interface Boundaries {
  readonly mailbox: MailboxTransport;
  readonly snapshots: SnapshotStore;
  readonly deadLetters: DeadLetterStore;
  readonly checkpoints: CheckpointStore;
  close(): Promise<void>;
}

export interface RuntimeOptions {
  readonly boundaries?: Boundaries;
  /** Who decides which shards run here; default from the configuration (etcd with `cluster`, else local). */
  readonly coordinator?: Coordinator;
  readonly clock?: Clock;
  readonly random?: () => number;
  /** Where configuration data lives; default etcd with `cluster`, else memory. */
  readonly configSource?: ConfigSource;
}

export type RuntimeStatus = 'created' | 'starting' | 'running' | 'stopping' | 'stopped' | 'failed';

export interface EntityState<S> {
  readonly state: S;
  /** Offset of the last mailbox record the state includes (-1: none). */
  readonly offset: number;
  /** Whether the entity is activated right now. */
  readonly active: boolean;
}

/** A typed handle on one registered kind. */
export interface EntityClient<S, M extends { readonly type: string }> {
  readonly kind: string;
  /** Appends the message to the entity's mailbox; resolves once durable. */
  send(key: string, message: M): Promise<void>;
  /** The entity's current state (asked of it when active, else from its snapshot). */
  state(key: string): Promise<EntityState<S>>;
}

export interface ShardInfo {
  readonly kind: string;
  readonly partition: number;
  readonly active: number;
  /** The placement epoch the shard was acquired at. */
  readonly epoch: number;
}

export interface ShardLag {
  readonly kind: string;
  readonly partition: number;
  /** The next offset after the last checkpoint (where a new owner would resume). */
  readonly committed: number;
  /** The log end: the offset the next appended record will get. */
  readonly end: number;
  /** Records appended and not yet processed and committed. */
  readonly lag: number;
}

export interface Inspection {
  readonly nodeId: string;
  readonly mode: ArgusConfig['mode'];
  readonly status: RuntimeStatus;
  readonly kinds: readonly { kind: string; shards: number }[];
  readonly shards: readonly ShardInfo[];
  readonly tree: ChildInfo | undefined;
}

/** One output record as observers get it: decoded, with the shard it came from. */
/** A decoded mailbox record (runtime.readMailbox). */
export interface MailboxEntry {
  readonly offset: number;
  readonly key: string;
  readonly type: string;
  readonly payload: unknown;
}

export interface Output {
  readonly stream: string;
  readonly partition: number;
  /** Offset in the stream's partition (from `readStream`; -1 for records observed as they land). */
  readonly offset: number;
  readonly key: string;
  readonly value: unknown;
}

export type OutputObserver = (outputs: readonly Output[]) => void;

/**
 * A subsystem that runs with the runtime (host metrics, later rules and logs): it registers its kinds
 * before start, starts once the node is running (shards acquired or being acquired), stops before the
 * node lets its shards go, and may serve HTTP routes on the node's endpoint.
 */
export interface RuntimeExtension {
  readonly name: string;
  register?(runtime: Runtime): void;
  start(runtime: Runtime): Promise<void>;
  stop(): Promise<void>;
  readonly routes?: readonly HttpRoute[];
  /** WebSocket upgrades it takes on the node's endpoint (the live feed). */
  readonly upgrades?: readonly UpgradeRoute[];
}
export type ShardObserver = (ref: PartitionRef, held: boolean) => void;

/** What a node answers to a named node query (`onNodeQuery`); the answer crosses nodes as msgpack. */
export type NodeQueryHandler = (params: unknown) => unknown | Promise<unknown>;

/** Answers gathered from every member: the ones that answered, and the ones that did not in time. */
export interface Gathered {
  readonly answers: readonly { readonly node: string; readonly value: unknown }[];
  readonly missing: readonly { readonly node: string; readonly error: string }[];
}

interface PendingSend {
  readonly records: OutgoingRecord[];
  readonly waiters: { resolve(): void; reject(e: unknown): void }[];
}

export class Runtime {
  readonly config: ArgusConfig;
  private readonly events = new EventBus();
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly kinds = new Map<string, RegisteredKind>();
  private readonly shards: ShardSet;
  private coordinator: Coordinator | undefined;
  private peer: PeerServer | undefined;
  private readonly pending = new Map<string, PendingSend>();
  private flushScheduled = false;
  private boundaries: Boundaries | undefined;
  private tree: RunningTree | undefined;
  private consumption: Consumption | undefined;
  private currentStatus: RuntimeStatus = 'created';
  private failure: Error | undefined;
  private readonly outputObservers = new Map<string, OutputObserver[]>();
  private readonly extensions: RuntimeExtension[] = [];
  private started: RuntimeExtension[] = [];
  private config_: ConfigSource | undefined;
  private shardObservers: ShardObserver[] = [];
  private readonly nodeQueries = new Map<string, NodeQueryHandler>();
  /** What this node knows of the entities of the shards it holds (registry.ts; the inspector reads it). */
  readonly entities = new EntityRegistry();

  constructor(
    config: unknown,
    private readonly options: RuntimeOptions = {},
  ) {
    this.config = parseConfig(config);
    this.clock = options.clock ?? realClock;
    this.random = options.random ?? Math.random;
    this.events.subscribe((event) => {
      if (event.type === '@argus.lifecycle') this.entities.lifecycle(event);
    });
    installNodeQueries(this);
    this.shards = new ShardSet({
      registry: this.entities,
      nodeId: this.config.nodeId,
      config: this.config,
      kinds: this.kinds,
      events: this.events,
      clock: this.clock,
      boundaries: () => this.boundaries,
      consumption: () => this.consumption,
      coordinator: () => this.coordinator,
      running: () => this.currentStatus === 'running',
      supervisor: () => this.shardsSupervisor(),
      warn: (what, e) => this.warn(what, e),
      outputsLanded: (records) => this.outputsLanded(records),
      shardChanged: (ref, held) => {
        for (const o of this.shardObservers) {
          try {
            o(ref, held);
          } catch (e) {
            this.warn('a shard observer', e);
          }
        }
      },
    });
  }

  /**
   * Observes the records entities emit to `stream` (`ctx.emit`), each once it is durable (its
   * checkpoint landed), on the node that emitted it. Returns the unsubscribe. A node that dies after a
   * checkpoint landed and before observers ran does not call them again: consumers that must see every
   * record read the stream itself (its Kafka topic, or `readStream` in embedded mode).
   */
  onOutput(stream: string, observer: OutputObserver): () => void {
    this.outputObservers.set(stream, [...(this.outputObservers.get(stream) ?? []), observer]);
    return () => {
      this.outputObservers.set(
        stream,
        (this.outputObservers.get(stream) ?? []).filter((o) => o !== observer),
      );
    };
  }

  /** Observes shards starting (`held`) and stopping on this node; returns the unsubscribe. */
  onShards(observer: ShardObserver): () => void {
    this.shardObservers = [...this.shardObservers, observer];
    return () => {
      this.shardObservers = this.shardObservers.filter((o) => o !== observer);
    };
  }

  /** The shards of `kind` running on this node now. */
  runningShards(kind: string): number[] {
    return this.shards
      .info()
      .filter((s) => s.kind === kind)
      .map((s) => s.partition)
      .sort((a, b) => a - b);
  }

  /** The shard of a key of a registered kind. */
  shardOf(kind: string, key: string): number {
    const k = this.kinds.get(kind);
    if (!k)
      throw new ArgusError('ARGUS_ERR_UNKNOWN_KIND', `no entity kind '${kind}' is registered`, { kind });
    return shardOf(key, k.shards);
  }

  /** Reads records of an output stream's partition (embedded journal; in Kafka mode read its topic). */
  async readStream(stream: string, partition: number, from: number, max = 1_000): Promise<Output[]> {
    const mailbox = this.boundaries?.mailbox;
    if (!mailbox) throw new ArgusError('ARGUS_ERR_NOT_STARTED', `runtime is ${this.currentStatus}`);
    if (!mailbox.readStream)
      throw new ArgusError(
        'ARGUS_ERR_UNKNOWN_STREAM',
        `the ${mailbox.name} mailbox is not read through the runtime: consume the stream's topic`,
        { stream },
      );
    const records = await mailbox.readStream(stream, partition, from, max);
    return records.map((r) => ({
      stream,
      partition,
      offset: r.offset,
      key: r.key ?? '',
      value: unpack(r.value),
    }));
  }

  /**
   * Reads up to `max` records of a kind's mailbox partition from `from`, decoded (the log search).
   * Records that do not decode are skipped; `next` is the offset after the last record read.
   */
  async readMailbox(
    kind: string,
    partition: number,
    from: number,
    max = 1_000,
  ): Promise<{ records: MailboxEntry[]; next: number; start: number }> {
    const mailbox = this.boundaries?.mailbox;
    if (!mailbox) throw new ArgusError('ARGUS_ERR_NOT_STARTED', `runtime is ${this.currentStatus}`);
    if (!mailbox.readMailbox)
      throw new ArgusError('ARGUS_ERR_UNKNOWN_KIND', `the ${mailbox.name} mailbox cannot be read back`, {
        kind,
      });
    const raw = await mailbox.readMailbox(kind, partition, from, max);
    const records: MailboxEntry[] = [];
    for (const r of raw) {
      const d = decodeEnvelope(r.value);
      if (d.ok)
        records.push({
          offset: r.offset,
          key: d.envelope.key,
          type: d.envelope.type,
          payload: d.envelope.payload,
        });
    }
    const start = raw.length > 0 ? raw[0]!.offset : from;
    return { records, next: raw.length > 0 ? raw[raw.length - 1]!.offset + 1 : from, start };
  }

  /** The offset the next record of a kind's mailbox partition will get. */
  mailboxEnd(kind: string, partition: number): Promise<number> {
    const mailbox = this.boundaries?.mailbox;
    if (!mailbox)
      return Promise.reject(new ArgusError('ARGUS_ERR_NOT_STARTED', `runtime is ${this.currentStatus}`));
    return mailbox.endOffset(kind, partition);
  }

  private outputsLanded(records: readonly OutputRecord[]): void {
    if (this.outputObservers.size === 0) return;
    const byStream = new Map<string, Output[]>();
    for (const r of records) {
      if (r.mailbox) continue;
      const observers = this.outputObservers.get(r.stream);
      if (!observers || observers.length === 0) continue;
      const list = byStream.get(r.stream) ?? [];
      list.push({
        stream: r.stream,
        partition: r.partition,
        offset: -1,
        key: r.key,
        value: r.decoded !== undefined ? r.decoded : unpack(r.value),
      });
      byStream.set(r.stream, list);
    }
    for (const [stream, outputs] of byStream) {
      for (const o of this.outputObservers.get(stream) ?? []) {
        try {
          o(outputs);
        } catch (e) {
          this.warn(`an observer of stream '${stream}'`, e);
        }
      }
    }
  }

  /** Output streams of the registered kinds, each with the most shards of the kinds emitting into it. */
  private streamTopology(): { kind: string; partitions: number }[] {
    const streams = new Map<string, number>();
    for (const k of this.kinds.values()) {
      for (const s of k.definition.streams ?? []) streams.set(s, Math.max(streams.get(s) ?? 0, k.shards));
    }
    return [...streams].map(([kind, partitions]) => ({ kind, partitions }));
  }

  get nodeId(): string {
    return this.config.nodeId;
  }

  get status(): RuntimeStatus {
    return this.currentStatus;
  }

  /** Why the runtime failed, when status is 'failed'. */
  get failureReason(): Error | undefined {
    return this.failure;
  }

  /** Registers an entity kind (before start) and returns a typed client for it. */
  register<S, M extends { readonly type: string }>(definition: EntityDefinition<S, M>): EntityClient<S, M> {
    if (this.currentStatus !== 'created')
      throw new ArgusError('ARGUS_ERR_ALREADY_STARTED', `register '${definition.kind}' before start()`);
    if (this.kinds.has(definition.kind))
      throw new ArgusError(
        'ARGUS_ERR_DUPLICATE_KIND',
        `entity kind '${definition.kind}' is already registered`,
        {
          kind: definition.kind,
        },
      );
    if (!/^[a-z][a-z0-9._-]{0,62}$/.test(definition.kind))
      throw new ArgusError(
        'ARGUS_ERR_INVALID_CONFIG',
        `entity kind '${definition.kind}': must be 1-63 lower-case letters, digits, '.', '_' and '-' (starting with a letter)`,
        { kind: definition.kind },
      );
    for (const stream of definition.streams ?? []) {
      if (!/^[a-z][a-z0-9_-]{0,62}$/.test(stream))
        throw new ArgusError(
          'ARGUS_ERR_INVALID_CONFIG',
          `entity kind '${definition.kind}': stream '${stream}' must be 1-63 lower-case letters, digits, '_' and '-' (starting with a letter)`,
          { kind: definition.kind, stream },
        );
    }
    const shards = definition.shards ?? this.config.shards;
    if (!Number.isInteger(shards) || shards < 1 || shards > 1024)
      throw new ArgusError(
        'ARGUS_ERR_INVALID_CONFIG',
        `entity kind '${definition.kind}': shards must be 1..1024`,
        {
          kind: definition.kind,
          shards,
        },
      );
    this.kinds.set(definition.kind, { definition, shards });
    return {
      kind: definition.kind,
      send: (key, message) => this.send(definition.kind, key, message),
      state: (key) => this.entityState(definition.kind, key) as Promise<EntityState<S>>,
    };
  }

  /** Adds a subsystem (before start): it registers its kinds now, and runs from start to stop. */
  use(extension: RuntimeExtension): this {
    if (this.currentStatus !== 'created')
      throw new ArgusError('ARGUS_ERR_ALREADY_STARTED', `use '${extension.name}' before start()`);
    extension.register?.(this);
    this.extensions.push(extension);
    return this;
  }

  /** HTTP routes of the extensions, for the node's endpoint (startHttp). */
  routes(): HttpRoute[] {
    return this.extensions.flatMap((e) => e.routes ?? []);
  }

  /** WebSocket upgrade routes of the extensions, for the node's endpoint (startHttp). */
  upgrades(): UpgradeRoute[] {
    return this.extensions.flatMap((e) => e.upgrades ?? []);
  }

  /**
   * Configuration kept as data (rules, metric sets, inventory …): etcd in a cluster, memory on one node
   * (seeded by `options.configSource` or empty). Available from start to stop.
   */
  get configSource(): ConfigSource {
    if (!this.config_) throw new ArgusError('ARGUS_ERR_NOT_STARTED', `runtime is ${this.currentStatus}`);
    return this.config_;
  }

  /** Adds an observer of lifecycle and dead-letter events; returns its unsubscribe. */
  subscribe(observer: EventObserver): () => void {
    return this.events.subscribe(observer);
  }

  async start(): Promise<void> {
    if (this.currentStatus !== 'created')
      throw new ArgusError('ARGUS_ERR_ALREADY_STARTED', `runtime ${this.nodeId} was already started`);
    // Kinds name Kafka topics: refuse names Kafka would collide ('.' vs '_') in every mode, so a
    // configuration that runs embedded also runs on Kafka.
    const streams = this.streamTopology();
    validateTopicNames(
      topicNames(
        this.config.kafka?.topicPrefix ?? 'argus',
        [...this.kinds.keys()],
        streams.map((s) => s.kind),
      ),
    );
    this.currentStatus = 'starting';
    try {
      this.boundaries = this.options.boundaries ?? (await openBoundaries(this.config));
      const topology = [...this.kinds.entries()].map(([kind, k]) => ({ kind, partitions: k.shards }));
      await this.boundaries.mailbox.ensureKinds(
        topology.map((t) => {
          const retain = this.kinds.get(t.kind)?.definition.retainRecords;
          return retain === undefined ? t : { ...t, retain };
        }),
      );
      await this.boundaries.snapshots.ensureKinds(topology);
      await this.boundaries.deadLetters.ensure();
      if (streams.length > 0) {
        if (!this.boundaries.mailbox.ensureStreams)
          throw new ArgusError(
            'ARGUS_ERR_UNKNOWN_STREAM',
            `the ${this.boundaries.mailbox.name} mailbox has no output streams, but kinds emit to ${streams.map((s) => `'${s.kind}'`).join(', ')}`,
          );
        await this.boundaries.mailbox.ensureStreams(streams);
      }
      this.tree = startTree(
        nodeTree(this.config),
        { clock: this.clock, random: this.random, events: this.events },
        (error) => void this.fail(error),
      );
      this.consumption = await this.boundaries.mailbox.consume({
        kinds: [...this.kinds.keys()],
        maxBatch: this.config.delivery.maxBatch,
        onBatch: (batch) => this.shards.process(batch),
        report: (problem) => this.warn('consuming the mailbox', new Error(problem)),
        onOutage: (down, detail) => this.shards.transportOutage(down, detail),
      });
      const cluster = this.config.cluster;
      if (cluster) {
        this.peer = await startPeerServer(
          cluster.listen.host,
          cluster.listen.port,
          (ask) => this.shards.answer(ask),
          (q) => this.answerNodeQuery(q.name, q.params),
        );
      }
      this.config_ = this.options.configSource ?? (await this.openConfigSource());
      this.coordinator = this.options.coordinator ?? (await this.openCoordinator());
      // Running before the coordinator starts: shards it hands over while joining must be accepted.
      this.currentStatus = 'running';
      await this.coordinator.start(this.shards, {
        id: this.nodeId,
        address: cluster?.advertise ?? this.peer?.address,
        version: ARGUS_VERSION,
        weight: cluster?.weight ?? 1,
        kinds: Object.fromEntries([...this.kinds].map(([kind, k]) => [kind, k.shards])),
      });
      for (const extension of this.extensions) {
        await extension.start(this);
        this.started.push(extension);
      }
    } catch (e) {
      await this.unwind();
      this.currentStatus = 'failed';
      this.failure = e instanceof Error ? e : new Error(String(e));
      throw e;
    }
  }

  /** Appends a message to an entity's mailbox; resolves once durable. Sends in one tick share one append. */
  send(kind: string, key: string, message: { readonly type: string }): Promise<void> {
    if (this.currentStatus !== 'running')
      return Promise.reject(
        new ArgusError('ARGUS_ERR_NOT_STARTED', `cannot send: runtime is ${this.currentStatus}`),
      );
    const k = this.kinds.get(kind);
    if (!k)
      return Promise.reject(
        new ArgusError('ARGUS_ERR_UNKNOWN_KIND', `no entity kind '${kind}' is registered`, { kind }),
      );
    if (!isEntityKey(key))
      return Promise.reject(
        new ArgusError(
          'ARGUS_ERR_INVALID_KEY',
          `entity key must be a string of 1-${MAX_KEY_LENGTH} characters without control characters`,
          { kind, key },
        ),
      );
    // Bad input is refused at the edge, to its sender, rather than dead-lettered later.
    try {
      (k.definition.parse ?? defaultParse)(message);
    } catch (e) {
      return Promise.reject(
        new ArgusError(
          'ARGUS_ERR_INVALID_MESSAGE',
          `message for ${kind}/${key}: ${describeError(e).message}`,
          {
            kind,
            key,
          },
        ),
      );
    }
    const now = this.clock.now();
    const value = encodeEnvelope({
      id: newMessageId(now),
      kind,
      key,
      type: message.type,
      timestamp: now,
      payload: message,
    });
    let p = this.pending.get(kind);
    if (!p) {
      p = { records: [], waiters: [] };
      this.pending.set(kind, p);
    }
    const batch = p;
    batch.records.push({ partition: shardOf(key, k.shards), key, value });
    const done = new Promise<void>((resolve, reject) => batch.waiters.push({ resolve, reject }));
    if (!this.flushScheduled) {
      this.flushScheduled = true;
      setImmediate(() => this.flush());
    }
    return done;
  }

  private flush(): void {
    this.flushScheduled = false;
    const mailbox = this.boundaries?.mailbox;
    for (const [kind, p] of this.pending) {
      this.pending.delete(kind);
      if (!mailbox) {
        for (const w of p.waiters) w.reject(new ArgusError('ARGUS_ERR_NOT_STARTED', 'runtime stopped'));
        continue;
      }
      mailbox.append(kind, p.records).then(
        () => {
          for (const w of p.waiters) w.resolve();
        },
        (e) => {
          for (const w of p.waiters) w.reject(e);
        },
      );
    }
  }

  async entityState(kind: string, key: string): Promise<EntityState<unknown>> {
    const k = this.kinds.get(kind);
    if (!k)
      throw new ArgusError('ARGUS_ERR_UNKNOWN_KIND', `no entity kind '${kind}' is registered`, { kind });
    const partition = shardOf(key, k.shards);
    const runner = this.shards.runnerOf(kind, key);
    if (runner) return runner.read(key);
    if (!this.boundaries) throw new ArgusError('ARGUS_ERR_NOT_STARTED', `runtime is ${this.currentStatus}`);
    const snap = (await this.boundaries.snapshots.openShard(kind, partition)).get(key);
    return snap
      ? { state: unpack(snap.state), offset: snap.offset, active: false }
      : { state: k.definition.initialState(key), offset: -1, active: false };
  }

  deadLetters(kind?: string): Promise<DeadLetter[]> {
    if (!this.boundaries)
      return Promise.reject(new ArgusError('ARGUS_ERR_NOT_STARTED', `runtime is ${this.currentStatus}`));
    return this.boundaries.deadLetters.list(kind);
  }

  /** Discards dead letters (on every node: the store is shared); resolves to how many were listed. */
  discardDeadLetters(ids: readonly DeadLetterId[]): Promise<number> {
    if (!this.boundaries)
      return Promise.reject(new ArgusError('ARGUS_ERR_NOT_STARTED', `runtime is ${this.currentStatus}`));
    return this.boundaries.deadLetters.discard(ids);
  }

  inspect(): Inspection {
    return {
      nodeId: this.nodeId,
      mode: this.config.mode,
      status: this.currentStatus,
      kinds: [...this.kinds.entries()].map(([kind, k]) => ({ kind, shards: k.shards })),
      shards: this.shards.info(),
      tree: this.tree?.describe(),
    };
  }

  /** Publishes an event on the node's bus (the live feed carries it): extensions' own events. */
  publish(event: ArgusEvent): void {
    this.events.publish(event);
  }

  /** The shard of `key` when it runs here: its runner, partition and the epoch it was acquired at. */
  localShard(
    kind: string,
    key: string,
  ): { runner: ShardRunner; partition: number; epoch: number } | undefined {
    const k = this.kinds.get(kind);
    if (!k) return undefined;
    const partition = shardOf(key, k.shards);
    const running = this.shards.running(kind, partition);
    return running ? { runner: running.runner, partition, epoch: running.epoch } : undefined;
  }

  /** The registered kind's definition (the inspector's summaries). */
  definitionOf(kind: string): AnyEntityDefinition | undefined {
    return this.kinds.get(kind)?.definition;
  }

  /** One level of this node's supervisor tree at `path` (`node`, `node/shards`, …); undefined if none. */
  treeLevel(path: string): ReturnType<Supervisor['level']> | undefined {
    const root = this.tree?.root;
    if (!root) return undefined;
    const parts = path.split('/');
    if (parts[0] !== root.spec.id) return undefined;
    let at: Supervisor | undefined = root;
    for (const id of parts.slice(1)) {
      at = at.childSupervisor(id);
      if (!at) return undefined;
    }
    return at.level();
  }

  /** Registers what this node answers to the node query `name`; returns the unregister. */
  onNodeQuery(name: string, handler: NodeQueryHandler): () => void {
    this.nodeQueries.set(name, handler);
    return () => {
      if (this.nodeQueries.get(name) === handler) this.nodeQueries.delete(name);
    };
  }

  private async answerNodeQuery(name: string, params: unknown): Promise<unknown> {
    const handler = this.nodeQueries.get(name);
    if (!handler)
      throw new ArgusError('ARGUS_ERR_UNREACHABLE', `node '${this.nodeId}' serves no node query '${name}'`, {
        node: this.nodeId,
        query: name,
      });
    return handler(params);
  }

  /**
   * Asks member `node` (this one directly) the node query `name`. ARGUS_ERR_UNREACHABLE when it is not a
   * member, serves no peer endpoint, or does not answer within `timeoutMs`.
   */
  async queryNode(
    node: string,
    name: string,
    params: unknown = null,
    options: { timeoutMs?: number } = {},
  ): Promise<unknown> {
    if (node === this.nodeId) return this.answerNodeQuery(name, params);
    const member = this.coordinator?.view().members.find((m) => m.id === node);
    if (!member)
      throw new ArgusError('ARGUS_ERR_UNREACHABLE', `node '${node}' is not a member of the cluster`, {
        node,
      });
    if (!member.address)
      throw new ArgusError('ARGUS_ERR_UNREACHABLE', `node '${node}' serves no peer endpoint`, { node });
    return queryPeer(
      node,
      member.address,
      { name, params },
      options.timeoutMs ?? this.config.inspector.gatherTimeoutMs,
    );
  }

  /**
   * Asks every member the node query `name` at once: the answers of those that answered within
   * `timeoutMs` (default `inspector.gatherTimeoutMs`), and the others with why.
   */
  async gather(
    name: string,
    params: unknown = null,
    options: { timeoutMs?: number } = {},
  ): Promise<Gathered> {
    const members = this.coordinator?.view().members.map((m) => m.id) ?? [];
    if (!members.includes(this.nodeId)) members.unshift(this.nodeId);
    const timeoutMs = options.timeoutMs ?? this.config.inspector.gatherTimeoutMs;
    const settled = await Promise.all(
      members.map(async (node) => {
        try {
          let timer: NodeJS.Timeout | undefined;
          const value = await Promise.race([
            this.queryNode(node, name, params, { timeoutMs }),
            new Promise((_, reject) => {
              timer = setTimeout(
                () => reject(new Error(`node '${node}' did not answer within ${timeoutMs} ms`)),
                timeoutMs,
              );
            }),
          ]).finally(() => clearTimeout(timer));
          return { node, ok: true as const, value };
        } catch (e) {
          return {
            node,
            ok: false as const,
            error: describeError(e).message.replace(/^ARGUS_ERR_[A-Z_]+: /, ''),
          };
        }
      }),
    );
    return {
      answers: settled.flatMap((s) => (s.ok ? [{ node: s.node, value: s.value }] : [])),
      missing: settled.flatMap((s) => (s.ok ? [] : [{ node: s.node, error: s.error }])),
    };
  }

  /** Finishes in-flight batches (their snapshots and commits included), stops every actor, closes. */
  async stop(): Promise<void> {
    if (this.currentStatus === 'stopped' || this.currentStatus === 'stopping') return;
    // Extensions first, while the node still runs: what they have in flight (a poll) still gets sent.
    await this.stopExtensions();
    this.currentStatus = 'stopping';
    if (this.flushScheduled) this.flush();
    await this.unwind();
    this.currentStatus = this.failure ? 'failed' : 'stopped';
  }

  private async stopExtensions(): Promise<void> {
    for (const extension of this.started.splice(0).reverse())
      await extension.stop().catch((e) => this.warn(`stopping ${extension.name}`, e));
  }

  private openConfigSource(): Promise<ConfigSource> {
    return openConfigSource(this.config);
  }

  private async unwind(): Promise<void> {
    await this.stopExtensions();
    // The coordinator hands every shard off first (each one's batch in flight finishes and commits).
    const coordinator = this.coordinator;
    this.coordinator = undefined;
    await coordinator?.stop().catch((e) => this.warn('leaving the cluster', e));
    const consumption = this.consumption;
    this.consumption = undefined;
    await consumption?.stop().catch((e) => this.warn('stopping consumption', e));
    await this.shards.releaseAll();
    await this.peer?.close().catch((e) => this.warn('closing the peer endpoint', e));
    this.peer = undefined;
    await this.tree?.stop().catch((e) => this.warn('stopping the supervisor tree', e));
    this.tree = undefined;
    const configSource = this.config_;
    this.config_ = undefined;
    if (configSource && !this.options.configSource)
      await configSource.close().catch((e) => this.warn('closing the config source', e));
    const b = this.boundaries;
    this.boundaries = undefined;
    if (b && !this.options.boundaries) await b.close().catch((e) => this.warn('closing the boundaries', e));
  }

  private async fail(error: Error): Promise<void> {
    if (this.currentStatus === 'failed' || this.currentStatus === 'stopped') return;
    this.failure = error;
    this.currentStatus = 'stopping';
    await this.unwind();
    this.currentStatus = 'failed';
  }

  private warn(what: string, e: unknown): void {
    process.emitWarning(`argus ${this.nodeId}: ${what} failed: ${describeError(e).message}`);
  }

  private shardsSupervisor(): Supervisor {
    const s = this.tree?.root.childSupervisor('shards');
    if (!s) throw new ArgusError('ARGUS_ERR_SUPERVISOR_STOPPED', 'the shards supervisor is not running');
    return s;
  }

  private openCoordinator(): Promise<Coordinator> {
    return openCoordinator(this.config, {
      clock: this.clock,
      events: this.events,
      warn: (m) => this.warn('coordination', new Error(m)),
    });
  }

  /** What the coordinator knows: members, leader, placement with epochs, the shards running here. */
  cluster(): ClusterView {
    if (!this.coordinator) throw new ArgusError('ARGUS_ERR_NOT_STARTED', `runtime is ${this.currentStatus}`);
    return this.coordinator.view();
  }

  /** Consumer lag of every shard running on this node (or of the one shard `only`, when it runs here). */
  lag(only?: PartitionRef): Promise<ShardLag[]> {
    return this.shards.lag(only);
  }

  /**
   * The member that owns the shard of `kind`/`key` now. ARGUS_ERR_NOT_STARTED when the node does not
   * run; ARGUS_ERR_UNREACHABLE when the shard has no owner right now (moving, or no member can take it).
   */
  ownerOf(kind: string, key: string): MemberInfo {
    const k = this.kinds.get(kind);
    if (!k)
      throw new ArgusError('ARGUS_ERR_UNKNOWN_KIND', `no entity kind '${kind}' is registered`, { kind });
    const coordinator = this.coordinator;
    if (!coordinator || this.currentStatus !== 'running')
      throw new ArgusError(
        'ARGUS_ERR_NOT_STARTED',
        `cannot find the owner of ${kind}/${key}: runtime is ${this.currentStatus}`,
      );
    const partition = shardOf(key, k.shards);
    const owner = coordinator.ownerOf(kind, partition);
    if (!owner)
      throw new ArgusError(
        'ARGUS_ERR_UNREACHABLE',
        `shard ${kind}/${partition} of '${key}' has no owner right now`,
        {
          kind,
          key,
          partition,
        },
      );
    return owner;
  }

  /**
   * Asks the entity's owning node for its answer to `query` (its kind's `query` handler; without one,
   * `{ state, offset }`). Rejects with ARGUS_ERR_UNREACHABLE when the shard has no owner or the owner
   * does not answer within `timeoutMs`.
   */
  async ask(
    kind: string,
    key: string,
    query: unknown = null,
    options: { timeoutMs?: number } = {},
  ): Promise<unknown> {
    const k = this.kinds.get(kind);
    if (!k)
      throw new ArgusError('ARGUS_ERR_UNKNOWN_KIND', `no entity kind '${kind}' is registered`, { kind });
    if (!isEntityKey(key))
      throw new ArgusError(
        'ARGUS_ERR_INVALID_KEY',
        `entity key must be a string of 1-${MAX_KEY_LENGTH} characters without control characters`,
        {
          kind,
          key,
        },
      );
    const owner = this.ownerOf(kind, key);
    if (owner.id === this.nodeId) return this.shards.answer({ kind, key, query });
    if (!owner.address)
      throw new ArgusError(
        'ARGUS_ERR_UNREACHABLE',
        `node '${owner.id}' owns ${kind}/${key} but serves no peer endpoint`,
        {
          node: owner.id,
        },
      );
    return askPeer(
      owner.id,
      owner.address,
      { kind, key, query },
      options.timeoutMs ?? this.config.cluster?.askTimeoutMs ?? 5_000,
    );
  }
}

/** Validates the configuration (throws ARGUS_ERR_INVALID_CONFIG naming each wrong field); no I/O. */
export const createRuntime = (config: unknown = {}, options: RuntimeOptions = {}): Runtime =>
  new Runtime(config, options);
