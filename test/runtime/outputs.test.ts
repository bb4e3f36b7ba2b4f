/**
 * Output streams (`ctx.emit`), against both mailboxes: what an entity emits becomes durable in the same
 * checkpoint as the state change that produced it — in the journal's stream log, or the stream's Kafka
 * topic in the shard's transaction — and a delivery that crashes emits nothing, so a record retried
 * after a crash is emitted exactly once.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { unpack } from 'msgpackr';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { defineEntity } from '../../runtime/entity.ts';
import { streamTopic } from '../../runtime/kafka/topics.ts';
import { createRuntime, type Output, type Runtime } from '../../runtime/runtime.ts';
import { kafkaBrokers, uniquePrefix } from '../helpers/services.ts';
import { waitFor } from '../helpers/wait.ts';

const SHARDS = 2;
const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

let running: Runtime[] = [];
afterEach(async () => {
  for (const r of running) await r.stop();
  running = [];
});

/** Sums numbers; emits `{ n, total }` for each; crashes once (after emitting) on every multiple of 7. */
const crashedOnce = new Set<string>();
const summer = defineEntity<{ total: number }, { type: 'add'; n: number }>({
  kind: 'summer',
  streams: ['sums'],
  initialState: () => ({ total: 0 }),
  receive: (s, m, ctx) => {
    const total = s.total + m.n;
    ctx.emit('sums', { n: m.n, total });
    const id = `${ctx.key}/${m.n}`;
    if (m.n % 7 === 0 && !crashedOnce.has(id)) {
      crashedOnce.add(id);
      throw new Error(`crash after emitting ${m.n}`);
    }
    return { total };
  },
});

const stray = defineEntity<{ ok: boolean }, { type: 'go' }>({
  kind: 'stray',
  streams: ['sums'],
  initialState: () => ({ ok: true }),
  receive: (s, _m, ctx) => {
    ctx.emit('elsewhere', 1);
    return s;
  },
});

const modes = {
  embedded: () => {
    const dir = mkdtempSync(join(tmpdir(), 'argus-outputs-'));
    dirs.push(dir);
    return { mode: 'embedded', dataDir: dir, shards: SHARDS };
  },
  kafka: () => ({
    mode: 'kafka',
    shards: SHARDS,
    kafka: { brokers: kafkaBrokers(), topicPrefix: uniquePrefix('outputs') },
  }),
};

/** Every record of the stream, per partition in order, read back from where it is stored. */
const storedOutputs = async (rt: Runtime, config: ReturnType<(typeof modes)['kafka']> | object) => {
  if ((config as { mode: string }).mode === 'embedded') {
    const all: Output[] = [];
    for (let p = 0; p < SHARDS; p++) all.push(...(await rt.readStream('sums', p, 0, 10_000)));
    return all.map((o) => ({ key: o.key, partition: o.partition, value: o.value }));
  }
  const prefix = (config as { kafka: { topicPrefix: string } }).kafka.topicPrefix;
  const kafka = new Kafka({ brokers: kafkaBrokers(), logLevel: logLevel.NOTHING });
  const admin = kafka.admin();
  await admin.connect();
  const topic = streamTopic(prefix, 'sums');
  const offsets = await admin.fetchTopicOffsets(topic);
  await admin.disconnect();
  const total = offsets.reduce((n, o) => n + Number(o.high) - Number(o.low), 0);
  const consumer = kafka.consumer({ groupId: `${prefix}.reader`, readUncommitted: false });
  const seen: { key: string; partition: number; value: unknown; offset: number }[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      seen.push({
        key: message.key?.toString() ?? '',
        partition,
        value: unpack(message.value!),
        offset: Number(message.offset),
      });
    },
  });
  // Transaction markers take offsets too, so the high watermarks overstate the records: wait for the
  // 60 written, then a little longer, so that a duplicate would show.
  await waitFor('the stream topic to be read', () => seen.length >= 60, 15_000, 50);
  await new Promise((r) => setTimeout(r, 500));
  await consumer.disconnect();
  expect(total).toBeGreaterThanOrEqual(seen.length);
  return seen
    .sort((a, b) => a.partition - b.partition || a.offset - b.offset)
    .map(({ key, partition, value }) => ({ key, partition, value }));
};

describe.each(Object.keys(modes) as (keyof typeof modes)[])('output streams (%s mailbox)', (name) => {
  it('stores what entities emit with their checkpoints, once each, crashes included', async () => {
    const config = modes[name]();
    crashedOnce.clear();
    const rt = createRuntime(config);
    const sums = rt.register(summer);
    running.push(rt);
    const observed: Output[] = [];
    rt.onOutput('sums', (outputs) => observed.push(...outputs));
    await rt.start();
    const keys = ['a', 'b', 'c'];
    for (let n = 1; n <= 20; n++) for (const k of keys) await sums.send(k, { type: 'add', n });
    await waitFor(
      'every sum',
      async () => {
        const states = await Promise.all(keys.map((k) => sums.state(k)));
        return states.every((s) => s.state.total === 210);
      },
      20_000,
    );
    await waitFor('the observers to see 60 outputs', () => observed.length >= 60, 10_000);
    await new Promise((r) => setTimeout(r, 300));
    // Per key: n = 1..20 in order, each with its running total, no duplicate from the 2 crashes each.
    const expected = (k: string) =>
      Array.from({ length: 20 }, (_, i) => ({ key: k, value: { n: i + 1, total: ((i + 1) * (i + 2)) / 2 } }));
    for (const k of keys) {
      expect(observed.filter((o) => o.key === k).map((o) => ({ key: o.key, value: o.value }))).toEqual(
        expected(k),
      );
      expect(new Set(observed.filter((o) => o.key === k).map((o) => o.partition)).size).toBe(1);
    }
    expect(observed).toHaveLength(60);
    expect(crashedOnce.size).toBe(6);
    const stored = await storedOutputs(rt, config);
    expect(stored).toHaveLength(60);
    for (const k of keys)
      expect(stored.filter((o) => o.key === k).map((o) => ({ key: o.key, value: o.value }))).toEqual(
        expected(k),
      );
    expect(stored.every((o) => o.partition === rt.shardOf('summer', o.key))).toBe(true);
  }, 60_000);

  it('treats an emit to an undeclared stream as a crash, dead-lettering the message', async () => {
    const rt = createRuntime({ ...modes[name](), deadLetter: { maxAttempts: 2 } });
    const s = rt.register(stray);
    running.push(rt);
    await rt.start();
    await s.send('x', { type: 'go' });
    const letters = await waitFor('the dead letter', async () => {
      const l = await rt.deadLetters('stray');
      return l.length === 1 && l;
    });
    expect(letters[0]).toMatchObject({ reason: 'crashed', key: 'x', attempts: 2 });
    expect(letters[0]!.error).toBe(
      "ARGUS_ERR_UNKNOWN_STREAM: entity kind 'stray' emitted to stream 'elsewhere', which is not one of its streams (sums)",
    );
  }, 60_000);
});

describe('output stream retention (embedded journal)', () => {
  it('keeps the last streamRetention records of each partition, reads from the start that is left', async () => {
    const config = { ...modes.embedded(), embedded: { streamRetention: 10 } };
    crashedOnce.clear();
    const rt = createRuntime(config);
    const sums = rt.register(summer);
    running.push(rt);
    await rt.start();
    // n = 1, 2, 4, 5, 8 … (no multiples of 7: no crashes), 25 records on one key, one partition.
    const ns = Array.from({ length: 40 }, (_, i) => i + 1)
      .filter((n) => n % 7 !== 0)
      .slice(0, 25);
    for (const n of ns) await sums.send('only', { type: 'add', n });
    const total = ns.reduce((a, b) => a + b, 0);
    await waitFor('all applied', async () => (await sums.state('only')).state.total === total, 20_000);
    const p = rt.shardOf('summer', 'only');
    const left = await waitFor('the last checkpoint', async () => {
      const l = await rt.readStream('sums', p, 0, 100);
      return l.at(-1)?.offset === 24 && l;
    });
    expect(left.map((o) => o.offset)).toEqual([15, 16, 17, 18, 19, 20, 21, 22, 23, 24]);
    expect(left.map((o) => (o.value as { n: number }).n)).toEqual(ns.slice(15));
    expect((await rt.readStream('sums', p, 20, 100)).map((o) => o.offset)).toEqual([20, 21, 22, 23, 24]);
  }, 60_000);
});
