import { afterEach, describe, expect, it } from 'vitest';
import { KafkaMailbox } from '../../runtime/kafka/mailbox.ts';
import { kafkaBrokers, uniquePrefix } from '../helpers/services.ts';
import { bytes, describeRecords, recordingConsumer, waitFor } from './support.ts';

const open: { close(): Promise<void> }[] = [];
afterEach(async () => {
  for (const c of open.splice(0).reverse()) await c.close();
});

describe('KafkaMailbox: moving partitions between consumptions', () => {
  it('a revoked partition resumes elsewhere at the commit; kept ones are not re-delivered', async () => {
    const prefix = uniquePrefix('mailbox-rebalance');
    const nodeA = new KafkaMailbox({ brokers: kafkaBrokers(), clientId: 'node-a', topicPrefix: prefix });
    const nodeB = new KafkaMailbox({ brokers: kafkaBrokers(), clientId: 'node-b', topicPrefix: prefix });
    open.push(nodeA, nodeB);
    await nodeA.ensureKinds([{ kind: 'host', partitions: 4 }]);
    const appendRound = (offset: number) =>
      nodeA.append(
        'host',
        [0, 1, 2, 3].map((p) => ({ partition: p, key: `h${p}`, value: bytes(`${p}@${offset}`) })),
      );
    for (let offset = 0; offset < 10; offset++) await appendRound(offset);

    const a = await recordingConsumer(nodeA, { kinds: ['host'] });
    open.push({ close: a.stop });
    await waitFor('node A to see 40 records', () => describeRecords(a.recorded.batches).length === 40);
    for (const p of [0, 1, 2, 3]) await nodeA.commit('host', p, 5);

    const moved = [1, 3];
    const kept = [0, 2];
    for (const partition of moved) await a.consumption.revoke({ kind: 'host', partition });
    expect(a.consumption.assigned().map((r) => r.partition)).toEqual(kept);
    const b = await recordingConsumer(nodeB, { kinds: ['host'] }, undefined, (ref) =>
      moved.includes(ref.partition),
    );
    open.push({ close: b.stop });
    expect(b.recorded.assigned).toEqual(
      moved.map((partition) => ({ ref: { kind: 'host', partition }, startOffset: 5 })),
    );

    await appendRound(10);
    await waitFor(
      'node B to see 5..10 of its partitions',
      () => describeRecords(b.recorded.batches).length === 12,
    );
    await waitFor(
      'node A to see offset 10 of the kept ones',
      () => describeRecords(a.recorded.batches).length === 42,
    );

    const line = (p: number, o: number) => `${p}:${o}:h${p}:${p}@${o}`;
    const ofPartition = (lines: string[], p: number) => lines.filter((l) => l.startsWith(`${p}:`));
    const seenByA = describeRecords(a.recorded.batches);
    const seenByB = describeRecords(b.recorded.batches);
    for (const p of kept) {
      expect(ofPartition(seenByA, p)).toEqual(Array.from({ length: 11 }, (_, o) => line(p, o)));
      expect(ofPartition(seenByB, p)).toEqual([]);
    }
    for (const p of moved) {
      expect(ofPartition(seenByA, p)).toEqual(Array.from({ length: 10 }, (_, o) => line(p, o)));
      expect(ofPartition(seenByB, p)).toEqual([5, 6, 7, 8, 9, 10].map((o) => line(p, o)));
    }
  });
});
