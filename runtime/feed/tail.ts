/**
 * Where the feed's stream events (`@argus.alert`, `@argus.notify` …, written with
 * `ctx.emit('events', …)`) come from, behind one small interface so the feed runs on a fake in tests:
 *
 * - `outputSource` (one node, embedded): `runtime.onOutput`, each record once its checkpoint landed.
 * - `kafkaTail` (mode 'kafka'): entities on every node write the stream's topic inside their shard's
 *   transaction, so a node sees the whole cluster's events only by reading the topic. The tail reads
 *   it read_committed (a record shows exactly when its checkpoint committed) with a consumer group of
 *   its own per node and start, that never commits (the broker drops it when the tail leaves).
 *   At start it reads back the last `prefill` records of each partition (the replay buffer), then
 *   follows from exactly where that read ended, so nothing falls between the two.
 *   The topic may not exist yet (no kind that emits the stream has started anywhere): the runtime
 *   creates it with the partition count of those kinds, so the tail never creates it (a guessed count
 *   would break that start); it warns once and looks again every `retryMs`.
 *
 * The Kafka tail itself (`KafkaTail`) knows nothing of events: it is given a `decode` for each record
 * and delivers what that makes. log-tail.ts follows the log kind's mailbox topic with it.
 */
import { randomUUID } from 'node:crypto';
import type { Consumer, Kafka } from 'kafkajs';
import { unpack } from 'msgpackr';
import type { Clock, TimerHandle } from '../boundaries.ts';
import { describeError } from '../errors.ts';
import { AdminConnection, createKafka, topicPartitionCount, watermarks } from '../kafka/client.ts';
import { readPartitions } from '../kafka/reader.ts';
import type { Runtime } from '../runtime.ts';
import { asFeedEvent, type FeedEvent } from './filter.ts';

/**
 * What one Kafka record is to a tail: an item to deliver, nothing (skipped silently: a record of
 * another kind of message), or why it is unreadable (warned once per tail, then counted).
 */
export type Decoded<T> =
  | { readonly ok: true; readonly value: T | undefined }
  | { readonly ok: false; readonly error: string };

export type DeliverEvents = (events: readonly FeedEvent[]) => void;

/** A source of feed events: delivers from `start` (which returns promptly) until `stop`. */
export interface EventSource {
  readonly name: string;
  start(deliver: DeliverEvents): Promise<void>;
  stop(): Promise<void>;
}

/** Values of one output stream as this node's checkpoints land (embedded mode). */
export const outputSource = (runtime: Runtime, stream: string): EventSource => {
  let unsubscribe: (() => void) | undefined;
  return {
    name: `output stream '${stream}'`,
    start: async (deliver) => {
      unsubscribe = runtime.onOutput(stream, (outputs) => {
        const events = outputs.flatMap((o) => asFeedEvent(o.value) ?? []);
        if (events.length > 0) deliver(events);
      });
    },
    stop: async () => {
      unsubscribe?.();
      unsubscribe = undefined;
    },
  };
};

export interface KafkaTailOptions {
  readonly brokers: readonly string[];
  readonly clientId: string;
  readonly topic: string;
  /** Group ids are `<groupPrefix>.<uuid>`: one per node and start, recognisable in the group list. */
  readonly groupPrefix: string;
  /** Records to read back from the end of each partition at start. */
  readonly prefill: number;
  /** How long to wait before looking for a missing topic again, or replacing a crashed consumer. */
  readonly retryMs?: number;
  readonly clock: Clock;
  readonly warn: (message: string) => void;
}

/** Orders read-back events by their `at` (when they happened) where they have one; stable otherwise. */
const byTime = (events: FeedEvent[]): FeedEvent[] =>
  events
    .map((event, i) => ({ event, i, at: typeof event.at === 'number' ? event.at : undefined }))
    .sort((a, b) => (a.at !== undefined && b.at !== undefined ? a.at - b.at : 0) || a.i - b.i)
    .map((e) => e.event);

/** An event stream's record: its msgpack value as an event. */
const decodeEvent = (_key: Buffer | null, value: Buffer | null): Decoded<FeedEvent> => {
  let event: FeedEvent | undefined;
  try {
    event = value ? asFeedEvent(unpack(value)) : undefined;
  } catch {
    event = undefined;
  }
  return event ? { ok: true, value: event } : { ok: false, error: "not an event (an object with a 'type')" };
};

/** Tails a stream topic read_committed (see the module doc). */
export const kafkaTail = (options: KafkaTailOptions): EventSource =>
  new KafkaTail<FeedEvent>({
    ...options,
    decode: decodeEvent,
    order: byTime,
    missing: 'no kind emitting the stream has started in the cluster: its events will show once it does',
  });

/** A Kafka tail of any records; `prefill` 0 reads nothing back and follows from the end. */
export interface KafkaTailOf<T> extends KafkaTailOptions {
  readonly decode: (key: Buffer | null, value: Buffer | null) => Decoded<T>;
  /** Puts the read-back items in the order to deliver them (default: as read, partition by partition). */
  readonly order?: (items: T[]) => T[];
  /** Why the topic may be missing, for the warning: `topic '…' does not exist yet (<missing>); looking again…`. */
  readonly missing: string;
}

export class KafkaTail<T> {
  readonly name: string;
  private readonly kafka: Kafka;
  private readonly admin: AdminConnection;
  private readonly retryMs: number;
  /** partition → the next offset to read. */
  private readonly positions = new Map<number, number>();
  private consumer: Consumer | undefined;
  private timer: TimerHandle | undefined;
  private stopped = false;
  private warnedMissing = false;
  private prefilled = false;
  private undecodable = 0;
  private deliver: (items: readonly T[]) => void = () => undefined;

  constructor(private readonly options: KafkaTailOf<T>) {
    this.name = `topic '${options.topic}'`;
    this.kafka = createKafka({
      brokers: options.brokers,
      clientId: options.clientId,
      topicPrefix: options.groupPrefix,
    });
    this.admin = new AdminConnection(this.kafka);
    this.retryMs = options.retryMs ?? 2_000;
  }

  /** Starts following (returns promptly); `deliver` gets each batch's decoded items. */
  async start(deliver: (items: readonly T[]) => void): Promise<void> {
    this.deliver = deliver;
    void this.attach();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
    const consumer = this.consumer;
    this.consumer = undefined;
    await consumer?.disconnect().catch(() => undefined);
    await this.admin.close().catch(() => undefined);
  }

  private later(what: () => Promise<void>): void {
    if (this.stopped || this.timer) return;
    this.timer = this.options.clock.setTimeout(() => {
      this.timer = undefined;
      void what();
    }, this.retryMs);
  }

  /** Waits for the topic, reads back the prefill (once), then follows. */
  private async attach(): Promise<void> {
    const { topic } = this.options;
    try {
      if (!this.prefilled && !(await this.prefill())) return;
      await this.follow();
    } catch (e) {
      if (this.stopped) return;
      this.options.warn(`tailing '${topic}' failed (${describeError(e).message}); trying again`);
      const consumer = this.consumer;
      this.consumer = undefined;
      await consumer?.disconnect().catch(() => undefined);
      this.later(() => this.attach());
    }
  }

  /** Reads back the end of each partition; false (and a retry scheduled) while the topic is missing. */
  private async prefill(): Promise<boolean> {
    const { topic } = this.options;
    const admin = await this.admin.get();
    if ((await topicPartitionCount(admin, topic)) === undefined) {
      if (!this.warnedMissing)
        this.options.warn(
          `topic '${topic}' does not exist yet (${this.options.missing}); looking again every ${this.retryMs} ms`,
        );
      this.warnedMissing = true;
      this.later(() => this.attach());
      return false;
    }
    if (this.warnedMissing) this.options.warn(`topic '${topic}' exists now: tailing it`);
    const marks = await watermarks(admin, topic);
    const read: T[] = [];
    if (this.options.prefill > 0)
      await readPartitions(this.kafka, {
        topic,
        groupPrefix: `${this.options.groupPrefix}.prefill`,
        ranges: [...marks].map(([partition, { low, high }]) => ({
          partition,
          from: Math.max(low, high - this.options.prefill),
          to: high,
        })),
        onRecord: (r) => {
          const item = this.decode(r.key, r.value);
          if (item !== undefined) read.push(item);
        },
      });
    if (this.stopped) return false;
    for (const [partition, { high }] of marks) this.positions.set(partition, high);
    this.prefilled = true;
    if (read.length > 0) this.deliver(this.options.order ? this.options.order(read) : read);
    return true;
  }

  private decode(key: Buffer | null, value: Buffer | null): T | undefined {
    const decoded = this.options.decode(key, value);
    if (decoded.ok) return decoded.value;
    // Reported once, then counted: a writer of bad records must not flood the node's log.
    if (this.undecodable++ === 0)
      this.options.warn(`a record of '${this.options.topic}' is ${decoded.error}; skipped`);
    return undefined;
  }

  /** A live consumer from the tracked positions; a consumer that crashes for good is replaced. */
  private async follow(): Promise<void> {
    const { topic } = this.options;
    // A stop while the read-back or the topic lookup was under way: no consumer after it.
    if (this.stopped) return;
    const consumer = this.kafka.consumer({
      groupId: `${this.options.groupPrefix}.${randomUUID()}`,
      allowAutoTopicCreation: false,
      readUncommitted: false,
      maxWaitTimeInMs: 100,
      retry: { retries: 5 },
    });
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, () => {
      for (const [partition, offset] of this.positions)
        consumer.seek({ topic, partition, offset: String(offset) });
    });
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      // kafkajs restarts on retriable errors itself; otherwise the consumer is replaced.
      if (consumer !== this.consumer || payload.restart) return;
      this.options.warn(`the tail of '${topic}' crashed (${payload.error.message}); replacing it`);
      this.consumer = undefined;
      void consumer.disconnect().catch(() => undefined);
      this.later(() => this.attach());
    });
    await consumer.connect();
    await consumer.subscribe({ topics: [topic], fromBeginning: false });
    if (consumer !== this.consumer) {
      await consumer.disconnect();
      return;
    }
    await consumer.run({
      autoCommit: false,
      eachBatch: async ({ batch }) => {
        if (consumer !== this.consumer) return;
        const items: T[] = [];
        for (const m of batch.messages) {
          const item = this.decode(m.key, m.value);
          if (item !== undefined) items.push(item);
        }
        this.positions.set(batch.partition, Number(batch.lastOffset()) + 1);
        if (items.length > 0) this.deliver(items);
      },
    });
  }
}
