/**
 * The shards running on this node: the runtime's side of ownership (`ShardHost`, boundaries.ts). The
 * coordinator decides; this starts and stops.
 *
 * - `acquire(shard, epoch)`: open the shard's checkpoint writer (fencing any earlier writer, on another
 *   node or a previous incarnation), read the committed offset, load snapshots, assign the partition
 *   to the node's consumption. In that order: a new owner that opened the writer first sees every
 *   checkpoint the old one committed.
 * - `release(shard)`: revoke the partition (the batch in flight finishes and commits), stop the shard's
 *   entities, close the writer. Handoff commits before it lets go.
 * - Checkpoints run behind processing (checkpointer.ts): a fenced one tells the coordinator (the shard
 *   is someone else's now); a failed one reopens the writer before the retry — only while the shard is
 *   still held here; transport outages are reported once each way.
 * Acquire and release of one shard never overlap (one transition at a time per shard).
 */
import type { Supervisor } from '../supervisors/supervisor.ts';
import type {
  Clock,
  Consumption,
  Coordinator,
  MailboxBatch,
  OutputRecord,
  PartitionRef,
  ShardHost,
  ShardWriter,
} from './boundaries.ts';
import type { ArgusConfig } from './config.ts';
import type { AnyEntityDefinition } from './entity.ts';
import { shardOf } from './envelope.ts';
import { ArgusError, describeError, isArgusError } from './errors.ts';
import type { EventBus } from './events.ts';
import type { AskRequest } from './peer.ts';
import type { EntityRegistry } from './registry.ts';
import type { Boundaries, ShardInfo, ShardLag } from './runtime.ts';
import { ShardRunner } from './shard.ts';

export interface RegisteredKind {
  readonly definition: AnyEntityDefinition;
  readonly shards: number;
}

export interface ShardSetDeps {
  /** What the inspector knows of the entities of the shards held here. */
  readonly registry: EntityRegistry;
  readonly nodeId: string;
  readonly config: ArgusConfig;
  readonly kinds: ReadonlyMap<string, RegisteredKind>;
  readonly events: EventBus;
  readonly clock: Clock;
  readonly boundaries: () => Boundaries | undefined;
  readonly consumption: () => Consumption | undefined;
  readonly coordinator: () => Coordinator | undefined;
  /** Whether the runtime is running (shards start only then; failures are reported only then). */
  readonly running: () => boolean;
  /** The node's `shards` supervisor (its current incarnation). */
  readonly supervisor: () => Supervisor;
  readonly warn: (what: string, e: unknown) => void;
  /** Output records that became durable on a shard here. */
  readonly outputsLanded: (records: readonly OutputRecord[]) => void;
  /** A shard started running here (`held`) or stopped. */
  readonly shardChanged: (ref: PartitionRef, held: boolean) => void;
}

interface Running {
  readonly runner: ShardRunner;
  readonly epoch: number;
}

/** Pause before a failed checkpoint is tried again. */
const CHECKPOINT_RETRY_MS = 500;

const idOf = (ref: PartitionRef): string => `${ref.kind}/${ref.partition}`;

export class ShardSet implements ShardHost {
  private readonly shards = new Map<string, Running>();
  /** Shards being acquired or released right now: a second call waits for the first. */
  private readonly transitions = new Map<string, Promise<void>>();
  /** Set after a checkpoint failed on the transport, until one succeeds: the outage is reported once. */
  private transportDown = false;

  constructor(private readonly deps: ShardSetDeps) {}

  /** Starts a shard this node now owns: fence earlier writers, load snapshots, consume from the commit. */
  acquire(ref: PartitionRef, epoch: number): Promise<void> {
    const id = idOf(ref);
    return this.serially(id, async () => {
      if (this.shards.has(id)) return;
      const k = this.deps.kinds.get(ref.kind);
      const b = this.deps.boundaries();
      const consumption = this.deps.consumption();
      if (!k || !b || !consumption || !this.deps.running())
        throw new ArgusError('ARGUS_ERR_NOT_STARTED', `cannot start shard ${id}: the runtime is not running`);
      const writer = await b.checkpoints.open(ref.kind, ref.partition);
      let runner: ShardRunner | undefined;
      try {
        const from = await b.mailbox.committed(ref.kind, ref.partition);
        const { config } = this.deps;
        runner = new ShardRunner(
          k.definition,
          ref.partition,
          k.shards,
          {
            maxAttempts: config.deadLetter.maxAttempts,
            deliveryTimeoutMs: config.delivery.timeoutMs,
            idleMs: config.passivation.idleMs,
            supervision: config.supervision.shard,
            checkpointRetryMs: CHECKPOINT_RETRY_MS,
            maxPendingRecords: Math.max(10_000, config.delivery.maxBatch * 10),
          },
          {
            snapshots: b.snapshots,
            writer,
            reopenWriter: () => this.reopenWriter(ref),
            checkpointed: (ok, error) => this.checkpointed(ref, ok, error),
            nodeId: this.deps.nodeId,
            epoch,
            events: this.deps.events,
            clock: this.deps.clock,
            shards: () => this.deps.supervisor(),
            outputsLanded: (records) => this.deps.outputsLanded(records),
            targets: this.deps.kinds,
            entities: this.deps.registry.open(ref.kind, ref.partition),
          },
        );
        await runner.open();
        runner.committedOffset = from;
        this.shards.set(id, { runner, epoch });
        consumption.assign(ref, from);
        this.deps.shardChanged(ref, true);
      } catch (e) {
        this.shards.delete(id);
        this.deps.registry.drop(ref.kind, ref.partition);
        await runner?.close().catch(() => undefined);
        await writer.close().catch(() => undefined);
        throw e;
      }
    });
  }

  /** Stops a shard: no new batches, the one in flight finished (and committed), entities stopped, writer closed. */
  release(ref: PartitionRef, _reason: string): Promise<void> {
    const id = idOf(ref);
    return this.serially(id, async () => {
      const running = this.shards.get(id);
      if (!running) return;
      await this.deps.consumption()?.revoke(ref);
      this.shards.delete(id);
      this.deps.shardChanged(ref, false);
      await running.runner.close(); // flushes the last checkpoint, then closes the writer
      this.deps.registry.drop(ref.kind, ref.partition);
    });
  }

  /** Releases every shard still running (the coordinator normally did already). */
  async releaseAll(): Promise<void> {
    for (const running of [...this.shards.values()]) {
      const ref = { kind: running.runner.definition.kind, partition: running.runner.partition };
      await this.release(ref, 'stopping').catch((e) => this.deps.warn('closing a shard', e));
    }
  }

  /** The consumption's batch handler. */
  async process(batch: MailboxBatch): Promise<void> {
    const { kind, partition } = batch;
    const running = this.shards.get(idOf(batch));
    if (!running) throw new Error(`shard ${kind}/${partition} is not open here`);
    try {
      await running.runner.process(batch);
    } catch (e) {
      if (isArgusError(e, 'ARGUS_ERR_FENCED')) this.deps.coordinator()?.fenced({ kind, partition });
      else if (this.deps.running()) this.deps.warn(`batch of shard ${kind}/${partition} (retried)`, e);
      throw e;
    }
  }

  /** How a shard's background checkpoints went: fencing goes to the coordinator, outages are reported. */
  private checkpointed(ref: PartitionRef, ok: boolean, error?: unknown): void {
    if (ok) {
      this.transportOutage(false, `a checkpoint of ${ref.kind}/${ref.partition} went through`);
      return;
    }
    if (isArgusError(error, 'ARGUS_ERR_FENCED')) {
      this.deps.coordinator()?.fenced(ref);
      return;
    }
    if (!this.deps.running()) return;
    this.deps.warn(`checkpoint of shard ${ref.kind}/${ref.partition} (retried)`, error);
    if (isArgusError(error, 'ARGUS_ERR_TRANSPORT')) this.transportOutage(true, describeError(error).message);
  }

  /** The runner of the shard of `key`, when that shard runs here. */
  runnerOf(kind: string, key: string): ShardRunner | undefined {
    const k = this.deps.kinds.get(kind);
    return k ? this.shards.get(`${kind}/${shardOf(key, k.shards)}`)?.runner : undefined;
  }

  /** The runner of a shard running here, and the epoch it was acquired at. */
  running(kind: string, partition: number): { runner: ShardRunner; epoch: number } | undefined {
    return this.shards.get(`${kind}/${partition}`);
  }

  /** Answers an ask for an entity of a shard running here. */
  async answer(ask: AskRequest): Promise<unknown> {
    const k = this.deps.kinds.get(ask.kind);
    if (!k)
      throw new ArgusError('ARGUS_ERR_UNKNOWN_KIND', `no entity kind '${ask.kind}' is registered`, {
        kind: ask.kind,
      });
    const partition = shardOf(ask.key, k.shards);
    const runner = this.shards.get(`${ask.kind}/${partition}`)?.runner;
    if (!runner)
      throw new ArgusError(
        'ARGUS_ERR_UNREACHABLE',
        `shard ${ask.kind}/${partition} is not running on node '${this.deps.nodeId}' (moving or starting)`,
        { kind: ask.kind, key: ask.key, partition, node: this.deps.nodeId },
      );
    const { state, offset } = await runner.read(ask.key);
    return k.definition.query ? k.definition.query(state, ask.query, ask.key) : { state, offset };
  }

  /** Consumer lag of every shard running here (or of the one shard `only`, when it runs here). */
  async lag(only?: PartitionRef): Promise<ShardLag[]> {
    const mailbox = this.deps.boundaries()?.mailbox;
    if (!mailbox) throw new ArgusError('ARGUS_ERR_NOT_STARTED', 'the runtime is not running');
    const running = only
      ? [this.shards.get(idOf(only))].filter((r) => r !== undefined)
      : [...this.shards.values()];
    return Promise.all(
      running.map(async ({ runner }) => {
        const kind = runner.definition.kind;
        const end = await mailbox.endOffset(kind, runner.partition);
        const committed =
          runner.committedOffset >= 0
            ? runner.committedOffset
            : await mailbox.committed(kind, runner.partition);
        return { kind, partition: runner.partition, committed, end, lag: Math.max(0, end - committed) };
      }),
    );
  }

  info(): ShardInfo[] {
    return [...this.shards.values()].map(({ runner, epoch }) => ({
      kind: runner.definition.kind,
      partition: runner.partition,
      active: runner.activeCount,
      epoch,
    }));
  }

  /**
   * A checkpoint write failed: its writer may be unusable (a Kafka transaction whose outcome is unknown).
   * Open a new one — which fences the old — but only while this node still holds the shard: opening it
   * after losing the shard would fence the new owner.
   */
  private async reopenWriter(ref: PartitionRef): Promise<ShardWriter> {
    const b = this.deps.boundaries();
    if (!b || !this.deps.coordinator()?.holds(ref))
      throw new ArgusError('ARGUS_ERR_FENCED', `shard ${ref.kind}/${ref.partition} is no longer held here`);
    return b.checkpoints.open(ref.kind, ref.partition);
  }

  /** Reports the mailbox transport going away and coming back, once each way. */
  transportOutage(down: boolean, detail: string): void {
    if (down === this.transportDown) return;
    this.transportDown = down;
    if (down) this.deps.warn('the mailbox transport', new Error(`unreachable: ${detail}`));
    if (!this.deps.events.listening) return;
    this.deps.events.publish({
      type: '@argus.cluster',
      event: down ? 'transport-unreachable' : 'transport-reachable',
      node: this.deps.nodeId,
      at: this.deps.clock.now(),
      detail,
    });
  }

  /** Runs one transition of a shard at a time (acquire and release of the same shard never overlap). */
  private serially(id: string, work: () => Promise<void>): Promise<void> {
    const previous = this.transitions.get(id) ?? Promise.resolve();
    const next = previous.catch(() => undefined).then(work);
    this.transitions.set(id, next);
    const cleanup = () => {
      if (this.transitions.get(id) === next) this.transitions.delete(id);
    };
    next.then(cleanup, cleanup);
    return next;
  }
}
