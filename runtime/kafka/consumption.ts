/**
 * One running consumption of the Kafka mailbox: a kafkajs consumer-group member mapped onto the
 * MailboxTransport contract (boundaries.ts, ConsumeOptions).
 *
 * How kafkajs behaves, and what we do about it (read from kafkajs 2.2 runner/consumerGroup/offsetManager):
 * - Rebalances are eager: kafkajs lets every batch handed out settle, then re-joins and emits GROUP_JOIN
 *   with the new assignment. So when GROUP_JOIN arrives no batch is in flight: revoked partitions get
 *   onRevoked there, new ones onAssigned (eachBatch waits for it before the first batch).
 * - After every join kafkajs restarts each partition from the broker's committed offset, also the ones
 *   we kept: that would re-deliver everything delivered but not yet committed. We keep our own position
 *   per partition and compare it with the offset each batch was fetched from; a batch fetched from the
 *   wrong place is dropped and we seek to our position (the seek applies to the next fetch).
 * - A handler that throws makes kafkajs restart the whole consumer. A rejected onBatch must instead
 *   re-deliver one partition, so we never throw it: we seek that partition back to its last committed
 *   offset and pause it for `retryDelayMs`.
 * - `consumer.commitOffsets` silently does nothing once the consumer stops, so stop() first pauses every
 *   partition, waits for in-flight batches, runs onRevoked (which may commit) and only then leaves.
 */
import type { Batch, Consumer, EachBatchPayload, Kafka } from 'kafkajs';
import type {
  ConsumeOptions,
  Consumption,
  MailboxBatch,
  MailboxRecord,
  PartitionRef,
} from '../boundaries.ts';
import { describeError } from '../errors.ts';
import { asBytes, transportError } from './client.ts';

export interface ConsumerSettings {
  readonly groupId: string;
  /** Default maxBatch when ConsumeOptions has none. */
  readonly maxBatch: number;
  /** Partitions whose batches are handed out at the same time. */
  readonly concurrency: number;
  /** Pause before a partition whose onBatch rejected is re-delivered. */
  readonly retryDelayMs: number;
  readonly sessionTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly maxBytesPerPartition: number;
  readonly maxWaitTimeMs: number;
  /** Where problems that do not stop consumption are reported (rejected batches, failed callbacks). */
  readonly report: (message: string) => void;
}

/** Offsets of a kind's partitions as the group has them: committed (or the log start) per partition. */
export type StartOffsets = (topic: string, partitions: readonly number[]) => Promise<Map<number, number>>;

interface PartitionState {
  readonly ref: PartitionRef;
  readonly topic: string;
  /** Settles when onAssigned finished; eachBatch waits for it. */
  ready: Promise<void>;
  /** The next offset to deliver. */
  position: number;
  /** The next offset after the last commit: where a rejected batch is re-delivered from. */
  committed: number;
  /** Batch in flight (kafkajs hands out one per partition at a time). */
  inFlight: Promise<void> | undefined;
  retryTimer: NodeJS.Timeout | undefined;
}

const keyOf = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

/**
 * The offset kafkajs fetched the batch from. kafkajs sets `fetchedOffset` on every batch (consumer/batch.js)
 * but does not declare it; should that change, the first record's offset is the next best thing.
 */
const fetchedOffsetOf = (batch: Batch, fallback: number): number => {
  const fetched = (batch as Batch & { fetchedOffset?: unknown }).fetchedOffset;
  if (typeof fetched === 'string') return Number(fetched);
  const first = batch.firstOffset();
  return first === null ? fallback : Number(first);
};

export class KafkaConsumption implements Consumption {
  private readonly consumer: Consumer;
  private readonly states = new Map<string, PartitionState>();
  private readonly callbacks = new Set<Promise<void>>();
  private readonly maxBatch: number;
  private stopping: Promise<void> | undefined;
  /** Set once the member leaves the group: from then on commits cannot go through it. */
  private left = false;

  constructor(
    kafka: Kafka,
    private readonly settings: ConsumerSettings,
    private readonly options: ConsumeOptions,
    private readonly kindOfTopic: ReadonlyMap<string, string>,
    private readonly startOffsets: StartOffsets,
    private readonly onStopped: (c: KafkaConsumption) => void,
  ) {
    this.maxBatch = options.maxBatch ?? settings.maxBatch;
    // options.owns is not applied yet: the group's default assigner decides. Placement-driven assignment
    // (a later issue) plugs in here as a custom partitionAssigner that consults owns().
    this.consumer = kafka.consumer({
      groupId: settings.groupId,
      sessionTimeout: settings.sessionTimeoutMs,
      heartbeatInterval: settings.heartbeatIntervalMs,
      rebalanceTimeout: Math.max(30_000, settings.sessionTimeoutMs),
      maxBytesPerPartition: settings.maxBytesPerPartition,
      maxBytes: Math.max(settings.maxBytesPerPartition * 4, 16 * 1024 * 1024),
      minBytes: 1,
      maxWaitTimeInMs: settings.maxWaitTimeMs,
      allowAutoTopicCreation: false,
    });
  }

  async start(): Promise<void> {
    const { GROUP_JOIN, CRASH } = this.consumer.events;
    // Once stopping, a late join only takes partitions away: nothing new is started.
    this.consumer.on(GROUP_JOIN, ({ payload }) =>
      this.assignmentChanged(this.stopping ? {} : payload.memberAssignment),
    );
    this.consumer.on(CRASH, ({ payload }) => {
      // kafkajs restarts on retriable errors (a new GROUP_JOIN follows); otherwise this member is gone.
      if (!payload.restart) {
        this.settings.report(
          `consumer of group '${this.settings.groupId}' crashed: ${payload.error.message}`,
        );
        this.left = true;
        this.assignmentChanged({});
      }
    });
    try {
      await this.consumer.connect();
      await this.consumer.subscribe({ topics: [...this.kindOfTopic.keys()], fromBeginning: true });
      await this.consumer.run({
        autoCommit: false,
        eachBatchAutoResolve: false,
        partitionsConsumedConcurrently: this.settings.concurrency,
        eachBatch: (payload) => this.eachBatch(payload),
      });
    } catch (e) {
      await this.consumer.disconnect().catch(() => undefined);
      throw transportError(`starting the mailbox consumer of group '${this.settings.groupId}'`, e);
    }
  }

  /**
   * Whether commits for the topic can go through this group member: it consumes the topic and has not
   * left the group (onRevoked, which may commit, runs before it leaves).
   */
  canCommit(topic: string): boolean {
    return !this.left && this.kindOfTopic.has(topic);
  }

  async commit(topic: string, partition: number, nextOffset: number): Promise<void> {
    await this.consumer.commitOffsets([{ topic, partition, offset: String(nextOffset) }]);
    const state = this.states.get(keyOf(topic, partition));
    if (state && nextOffset > state.committed) state.committed = nextOffset;
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      const topics = [...this.kindOfTopic.keys()].map((topic) => ({ topic }));
      try {
        this.consumer.pause(topics);
      } catch {
        // not running (never started, or crashed): nothing to pause
      }
      await Promise.allSettled([...this.states.values()].map((s) => s.inFlight));
      this.assignmentChanged({});
      await Promise.allSettled([...this.callbacks]);
      this.left = true;
      await this.consumer.disconnect().catch(() => undefined);
      this.onStopped(this);
    })();
    return this.stopping;
  }

  /** Diffs the new assignment against the current one: onRevoked for the gone, onAssigned for the new. */
  private assignmentChanged(assignment: Record<string, number[]>): void {
    const next = new Set<string>();
    for (const [topic, partitions] of Object.entries(assignment)) {
      for (const p of partitions) next.add(keyOf(topic, p));
    }
    for (const [key, state] of this.states) {
      if (next.has(key)) continue;
      this.states.delete(key);
      clearTimeout(state.retryTimer);
      this.track(
        state.ready.catch(() => undefined).then(() => this.options.onRevoked(state.ref)),
        state.ref,
        'onRevoked',
      );
    }
    const added = new Map<string, number[]>();
    for (const [topic, partitions] of Object.entries(assignment)) {
      const kind = this.kindOfTopic.get(topic);
      if (kind === undefined) continue;
      for (const partition of partitions) {
        if (this.states.has(keyOf(topic, partition))) continue;
        added.set(topic, [...(added.get(topic) ?? []), partition]);
      }
    }
    for (const [topic, partitions] of added) this.assign(topic, partitions);
  }

  private assign(topic: string, partitions: number[]): void {
    const kind = this.kindOfTopic.get(topic)!;
    const starts = this.startOffsets(topic, partitions);
    for (const partition of partitions) {
      const state: PartitionState = {
        ref: { kind, partition },
        topic,
        ready: Promise.resolve(),
        position: 0,
        committed: 0,
        inFlight: undefined,
        retryTimer: undefined,
      };
      state.ready = starts.then(async (offsets) => {
        const start = offsets.get(partition) ?? 0;
        state.position = start;
        state.committed = start;
        await this.options.onAssigned(state.ref, start);
      });
      // The next batch of the partition retries a failed assignment; say so now, it may be a while.
      state.ready.catch((e: unknown) =>
        this.settings.report(`onAssigned(${kind}/${partition}) failed: ${describeError(e).message}`),
      );
      this.states.set(keyOf(topic, partition), state);
    }
  }

  private track(callback: Promise<void>, ref: PartitionRef, name: string): void {
    const tracked = callback.catch((e: unknown) => {
      this.settings.report(`${name}(${ref.kind}/${ref.partition}) failed: ${describeError(e).message}`);
    });
    this.callbacks.add(tracked);
    void tracked.finally(() => this.callbacks.delete(tracked));
  }

  private async eachBatch(payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const state = this.states.get(keyOf(batch.topic, batch.partition));
    if (!state || this.stopping) return;
    const done = this.deliver(state, payload);
    state.inFlight = done;
    try {
      await done;
    } finally {
      state.inFlight = undefined;
    }
  }

  private async deliver(state: PartitionState, payload: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat, isRunning, isStale } = payload;
    try {
      await state.ready;
    } catch (e) {
      this.retryLater(state, `onAssigned failed: ${describeError(e).message}`, true);
      return;
    }
    if (isStale() || !this.states.has(keyOf(state.topic, state.ref.partition))) return;
    const fetchedFrom = fetchedOffsetOf(batch, state.position);
    if (fetchedFrom < state.position) {
      // kafkajs restarted from the committed offset (after a rebalance): continue where we are instead.
      this.consumer.seek({
        topic: state.topic,
        partition: state.ref.partition,
        offset: String(state.position),
      });
      return;
    }
    // fetchedFrom > position only when records before it no longer exist (retention): nothing to wait for.
    state.position = fetchedFrom;

    const records: MailboxRecord[] = batch.messages.map((m) => ({
      partition: batch.partition,
      offset: Number(m.offset),
      key: m.key === null ? undefined : m.key.toString('utf8'),
      value: m.value === null ? new Uint8Array(0) : asBytes(m.value),
    }));
    for (let i = 0; i < records.length; i += this.maxBatch) {
      if (!isRunning() || isStale() || this.stopping) return;
      const chunk = records.slice(i, i + this.maxBatch);
      const mailboxBatch: MailboxBatch = {
        kind: state.ref.kind,
        partition: state.ref.partition,
        records: chunk,
      };
      try {
        await this.options.onBatch(mailboxBatch);
      } catch (e) {
        this.retryLater(
          state,
          `onBatch failed at offset ${chunk[0]!.offset}: ${describeError(e).message}`,
          false,
        );
        return;
      }
      const last = chunk[chunk.length - 1]!.offset;
      state.position = last + 1;
      resolveOffset(String(last));
      // Keeps the session alive through long batches; throws (and must) when the group rebalances.
      await heartbeat();
    }
  }

  /**
   * Re-delivers the partition from its last committed offset after a pause. `reassign` also re-runs
   * onAssigned (it failed, so the partition was never started).
   */
  private retryLater(state: PartitionState, why: string, reassign: boolean): void {
    const { topic, ref } = state;
    this.settings.report(
      `${ref.kind}/${ref.partition}: ${why}; re-delivering from offset ${state.committed} in ${this.settings.retryDelayMs} ms`,
    );
    state.position = state.committed;
    this.consumer.seek({ topic, partition: ref.partition, offset: String(state.committed) });
    this.consumer.pause([{ topic, partitions: [ref.partition] }]);
    clearTimeout(state.retryTimer);
    state.retryTimer = setTimeout(() => {
      state.retryTimer = undefined;
      if (this.states.get(keyOf(topic, ref.partition)) !== state || this.stopping) return;
      if (reassign) {
        this.states.delete(keyOf(topic, ref.partition));
        this.assign(topic, [ref.partition]);
      }
      try {
        this.consumer.resume([{ topic, partitions: [ref.partition] }]);
      } catch {
        // the consumer restarted or stopped meanwhile: its new run is not paused
      }
    }, this.settings.retryDelayMs);
  }
}
