import { afterEach, describe, expect, it } from 'vitest';
import type { MailboxBatch, OutgoingRecord } from '../../runtime/boundaries.ts';
import { type EmbeddedJournal, openJournal } from '../../runtime/embedded/journal.ts';
import { assignAll } from '../helpers/assign.ts';
import { sleep, waitFor } from '../helpers/wait.ts';
import { byteMismatches, keyFor, Recorder, removeTempDirs, tempDir, valueFor } from './helpers.ts';

const open: EmbeddedJournal[] = [];
const journalAt = (dir: string, options: Parameters<typeof openJournal>[1] = {}): EmbeddedJournal => {
  const journal = openJournal(dir, options);
  open.push(journal);
  return journal;
};

afterEach(async () => {
  for (const journal of open.splice(0)) await journal.close();
  removeTempDirs();
});

/** `count` records of `writer` spread round-robin over `partitions`, numbered from `first`. */
const records = (writer: string, first: number, count: number, partitions: number): OutgoingRecord[] =>
  Array.from({ length: count }, (_, i) => ({
    partition: (first + i) % partitions,
    key: keyFor(writer, first + i),
    value: valueFor(writer, first + i),
  }));

describe('embedded mailbox: append and consume', () => {
  it('delivers 10,000 records over 4 partitions with offsets 0..n-1, exact keys and bytes, in order', async () => {
    const journal = journalAt(tempDir());
    await journal.mailbox.ensureKinds([{ kind: 'host', partitions: 4 }]);
    // Ten concurrent append calls: they share group-committed transactions, and each partition must still
    // hold its records in call order, then in order within a call.
    const calls = Array.from({ length: 10 }, (_, c) => records('w', c * 1_000, 1_000, 4));
    await Promise.all(calls.map((batch) => journal.mailbox.append('host', batch)));

    const expected = [0, 1, 2, 3].map((p) => calls.flat().filter((r) => r.partition === p));
    for (const p of [0, 1, 2, 3]) expect(await journal.mailbox.endOffset('host', p)).toBe(2_500);

    const recorder = await new Recorder().start(journal.mailbox, ['host'], { maxBatch: 300 });
    await waitFor('10,000 records', () => recorder.count === 10_000);
    await recorder.stop();

    expect(recorder.assigned.map((a) => a.start)).toEqual([0, 0, 0, 0]);
    expect(recorder.batches[0]!.records[0]!.value.constructor).toBe(Uint8Array); // not a Buffer
    for (const batch of recorder.batches) {
      expect(batch.kind).toBe('host');
      expect(batch.records.length).toBeLessThanOrEqual(300);
      expect(batch.records.every((r) => r.partition === batch.partition)).toBe(true);
    }
    for (const p of [0, 1, 2, 3]) {
      const got = recorder.delivered(p);
      expect(got.map((r) => r.offset)).toEqual(Array.from({ length: 2_500 }, (_, i) => i));
      expect(got.map((r) => r.key)).toEqual(expected[p]!.map((r) => r.key));
      expect(
        byteMismatches(
          got.map((r) => r.value),
          expected[p]!.map((r) => r.value),
        ),
      ).toEqual([]);
    }
  });

  it('wakes a consumer on an append in the same process without waiting for the poll', async () => {
    const journal = journalAt(tempDir(), { pollMs: 60_000 });
    await journal.mailbox.ensureKinds([{ kind: 'host', partitions: 2 }]);
    const recorder = await new Recorder().start(journal.mailbox, ['host']);
    await sleep(50); // both partitions are parked now
    const started = performance.now();
    await journal.mailbox.append('host', records('w', 0, 10, 2));
    await waitFor('10 records', () => recorder.count === 10, 2_000, 1);
    expect(performance.now() - started).toBeLessThan(500);
    await recorder.stop();
  });

  it('stop() waits for the in-flight batch of every partition', async () => {
    const journal = journalAt(tempDir());
    await journal.mailbox.ensureKinds([{ kind: 'host', partitions: 4 }]);
    await journal.mailbox.append('host', records('w', 0, 1, 4));
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const events: string[] = [];
    const consumption = await journal.mailbox.consume({
      kinds: ['host'],
      onBatch: async () => {
        events.push('batch started');
        await gate;
        events.push('batch settled');
      },
    });
    await assignAll(journal.mailbox, consumption, ['host']);
    await waitFor('the batch', () => events.includes('batch started'));
    let stopped = false;
    const stopping = consumption.stop().then(() => {
      stopped = true;
    });
    await sleep(50);
    expect(stopped).toBe(false);
    expect(
      consumption
        .assigned()
        .map((r) => r.partition)
        .sort(),
    ).toEqual([0, 1, 2, 3]);
    release();
    await stopping;
    expect(events.filter((e) => e === 'batch settled').length).toBe(
      events.filter((e) => e === 'batch started').length,
    );
    expect(consumption.assigned()).toEqual([]);
  });

  it("revoke() waits for the partition's batch in flight and delivers nothing of it afterwards", async () => {
    const journal = journalAt(tempDir());
    await journal.mailbox.ensureKinds([{ kind: 'host', partitions: 2 }]);
    await journal.mailbox.append('host', records('w', 0, 10, 2));
    let release: () => void = () => {};
    const gate = new Promise<void>((r) => {
      release = r;
    });
    const seen: number[] = [];
    const consumption = await journal.mailbox.consume({
      kinds: ['host'],
      maxBatch: 2,
      onBatch: async (batch) => {
        seen.push(batch.partition);
        if (batch.partition === 0) await gate;
      },
    });
    consumption.assign({ kind: 'host', partition: 0 }, 0);
    consumption.assign({ kind: 'host', partition: 1 }, 0);
    await waitFor('the gated batch', () => seen.includes(0));
    let revoked = false;
    const revoking = consumption.revoke({ kind: 'host', partition: 0 }).then(() => {
      revoked = true;
    });
    await sleep(30);
    expect(revoked).toBe(false);
    release();
    await revoking;
    const count = seen.filter((p) => p === 0).length;
    await journal.mailbox.append('host', records('x', 0, 4, 2));
    await waitFor('partition 1 goes on', () => seen.filter((p) => p === 1).length >= 4);
    await sleep(30);
    expect(seen.filter((p) => p === 0).length).toBe(count);
    expect(consumption.assigned()).toEqual([{ kind: 'host', partition: 1 }]);
    await consumption.stop();
  });

  it('refuses to assign an unknown kind, a partition out of range, or one already assigned', async () => {
    const journal = journalAt(tempDir());
    await journal.mailbox.ensureKinds([{ kind: 'host', partitions: 2 }]);
    const consumption = await journal.mailbox.consume({ kinds: ['host'], onBatch: async () => {} });
    expect(() => consumption.assign({ kind: 'rule', partition: 0 }, 0)).toThrow(
      /ARGUS_ERR_UNKNOWN_KIND.*'rule'/,
    );
    expect(() => consumption.assign({ kind: 'host', partition: 2 }, 0)).toThrow(/partition 2/);
    consumption.assign({ kind: 'host', partition: 1 }, 0);
    expect(() => consumption.assign({ kind: 'host', partition: 1 }, 0)).toThrow(/already assigned/);
    await consumption.stop();
  });
});

describe('embedded mailbox: committed offsets', () => {
  it('resumes at the committed offset after a reopen and re-delivers what was not committed', async () => {
    const dir = tempDir();
    const first = openJournal(dir);
    await first.mailbox.ensureKinds([{ kind: 'host', partitions: 1 }]);
    await first.mailbox.append('host', records('w', 0, 100, 1));
    // Commit after each batch only up to offset 40: records 40..99 are delivered but not committed.
    const recorder = await new Recorder().start(first.mailbox, ['host'], {
      maxBatch: 10,
      onBatch: async (batch) => {
        const next = batch.records.at(-1)!.offset + 1;
        if (next <= 40) await first.mailbox.commit('host', 0, next);
      },
    });
    await waitFor('100 records', () => recorder.count === 100);
    await recorder.stop();
    expect(await first.mailbox.committed('host', 0)).toBe(40);
    await first.close();

    const second = journalAt(dir);
    await second.mailbox.ensureKinds([{ kind: 'host', partitions: 1 }]);
    expect(await second.mailbox.committed('host', 0)).toBe(40);
    const again = await new Recorder().start(second.mailbox, ['host'], { maxBatch: 1_000 });
    await waitFor('60 records', () => again.count === 60);
    await sleep(50);
    await again.stop();
    expect(again.assigned).toEqual([{ ref: { kind: 'host', partition: 0 }, start: 40 }]);
    const got = again.delivered(0);
    expect(got.map((r) => r.offset)).toEqual(Array.from({ length: 60 }, (_, i) => 40 + i));
    expect(got.map((r) => r.key)).toEqual(Array.from({ length: 60 }, (_, i) => keyFor('w', 40 + i)));
    expect(got.map((r) => r.value)).toEqual(Array.from({ length: 60 }, (_, i) => valueFor('w', 40 + i)));
  });

  it('works the same with sync: true (writes wait for the flush)', async () => {
    const dir = tempDir();
    const first = openJournal(dir, { sync: true });
    await first.mailbox.ensureKinds([{ kind: 'host', partitions: 2 }]);
    await first.mailbox.append('host', records('w', 0, 20, 2));
    await first.mailbox.commit('host', 1, 4);
    await first.close();
    const second = journalAt(dir);
    expect(await second.mailbox.endOffset('host', 0)).toBe(10);
    expect(await second.mailbox.committed('host', 1)).toBe(4);
  });

  it('persists commits and log ends across a reopen', async () => {
    const dir = tempDir();
    const first = openJournal(dir);
    await first.mailbox.ensureKinds([{ kind: 'rule', partitions: 3 }]);
    await first.mailbox.append('rule', records('w', 0, 30, 3));
    await first.mailbox.commit('rule', 2, 7);
    await first.close();

    const second = journalAt(dir);
    expect(await second.mailbox.endOffset('rule', 0)).toBe(10);
    expect(await second.mailbox.committed('rule', 2)).toBe(7);
    expect(await second.mailbox.committed('rule', 1)).toBe(0);
    await second.mailbox.append('rule', [{ partition: 1, key: 'late', value: new Uint8Array([1, 2, 3]) }]);
    expect(await second.mailbox.endOffset('rule', 1)).toBe(11);
  });
});

describe('embedded mailbox: failed batches', () => {
  const failOnce = async (commitEachBatch: boolean) => {
    const journal = journalAt(tempDir(), { retryMs: 60 });
    await journal.mailbox.ensureKinds([{ kind: 'host', partitions: 1 }]);
    await journal.mailbox.append('host', records('w', 0, 50, 1));
    const attempts: { offsets: number[]; at: number; ok: boolean }[] = [];
    let failed = false;
    const consumption = await journal.mailbox.consume({
      kinds: ['host'],
      maxBatch: 10,
      onBatch: async (batch: MailboxBatch) => {
        const offsets = batch.records.map((r) => r.offset);
        const fail = !failed && offsets[0] === 20;
        attempts.push({ offsets, at: performance.now(), ok: !fail });
        if (fail) {
          failed = true;
          throw new Error('handler failed');
        }
        if (commitEachBatch) await journal.mailbox.commit('host', 0, offsets.at(-1)! + 1);
      },
    });
    consumption.assign({ kind: 'host', partition: 0 }, 0);
    await waitFor('offset 49 handled', () => attempts.some((a) => a.ok && a.offsets.includes(49)));
    await sleep(30);
    await consumption.stop();
    return attempts;
  };
  const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);

  it('re-delivers the rejected batch after a pause, skipping nothing', async () => {
    const attempts = await failOnce(true);
    expect(attempts.map((a) => [a.offsets[0], a.offsets.length, a.ok])).toEqual([
      [0, 10, true],
      [10, 10, true],
      [20, 10, false],
      [20, 10, true],
      [30, 10, true],
      [40, 10, true],
    ]);
    expect(attempts[3]!.offsets).toEqual(range(20, 30));
    expect(attempts[3]!.at - attempts[2]!.at).toBeGreaterThanOrEqual(50);
  });

  it('re-delivers the rejected records themselves, whatever was committed before', async () => {
    const attempts = await failOnce(false);
    expect(attempts.map((a) => [a.offsets[0], a.ok])).toEqual([
      [0, true],
      [10, true],
      [20, false],
      [20, true],
      [30, true],
      [40, true],
    ]);
    expect(attempts.filter((a) => a.ok).flatMap((a) => a.offsets)).toEqual(range(0, 50));
  });
});
