/** Misuse of the embedded journal: each case throws a coded ArgusError whose message names the culprit. */
import { afterEach, describe, expect, it } from 'vitest';
import { openJournal } from '../../runtime/embedded/journal.ts';
import { ArgusError, type ErrorCode } from '../../runtime/errors.ts';
import { closeJournals, journalAt, tempDir } from './helpers.ts';

afterEach(closeJournals);

/** Asserts that `action` throws or rejects with `code` and a message containing every one of `names`. */
const expectError = async (action: () => unknown, code: ErrorCode, ...names: string[]): Promise<void> => {
  let caught: unknown;
  try {
    await action();
  } catch (e) {
    caught = e;
  }
  expect(caught).toBeInstanceOf(ArgusError);
  const error = caught as ArgusError;
  expect(error.code).toBe(code);
  for (const name of names) expect(error.message).toContain(name);
};

const record = (partition: number) => ({ partition, key: 'k', value: new Uint8Array([1]) });

describe('embedded journal errors', () => {
  it('rejects an unknown kind everywhere, naming it', async () => {
    const { mailbox, snapshots } = journalAt();
    await mailbox.ensureKinds([{ kind: 'host', partitions: 2 }]);
    const unknown = 'ARGUS_ERR_UNKNOWN_KIND';
    await expectError(() => mailbox.append('hots', [record(0)]), unknown, "'hots'");
    await expectError(() => mailbox.commit('hots', 0, 0), unknown, "'hots'");
    await expectError(() => mailbox.committed('hots', 0), unknown, "'hots'");
    await expectError(() => mailbox.endOffset('hots', 0), unknown, "'hots'");
    await expectError(
      () =>
        mailbox.consume({
          kinds: ['host', 'hots'],
          onBatch: async () => {},
        }),
      unknown,
      "'hots'",
    );
    await expectError(() => snapshots.openShard('hots', 0), unknown, "'hots'");
    await expectError(() => snapshots.save('hots', []), unknown, "'hots'");
  });

  it('rejects a partition out of range, naming the kind, the partition and the range', async () => {
    const { mailbox, snapshots } = journalAt();
    await mailbox.ensureKinds([{ kind: 'host', partitions: 4 }]);
    const invalid = 'ARGUS_ERR_INVALID_CONFIG';
    await expectError(
      () => mailbox.append('host', [record(0), record(4)]),
      invalid,
      "'host'",
      'partition 4',
      '0..3',
    );
    await expectError(() => mailbox.append('host', [record(-1)]), invalid, 'partition -1');
    await expectError(() => mailbox.append('host', [record(1.5)]), invalid, 'partition 1.5');
    await expectError(() => mailbox.commit('host', 9, 0), invalid, 'partition 9');
    await expectError(() => mailbox.endOffset('host', 4), invalid, 'partition 4');
    await expectError(() => snapshots.openShard('host', 4), invalid, 'partition 4');
    await expectError(
      () => snapshots.save('host', [{ key: 'k', partition: 7, offset: 0, state: new Uint8Array() }]),
      invalid,
      'partition 7',
    );
    // Nothing of a rejected append was written.
    expect(await mailbox.endOffset('host', 0)).toBe(0);
  });

  it('rejects a different partition count for an existing kind, naming both counts, even after a reopen', async () => {
    const dir = tempDir();
    const first = openJournal(dir);
    await first.mailbox.ensureKinds([{ kind: 'host', partitions: 4 }]);
    await first.mailbox.ensureKinds([{ kind: 'host', partitions: 4 }]); // idempotent
    await expectError(
      () => first.mailbox.ensureKinds([{ kind: 'host', partitions: 8 }]),
      'ARGUS_ERR_INVALID_CONFIG',
      "'host'",
      '4 partitions',
      'not 8',
    );
    await first.close();
    const second = journalAt(dir);
    await expectError(
      () => second.snapshots.ensureKinds([{ kind: 'host', partitions: 2 }]),
      'ARGUS_ERR_INVALID_CONFIG',
      "'host'",
      '4',
      '2',
    );
    await expectError(
      () => second.mailbox.ensureKinds([{ kind: 'rule', partitions: 0 }]),
      'ARGUS_ERR_INVALID_CONFIG',
      "'rule'",
      'partition count 0',
    );
  });

  it('rejects commits past the log end and negative offsets', async () => {
    const { mailbox } = journalAt();
    await mailbox.ensureKinds([{ kind: 'host', partitions: 1 }]);
    await mailbox.append('host', [record(0), record(0)]);
    await mailbox.commit('host', 0, 2);
    await expectError(
      () => mailbox.commit('host', 0, 3),
      'ARGUS_ERR_INVALID_CONFIG',
      'offset 3',
      'ends at 2',
    );
    await expectError(() => mailbox.commit('host', 0, -1), 'ARGUS_ERR_INVALID_CONFIG', 'offset -1');
    expect(await mailbox.committed('host', 0)).toBe(2);
  });

  it('rejects invalid snapshot keys with ARGUS_ERR_INVALID_KEY', async () => {
    const { snapshots } = journalAt();
    await snapshots.ensureKinds([{ kind: 'host', partitions: 1 }]);
    await expectError(
      () => snapshots.save('host', [{ key: '', partition: 0, offset: 0, state: new Uint8Array() }]),
      'ARGUS_ERR_INVALID_KEY',
      "'host'",
    );
    const shard = await snapshots.openShard('host', 0);
    await expectError(() => shard.get('a\0b'), 'ARGUS_ERR_INVALID_KEY', "'host'");
  });

  it('rejects invalid journal options, naming the option', () => {
    const dir = tempDir();
    expect(() => openJournal(dir, { pollMs: 0 })).toThrow(/pollMs/);
    expect(() => openJournal(dir, { maxBatch: 2.5 })).toThrow(/maxBatch/);
  });

  it('refuses every use after close with ARGUS_ERR_STORE_CLOSED naming the store', async () => {
    const journal = openJournal(tempDir());
    await journal.mailbox.ensureKinds([{ kind: 'host', partitions: 1 }]);
    const shard = await journal.snapshots.openShard('host', 0);
    await journal.close();
    await journal.close(); // closing twice is fine
    const closed = 'ARGUS_ERR_STORE_CLOSED';
    await expectError(() => journal.mailbox.append('host', [record(0)]), closed, 'mailbox');
    await expectError(() => journal.mailbox.ensureKinds([]), closed, 'mailbox');
    await expectError(() => journal.mailbox.committed('host', 0), closed, 'mailbox');
    await expectError(
      () =>
        journal.mailbox.consume({
          kinds: [],
          onBatch: async () => {},
        }),
      closed,
      'mailbox',
    );
    await expectError(() => journal.snapshots.save('host', []), closed, 'snapshots');
    await expectError(() => shard.get('k'), closed, 'snapshots');
    await expectError(() => shard.size, closed, 'snapshots');
    await expectError(() => journal.deadLetters.list(), closed, 'deadLetters');
    await expectError(() => journal.deadLetters.put([]), closed, 'deadLetters');
  });

  it('closes the stores one by one, the environment with the last', async () => {
    const dir = tempDir();
    const journal = openJournal(dir);
    await journal.mailbox.ensureKinds([{ kind: 'host', partitions: 1 }]);
    await journal.mailbox.close();
    await expectError(() => journal.mailbox.endOffset('host', 0), 'ARGUS_ERR_STORE_CLOSED', 'mailbox');
    await journal.deadLetters.put([]); // the others still work
    expect((await journal.snapshots.openShard('host', 0)).size).toBe(0);
    await journal.snapshots.close();
    await journal.deadLetters.close();
    await journal.close();
    const again = journalAt(dir);
    expect(await again.mailbox.endOffset('host', 0)).toBe(0);
  });
});
