/**
 * Dead letters in Kafka: one topic `<prefix>.deadletter` with one partition (dead letters are rare and
 * read whole; one partition keeps "oldest first" a plain offset order), each record a msgpack-encoded
 * DeadLetter keyed by its entity key.
 */
import { pack, unpack } from 'msgpackr';
import type { DeadLetter, DeadLetterStore } from '../boundaries.ts';
import { ArgusError } from '../errors.ts';
import {
  AdminConnection,
  asBuffer,
  asBytes,
  createKafka,
  ensureTopics,
  type KafkaConnectionOptions,
  transportError,
  watermarks,
} from './client.ts';
import { readPartitions } from './reader.ts';
import { RecordSender } from './sender.ts';
import { deadLetterTopic } from './topics.ts';

/** The stored form: `key` as null because msgpack has no undefined worth relying on across languages. */
interface StoredDeadLetter extends Omit<DeadLetter, 'key'> {
  readonly key: string | null;
}

/** A dead letter as the record of the dead-letter topic that stores it (also written by checkpoints.ts). */
export const deadLetterMessage = (
  letter: DeadLetter,
): { partition: number; key: string | null; value: Buffer } => {
  const stored: StoredDeadLetter = { ...letter, key: letter.key ?? null, value: asBuffer(letter.value) };
  return { partition: 0, key: letter.key ?? null, value: pack(stored) };
};

export class KafkaDeadLetterStore implements DeadLetterStore {
  private readonly kafka;
  private readonly sender;
  private readonly admin;
  private readonly topic: string;
  private readonly groupPrefix: string;
  private closed = false;

  constructor(options: KafkaConnectionOptions) {
    this.kafka = createKafka(options);
    this.sender = new RecordSender(this.kafka);
    this.admin = new AdminConnection(this.kafka);
    this.topic = deadLetterTopic(options.topicPrefix);
    this.groupPrefix = `${options.topicPrefix}.deadletter-reader`;
  }

  async ensure(): Promise<void> {
    this.assertOpen();
    try {
      await ensureTopics(await this.admin.get(), [{ topic: this.topic, partitions: 1 }]);
    } catch (e) {
      throw transportError(`ensuring the dead-letter topic '${this.topic}'`, e, { topic: this.topic });
    }
  }

  async put(letters: readonly DeadLetter[]): Promise<void> {
    this.assertOpen();
    await this.sender.send(this.topic, letters.map(deadLetterMessage));
  }

  async list(kind?: string): Promise<DeadLetter[]> {
    this.assertOpen();
    const letters: DeadLetter[] = [];
    let ends: Map<number, { low: number; high: number }>;
    try {
      ends = await watermarks(await this.admin.get(), this.topic);
    } catch (e) {
      throw transportError(`reading the end offset of '${this.topic}'`, e, { topic: this.topic });
    }
    await readPartitions(this.kafka, {
      topic: this.topic,
      ranges: [...ends].map(([partition, { low, high }]) => ({ partition, from: low, to: high })),
      groupPrefix: this.groupPrefix,
      onRecord: ({ offset, value }) => {
        const letter = decodeDeadLetter(this.topic, offset, value);
        if (kind === undefined || letter.kind === kind) letters.push(letter);
      },
    });
    return letters;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await this.sender.close();
    await this.admin.close();
  }

  private assertOpen(): void {
    if (this.closed)
      throw new ArgusError('ARGUS_ERR_STORE_CLOSED', `the dead-letter store of '${this.topic}' is closed`);
  }
}

const decodeDeadLetter = (topic: string, topicOffset: number, value: Buffer | null): DeadLetter => {
  const fail = (why: string): ArgusError =>
    new ArgusError('ARGUS_ERR_DECODE', `dead letter at '${topic}' offset ${topicOffset} ${why}`, {
      topic,
      offset: topicOffset,
    });
  if (value === null) throw fail('has no value');
  let decoded: unknown;
  try {
    decoded = unpack(value);
  } catch (e) {
    throw fail(`is not msgpack: ${e instanceof Error ? e.message : String(e)}`);
  }
  if (typeof decoded !== 'object' || decoded === null) throw fail('is not a msgpack map');
  const stored = decoded as Partial<StoredDeadLetter>;
  const { kind, partition, offset, key, reason, error, attempts, at, value: bytes } = stored;
  if (
    typeof kind !== 'string' ||
    typeof partition !== 'number' ||
    typeof offset !== 'number' ||
    (key !== null && typeof key !== 'string') ||
    typeof reason !== 'string' ||
    typeof error !== 'string' ||
    typeof attempts !== 'number' ||
    typeof at !== 'number' ||
    !(bytes instanceof Uint8Array)
  ) {
    throw fail('does not have the fields of a dead letter');
  }
  return {
    kind,
    partition,
    offset,
    key: key ?? undefined,
    reason,
    error,
    attempts,
    at,
    value: Buffer.isBuffer(bytes) ? asBytes(bytes) : bytes,
  };
};
