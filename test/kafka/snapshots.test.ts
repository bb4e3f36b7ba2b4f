import { afterEach, describe, expect, it } from 'vitest';
import type { Snapshot } from '../../runtime/boundaries.ts';
import { isArgusError } from '../../runtime/errors.ts';
import { KafkaSnapshotStore } from '../../runtime/kafka/snapshots.ts';
import { kafkaBrokers, uniquePrefix } from '../helpers/services.ts';
import { bytes } from './support.ts';

const open: KafkaSnapshotStore[] = [];
const store = (topicPrefix: string): KafkaSnapshotStore => {
  const s = new KafkaSnapshotStore({ brokers: kafkaBrokers(), clientId: 'snapshots-test', topicPrefix });
  open.push(s);
  return s;
};

afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

const snap = (key: string, partition: number, offset: number, state: string): Snapshot => ({
  key,
  partition,
  offset,
  state: bytes(state),
});

describe('KafkaSnapshotStore', () => {
  it('returns the latest snapshot of each key with its exact offset, also to a fresh store', async () => {
    const prefix = uniquePrefix('snapshots-latest');
    const s = store(prefix);
    await s.ensureKinds([{ kind: 'host', partitions: 3 }]);
    await s.save('host', [
      snap('web-1', 1, 4, 'cpu=10'),
      snap('web-2', 1, 5, 'cpu=20'),
      snap('db-1', 2, 9, 'cpu=30'),
    ]);
    await s.save('host', [snap('web-1', 1, 11, 'cpu=15')]); // overwrite

    const shard1 = await s.openShard('host', 1);
    expect(shard1.size).toBe(2);
    expect(shard1.get('web-1')).toEqual(snap('web-1', 1, 11, 'cpu=15'));
    expect(shard1.get('web-2')).toEqual(snap('web-2', 1, 5, 'cpu=20'));
    expect(shard1.get('db-1')).toBeUndefined();

    const fresh = store(prefix);
    const [again1, again2, empty0] = await Promise.all([
      fresh.openShard('host', 1),
      fresh.openShard('host', 2),
      fresh.openShard('host', 0),
    ]);
    expect(again1.get('web-1')).toEqual(snap('web-1', 1, 11, 'cpu=15'));
    expect(again1.get('web-2')).toEqual(snap('web-2', 1, 5, 'cpu=20'));
    expect(again2.size).toBe(1);
    expect(again2.get('db-1')).toEqual(snap('db-1', 2, 9, 'cpu=30'));
    expect(empty0.size).toBe(0);
  });

  it('sees a snapshot saved by another store just before openShard', async () => {
    const prefix = uniquePrefix('snapshots-other');
    const writer = store(prefix);
    const reader = store(prefix);
    await writer.ensureKinds([{ kind: 'rule', partitions: 2 }]);
    expect((await reader.openShard('rule', 0)).size).toBe(0);
    await writer.save('rule', [snap('cpu-high@0', 0, 41, 'firing')]);
    expect((await reader.openShard('rule', 0)).get('cpu-high@0')).toEqual(
      snap('cpu-high@0', 0, 41, 'firing'),
    );
    await writer.save('rule', [snap('cpu-high@0', 0, 42, 'resolved')]);
    expect((await reader.openShard('rule', 0)).get('cpu-high@0')).toEqual(
      snap('cpu-high@0', 0, 42, 'resolved'),
    );
  });

  it('keeps an opened shard live: later saves through the same store show in it at once', async () => {
    const prefix = uniquePrefix('snapshots-live');
    const s = store(prefix);
    await s.ensureKinds([{ kind: 'host', partitions: 2 }]);
    await s.save('host', [snap('web-1', 0, 1, 'a')]);
    const view = await s.openShard('host', 0);
    expect(view.get('web-1')).toEqual(snap('web-1', 0, 1, 'a'));
    await s.save('host', [
      snap('web-1', 0, 2, 'b'),
      snap('web-2', 0, 3, 'c'),
      snap('web-3', 1, 4, 'other shard'),
    ]);
    expect(view.get('web-1')).toEqual(snap('web-1', 0, 2, 'b'));
    expect(view.get('web-2')).toEqual(snap('web-2', 0, 3, 'c'));
    expect(view.get('web-3')).toBeUndefined();
    expect(view.size).toBe(2);

    // Another process saves: the view catches up on the next openShard, which reads only what is new.
    const other = store(prefix);
    await other.save('host', [snap('web-1', 0, 7, 'from elsewhere')]);
    expect(view.get('web-1')).toEqual(snap('web-1', 0, 2, 'b'));
    const again = await s.openShard('host', 0);
    expect(again.get('web-1')).toEqual(snap('web-1', 0, 7, 'from elsewhere'));
    expect(view.get('web-1')).toEqual(snap('web-1', 0, 7, 'from elsewhere'));
    expect(again.size).toBe(2);
  });

  it('creates a compacted state topic with the kind partition count, and checks the count', async () => {
    const prefix = uniquePrefix('snapshots-count');
    const s = store(prefix);
    await s.ensureKinds([{ kind: 'host', partitions: 2 }]);
    const error = await store(prefix)
      .ensureKinds([{ kind: 'host', partitions: 3 }])
      .catch((e: unknown) => e);
    expect(isArgusError(error, 'ARGUS_ERR_INVALID_CONFIG')).toBe(true);
    expect((error as Error).message).toContain(
      `topic '${prefix}.state.host' has 2 partitions but 3 were asked for`,
    );
    await expect(s.save('host', [snap('k', 2, 0, 'x')])).rejects.toThrow(
      "ARGUS_ERR_INVALID_CONFIG: partition 2 of kind 'host' does not exist: the kind has partitions 0..1",
    );
    await expect(s.openShard('log', 0)).rejects.toThrow(
      `ARGUS_ERR_UNKNOWN_KIND: no state topic '${prefix}.state.log' for kind 'log'`,
    );
  });
});
