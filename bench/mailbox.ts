/**
 * The durable mailbox end to end, through `createRuntime` in each mode: `client.send` → append (one
 * per tick, grouped by the runtime) → consume → decode → deliver to the entity → apply → snapshot →
 * commit. A bench entity kind spread over 1,000 keys, the default 8 shards, passivation off.
 *
 * - Throughput: N sends issued as fast as the runtime takes them (chunks of 1,000 sends per tick, at
 *   most 16 chunks not yet durable), timed from the first send until the entity applied the last one
 *   (the entity counts applies in a module-level counter).
 * - Latency: a paced phase (2,000 msg/s for 2 s); each message carries `performance.now()` at its send
 *   and the entity records `now - sentAt` at apply time into a histogram → p50, p99.
 * - Peer, in the same run and interleaved with the runtime's rounds: the same bytes (envelopes exactly
 *   as the runtime encodes them) through the transport alone, no runtime. Embedded: the journal's
 *   append + consume + commit per batch (what any at-least-once consumer must do). Kafka: raw kafkajs,
 *   produce (acks -1, one sendBatch per 1,000) + a consumer group counting records. The peer's latency
 *   (append → the consumer sees the record) is the transport's share of the runtime's latency.
 *
 * Kafka runs on a throwaway broker from scripts/services.ts, started here and stopped at the end.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import type { MailboxRecord, OutgoingRecord } from '../runtime/boundaries.ts';
import { openJournal } from '../runtime/embedded/journal.ts';
import { defineEntity } from '../runtime/entity.ts';
import { decodeEnvelope, encodeEnvelope, newMessageId, shardOf } from '../runtime/envelope.ts';
import { createRuntime, type EntityClient } from '../runtime/runtime.ts';
import { startKafka } from '../scripts/services.ts';
import {
  type Benchmark,
  type BenchOptions,
  collect,
  type Figures,
  header,
  Latency,
  log,
  nextTick,
  paced,
  Samples,
  signal,
  sleep,
  tidy,
  withRuns,
} from './common.ts';

const KIND = 'bench';
const KEYS = Array.from({ length: 1_000 }, (_, i) => `k-${i}`);
const SHARDS = 8;
const CHUNK = 1_000;
const MAX_CHUNKS_IN_FLIGHT = 16;
const PACED_RATE = 2_000;

type BenchMessage = { readonly type: 'hit' } | { readonly type: 'timed'; readonly sentAt: number };

/**
 * What the consumers report to the benchmark (the entity in runtime rounds, the peer's consumer in peer
 * rounds): messages seen so far, and the send → apply latency of timed ones.
 */
const seen = { count: 0, target: Number.POSITIVE_INFINITY, reached: () => {} };
const latency = new Latency();

const onSeen = (n: number): void => {
  seen.count += n;
  if (seen.count >= seen.target) {
    seen.target = Number.POSITIVE_INFINITY;
    seen.reached();
  }
};

/** Resolves when `more` further messages were seen (counted from now). */
const seenAfter = (more: number): Promise<void> => {
  const s = signal();
  seen.target = seen.count + more;
  seen.reached = s.resolve;
  return s.promise;
};

const benchEntity = defineEntity<{ n: number }, BenchMessage>({
  kind: KIND,
  initialState: () => ({ n: 0 }),
  receive: (state, m) => {
    if (m.type === 'timed') latency.recordMs(performance.now() - m.sentAt);
    state.n++;
    onSeen(1);
    return state;
  },
});

/** One way of getting messages to the consumer: the runtime, or a transport alone. */
interface Sender {
  /** Sends messages [from, to) (`sentAt` set: timed ones); resolves when they are durable. */
  send(from: number, to: number, sentAt?: () => number): Promise<unknown>;
}

/** N messages as fast as the sender takes them: CHUNK per tick, at most MAX_CHUNKS_IN_FLIGHT not durable. */
const throughputRound = async (sender: Sender, count: number): Promise<number> => {
  collect();
  const done = seenAfter(count);
  const t0 = performance.now();
  const inFlight: Promise<unknown>[] = [];
  for (let i = 0; i < count; i += CHUNK) {
    inFlight.push(sender.send(i, Math.min(count, i + CHUNK)));
    if (inFlight.length >= MAX_CHUNKS_IN_FLIGHT) await inFlight.shift();
    else await nextTick(); // a new tick: the runtime's per-tick group commit sees one chunk per append
  }
  await Promise.all(inFlight);
  await done;
  return count / ((performance.now() - t0) / 1000);
};

/** PACED_RATE messages/s for `seconds`, each carrying its send time; p50/p99 of send → seen, in ms. */
const latencyRound = async (sender: Sender, seconds: number) => {
  collect();
  latency.reset();
  const total = Math.round(PACED_RATE * seconds);
  const done = seenAfter(total);
  const now = () => performance.now();
  await Promise.all(await paced(total, PACED_RATE, (from, to) => sender.send(from, to, now)));
  await done;
  return {
    p50: latency.percentileMs(50),
    p99: latency.percentileMs(99),
    max: latency.maxMs,
    count: latency.count,
  };
};

const runtimeSender = (client: EntityClient<unknown, BenchMessage>): Sender => ({
  send: (from, to, sentAt) => {
    const sends: Promise<void>[] = [];
    for (let i = from; i < to; i++) {
      const key = KEYS[i % KEYS.length]!;
      sends.push(client.send(key, sentAt ? { type: 'timed', sentAt: sentAt() } : { type: 'hit' }));
    }
    return Promise.all(sends);
  },
});

/** The records the runtime would append for messages [from, to): same envelope, key and partition. */
const envelopes = (from: number, to: number, sentAt?: () => number): OutgoingRecord[] => {
  const records: OutgoingRecord[] = [];
  for (let i = from; i < to; i++) {
    const key = KEYS[i % KEYS.length]!;
    const now = Date.now();
    const payload: BenchMessage = sentAt ? { type: 'timed', sentAt: sentAt() } : { type: 'hit' };
    const value = encodeEnvelope({
      id: newMessageId(now),
      kind: KIND,
      key,
      type: payload.type,
      timestamp: now,
      payload,
    });
    records.push({ partition: shardOf(key, SHARDS), key, value });
  }
  return records;
};

/** The peer's consumer: counts records, and records latency of timed ones (only then decoding them). */
let peerTimed = false;
const peerSaw = (values: readonly Uint8Array[]): void => {
  if (peerTimed) {
    const now = performance.now();
    for (const value of values) {
      const d = decodeEnvelope(value);
      if (d.ok) latency.recordMs(now - (d.envelope.payload as { sentAt: number }).sentAt);
    }
  }
  onSeen(values.length);
};

interface Peer extends Sender {
  close(): Promise<void>;
}

/** Peer: the embedded journal alone — append the same bytes, consume them, commit per batch. */
const journalPeer = async (dir: string): Promise<Peer> => {
  const journal = openJournal(dir, { maxBatch: 1_000 });
  await journal.mailbox.ensureKinds([{ kind: KIND, partitions: SHARDS }]);
  const consumption = await journal.mailbox.consume({
    kinds: [KIND],
    onBatch: async ({ partition, records }) => {
      peerSaw(records.map((r: MailboxRecord) => r.value));
      await journal.mailbox.commit(KIND, partition, records[records.length - 1]!.offset + 1);
    },
  });
  for (let partition = 0; partition < SHARDS; partition++) consumption.assign({ kind: KIND, partition }, 0);
  return {
    send: (from, to, sentAt) => journal.mailbox.append(KIND, envelopes(from, to, sentAt)),
    close: async () => {
      await consumption.stop();
      await journal.close();
    },
  };
};

/** Peer: raw kafkajs — produce the same bytes (acks -1), a consumer group counts them. */
const kafkaPeer = async (brokers: string[], prefix: string): Promise<Peer> => {
  const kafka = new Kafka({ clientId: 'bench-peer', brokers, logLevel: logLevel.ERROR });
  const topic = `${prefix}.raw`;
  const admin = kafka.admin();
  await admin.connect();
  await admin.createTopics({
    topics: [{ topic, numPartitions: SHARDS, replicationFactor: 1 }],
    waitForLeaders: true,
  });
  await admin.disconnect();
  const producer = kafka.producer({ allowAutoTopicCreation: false });
  await producer.connect();
  // The runtime's consumer settings (runtime/kafka/mailbox.ts, consumption.ts), so only the runtime differs.
  const consumer = kafka.consumer({
    groupId: `${prefix}.raw`,
    minBytes: 1,
    maxWaitTimeInMs: 200,
    maxBytesPerPartition: 4 * 1024 * 1024,
  });
  await consumer.connect();
  await consumer.subscribe({ topics: [topic], fromBeginning: true });
  const joined = signal();
  consumer.on(consumer.events.GROUP_JOIN, () => joined.resolve());
  await consumer.run({
    partitionsConsumedConcurrently: SHARDS,
    eachBatch: async ({ batch }) => peerSaw(batch.messages.map((m) => m.value ?? Buffer.alloc(0))),
  });
  await joined.promise;
  return {
    send: (from, to, sentAt) =>
      producer.sendBatch({
        acks: -1,
        topicMessages: [
          {
            topic,
            messages: envelopes(from, to, sentAt).map((r) => ({
              key: r.key,
              value: Buffer.from(r.value),
              partition: r.partition,
            })),
          },
        ],
      }),
    close: async () => {
      await consumer.disconnect();
      await producer.disconnect();
    },
  };
};

/** Runtime and peer rounds of one mode, interleaved so that they share the machine's noise. */
const measureMode = async (
  mode: 'embedded' | 'kafka',
  config: object,
  peer: Peer,
  count: number,
  options: BenchOptions & { rounds: number },
  samples: Samples,
): Promise<void> => {
  const rt = createRuntime({ nodeId: `bench-${mode}`, passivation: { idleMs: 0 }, ...config });
  const client = rt.register(benchEntity);
  await rt.start();
  const runtime = runtimeSender(client);
  const seconds = options.quick ? 1 : 2;
  const settle = () => sleep(200); // the last batches' snapshots and commits, outside the next measurement
  try {
    // Warm-up, one round of each kind at full size: every entity activated, partitions assigned, JIT warm
    // (the broker's too: its latency keeps falling over the first minute).
    await throughputRound(runtime, count);
    await throughputRound(peer, count);
    await latencyRound(runtime, seconds);
    peerTimed = true;
    await latencyRound(peer, seconds);
    peerTimed = false;
    for (let round = 0; round < options.rounds; round++) {
      const rate = await throughputRound(runtime, count);
      await settle();
      const peerRate = await throughputRound(peer, count);
      await settle();
      const l = await latencyRound(runtime, seconds);
      await settle();
      peerTimed = true;
      const pl = await latencyRound(peer, seconds);
      peerTimed = false;
      await settle();
      samples.add(`${mode}_rate`, rate);
      samples.add(`${mode}_peer`, peerRate);
      samples.add(`${mode}_ratio`, rate / peerRate);
      samples.add(`${mode}_p50`, l.p50);
      samples.add(`${mode}_p99`, l.p99);
      samples.add(`${mode}_peer_p50`, pl.p50);
      samples.add(`${mode}_peer_p99`, pl.p99);
      log(
        `${mode} round ${round + 1}: runtime ${Math.round(rate).toLocaleString('en')} msg/s, ` +
          `peer ${Math.round(peerRate).toLocaleString('en')} msg/s, ratio ${tidy(rate / peerRate)}; ` +
          `latency at ${PACED_RATE}/s p50 ${tidy(l.p50)} ms, p99 ${tidy(l.p99)} ms, max ${tidy(l.max)} ms ` +
          `(peer p50 ${tidy(pl.p50)}, p99 ${tidy(pl.p99)})`,
      );
    }
  } finally {
    await rt.stop();
    await peer.close();
  }
};

const run = async (options: BenchOptions & { rounds: number }): Promise<Figures> => {
  const embeddedCount = options.quick ? 50_000 : 200_000;
  const kafkaCount = options.quick ? 25_000 : 100_000;
  header(
    'mailbox',
    `send → apply → snapshot → commit; ${KEYS.length} keys, ${SHARDS} shards; ` +
      `${embeddedCount.toLocaleString('en')} (embedded) / ${kafkaCount.toLocaleString('en')} (Kafka) msgs per round; ` +
      `latency at ${PACED_RATE} msg/s`,
    options,
  );
  const samples = new Samples();

  const dir = mkdtempSync(join(tmpdir(), 'argus-bench-mailbox-'));
  try {
    const peer = await journalPeer(join(dir, 'peer'));
    const config = { mode: 'embedded', dataDir: join(dir, 'runtime') };
    await measureMode('embedded', config, peer, embeddedCount, options, samples);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }

  log('starting a Kafka broker (scripts/services.ts)…');
  const broker = await startKafka();
  try {
    const prefix = `bench-${process.pid}-${Date.now().toString(36)}`;
    const peer = await kafkaPeer(broker.brokers, prefix);
    const config = { mode: 'kafka', kafka: { brokers: broker.brokers, topicPrefix: prefix } };
    await measureMode('kafka', config, peer, kafkaCount, options, samples);
  } finally {
    await broker.stop();
  }

  log();
  for (const mode of ['embedded', 'kafka'] as const) {
    const target = mode === 'embedded' ? '100,000' : '50,000';
    const peer = mode === 'embedded' ? 'journal alone' : 'raw kafkajs  ';
    log(
      `${mode.padEnd(8)} runtime msg/s        ${withRuns(samples.of(`${mode}_rate`))}   target >= ${target}`,
    );
    log(`${mode.padEnd(8)} peer (${peer}) ${withRuns(samples.of(`${mode}_peer`))}`);
    log(`${mode.padEnd(8)} ratio                ${withRuns(samples.of(`${mode}_ratio`))}`);
    log(`${mode.padEnd(8)} p50 ms               ${withRuns(samples.of(`${mode}_p50`))}`);
    log(`${mode.padEnd(8)} p99 ms               ${withRuns(samples.of(`${mode}_p99`))}`);
    log(
      `${mode.padEnd(8)} peer p50 / p99 ms    ${tidy(samples.median(`${mode}_peer_p50`))} / ${tidy(samples.median(`${mode}_peer_p99`))}`,
    );
  }

  return {
    kafka_msgs_per_s: tidy(samples.median('kafka_rate')),
    kafka_p99_ms: tidy(samples.median('kafka_p99')),
    embedded_msgs_per_s: tidy(samples.median('embedded_rate')),
    embedded_p99_ms: tidy(samples.median('embedded_p99')),
  };
};

export const benchmark: Benchmark = {
  name: 'mailbox',
  summary: 'durable mailbox end to end, embedded and Kafka: msg/s and p50/p99 (targets: 100k / 50k msg/s)',
  defaultRounds: 5,
  run,
};
