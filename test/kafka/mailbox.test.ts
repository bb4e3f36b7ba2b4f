import { afterEach, describe, expect, it } from 'vitest';
import { isArgusError } from '../../runtime/errors.ts';
import { KafkaMailbox, type KafkaMailboxOptions } from '../../runtime/kafka/mailbox.ts';
import { kafkaBrokers, uniquePrefix } from '../helpers/services.ts';
import { waitFor } from '../helpers/wait.ts';
import { bytes, consumeUntil, describeRecords, type Recorded } from './support.ts';

const open: KafkaMailbox[] = [];
const mailbox = (topicPrefix: string, extra: Partial<KafkaMailboxOptions> = {}): KafkaMailbox => {
  const m = new KafkaMailbox({ brokers: kafkaBrokers(), clientId: 'mailbox-test', topicPrefix, ...extra });
  open.push(m);
  return m;
};

afterEach(async () => {
  await Promise.all(open.splice(0).map((m) => m.close()));
});

const delivered = (r: Recorded): number => r.batches.reduce((n, b) => n + b.records.length, 0);

describe('KafkaMailbox', () => {
  it('delivers every appended record with its exact partition, offset, key and value', async () => {
    const m = mailbox(uniquePrefix('mailbox-all'));
    await m.ensureKinds([{ kind: 'host', partitions: 4 }]);
    const records = Array.from({ length: 200 }, (_, i) => ({
      partition: i % 4,
      key: `web-${i}`,
      value: bytes(`reading ${i}`),
    }));
    await m.append('host', records.slice(0, 120));
    await m.append('host', records.slice(120));

    const seen = await consumeUntil(m, { kinds: ['host'], maxBatch: 7 }, (r) => delivered(r) === 200);

    const expected = [0, 1, 2, 3].flatMap((p) =>
      records
        .filter((r) => r.partition === p)
        .map((r, offset) => `${p}:${offset}:${r.key}:reading ${r.key.slice(4)}`),
    );
    const byPartition = (p: number): string[] =>
      describeRecords(seen.batches).filter((line) => line.startsWith(`${p}:`));
    expect([0, 1, 2, 3].flatMap(byPartition)).toEqual(expected);
    // maxBatch caps every batch; a batch is one partition's consecutive offsets.
    for (const batch of seen.batches) {
      expect(batch.kind).toBe('host');
      expect(batch.records.length).toBeLessThanOrEqual(7);
      const offsets = batch.records.map((r) => r.offset);
      expect(offsets).toEqual(offsets.map((_, i) => offsets[0]! + i));
      expect(batch.records.every((r) => r.partition === batch.partition)).toBe(true);
    }
    const byRef = (a: { ref: { partition: number } }, b: { ref: { partition: number } }): number =>
      a.ref.partition - b.ref.partition;
    expect([...seen.assigned].sort(byRef)).toEqual(
      [0, 1, 2, 3].map((partition) => ({ ref: { kind: 'host', partition }, startOffset: 0 })),
    );
    expect([...seen.revoked].sort((a, b) => a.partition - b.partition)).toEqual(
      [0, 1, 2, 3].map((partition) => ({ kind: 'host', partition })),
    );
    expect(await Promise.all([0, 1, 2, 3].map((p) => m.endOffset('host', p)))).toEqual([50, 50, 50, 50]);
  });

  it('resumes a new consumer exactly after the committed offset', async () => {
    const prefix = uniquePrefix('mailbox-resume');
    const first = mailbox(prefix);
    await first.ensureKinds([{ kind: 'rule', partitions: 2 }]);
    await first.append(
      'rule',
      Array.from({ length: 10 }, (_, i) => ({ partition: 0, key: `r${i}`, value: bytes(`v${i}`) })),
    );
    expect(await first.committed('rule', 0)).toBe(0);

    await consumeUntil(
      first,
      {
        kinds: ['rule'],
        onBatch: async (batch) => {
          if (batch.records.some((r) => r.offset === 6)) await first.commit('rule', 0, 7);
        },
      },
      (r) => delivered(r) === 10,
    );
    // Offsets committed in a transaction become visible to OffsetFetch once the transaction's markers
    // are written, a moment after the commit returns (kafkajs cannot ask for require_stable): a read
    // right after the commit may still answer the previous offset (CI saw 0 once).
    await waitFor(
      'the transactional commit to be visible',
      async () => (await first.committed('rule', 0)) === 7,
      10_000,
      50,
    );
    expect(await first.committed('rule', 1)).toBe(0);

    const second = mailbox(prefix);
    await second.append('rule', [{ partition: 0, key: 'r10', value: bytes('v10') }]);
    const resumed = await consumeUntil(second, { kinds: ['rule'] }, (r) => delivered(r) === 4);
    expect(resumed.assigned.find((a) => a.ref.partition === 0)).toEqual({
      ref: { kind: 'rule', partition: 0 },
      startOffset: 7,
    });
    expect(describeRecords(resumed.batches)).toEqual(['0:7:r7:v7', '0:8:r8:v8', '0:9:r9:v9', '0:10:r10:v10']);
  });

  it('re-delivers a rejected batch itself after a pause and skips nothing', async () => {
    const m = mailbox(uniquePrefix('mailbox-retry'), { consumer: { retryDelayMs: 100 } });
    await m.ensureKinds([{ kind: 'log', partitions: 1 }]);
    await m.append(
      'log',
      Array.from({ length: 20 }, (_, i) => ({ partition: 0, key: `l${i}`, value: bytes(`line ${i}`) })),
    );
    let rejected = false;
    const seen = await consumeUntil(
      m,
      {
        kinds: ['log'],
        maxBatch: 5,
        onBatch: async (batch) => {
          const first = batch.records[0]!.offset;
          if (first === 0) await m.commit('log', 0, 5);
          if (first === 10 && !rejected) {
            rejected = true;
            throw new Error('entity crashed');
          }
        },
      },
      (r) => r.batches.some((b) => b.records.some((rec) => rec.offset === 19)),
    );
    expect(seen.batches.map((b) => b.records.map((r) => r.offset))).toEqual([
      [0, 1, 2, 3, 4],
      [5, 6, 7, 8, 9],
      [10, 11, 12, 13, 14], // rejected
      [10, 11, 12, 13, 14], // the same records again, whatever was committed
      [15, 16, 17, 18, 19],
    ]);
    expect(describeRecords(seen.batches.slice(3))).toEqual(
      Array.from({ length: 10 }, (_, i) => `0:${i + 10}:l${i + 10}:line ${i + 10}`),
    );
  });

  it('keeps the order of concurrent appends to one partition, without duplicates', async () => {
    const m = mailbox(uniquePrefix('mailbox-order'));
    await m.ensureKinds([{ kind: 'host', partitions: 2 }]);
    await Promise.all(
      Array.from({ length: 20 }, (_, call) =>
        m.append(
          'host',
          Array.from({ length: 50 }, (_, i) => ({
            partition: 1,
            key: `c${call}`,
            value: bytes(`${call}.${i}`),
          })),
        ),
      ),
    );
    expect(await m.endOffset('host', 1)).toBe(1000);
    expect(await m.endOffset('host', 0)).toBe(0);
    const seen = await consumeUntil(m, { kinds: ['host'] }, (r) => delivered(r) === 1000);
    expect(describeRecords(seen.batches)).toEqual(
      Array.from({ length: 1000 }, (_, n) => `1:${n}:c${Math.floor(n / 50)}:${Math.floor(n / 50)}.${n % 50}`),
    );
  });

  it('rejects kinds whose topic names collide, naming both', async () => {
    const prefix = uniquePrefix('mailbox-collide');
    const m = mailbox(prefix);
    const error = await m
      .ensureKinds([
        { kind: 'web.hosts', partitions: 1 },
        { kind: 'web_hosts', partitions: 1 },
      ])
      .catch((e: unknown) => e);
    expect(isArgusError(error, 'ARGUS_ERR_INVALID_TOPIC')).toBe(true);
    expect((error as Error).message).toBe(
      `ARGUS_ERR_INVALID_TOPIC: topic names '${prefix}.mailbox.web.hosts' and '${prefix}.mailbox.web_hosts' collide: ` +
        "Kafka treats '.' and '_' alike in metric names",
    );

    // Also against a topic that already exists on the cluster.
    await m.ensureKinds([{ kind: 'web.hosts', partitions: 1 }]);
    await expect(m.ensureKinds([{ kind: 'web_hosts', partitions: 1 }])).rejects.toThrow(
      `topic names '${prefix}.mailbox.web.hosts' and '${prefix}.mailbox.web_hosts' collide`,
    );
  });

  it('rejects an existing mailbox with another partition count', async () => {
    const prefix = uniquePrefix('mailbox-count');
    await mailbox(prefix).ensureKinds([{ kind: 'host', partitions: 4 }]);
    const other = mailbox(prefix);
    await other.ensureKinds([{ kind: 'host', partitions: 4 }]); // same count: idempotent
    const error = await other.ensureKinds([{ kind: 'host', partitions: 8 }]).catch((e: unknown) => e);
    expect(isArgusError(error, 'ARGUS_ERR_INVALID_CONFIG')).toBe(true);
    expect((error as Error).message).toBe(
      `ARGUS_ERR_INVALID_CONFIG: topic '${prefix}.mailbox.host' has 4 partitions but 8 were asked for ` +
        '(a partition count is fixed when the cluster is created)',
    );
  });

  it('refuses unknown kinds and partitions outside the kind', async () => {
    const prefix = uniquePrefix('mailbox-unknown');
    const m = mailbox(prefix);
    await m.ensureKinds([{ kind: 'host', partitions: 2 }]);
    await expect(m.append('rule', [{ partition: 0, key: 'k', value: bytes('v') }])).rejects.toThrow(
      `ARGUS_ERR_UNKNOWN_KIND: no mailbox topic '${prefix}.mailbox.rule' for kind 'rule': call ensureKinds first`,
    );
    await expect(m.append('host', [{ partition: 2, key: 'k', value: bytes('v') }])).rejects.toThrow(
      "ARGUS_ERR_INVALID_CONFIG: partition 2 of kind 'host' does not exist: the kind has partitions 0..1",
    );
    // Another process's mailbox finds the kind through the cluster's metadata.
    const other = mailbox(prefix);
    await other.append('host', [{ partition: 1, key: 'k', value: bytes('v') }]);
    expect(await other.endOffset('host', 1)).toBe(1);
  });
});
