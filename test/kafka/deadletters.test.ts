import { ConfigResourceTypes, Kafka } from 'kafkajs';
import { afterEach, describe, expect, it } from 'vitest';
import type { DeadLetter } from '../../runtime/boundaries.ts';
import { deadLetterDiscardTopic, KafkaDeadLetterStore } from '../../runtime/kafka/deadletters.ts';
import { kafkaBrokers, uniquePrefix } from '../helpers/services.ts';
import { bytes, waitFor } from './support.ts';

const open: KafkaDeadLetterStore[] = [];
const store = (topicPrefix: string): KafkaDeadLetterStore => {
  const s = new KafkaDeadLetterStore({ brokers: kafkaBrokers(), clientId: 'deadletters-test', topicPrefix });
  open.push(s);
  return s;
};

afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

const letters: DeadLetter[] = [
  {
    kind: 'host',
    partition: 3,
    offset: 17,
    key: 'web-12',
    reason: 'crashed',
    error: 'TypeError: cannot read properties of undefined',
    attempts: 3,
    at: 1_767_225_600_000,
    value: bytes('{"type":"host.poll"}'),
  },
  {
    kind: 'rule',
    partition: 0,
    offset: 2,
    key: undefined,
    reason: 'undecodable',
    error: 'not msgpack',
    attempts: 1,
    at: 1_767_225_601_500,
    value: new Uint8Array([0xc1, 0x00, 0xff]),
  },
  {
    kind: 'host',
    partition: 1,
    offset: 9_007_199_254_740,
    key: 'db-1',
    reason: 'unknown-version',
    error: 'envelope version 9',
    attempts: 1,
    at: 1_767_225_602_250,
    value: new Uint8Array(0),
  },
];

describe('KafkaDeadLetterStore', () => {
  it('gives back every dead letter exactly, oldest first, also to a fresh store', async () => {
    const prefix = uniquePrefix('deadletters');
    const s = store(prefix);
    await s.ensure();
    expect(await s.list()).toEqual([]);
    await s.put(letters.slice(0, 2));
    await s.put(letters.slice(2));
    expect(await s.list()).toEqual(letters);

    const fresh = store(prefix);
    await fresh.ensure();
    expect(await fresh.list()).toEqual(letters);
    expect(await fresh.list('host')).toEqual([letters[0], letters[2]]);
    expect(await fresh.list('log')).toEqual([]);
  });

  it('discards letters with a durable marker that every store on the prefix honours', async () => {
    const prefix = uniquePrefix('deadletters-discard');
    const s = store(prefix);
    await s.ensure();
    await s.put(letters);
    // Another kind at the same partition and offset is a different letter.
    const twin: DeadLetter = { ...letters[0]!, kind: 'host.v2', key: 'web-12' };
    await s.put([twin]);

    expect(await s.discard([{ kind: 'host', partition: 3, offset: 17 }])).toBe(1);
    expect(await s.list()).toEqual([letters[1], letters[2], twin]);

    // A store opened afterwards (another node) reads the marker; no ensure() needed to honour it.
    const other = store(prefix);
    expect(await other.list('host')).toEqual([letters[2]]);
    expect(
      await other.discard([
        { kind: 'host', partition: 3, offset: 17 },
        { kind: 'rule', partition: 0, offset: 2 },
        { kind: 'rule', partition: 0, offset: 2 },
        { kind: 'log', partition: 0, offset: 0 },
      ]),
    ).toBe(1);
    expect(await s.list()).toEqual([letters[2], twin]);
    expect(await other.discard([])).toBe(0);

    // Letters put after a discard are listed; discarded ones never come back.
    const later: DeadLetter = { ...letters[1]!, offset: 3 };
    await s.put([later]);
    expect(await store(prefix).list()).toEqual([letters[2], twin, later]);
  });

  it('keeps markers in a compacted topic, and lists every letter of a prefix without that topic', async () => {
    const prefix = uniquePrefix('deadletters-no-discards');
    const s = store(prefix);
    await s.ensure();
    await s.put(letters);
    const admin = new Kafka({ clientId: 'deadletters-test', brokers: kafkaBrokers() }).admin();
    await admin.connect();
    try {
      const described = await admin.describeConfigs({
        resources: [{ type: ConfigResourceTypes.TOPIC, name: deadLetterDiscardTopic(prefix) }],
        includeSynonyms: false,
      });
      const entries = described.resources[0]!.configEntries;
      expect(entries.find((e) => e.configName === 'cleanup.policy')?.configValue).toBe('compact');
      await admin.deleteTopics({ topics: [deadLetterDiscardTopic(prefix)] });
      await waitFor(
        'the discard topic deleted',
        async () => !(await admin.listTopics()).includes(deadLetterDiscardTopic(prefix)),
      );
    } finally {
      await admin.disconnect();
    }
    const fresh = store(prefix);
    expect(await fresh.list()).toEqual(letters);
    // Discarding creates it again.
    expect(await fresh.discard([letters[0]!])).toBe(1);
    expect(await store(prefix).list()).toEqual(letters.slice(1));
  });

  it('answers lists and a discard running at once on a store that was never ensured', async () => {
    const prefix = uniquePrefix('deadletters-concurrent');
    const first = store(prefix);
    await first.ensure();
    await first.put(letters);
    const fresh = store(prefix);
    const [all, hosts, discarded, rules] = await Promise.all([
      fresh.list(),
      fresh.list('host'),
      fresh.discard([letters[2]!]),
      fresh.list('rule'),
    ]);
    expect(all).toEqual(expect.arrayContaining([letters[0], letters[1]]));
    expect(hosts).toEqual(expect.arrayContaining([letters[0]]));
    expect([discarded, rules]).toEqual([1, [letters[1]]]);
    expect(await fresh.list()).toEqual(letters.slice(0, 2));
  });

  it('refuses to work once closed', async () => {
    const s = store(uniquePrefix('deadletters-closed'));
    await s.ensure();
    await s.close();
    await expect(s.list()).rejects.toThrow('ARGUS_ERR_STORE_CLOSED');
    await expect(s.discard([letters[0]!])).rejects.toThrow('ARGUS_ERR_STORE_CLOSED');
  });
});
