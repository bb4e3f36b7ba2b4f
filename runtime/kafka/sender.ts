/**
 * One producer, one request in flight, everything queued meanwhile sent together in the next request.
 *
 * Why a queue of our own rather than concurrent `producer.send` calls:
 * - order: records of one partition reach the log in the order `send` was called, retries included;
 * - batching: while a request is on the wire, callers pile up and the next request carries them all
 *   (group commit), which is where the throughput comes from;
 * - idempotence: kafkajs' idempotent producer has a history of sequence-number trouble with concurrent
 *   sends (tulios/kafkajs#598, #1005); with one request at a time it is on its safest path. After a
 *   failed request the producer is replaced, so a new producer id restarts the sequences rather than
 *   reusing numbers the broker may already have accepted.
 */
import type { Kafka, Message, Producer, RecordMetadata, TopicMessages } from 'kafkajs';
import { ArgusError } from '../errors.ts';
import { transportError } from './client.ts';

export interface SenderOptions {
  /** Idempotent producer (no duplicates from kafkajs' own retries). Default true. */
  readonly idempotent?: boolean;
  /**
   * Upper bound of one request's payload (keys + values + a per-record allowance). Kept under the
   * broker's default message.max.bytes (1 MiB), which bounds each partition's record batch.
   */
  readonly maxRequestBytes?: number;
}

/** Offsets [baseOffset, baseOffset + count) of one partition, written by one request. */
export interface WrittenRange {
  readonly topic: string;
  readonly partition: number;
  readonly baseOffset: number;
  readonly count: number;
}

interface Pending {
  readonly topic: string;
  readonly messages: Message[];
  readonly bytes: number;
  resolve(written: WrittenRange[]): void;
  reject(e: unknown): void;
}

/** Record framing, headers and varints: a generous estimate, so a full request stays under the cap. */
const RECORD_OVERHEAD = 64;
const sizeOf = (m: Message): number =>
  RECORD_OVERHEAD +
  (m.value ? (m.value as Buffer).length : 0) +
  (typeof m.key === 'string' ? m.key.length * 3 : 0);

export class RecordSender {
  private readonly queue: Pending[] = [];
  private readonly maxRequestBytes: number;
  private readonly idempotent: boolean;
  private producer: Producer | undefined;
  private connecting: Promise<Producer> | undefined;
  private draining = false;
  private closed = false;

  constructor(
    private readonly kafka: Kafka,
    options: SenderOptions = {},
  ) {
    this.maxRequestBytes = options.maxRequestBytes ?? 900_000;
    this.idempotent = options.idempotent ?? true;
  }

  /**
   * Resolves once every message is acknowledged by all in-sync replicas (acks -1), with the offset
   * ranges of the requests that carried them (which may include other callers' messages).
   */
  send(topic: string, messages: readonly Message[]): Promise<WrittenRange[]> {
    if (this.closed)
      return Promise.reject(new ArgusError('ARGUS_ERR_STORE_CLOSED', `cannot send to '${topic}': closed`));
    if (messages.length === 0) return Promise.resolve([]);
    // Split up front so that no request exceeds the cap; each chunk is queued in order.
    const chunks: Promise<WrittenRange[]>[] = [];
    let chunk: Message[] = [];
    let bytes = 0;
    const flushChunk = (): void => {
      const items = chunk;
      const size = bytes;
      chunks.push(
        new Promise((resolve, reject) =>
          this.queue.push({ topic, messages: items, bytes: size, resolve, reject }),
        ),
      );
      chunk = [];
      bytes = 0;
    };
    for (const m of messages) {
      const size = sizeOf(m);
      if (chunk.length > 0 && bytes + size > this.maxRequestBytes) flushChunk();
      chunk.push(m);
      bytes += size;
    }
    flushChunk();
    void this.drain();
    return chunks.length === 1 ? chunks[0]! : Promise.all(chunks).then((written) => written.flat());
  }

  async close(): Promise<void> {
    this.closed = true;
    // Let queued sends finish: they were accepted before close.
    while (this.draining) await new Promise((resolve) => setTimeout(resolve, 5));
    const producer = this.producer;
    this.producer = undefined;
    await producer?.disconnect();
  }

  private async drain(): Promise<void> {
    if (this.draining) return;
    this.draining = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.takeRequest();
        try {
          const producer = await this.connected();
          const topicMessages = groupByTopic(batch);
          const metadata = await producer.sendBatch({ acks: -1, topicMessages });
          const written = writtenRanges(topicMessages, metadata);
          for (const p of batch) p.resolve(written);
        } catch (e) {
          const error = transportError(
            `producing to ${[...new Set(batch.map((p) => `'${p.topic}'`))].join(', ')}`,
            e,
          );
          for (const p of batch) p.reject(error);
          await this.replaceProducer();
        }
      }
    } finally {
      this.draining = false;
    }
  }

  private takeRequest(): Pending[] {
    const batch: Pending[] = [];
    let bytes = 0;
    while (this.queue.length > 0) {
      const next = this.queue[0]!;
      if (batch.length > 0 && bytes + next.bytes > this.maxRequestBytes) break;
      batch.push(next);
      bytes += next.bytes;
      this.queue.shift();
    }
    return batch;
  }

  private connected(): Promise<Producer> {
    if (this.producer) return Promise.resolve(this.producer);
    this.connecting ??= (async () => {
      const producer = this.kafka.producer({
        idempotent: this.idempotent,
        maxInFlightRequests: 1,
        allowAutoTopicCreation: false,
        // Retries bounded so that a dead cluster fails appends instead of hanging them forever.
        retry: { retries: 8, initialRetryTime: 100, maxRetryTime: 5_000 },
      });
      try {
        await producer.connect();
      } finally {
        this.connecting = undefined;
      }
      this.producer = producer;
      return producer;
    })();
    return this.connecting;
  }

  private async replaceProducer(): Promise<void> {
    const old = this.producer;
    this.producer = undefined;
    await old?.disconnect().catch(() => undefined);
  }
}

const groupByTopic = (batch: readonly Pending[]): TopicMessages[] => {
  const byTopic = new Map<string, Message[]>();
  for (const p of batch) {
    const list = byTopic.get(p.topic);
    if (list) for (const m of p.messages) list.push(m);
    else byTopic.set(p.topic, [...p.messages]);
  }
  return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
};

/** Each partition's record batch in the request starts at its baseOffset and holds its messages, in order. */
const writtenRanges = (
  request: readonly TopicMessages[],
  metadata: readonly RecordMetadata[],
): WrittenRange[] => {
  const counts = new Map<string, number>();
  for (const { topic, messages } of request) {
    for (const m of messages)
      counts.set(`${topic}\u0000${m.partition}`, (counts.get(`${topic}\u0000${m.partition}`) ?? 0) + 1);
  }
  return metadata.map((m) => ({
    topic: m.topicName,
    partition: m.partition,
    baseOffset: Number(m.baseOffset),
    count: counts.get(`${m.topicName}\u0000${m.partition}`) ?? 0,
  }));
};
