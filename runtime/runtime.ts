/**
 * The embedding API: `createRuntime(config)` → register entity kinds → `start()` → `send` / observe /
 * inspect → `stop()`. Coordinator-style lifecycle (Burrow): configure validates without I/O, start
 * opens the boundaries and the supervisor tree and returns once consuming, stop unwinds in reverse.
 */

import { unpack } from 'msgpackr';
import type { ChildInfo, Supervisor } from '../supervisors/supervisor.ts';
import { type RunningTree, startTree } from '../supervisors/tree.ts';
import type {
  Clock,
  Consumption,
  DeadLetter,
  DeadLetterStore,
  MailboxTransport,
  OutgoingRecord,
  SnapshotStore,
} from './boundaries.ts';
import { realClock } from './clock.ts';
import { type ArgusConfig, parseConfig } from './config.ts';
import { type AnyEntityDefinition, defaultParse, type EntityDefinition } from './entity.ts';
import { encodeEnvelope, newMessageId, shardOf } from './envelope.ts';
import { ArgusError, describeError } from './errors.ts';
import { EventBus, type EventObserver } from './events.ts';
import { topicNames, validateTopicNames } from './kafka/topics.ts';
import { nodeTree } from './node-tree.ts';
import { openBoundaries } from './open-boundaries.ts';
import { ShardRunner } from './shard.ts';

/** The boundary implementations a runtime uses; injected for tests, opened from config otherwise. */
export interface Boundaries {
  readonly mailbox: MailboxTransport;
  readonly snapshots: SnapshotStore;
  readonly deadLetters: DeadLetterStore;
  close(): Promise<void>;
}

export interface RuntimeOptions {
  readonly boundaries?: Boundaries;
  readonly clock?: Clock;
  readonly random?: () => number;
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
}

export interface Inspection {
  readonly nodeId: string;
  readonly mode: ArgusConfig['mode'];
  readonly status: RuntimeStatus;
  readonly kinds: readonly { kind: string; shards: number }[];
  readonly shards: readonly ShardInfo[];
  readonly tree: ChildInfo | undefined;
}

const MAX_KEY_LENGTH = 512;

interface PendingSend {
  readonly records: OutgoingRecord[];
  readonly waiters: { resolve(): void; reject(e: unknown): void }[];
}

export class Runtime {
  readonly config: ArgusConfig;
  private readonly events = new EventBus();
  private readonly clock: Clock;
  private readonly random: () => number;
  private readonly kinds = new Map<string, { definition: AnyEntityDefinition; shards: number }>();
  private readonly runners = new Map<string, ShardRunner>();
  private readonly pending = new Map<string, PendingSend>();
  private flushScheduled = false;
  private boundaries: Boundaries | undefined;
  private tree: RunningTree | undefined;
  private consumption: Consumption | undefined;
  private currentStatus: RuntimeStatus = 'created';
  private failure: Error | undefined;

  constructor(
    config: unknown,
    private readonly options: RuntimeOptions = {},
  ) {
    this.config = parseConfig(config);
    this.clock = options.clock ?? realClock;
    this.random = options.random ?? Math.random;
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

  /** Adds an observer of lifecycle and dead-letter events; returns its unsubscribe. */
  subscribe(observer: EventObserver): () => void {
    return this.events.subscribe(observer);
  }

  async start(): Promise<void> {
    if (this.currentStatus !== 'created')
      throw new ArgusError('ARGUS_ERR_ALREADY_STARTED', `runtime ${this.nodeId} was already started`);
    // Kinds name Kafka topics: refuse names Kafka would collide ('.' vs '_') in every mode, so a
    // configuration that runs embedded also runs on Kafka.
    validateTopicNames(topicNames(this.config.kafka?.topicPrefix ?? 'argus', [...this.kinds.keys()]));
    this.currentStatus = 'starting';
    try {
      this.boundaries = this.options.boundaries ?? (await openBoundaries(this.config));
      const topology = [...this.kinds.entries()].map(([kind, k]) => ({ kind, partitions: k.shards }));
      await this.boundaries.mailbox.ensureKinds(topology);
      await this.boundaries.snapshots.ensureKinds(topology);
      await this.boundaries.deadLetters.ensure();
      this.tree = startTree(
        nodeTree(this.config),
        { clock: this.clock, random: this.random, events: this.events },
        (error) => void this.fail(error),
      );
      this.consumption = await this.boundaries.mailbox.consume({
        kinds: [...this.kinds.keys()],
        maxBatch: this.config.delivery.maxBatch,
        onAssigned: (ref) =>
          this.reported(
            `opening shard ${ref.kind}/${ref.partition}`,
            this.openShard(ref.kind, ref.partition),
          ),
        onRevoked: (ref) =>
          this.reported(
            `closing shard ${ref.kind}/${ref.partition}`,
            this.closeShard(ref.kind, ref.partition),
          ),
        onBatch: (batch) => {
          const runner = this.runners.get(`${batch.kind}/${batch.partition}`);
          const work = runner
            ? runner.process(batch)
            : Promise.reject(new Error(`shard ${batch.kind}/${batch.partition} is not open here`));
          return this.reported(`batch of shard ${batch.kind}/${batch.partition} (retried)`, work);
        },
      });
      this.currentStatus = 'running';
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
    if (typeof key !== 'string' || key.length === 0 || key.length > MAX_KEY_LENGTH)
      return Promise.reject(
        new ArgusError(
          'ARGUS_ERR_INVALID_KEY',
          `entity key must be a string of 1-${MAX_KEY_LENGTH} characters`,
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
    const runner = this.runners.get(`${kind}/${partition}`);
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

  inspect(): Inspection {
    return {
      nodeId: this.nodeId,
      mode: this.config.mode,
      status: this.currentStatus,
      kinds: [...this.kinds.entries()].map(([kind, k]) => ({ kind, shards: k.shards })),
      shards: [...this.runners.values()].map((r) => ({
        kind: r.definition.kind,
        partition: r.partition,
        active: r.activeCount,
      })),
      tree: this.tree?.describe(),
    };
  }

  /** Finishes in-flight batches (their snapshots and commits included), stops every actor, closes. */
  async stop(): Promise<void> {
    if (this.currentStatus === 'stopped' || this.currentStatus === 'stopping') return;
    this.currentStatus = 'stopping';
    if (this.flushScheduled) this.flush();
    await this.unwind();
    this.currentStatus = this.failure ? 'failed' : 'stopped';
  }

  private async unwind(): Promise<void> {
    const consumption = this.consumption;
    this.consumption = undefined;
    await consumption?.stop().catch((e) => this.warn('stopping consumption', e));
    for (const runner of [...this.runners.values()])
      await runner.close().catch((e) => this.warn('closing a shard', e));
    this.runners.clear();
    await this.tree?.stop().catch((e) => this.warn('stopping the supervisor tree', e));
    this.tree = undefined;
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

  /** Passes the outcome through, reporting a failure: the transport retries, people should see why. */
  private reported(what: string, work: Promise<void>): Promise<void> {
    return work.catch((e) => {
      if (this.currentStatus === 'running' || this.currentStatus === 'starting') this.warn(what, e);
      throw e;
    });
  }

  private warn(what: string, e: unknown): void {
    process.emitWarning(`argus ${this.nodeId}: ${what} failed: ${describeError(e).message}`);
  }

  private shardsSupervisor(): Supervisor {
    const s = this.tree?.root.childSupervisor('shards');
    if (!s) throw new ArgusError('ARGUS_ERR_SUPERVISOR_STOPPED', 'the shards supervisor is not running');
    return s;
  }

  private async openShard(kind: string, partition: number): Promise<void> {
    const k = this.kinds.get(kind);
    const b = this.boundaries;
    if (!k || !b) throw new Error(`cannot open shard ${kind}/${partition}`);
    const runner = new ShardRunner(
      k.definition,
      partition,
      k.shards,
      {
        maxAttempts: this.config.deadLetter.maxAttempts,
        deliveryTimeoutMs: this.config.delivery.timeoutMs,
        idleMs: this.config.passivation.idleMs,
        supervision: this.config.supervision.shard,
      },
      {
        mailbox: b.mailbox,
        snapshots: b.snapshots,
        deadLetters: b.deadLetters,
        events: this.events,
        clock: this.clock,
        shards: () => this.shardsSupervisor(),
      },
    );
    await runner.open();
    this.runners.set(`${kind}/${partition}`, runner);
  }

  private async closeShard(kind: string, partition: number): Promise<void> {
    const runner = this.runners.get(`${kind}/${partition}`);
    this.runners.delete(`${kind}/${partition}`);
    await runner?.close();
  }
}

/** Validates the configuration (throws ARGUS_ERR_INVALID_CONFIG naming each wrong field); no I/O. */
export const createRuntime = (config: unknown = {}, options: RuntimeOptions = {}): Runtime =>
  new Runtime(config, options);
