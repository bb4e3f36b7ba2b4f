/**
 * What the Kafka stores share: connection options, the kafkajs client, creating/checking topics, and
 * turning kafkajs failures into coded errors that say which topic and what was being done.
 */
import { type Admin, type ITopicConfig, Kafka, logLevel as KafkaLogLevel, type LogEntry } from 'kafkajs';
import { ArgusError, describeError } from '../errors.ts';
import { validateTopicNames } from './topics.ts';

export type KafkaLogLevelName = 'nothing' | 'error' | 'warn' | 'info' | 'debug';

export interface KafkaConnectionOptions {
  readonly brokers: readonly string[];
  readonly clientId: string;
  /** Prefix of every topic of this cluster (DESIGN.md, "Kafka layout"). */
  readonly topicPrefix: string;
  /** kafkajs' own logging (to the console). Default 'error': kafkajs logs routine rebalances as warnings. */
  readonly logLevel?: KafkaLogLevelName;
}

const LEVELS: Record<KafkaLogLevelName, KafkaLogLevel> = {
  nothing: KafkaLogLevel.NOTHING,
  error: KafkaLogLevel.ERROR,
  warn: KafkaLogLevel.WARN,
  info: KafkaLogLevel.INFO,
  debug: KafkaLogLevel.DEBUG,
};

/**
 * Errors kafkajs logs at ERROR level although they are routine and retried: every rebalance makes each
 * member's heartbeat log "The group is rebalancing", a fresh broker "coordinator is loading". They would
 * bury real errors, so they are logged at DEBUG instead.
 */
const ROUTINE = [
  'The group is rebalancing',
  'The coordinator is loading',
  'The coordinator is not available',
  'is not the correct coordinator',
  // A transactional writer's next transaction asked for a few ms after a commit; it is retried.
  'another concurrent operation on the same transaction',
];

/** kafkajs' log lines on the console, one line each, routine errors demoted. */
const consoleLogCreator =
  (threshold: KafkaLogLevel) =>
  ({ namespace, level, log }: LogEntry): void => {
    const { message, timestamp: _timestamp, ...extra } = log;
    const error = typeof extra.error === 'string' ? extra.error : '';
    const effective =
      level === KafkaLogLevel.ERROR && ROUTINE.some((r) => error.includes(r) || String(message).includes(r))
        ? KafkaLogLevel.DEBUG
        : level;
    if (effective > threshold) return;
    const line = `[kafkajs ${namespace}] ${message} ${JSON.stringify(extra)}`;
    if (effective === KafkaLogLevel.ERROR) console.error(line);
    else if (effective === KafkaLogLevel.WARN) console.warn(line);
    else console.log(line);
  };

export const createKafka = (options: KafkaConnectionOptions): Kafka => {
  if (options.brokers.length === 0) {
    throw new ArgusError('ARGUS_ERR_INVALID_CONFIG', 'Kafka needs at least one broker address', {
      field: 'brokers',
    });
  }
  return new Kafka({
    clientId: options.clientId,
    brokers: [...options.brokers],
    logLevel: LEVELS[options.logLevel ?? 'error'],
    logCreator: consoleLogCreator,
  });
};

/** One admin connection, opened on first use and reused; a failed connect is retried by the next call. */
export class AdminConnection {
  private admin: Promise<Admin> | undefined;

  constructor(private readonly kafka: Kafka) {}

  get(): Promise<Admin> {
    if (!this.admin) {
      const admin = (async () => {
        const a = this.kafka.admin();
        await a.connect();
        return a;
      })();
      this.admin = admin;
      admin.catch(() => {
        if (this.admin === admin) this.admin = undefined;
      });
    }
    return this.admin;
  }

  async close(): Promise<void> {
    const admin = this.admin;
    this.admin = undefined;
    const connected = await admin?.catch(() => undefined);
    await connected?.disconnect();
  }
}

/** Low watermark (log start) and high watermark (log end) of each partition of a topic. */
export const watermarks = async (
  admin: Admin,
  topic: string,
): Promise<Map<number, { low: number; high: number }>> =>
  new Map(
    (await admin.fetchTopicOffsets(topic)).map((o) => [
      o.partition,
      { low: Number(o.low), high: Number(o.high) },
    ]),
  );

/** A kafkajs (or other) failure as ARGUS_ERR_TRANSPORT, saying what we were doing. */
export const transportError = (
  doing: string,
  cause: unknown,
  detail: Record<string, unknown> = {},
): ArgusError =>
  cause instanceof ArgusError
    ? cause
    : new ArgusError('ARGUS_ERR_TRANSPORT', `${doing} failed: ${describeError(cause).message}`, detail, {
        cause,
      });

/** Bytes for kafkajs, which wants a Buffer: a view over the same memory, no copy. */
export const asBuffer = (bytes: Uint8Array): Buffer =>
  Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);

/** Bytes handed out as the interfaces promise: a plain Uint8Array view, no copy. */
export const asBytes = (buffer: Buffer): Uint8Array =>
  new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.length);

/** Throws unless `partition` is one of the kind's `count` partitions. */
export const checkPartition = (kind: string, partition: number, count: number): void => {
  if (!Number.isInteger(partition) || partition < 0 || partition >= count) {
    throw new ArgusError(
      'ARGUS_ERR_INVALID_CONFIG',
      `partition ${partition} of kind '${kind}' does not exist: the kind has partitions 0..${count - 1}`,
      { kind, partition, partitions: count },
    );
  }
};

export interface TopicSpec {
  readonly topic: string;
  readonly partitions: number;
  readonly config?: Readonly<Record<string, string>>;
}

const MAX_PARTITIONS = 10_000;

const checkSpecs = (specs: readonly TopicSpec[]): void => {
  validateTopicNames(specs.map((s) => s.topic));
  for (const { topic, partitions } of specs) {
    if (!Number.isInteger(partitions) || partitions < 1 || partitions > MAX_PARTITIONS) {
      throw new ArgusError(
        'ARGUS_ERR_INVALID_CONFIG',
        `topic '${topic}' asks for ${partitions} partitions: must be an integer from 1 to ${MAX_PARTITIONS}`,
        { topic, partitions },
      );
    }
  }
  const counts = new Map<string, number>();
  for (const { topic, partitions } of specs) {
    const seen = counts.get(topic);
    if (seen !== undefined && seen !== partitions) {
      throw new ArgusError(
        'ARGUS_ERR_INVALID_CONFIG',
        `topic '${topic}' is asked for with ${seen} and with ${partitions} partitions in the same call`,
        { topic, partitions: [seen, partitions] },
      );
    }
    counts.set(topic, partitions);
  }
};

/** Partition counts of the existing topics among `topics` (absent ones are left out). */
export const partitionCounts = async (
  admin: Admin,
  topics: readonly string[],
): Promise<Map<string, number>> => {
  const existing = new Set(await admin.listTopics());
  const present = topics.filter((t) => existing.has(t));
  const counts = new Map<string, number>();
  if (present.length === 0) return counts;
  const metadata = await admin.fetchTopicMetadata({ topics: present });
  for (const t of metadata.topics) counts.set(t.name, t.partitions.length);
  return counts;
};

/** One topic's partition count, undefined when it does not exist; a failed read is a transport error. */
export const topicPartitionCount = async (admin: Admin, topic: string): Promise<number | undefined> => {
  try {
    return (await partitionCounts(admin, [topic])).get(topic);
  } catch (e) {
    throw transportError(`reading the metadata of '${topic}'`, e, { topic });
  }
};

/**
 * Creates the missing topics and checks the existing ones. Names are validated first, also against
 * the topics already on the cluster (a new name may collide with an old one). A topic that exists with
 * another partition count is an error: the count is part of the data's meaning (shard = hash mod count).
 */
export const ensureTopics = async (admin: Admin, specs: readonly TopicSpec[]): Promise<void> => {
  if (specs.length === 0) return;
  checkSpecs(specs);
  const onCluster = await admin.listTopics();
  validateTopicNames([...new Set([...specs.map((s) => s.topic), ...onCluster])]);
  const existing = await partitionCounts(admin, [...new Set(specs.map((s) => s.topic))]);
  const missing = specs.filter((s) => !existing.has(s.topic));
  if (missing.length > 0) {
    const topics: ITopicConfig[] = missing.map(({ topic, partitions, config }) => ({
      topic,
      numPartitions: partitions,
      configEntries: Object.entries(config ?? {}).map(([name, value]) => ({ name, value })),
    }));
    // false means "some already existed": another node created them a moment ago. Checked below.
    // Under load the broker may answer the leader wait with a retriable error (UNKNOWN_TOPIC_OR_PARTITION
    // while the new partitions are being placed): the topics exist then, and we look below.
    for (let attempt = 0; ; attempt++) {
      try {
        await admin.createTopics({ topics, waitForLeaders: true });
        break;
      } catch (e) {
        const retriable =
          typeof e === 'object' && e !== null && (e as { retriable?: unknown }).retriable === true;
        if (!retriable || attempt >= 10) throw e;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    // A topic another node created a moment ago may not be in the metadata this broker answers with
    // yet: look again a few times before calling it missing.
    for (let attempt = 0; attempt < 20; attempt++) {
      for (const [topic, count] of await partitionCounts(
        admin,
        missing.map((s) => s.topic),
      ))
        existing.set(topic, count);
      if (missing.every((s) => existing.has(s.topic))) break;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  const mismatched = specs.filter((s) => existing.get(s.topic) !== s.partitions);
  if (mismatched.length > 0) {
    throw new ArgusError(
      'ARGUS_ERR_INVALID_CONFIG',
      mismatched
        .map(
          (s) =>
            `topic '${s.topic}' has ${existing.get(s.topic) ?? 'no'} partitions but ${s.partitions} were asked for ` +
            '(a partition count is fixed when the cluster is created)',
        )
        .join('; '),
      {
        topics: mismatched.map((s) => ({
          topic: s.topic,
          existing: existing.get(s.topic),
          requested: s.partitions,
        })),
      },
    );
  }
};
