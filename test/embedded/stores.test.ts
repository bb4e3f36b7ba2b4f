/** Snapshots and dead letters in the embedded journal. */
import { afterEach, describe, expect, it } from 'vitest';
import type { DeadLetter } from '../../runtime/boundaries.ts';
import { openJournal } from '../../runtime/embedded/journal.ts';
import { closeJournals, journalAt, tempDir } from './helpers.ts';

afterEach(closeJournals);

const bytes = (text: string): Uint8Array => new Uint8Array(Buffer.from(text));

describe('embedded snapshots', () => {
  it('returns the latest save of each key, per shard, with exact state bytes', async () => {
    const journal = journalAt(tempDir());
    const { snapshots } = journal;
    await snapshots.ensureKinds([{ kind: 'host', partitions: 4 }]);
    await snapshots.save('host', [
      { key: 'web-1', partition: 1, offset: 10, state: bytes('v10') },
      { key: 'web-2', partition: 1, offset: 11, state: bytes('w11') },
      { key: 'db-9', partition: 3, offset: 5, state: new Uint8Array([0, 255, 0, 128]) },
    ]);
    await snapshots.save('host', [{ key: 'web-1', partition: 1, offset: 17, state: bytes('v17') }]);
    // Two saves of one key in one call: the later one wins.
    await snapshots.save('host', [
      { key: 'web-2', partition: 1, offset: 12, state: bytes('w12') },
      { key: 'web-2', partition: 1, offset: 13, state: bytes('w13') },
    ]);

    const shard1 = await snapshots.openShard('host', 1);
    expect(shard1.get('web-1')).toStrictEqual({
      key: 'web-1',
      partition: 1,
      offset: 17,
      state: bytes('v17'),
    });
    expect(shard1.get('web-2')).toStrictEqual({
      key: 'web-2',
      partition: 1,
      offset: 13,
      state: bytes('w13'),
    });
    expect(shard1.get('db-9')).toBeUndefined(); // another shard's entity
    expect(shard1.get('nobody')).toBeUndefined();
    expect(shard1.size).toBe(2);
    const shard3 = await snapshots.openShard('host', 3);
    expect(shard3.get('db-9')).toStrictEqual({
      key: 'db-9',
      partition: 3,
      offset: 5,
      state: new Uint8Array([0, 255, 0, 128]),
    });
    expect(shard3.size).toBe(1);
    expect((await snapshots.openShard('host', 0)).size).toBe(0);

    // An open shard sees saves that resolve after it was opened.
    await snapshots.save('host', [{ key: 'web-3', partition: 1, offset: 1, state: bytes('x') }]);
    expect(shard1.get('web-3')?.offset).toBe(1);
    expect(shard1.size).toBe(3);
  });

  it('keeps snapshots across a reopen, and kinds apart', async () => {
    const dir = tempDir();
    const first = openJournal(dir);
    await first.snapshots.ensureKinds([
      { kind: 'host', partitions: 2 },
      { kind: 'rule', partitions: 2 },
    ]);
    await first.snapshots.save('host', [
      { key: 'same', partition: 0, offset: 3, state: bytes('host state') },
    ]);
    await first.snapshots.save('rule', [
      { key: 'same', partition: 0, offset: 8, state: bytes('rule state') },
    ]);
    await first.snapshots.save('host', [{ key: 'empty', partition: 1, offset: 0, state: new Uint8Array(0) }]);
    await first.close();

    const second = journalAt(dir);
    const host0 = await second.snapshots.openShard('host', 0);
    const rule0 = await second.snapshots.openShard('rule', 0);
    expect(host0.get('same')).toStrictEqual({
      key: 'same',
      partition: 0,
      offset: 3,
      state: bytes('host state'),
    });
    expect(rule0.get('same')).toStrictEqual({
      key: 'same',
      partition: 0,
      offset: 8,
      state: bytes('rule state'),
    });
    expect((await second.snapshots.openShard('host', 1)).get('empty')).toStrictEqual({
      key: 'empty',
      partition: 1,
      offset: 0,
      state: new Uint8Array(0),
    });
  });
});

describe('embedded dead letters', () => {
  const letter = (n: number, kind: string, key: string | undefined): DeadLetter => ({
    kind,
    partition: n % 3,
    offset: 1_000 + n,
    key,
    reason: n % 2 === 0 ? 'crashed' : 'undecodable',
    error: `TypeError: boom ${n}\n    at handler (host.ts:${n})`,
    attempts: n,
    at: 1_700_000_000_000 + n,
    value: new Uint8Array([n, 0, 255, n * 2]),
  });

  it('lists dead letters oldest first with every field exact, filtered by kind', async () => {
    const dir = tempDir();
    const first = openJournal(dir);
    await first.deadLetters.ensure();
    const letters = [
      letter(1, 'host', 'web-1'),
      letter(2, 'rule', 'cpu-high'),
      letter(3, 'host', undefined),
      letter(4, 'log', 'payments.nginx'),
    ];
    await first.deadLetters.put(letters.slice(0, 2));
    await first.deadLetters.put(letters.slice(2));
    expect(await first.deadLetters.list()).toStrictEqual(letters);
    await first.close();

    const second = journalAt(dir);
    const all = await second.deadLetters.list();
    expect(all).toStrictEqual(letters);
    expect(all[2]).toHaveProperty('key', undefined);
    expect(all[0]!.value).toBeInstanceOf(Uint8Array);
    expect(await second.deadLetters.list('host')).toStrictEqual([letters[0], letters[2]]);
    expect(await second.deadLetters.list('rule')).toStrictEqual([letters[1]]);
    expect(await second.deadLetters.list('nothing')).toStrictEqual([]);

    await second.deadLetters.put([letter(5, 'host', 'web-5')]);
    expect((await second.deadLetters.list('host')).map((l) => l.offset)).toStrictEqual([1_001, 1_003, 1_005]);
  });
});
