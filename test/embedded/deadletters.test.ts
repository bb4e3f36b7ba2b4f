/** Discarding dead letters in the embedded journal: gone for every process, the others kept exactly. */
import { afterEach, describe, expect, it } from 'vitest';
import type { DeadLetter } from '../../runtime/boundaries.ts';
import { openJournal } from '../../runtime/embedded/journal.ts';
import { closeJournals, journalAt, tempDir } from './helpers.ts';

afterEach(closeJournals);

const letter = (kind: string, partition: number, offset: number, key: string | undefined): DeadLetter => ({
  kind,
  partition,
  offset,
  key,
  reason: 'crashed',
  error: `boom at ${offset}`,
  attempts: 3,
  at: 1_767_225_600_000 + offset,
  value: new Uint8Array([partition, offset % 256, 0xff]),
});

describe('embedded dead letters: discard', () => {
  it('removes exactly the given letters, for a second journal on the folder too, and counts them', async () => {
    const dir = tempDir();
    const first = journalAt(dir);
    await first.deadLetters.ensure();
    const a = letter('host', 0, 5, 'web-1');
    const b = letter('host', 1, 5, 'web-2');
    const c = letter('host.v2', 0, 5, undefined);
    const d = letter('rule', 0, 7, 'cpu-high');
    await first.deadLetters.put([a, b, c, d]);

    // Same partition and offset, another kind; same kind and offset, another partition: all kept.
    expect(await first.deadLetters.discard([{ kind: 'host', partition: 0, offset: 5 }])).toBe(1);
    expect(await first.deadLetters.list()).toStrictEqual([b, c, d]);

    const second = journalAt(dir);
    expect(await second.deadLetters.list()).toStrictEqual([b, c, d]);
    expect(
      await second.deadLetters.discard([
        { kind: 'rule', partition: 0, offset: 7 },
        { kind: 'rule', partition: 0, offset: 7 },
        { kind: 'host', partition: 0, offset: 5 },
        { kind: 'nothing', partition: 0, offset: 1 },
      ]),
    ).toBe(1);
    expect(await first.deadLetters.list()).toStrictEqual([b, c]);
    expect(await first.deadLetters.list('host.v2')).toStrictEqual([c]);
    expect(await first.deadLetters.discard([])).toBe(0);
  });

  it('keeps insertion order for letters put after a discard of the newest one', async () => {
    const { deadLetters } = journalAt();
    const a = letter('host', 0, 1, 'a');
    const b = letter('host', 0, 2, 'b');
    const c = letter('host', 0, 3, 'c');
    await deadLetters.put([a, b]);
    expect(await deadLetters.discard([b])).toBe(1);
    await deadLetters.put([c]);
    expect(await deadLetters.list()).toStrictEqual([a, c]);
  });

  it('refuses to discard once closed', async () => {
    const journal = openJournal(tempDir());
    await journal.close();
    await expect(journal.deadLetters.discard([{ kind: 'host', partition: 0, offset: 1 }])).rejects.toThrow(
      'ARGUS_ERR_STORE_CLOSED',
    );
  });
});
