/**
 * One running consumption of the Kafka mailbox, mapped onto the MailboxTransport contract
 * (boundaries.ts): partitions are assigned to it explicitly, by the runtime, from etcd's placement.
 *
 * kafkajs has no `assign()` (tulios/kafkajs#373), and a shared consumer group would let Kafka decide
 * who consumes what — two deciders that disagree during every rebalance. So the group here is only a
 * vehicle for fetching: each consumption joins a group of its own (`<fetchGroupPrefix>.<uuid>`) whose
 * assigner gives its one member every partition of every kind, and it pauses every partition it was not
 * assigned. `assign` seeks and resumes one partition; `revoke` pauses it and waits for its batch in
 * flight. Ownership changes thus never rebalance anything, and consumption follows etcd exactly.
 * Offsets are never committed to the fetch group (it vanishes when the member leaves); progress is
 * committed by the shard's checkpoint writer to the shared offsets group.
 *
 * How kafkajs behaves, and what we do about it (read from kafkajs 2.2 runner/consumerGroup):
 * - After every join kafkajs starts each partition at the group's committed offset (none here): on
 *   GROUP_JOIN we seek every assigned partition to our position and pause all the others.
 * - A batch fetched before a seek or pause may still be handed out: batches of unassigned partitions
 *   are dropped, stale ones (`isStale()`, or fetched from before our position) are dropped and re-sought.
 * - A handler that throws makes kafkajs restart the whole consumer. A rejected onBatch must instead
 *   re-deliver one partition, so we never throw it: we seek that partition back and pause it for
 *   `retryDelayMs`.
 * - A consumer that crashes for good (kafkajs gave up retrying: the broker was gone too long) is
 *   replaced by a new one after `retryDelayMs`, again and again until it joins; positions are ours, so
 *   nothing is skipped or re-delivered by the replacement.
 */
import { randomUUID } from 'node:crypto';
import {
  AssignerProtocol,
  type Batch,
  type Consumer,
  type EachBatchPayload,
  type Kafka,
  type PartitionAssigner,
} from 'kafkajs';
import type {
  ConsumeOptions,
  Consumption,
  MailboxBatch,
  MailboxRecord,
  PartitionRef,
} from '../boundaries.ts';
import { ArgusError, describeError } from '../errors.ts';
import { asBytes, transportError } from './client.ts';

export interface ConsumerSettings {
  /** Prefix of the per-consumption fetch groups. */
  readonly fetchGroupPrefix: string;
  /** Default maxBatch when ConsumeOptions has none. */
  readonly maxBatch: number;
  /** Partitions whose batches are handed out at the same time. */
  readonly concurrency: number;
  /** Pause before a partition whose onBatch rejected is re-delivered, and between consumer restarts. */
  readonly retryDelayMs: number;
  readonly sessionTimeoutMs: number;
  readonly heartbeatIntervalMs: number;
  readonly maxBytesPerPartition: number;
  readonly maxWaitTimeMs: number;
  /** Where problems that do not stop consumption are reported (rejected batches, restarts). */
  readonly report: (message: string) => void;
}

interface PartitionState {
  readonly ref: PartitionRef;
  readonly topic: string;
  /** The next offset to deliver. */
  position: number;
  /** Batch in flight (kafkajs hands out one per partition at a time). */
  inFlight: Promise<void> | undefined;
  retryTimer: NodeJS.Timeout | undefined;
}

const keyOf = (topic: string, partition: number): string => `${topic}\u0000${partition}`;

const ASSIGNER_NAME = 'ArgusAllPartitions';

/** Gives every member every partition of the subscribed topics (there is one member per group). */
const assignEverything: PartitionAssigner = ({ cluster }) => ({
  name: ASSIGNER_NAME,
  version: 1,
  async assign({ members, topics }) {
    const assignment: Record<string, number[]> = {};
    for (const topic of topics) {
      assignment[topic] = cluster.findTopicPartitionMetadata(topic).map((m) => m.partitionId);
    }
    return members.map((member) => ({
      memberId: member.memberId,
      memberAssignment: AssignerProtocol.MemberAssignment.encode({
        version: 1,
        assignment,
        userData: Buffer.alloc(0),
      }),
    }));
  },
  protocol({ topics }) {
    return {
      name: ASSIGNER_NAME,
      metadata: AssignerProtocol.MemberMetadata.encode({ version: 1, topics, userData: Buffer.alloc(0) }),
    };
  },
});

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
  private consumer: Consumer;
  private readonly states = new Map<string, PartitionState>();
  private readonly maxBatch: number;
  private readonly report: (message: string) => void;
  private stopping: Promise<void> | undefined;
  private restartTimer: NodeJS.Timeout | undefined;
  /** Set while the current consumer has joined and not crashed: seek/pause/resume work on it. */
  private joined = false;
  /** Set from a crash until the next join: the outage was reported. */
  private down = false;

  constructor(
    private readonly kafka: Kafka,
    private readonly settings: ConsumerSettings,
    private readonly options: ConsumeOptions,
    /** topic → kind, for every kind of this consumption. */
    private readonly kindOfTopic: ReadonlyMap<string, string>,
    private readonly partitionCount: (kind: string) => number,
    private readonly onStopped: (c: KafkaConsumption) => void,
  ) {
    this.maxBatch = options.maxBatch ?? settings.maxBatch;
    this.report = options.report ?? settings.report;
    this.consumer = this.createConsumer();
  }

  private createConsumer(): Consumer {
    const s = this.settings;
    const consumer = this.kafka.consumer({
      groupId: `${s.fetchGroupPrefix}.${randomUUID()}`,
      partitionAssigners: [assignEverything],
      sessionTimeout: s.sessionTimeoutMs,
      heartbeatInterval: s.heartbeatIntervalMs,
      rebalanceTimeout: Math.max(30_000, s.sessionTimeoutMs),
      maxBytesPerPartition: s.maxBytesPerPartition,
      maxBytes: Math.max(s.maxBytesPerPartition * 4, 16 * 1024 * 1024),
      minBytes: 1,
      maxWaitTimeInMs: s.maxWaitTimeMs,
      allowAutoTopicCreation: false,
    });
    const { GROUP_JOIN, CRASH } = consumer.events;
    consumer.on(GROUP_JOIN, () => {
      if (consumer !== this.consumer) return;
      this.joined = true;
      if (this.down) {
        this.down = false;
        this.options.onOutage?.(false, 'the mailbox consumer joined again');
      }
      this.applyAssignment();
    });
    consumer.on(CRASH, ({ payload }) => {
      if (consumer !== this.consumer) return;
      this.joined = false;
      if (!this.down && !this.stopping) {
        this.down = true;
        this.options.onOutage?.(true, `the mailbox consumer crashed: ${payload.error.message}`);
      }
      // kafkajs restarts on retriable errors itself (a new GROUP_JOIN follows); otherwise we replace it.
      if (!payload.restart) {
        this.report(`mailbox consumer crashed (${payload.error.message}); replacing it`);
        this.scheduleRestart();
      }
    });
    return consumer;
  }

  async start(): Promise<void> {
    try {
      await this.run(this.consumer);
    } catch (e) {
      await this.consumer.disconnect().catch(() => undefined);
      throw transportError('starting the mailbox consumer', e);
    }
  }

  private async run(consumer: Consumer): Promise<void> {
    await consumer.connect();
    await consumer.subscribe({ topics: [...this.kindOfTopic.keys()], fromBeginning: false });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      partitionsConsumedConcurrently: this.settings.concurrency,
      eachBatch: (payload) => this.eachBatch(consumer, payload),
    });
  }

  private scheduleRestart(): void {
    if (this.stopping || this.restartTimer) return;
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      void this.restart();
    }, this.settings.retryDelayMs);
  }

  private async restart(): Promise<void> {
    if (this.stopping) return;
    const old = this.consumer;
    await old.disconnect().catch(() => undefined);
    if (this.stopping) return;
    const fresh = this.createConsumer();
    this.consumer = fresh;
    try {
      await this.run(fresh);
      this.report('mailbox consumer is back');
    } catch (e) {
      if (fresh !== this.consumer) return;
      this.report(`mailbox consumer could not start again: ${describeError(e).message}`);
      await fresh.disconnect().catch(() => undefined);
      this.scheduleRestart();
    }
  }

  assign(ref: PartitionRef, fromOffset: number): void {
    if (this.stopping) throw new ArgusError('ARGUS_ERR_STORE_CLOSED', 'the consumption is stopped');
    const topic = [...this.kindOfTopic].find(([, kind]) => kind === ref.kind)?.[0];
    if (topic === undefined)
      throw new ArgusError('ARGUS_ERR_UNKNOWN_KIND', `kind '${ref.kind}' is not consumed here`, { ...ref });
    const count = this.partitionCount(ref.kind);
    if (!Number.isInteger(ref.partition) || ref.partition < 0 || ref.partition >= count)
      throw new ArgusError(
        'ARGUS_ERR_INVALID_CONFIG',
        `kind '${ref.kind}' has partitions 0..${count - 1}, not ${ref.partition}`,
        { ...ref },
      );
    const key = keyOf(topic, ref.partition);
    if (this.states.has(key))
      throw new ArgusError(
        'ARGUS_ERR_INVALID_CONFIG',
        `partition ${ref.kind}/${ref.partition} is already assigned`,
        { ...ref },
      );
    const state: PartitionState = {
      ref: { kind: ref.kind, partition: ref.partition },
      topic,
      position: fromOffset,
      inFlight: undefined,
      retryTimer: undefined,
    };
    this.states.set(key, state);
    this.startFetching(state);
  }

  async revoke(ref: PartitionRef): Promise<void> {
    const topic = [...this.kindOfTopic].find(([, kind]) => kind === ref.kind)?.[0];
    if (topic === undefined) return;
    const state = this.states.get(keyOf(topic, ref.partition));
    if (!state) return;
    this.states.delete(keyOf(topic, ref.partition));
    clearTimeout(state.retryTimer);
    this.pausePartition(topic, ref.partition);
    await state.inFlight?.catch(() => undefined);
  }

  assigned(): PartitionRef[] {
    return [...this.states.values()].map((s) => s.ref);
  }

  stop(): Promise<void> {
    this.stopping ??= (async () => {
      clearTimeout(this.restartTimer);
      try {
        this.consumer.pause([...this.kindOfTopic.keys()].map((topic) => ({ topic })));
      } catch {
        // not running (never started, or crashed): nothing to pause
      }
      const states = [...this.states.values()];
      this.states.clear();
      for (const s of states) clearTimeout(s.retryTimer);
      await Promise.allSettled(states.map((s) => s.inFlight));
      await this.consumer.disconnect().catch(() => undefined);
      this.onStopped(this);
    })();
    return this.stopping;
  }

  /** After a join: every assigned partition at our position, every other partition paused. */
  private applyAssignment(): void {
    const paused: { topic: string; partitions: number[] }[] = [];
    for (const [topic, kind] of this.kindOfTopic) {
      const partitions: number[] = [];
      for (let p = 0; p < this.partitionCount(kind); p++) {
        if (!this.states.has(keyOf(topic, p))) partitions.push(p);
      }
      if (partitions.length > 0) paused.push({ topic, partitions });
    }
    try {
      if (paused.length > 0) this.consumer.pause(paused);
      for (const state of this.states.values()) {
        if (!state.retryTimer) this.startFetching(state);
      }
    } catch (e) {
      this.report(`could not apply the assignment after a join: ${describeError(e).message}`);
    }
  }

  private startFetching(state: PartitionState): void {
    if (!this.joined) return; // the next GROUP_JOIN applies it
    try {
      this.consumer.seek({
        topic: state.topic,
        partition: state.ref.partition,
        offset: String(state.position),
      });
      this.consumer.resume([{ topic: state.topic, partitions: [state.ref.partition] }]);
    } catch {
      // the consumer is between runs: the next GROUP_JOIN applies it
    }
  }

  private pausePartition(topic: string, partition: number): void {
    try {
      this.consumer.pause([{ topic, partitions: [partition] }]);
    } catch {
      // between runs: the next GROUP_JOIN pauses every unassigned partition
    }
  }

  private async eachBatch(consumer: Consumer, payload: EachBatchPayload): Promise<void> {
    const { batch } = payload;
    const state = this.states.get(keyOf(batch.topic, batch.partition));
    if (!state || this.stopping || consumer !== this.consumer) return;
    const done = this.deliver(state, payload);
    state.inFlight = done;
    try {
      await done;
    } finally {
      if (state.inFlight === done) state.inFlight = undefined;
    }
  }

  private isCurrent(state: PartitionState): boolean {
    return this.states.get(keyOf(state.topic, state.ref.partition)) === state && !this.stopping;
  }

  private async deliver(state: PartitionState, payload: EachBatchPayload): Promise<void> {
    const { batch, resolveOffset, heartbeat, isRunning, isStale } = payload;
    if (isStale() || state.retryTimer) return;
    const fetchedFrom = fetchedOffsetOf(batch, state.position);
    if (fetchedFrom !== state.position) {
      if (fetchedFrom < state.position) {
        // Fetched from before our position (a join reset it, or a fetch raced our seek): go back to ours.
        this.consumer.seek({
          topic: state.topic,
          partition: state.ref.partition,
          offset: String(state.position),
        });
        return;
      }
      // Ahead of our position only when the records before it no longer exist (retention).
      this.report(
        `${state.ref.kind}/${state.ref.partition}: records ${state.position}..${fetchedFrom - 1} are gone from the log (retention); continuing at ${fetchedFrom}`,
      );
      state.position = fetchedFrom;
    }

    const records: MailboxRecord[] = batch.messages.map((m) => ({
      partition: batch.partition,
      offset: Number(m.offset),
      key: m.key === null ? undefined : m.key.toString('utf8'),
      value: m.value === null ? new Uint8Array(0) : asBytes(m.value),
    }));
    for (let i = 0; i < records.length; i += this.maxBatch) {
      if (!isRunning() || isStale() || !this.isCurrent(state)) return;
      const chunk = records.slice(i, i + this.maxBatch);
      if (chunk[chunk.length - 1]!.offset < state.position) continue;
      const mailboxBatch: MailboxBatch = {
        kind: state.ref.kind,
        partition: state.ref.partition,
        records: chunk.filter((r) => r.offset >= state.position),
      };
      try {
        await this.options.onBatch(mailboxBatch);
      } catch (e) {
        if (this.isCurrent(state)) {
          this.retryLater(
            state,
            `onBatch failed at offset ${mailboxBatch.records[0]!.offset}: ${describeError(e).message}`,
          );
        }
        return;
      }
      const last = chunk[chunk.length - 1]!.offset;
      state.position = last + 1;
      resolveOffset(String(last));
      // Keeps the session alive through long batches; throws (and must) when the group rebalances.
      await heartbeat();
    }
    // Control records (transaction markers) and aborted records at the end of the batch take offsets
    // too; lastOffset() names a real offset only when the batch held records at all.
    if (!(batch as Batch & { isEmptyIncludingFiltered(): boolean }).isEmptyIncludingFiltered()) {
      const lastOffset = Number(batch.lastOffset());
      if (this.isCurrent(state) && lastOffset + 1 > state.position) state.position = lastOffset + 1;
    }
  }

  /** Re-delivers the partition from its position (the failed batch's first record) after a pause. */
  private retryLater(state: PartitionState, why: string): void {
    const { topic, ref } = state;
    this.report(
      `${ref.kind}/${ref.partition}: ${why}; re-delivering from offset ${state.position} in ${this.settings.retryDelayMs} ms`,
    );
    this.pausePartition(topic, ref.partition);
    clearTimeout(state.retryTimer);
    state.retryTimer = setTimeout(() => {
      state.retryTimer = undefined;
      if (this.isCurrent(state)) this.startFetching(state);
    }, this.settings.retryDelayMs);
  }
}
