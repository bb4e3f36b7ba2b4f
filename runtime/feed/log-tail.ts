/**
 * A `LogTap` over Kafka (mode 'kafka'): the log records of every node, for this node's live tail.
 * Listeners append records to the log kind's mailbox topic — one mailbox message
 * `{type:'log.records', records}` per batch, keyed by the entity key `<stream>` or `<stream>#<n>` (a
 * sub-stream) — on whichever node took them in; a tail on this node sees them only by reading that topic.
 *
 * It follows the topic from its end with tail.ts' `KafkaTail` (read_committed, a consumer group of its
 * own per node and start that never commits, nothing read back) and only while someone listens: the
 * first subscriber starts a tail, the last one's unsubscribe stops it. Each record's value is decoded
 * as a mailbox envelope (runtime/envelope.ts); messages of other types are skipped, records that are
 * not envelopes or whose records are malformed are warned about once, then counted.
 */
import type { LogTap, LogTapListener, StoredLog } from '../../actors/log/types.ts';
import type { Clock } from '../boundaries.ts';
import { decodeEnvelope } from '../envelope.ts';
import { describeError } from '../errors.ts';
import { type Decoded, KafkaTail } from './tail.ts';

export interface KafkaLogTapOptions {
  readonly brokers: readonly string[];
  readonly clientId: string;
  /** The log kind's mailbox topic (`mailboxTopic(prefix, kind)`, runtime/kafka/topics.ts). */
  readonly topic: string;
  /** Group ids are `<groupPrefix>.<uuid>`: one per node and start, recognisable in the group list. */
  readonly groupPrefix: string;
  /** How long to wait before looking for a missing topic again, or replacing a crashed consumer. */
  readonly retryMs?: number;
  readonly clock: Clock;
  readonly warn: (message: string) => void;
}

export interface KafkaLogTap extends LogTap {
  readonly name: string;
  /** Whether a Kafka consumer runs (someone is subscribed). */
  readonly running: boolean;
  /** Drops every listener and resolves once the consumer has disconnected. */
  stop(): Promise<void>;
}

/** The records of one mailbox message, with their stream. */
export interface LogBatch {
  readonly stream: string;
  readonly records: readonly StoredLog[];
}

/** The stream of an entity key: a sub-stream `<stream>#<n>` is its stream's. */
export const streamOfKey = (key: string): string => key.replace(/#\d+$/, '');

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const badRecord = (r: unknown): boolean =>
  !isObject(r) || typeof r.time !== 'number' || !Number.isFinite(r.time) || !isObject(r.fields);

/** One mailbox record as a batch of log records; other messages of the kind are skipped. */
export const decodeLogRecords = (_key: Buffer | null, value: Buffer | null): Decoded<LogBatch> => {
  if (!value) return { ok: false, error: 'empty (no value)' };
  const decoded = decodeEnvelope(value);
  if (!decoded.ok) return { ok: false, error: `not a mailbox envelope (${decoded.error})` };
  const { key, type, payload } = decoded.envelope;
  if (type !== 'log.records') return { ok: true, value: undefined };
  const records = isObject(payload) ? payload.records : undefined;
  if (!Array.isArray(records))
    return { ok: false, error: `a 'log.records' message without a records array (key '${key}')` };
  const bad = records.findIndex(badRecord);
  if (bad !== -1)
    return {
      ok: false,
      error: `a 'log.records' message whose records[${bad}] is not {time: number, fields: object} (key '${key}')`,
    };
  return { ok: true, value: { stream: streamOfKey(key), records: records as StoredLog[] } };
};

/** Follows the log kind's mailbox topic while subscribed (see the module doc). */
export const kafkaLogTap = (options: KafkaLogTapOptions): KafkaLogTap => new KafkaLogTapImpl(options);

class KafkaLogTapImpl implements KafkaLogTap {
  readonly name: string;
  private readonly listeners = new Set<LogTapListener>();
  private tail: KafkaTail<LogBatch> | undefined;
  /** Stops under way; `stop()` waits for them all. */
  private readonly stopping = new Set<Promise<void>>();

  constructor(private readonly options: KafkaLogTapOptions) {
    this.name = `log tap on topic '${options.topic}'`;
  }

  get running(): boolean {
    return this.tail !== undefined;
  }

  subscribe(listener: LogTapListener): () => void {
    // The same function twice is two subscriptions.
    const entry: LogTapListener = (stream, records) => listener(stream, records);
    this.listeners.add(entry);
    if (!this.tail) this.startTail();
    return () => {
      if (!this.listeners.delete(entry)) return;
      if (this.listeners.size === 0) this.stopTail();
    };
  }

  async stop(): Promise<void> {
    this.listeners.clear();
    this.stopTail();
    await Promise.all([...this.stopping]);
  }

  private startTail(): void {
    const { options } = this;
    const tail = new KafkaTail<LogBatch>({
      brokers: options.brokers,
      clientId: options.clientId,
      topic: options.topic,
      groupPrefix: options.groupPrefix,
      prefill: 0,
      retryMs: options.retryMs,
      clock: options.clock,
      warn: options.warn,
      decode: decodeLogRecords,
      missing: 'no log stream has started in the cluster: records will show once one does',
    });
    this.tail = tail;
    void tail.start((batches) => {
      if (this.tail === tail) this.deliver(batches);
    });
  }

  private stopTail(): void {
    const tail = this.tail;
    this.tail = undefined;
    if (!tail) return;
    const stopped = tail.stop().catch((e: unknown) => {
      this.options.warn(`stopping the log tap failed (${describeError(e).message})`);
    });
    this.stopping.add(stopped);
    void stopped.then(() => this.stopping.delete(stopped));
  }

  /** Hands each batch to every listener; consecutive batches of one stream go as one call. */
  private deliver(batches: readonly LogBatch[]): void {
    let i = 0;
    while (i < batches.length) {
      const stream = batches[i]!.stream;
      let j = i + 1;
      while (j < batches.length && batches[j]!.stream === stream) j++;
      const records = j === i + 1 ? batches[i]!.records : batches.slice(i, j).flatMap((b) => b.records);
      i = j;
      for (const listener of [...this.listeners]) {
        try {
          listener(stream, records);
        } catch (e) {
          this.options.warn(`a log tap listener threw (${describeError(e).message}); it stays subscribed`);
        }
      }
    }
  }
}
