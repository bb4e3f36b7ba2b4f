/** Shard checkpoints on the embedded journal: one transaction, all or nothing. */
import { afterEach, describe, expect, it } from 'vitest';
import type { CheckpointStore, DeadLetter } from '../../runtime/boundaries.ts';
import { SequentialCheckpointStore } from '../../runtime/checkpoints.ts';
import { closeJournals, journalAt, tempDir } from './helpers.ts';

afterEach(closeJournals);

const bytes = (text: string): Uint8Array => new Uint8Array(Buffer.from(text));
const letter = (offset: number): DeadLetter => ({
  kind: 'host',
  partition: 1,
  offset,
  key: 'web-1',
  reason: 'crashed',
  error: 'boom',
  attempts: 3,
  at: 1_700_000_000_000,
  value: bytes('raw'),
});

const stores: Record<string, (j: ReturnType<typeof journalAt>) => CheckpointStore> = {
  'journal (one transaction)': (j) => j.checkpoints,
  'sequential (any three stores)': (j) =>
    new SequentialCheckpointStore(j.mailbox, j.snapshots, j.deadLetters),
};

describe.each(Object.keys(stores))('checkpoints: %s', (name) => {
  it('makes snapshots, dead letters and the offset durable, visible to a reopened journal', async () => {
    const dir = tempDir();
    const journal = journalAt(dir);
    await journal.mailbox.ensureKinds([{ kind: 'host', partitions: 2 }]);
    await journal.snapshots.ensureKinds([{ kind: 'host', partitions: 2 }]);
    await journal.mailbox.append(
      'host',
      Array.from({ length: 5 }, (_, i) => ({ partition: 1, key: 'web-1', value: bytes(`m${i}`) })),
    );
    const writer = await stores[name]!(journal).open('host', 1);
    await writer.write({
      snapshots: [{ key: 'web-1', partition: 1, offset: 3, state: bytes('s3') }],
      deadLetters: [letter(4)],
      nextOffset: 5,
    });
    await writer.close();
    await journal.close();

    const again = journalAt(dir);
    expect(await again.mailbox.committed('host', 1)).toBe(5);
    expect(await again.mailbox.committed('host', 0)).toBe(0);
    expect((await again.snapshots.openShard('host', 1)).get('web-1')).toStrictEqual({
      key: 'web-1',
      partition: 1,
      offset: 3,
      state: bytes('s3'),
    });
    expect(await again.deadLetters.list('host')).toStrictEqual([letter(4)]);
  });

  it('refuses an offset past the log end and writes nothing of that checkpoint', async () => {
    const journal = journalAt(tempDir());
    await journal.mailbox.ensureKinds([{ kind: 'host', partitions: 2 }]);
    await journal.snapshots.ensureKinds([{ kind: 'host', partitions: 2 }]);
    await journal.mailbox.append('host', [{ partition: 1, key: 'web-1', value: bytes('m0') }]);
    const writer = await stores[name]!(journal).open('host', 1);
    const write = writer.write({
      snapshots: [{ key: 'web-1', partition: 1, offset: 6, state: bytes('s6') }],
      deadLetters: [],
      nextOffset: 7,
    });
    await expect(write).rejects.toThrow(/ARGUS_ERR_INVALID_CONFIG.*offset 7 of host\/1: the log ends at 1/);
    if (name.startsWith('journal')) {
      // One transaction: the snapshot did not land either.
      expect((await journal.snapshots.openShard('host', 1)).get('web-1')).toBeUndefined();
    }
    expect(await journal.mailbox.committed('host', 1)).toBe(0);
  });
});
