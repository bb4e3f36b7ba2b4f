/**
 * Dead letters in Kafka: one topic `<prefix>.deadletter` with one partition (dead letters are rare and
 * read whole; one partition keeps "oldest first" a plain offset order), each record a msgpack-encoded
 * DeadLetter keyed by its entity key.
 *
 * Discarding. A record cannot be erased from a topic, so `discard` writes a marker per letter to a
 * companion topic `<prefix>.deadletter.discarded` (one partition, compacted, keyed by the letter's id
 * `<kind>:<partition>:<offset>`, value the id as msgpack), and `list` reads both topics and leaves the
 * marked letters out — on every node, since they all read the same two topics. A companion topic rather
 * than markers on the dead-letter topic itself because (1) compaction keeps exactly one marker per id
 * forever in a topic that stays tiny, while the dead-letter topic is keyed by entity key and cannot be
 * compacted (one key may have many letters), and (2) readers that predate discarding keep decoding every
 * record of the dead-letter topic as a letter. A marker is acknowledged by every in-sync replica
 * (acks -1) before `discard` resolves. Two nodes discarding the same letter at once both count it: the
 * count is advisory, the marker idempotent.
 */
import type { Admin } from 'kafkajs';
import { pack, unpack } from 'msgpackr';
import type { DeadLetter, DeadLetterId, DeadLetterStore } from '../boundaries.ts';
import { ArgusError } from '../errors.ts';
import {
  AdminConnection,
  asBuffer,
  asBytes,
  createKafka,
  ensureTopics,
  type KafkaConnectionOptions,
  topicPartitionCount,
  transportError,
  watermarks,
} from './client.ts';
import { readPartitions } from './reader.ts';
import { RecordSender } from './sender.ts';
import { deadLetterDiscardTopic, deadLetterTopic } from './topics.ts';

/** The stored form: `key` as null because msgpack has no undefined worth relying on across languages. */
interface StoredDeadLetter extends Omit<DeadLetter, 'key'> {
  readonly key: string | null;
}

export { deadLetterDiscardTopic };

/** A letter's id as text, `<kind>:<partition>:<offset>`: the key of its discard marker. */
const idText = ({ kind, partition, offset }: DeadLetterId): string => `${kind}:${partition}:${offset}`;

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
  private readonly discardTopic: string;
  private readonly groupPrefix: string;
  /** Whether the discard topic is known to exist (ensured here, or found by a read). */
  private discardTopicSeen = false;
  /** The admin call in flight: they run one at a time (see `admin`). */
  private adminTurn: Promise<unknown> = Promise.resolve();
  private closed = false;

  constructor(options: KafkaConnectionOptions) {
    this.kafka = createKafka(options);
    this.sender = new RecordSender(this.kafka);
    this.admin = new AdminConnection(this.kafka);
    this.topic = deadLetterTopic(options.topicPrefix);
    this.discardTopic = deadLetterDiscardTopic(options.topicPrefix);
    this.groupPrefix = `${options.topicPrefix}.deadletter-reader`;
  }

  async ensure(): Promise<void> {
    this.assertOpen();
    try {
      await this.withAdmin((admin) =>
        ensureTopics(admin, [
          { topic: this.topic, partitions: 1 },
          { topic: this.discardTopic, partitions: 1, config: { 'cleanup.policy': 'compact' } },
        ]),
      );
    } catch (e) {
      throw transportError(`ensuring the dead-letter topics '${this.topic}' and '${this.discardTopic}'`, e, {
        topic: this.topic,
      });
    }
    this.discardTopicSeen = true;
  }

  async put(letters: readonly DeadLetter[]): Promise<void> {
    this.assertOpen();
    await this.sender.send(this.topic, letters.map(deadLetterMessage));
  }

  async list(kind?: string): Promise<DeadLetter[]> {
    this.assertOpen();
    const letterEnds = await this.ends(this.topic);
    const discardEnds = (await this.hasDiscardTopic()) ? await this.ends(this.discardTopic) : undefined;
    const letters: DeadLetter[] = [];
    const discarded = new Set<string>();
    await Promise.all([
      this.read(this.topic, letterEnds, ({ offset, value }) => {
        const letter = decodeDeadLetter(this.topic, offset, value);
        if (kind === undefined || letter.kind === kind) letters.push(letter);
      }),
      discardEnds &&
        this.read(this.discardTopic, discardEnds, ({ offset, key }) => {
          if (key === null)
            throw new ArgusError(
              'ARGUS_ERR_DECODE',
              `discard marker at '${this.discardTopic}' offset ${offset} has no key`,
              { topic: this.discardTopic, offset },
            );
          discarded.add(key.toString('utf8'));
        }),
    ]);
    return discarded.size === 0 ? letters : letters.filter((l) => !discarded.has(idText(l)));
  }

  async discard(ids: readonly DeadLetterId[]): Promise<number> {
    this.assertOpen();
    const wanted = new Map(ids.map((id) => [idText(id), id]));
    if (wanted.size === 0) return 0;
    const listed = new Set((await this.list()).map(idText));
    const found = [...wanted].filter(([text]) => listed.has(text));
    if (found.length === 0) return 0;
    if (!this.discardTopicSeen) await this.ensure();
    await this.sender.send(
      this.discardTopic,
      found.map(([text, { kind, partition, offset }]) => ({
        partition: 0,
        key: text,
        value: pack({ kind, partition, offset }),
      })),
    );
    return found.length;
  }

  /** Whether the discard topic exists: a prefix whose dead-letter store was never ensured here may lack it. */
  private async hasDiscardTopic(): Promise<boolean> {
    if (!this.discardTopicSeen)
      this.discardTopicSeen =
        (await this.withAdmin((admin) => topicPartitionCount(admin, this.discardTopic))) !== undefined;
    return this.discardTopicSeen;
  }

  /**
   * Runs an admin call after the one in flight. kafkajs' admin keeps one metadata cache, and a metadata
   * request for some topics (creating or checking one) replaces it while another call (the offsets of
   * another topic) relies on it: that call then fails. One at a time, they cannot meet.
   */
  private withAdmin<T>(call: (admin: Admin) => Promise<T>): Promise<T> {
    const turn = this.adminTurn.then(async () => call(await this.admin.get()));
    this.adminTurn = turn.catch(() => undefined);
    return turn;
  }

  /** Each partition's log start and end (as of now). */
  private async ends(topic: string): Promise<Map<number, { low: number; high: number }>> {
    try {
      return await this.withAdmin((admin) => watermarks(admin, topic));
    } catch (e) {
      throw transportError(`reading the end offset of '${topic}'`, e, { topic });
    }
  }

  /** Reads every record of the topic from its start to `ends`. */
  private read(
    topic: string,
    ends: Map<number, { low: number; high: number }>,
    onRecord: (record: { offset: number; key: Buffer | null; value: Buffer | null }) => void,
  ): Promise<void> {
    return readPartitions(this.kafka, {
      topic,
      ranges: [...ends].map(([partition, { low, high }]) => ({ partition, from: low, to: high })),
      groupPrefix: this.groupPrefix,
      onRecord,
    });
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
