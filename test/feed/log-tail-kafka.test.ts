/**
 * The Kafka log tap against the real Kafka: it follows the log kind's mailbox topic from its end (what
 * was there before it started is not delivered), decodes each envelope's `log.records` message into
 * the records of its stream (sub-stream keys `<stream>#<n>` count as their stream), skips other
 * messages, warns once about undecodable ones, runs a consumer only while someone is subscribed, and
 * leaves none behind when the last one goes.
 */
import type { Admin, Producer } from 'kafkajs';
import { afterEach, describe, expect, it } from 'vitest';
import type { StoredLog } from '../../actors/log/types.ts';
import { realClock } from '../../runtime/clock.ts';
import { encodeEnvelope, newMessageId, shardOf } from '../../runtime/envelope.ts';
import { kafkaLogTap } from '../../runtime/feed/log-tail.ts';
import { createKafka } from '../../runtime/kafka/client.ts';
import { mailboxTopic } from '../../runtime/kafka/topics.ts';
import { kafkaBrokers, uniquePrefix } from '../helpers/services.ts';
import { waitFor } from '../helpers/wait.ts';

const PARTITIONS = 3;
let cleanups: (() => Promise<unknown> | unknown)[] = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups = [];
});

const setup = async () => {
  const prefix = uniquePrefix('log-tail');
  const topic = mailboxTopic(prefix, 'log');
  const kafka = createKafka({ brokers: kafkaBrokers(), clientId: 'log-tail-test', topicPrefix: prefix });
  const admin: Admin = kafka.admin();
  await admin.connect();
  cleanups.push(() => admin.disconnect());
  await admin.createTopics({ topics: [{ topic, numPartitions: PARTITIONS }], waitForLeaders: true });
  const producer: Producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1 });
  await producer.connect();
  cleanups.push(() => producer.disconnect());
  const groupPrefix = `${prefix}.logtail.n1`;
  /** Members of the tap's consumer groups (there is one per start). */
  const members = async (): Promise<{ states: string[]; members: number }> => {
    const ids = (await admin.listGroups()).groups
      .map((g) => g.groupId)
      .filter((id) => id.startsWith(`${groupPrefix}.`));
    if (ids.length === 0) return { states: [], members: 0 };
    const { groups } = await admin.describeGroups(ids);
    return { states: groups.map((g) => g.state), members: groups.reduce((n, g) => n + g.members.length, 0) };
  };
  const send = async (messages: { key: string; type: string; payload: unknown }[] | Buffer) => {
    const list = Buffer.isBuffer(messages)
      ? [{ key: 'junk', value: messages, partition: 0 }]
      : messages.map((m) => ({
          key: m.key,
          partition: shardOf(m.key, PARTITIONS),
          value: Buffer.from(
            encodeEnvelope({
              id: newMessageId(Date.now()),
              kind: 'log',
              key: m.key,
              type: m.type,
              timestamp: Date.now(),
              payload: m.payload,
            }),
          ),
        }));
    await producer.send({ topic, messages: list });
  };
  return { topic, groupPrefix, members, send };
};

const records = (stream: string, n: number): StoredLog[] =>
  Array.from({ length: n }, (_, i) => ({
    time: 1_700_000_000_000 + i,
    fields: { stream, i, status: 500 + i, nested: { path: `/p/${i}`, tags: ['a', 'b'] } },
  }));
const logRecords = (key: string, recs: StoredLog[]) => ({
  key,
  type: 'log.records',
  payload: { type: 'log.records', records: recs },
});

describe('kafkaLogTap', () => {
  it('delivers the records of log.records messages appended after it started, per stream, within 2 s', async () => {
    const { topic, groupPrefix, members, send } = await setup();
    const warnings: string[] = [];
    const tap = kafkaLogTap({
      brokers: kafkaBrokers(),
      clientId: 'log-tail-test',
      topic,
      groupPrefix,
      retryMs: 200,
      clock: realClock,
      warn: (m) => warnings.push(m),
    });
    cleanups.push(() => tap.stop());
    await send([logRecords('before.start', records('before.start', 2))]);
    expect(tap.running).toBe(false);
    expect(await members()).toEqual({ states: [], members: 0 });

    const seen: [string, readonly StoredLog[]][] = [];
    const unsubscribe = tap.subscribe((stream, recs) => seen.push([stream, recs]));
    const also: string[] = [];
    const unsubscribeAlso = tap.subscribe((stream) => also.push(stream));
    expect(tap.running).toBe(true);
    await waitFor('the tap to join its group', async () => (await members()).members === 1, 30_000, 100);

    const payments = records('payments.nginx-access', 3);
    const other = records('other', 1);
    await send([
      logRecords('payments.nginx-access#1', payments),
      { key: 'payments.nginx-access#1', type: 'log.tick', payload: { type: 'log.tick', at: 1 } },
      logRecords('other', other),
    ]);
    await send(Buffer.from('not an envelope'));
    const sent = Date.now();
    await waitFor('both batches', () => seen.length >= 2, 2_000, 5);
    expect(Date.now() - sent).toBeLessThan(2_000);
    // A little longer: anything else (the record from before the start, the tick) would show now.
    await new Promise((r) => setTimeout(r, 300));
    expect([...seen].sort((a, b) => a[0].localeCompare(b[0]))).toEqual([
      ['other', other],
      ['payments.nginx-access', payments],
    ]);
    expect([...also].sort()).toEqual(['other', 'payments.nginx-access']);
    expect(warnings).toEqual([
      `a record of '${topic}' is not a mailbox envelope (not msgpack (15 bytes): Data read, but end of buffer not reached 110); skipped`,
    ]);

    // The last unsubscribe stops the consumer; nothing is left in the group.
    unsubscribe();
    expect(tap.running).toBe(true);
    unsubscribeAlso();
    expect(tap.running).toBe(false);
    await tap.stop();
    expect((await members()).members).toBe(0);
    await send([logRecords('after.stop', records('after.stop', 1))]);
    await new Promise((r) => setTimeout(r, 500));
    expect(seen.map(([s]) => s).includes('after.stop')).toBe(false);
  }, 60_000);

  it('starts a fresh consumer for a new first subscriber, following from the end again', async () => {
    const { topic, groupPrefix, members, send } = await setup();
    const tap = kafkaLogTap({
      brokers: kafkaBrokers(),
      clientId: 'log-tail-test',
      topic,
      groupPrefix,
      clock: realClock,
      warn: () => undefined,
    });
    cleanups.push(() => tap.stop());
    const first: string[] = [];
    tap.subscribe((s) => first.push(s))();
    await tap.stop();
    await send([logRecords('between', records('between', 1))]);
    const second: [string, readonly StoredLog[]][] = [];
    const unsubscribe = tap.subscribe((s, r) => second.push([s, r]));
    await waitFor('the tap to join its group', async () => (await members()).members === 1, 30_000, 100);
    const recs = records('again', 2);
    await send([logRecords('again#0', recs)]);
    await waitFor('the batch', () => second.length >= 1, 2_000, 5);
    await new Promise((r) => setTimeout(r, 300));
    expect(second).toEqual([['again', recs]]);
    expect(first).toEqual([]);
    unsubscribe();
    await tap.stop();
    expect((await members()).members).toBe(0);
  }, 60_000);
});
