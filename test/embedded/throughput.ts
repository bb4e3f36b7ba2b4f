/**
 * Measures the embedded journal's append and consume throughput (not a test: run it by hand).
 *
 *   node --import tsx test/embedded/throughput.ts [records=300000] [inFlight=8] [sync=false]
 *
 * Appends `records` 100-byte values in batches of 1,000 over 4 partitions, keeping `inFlight` append
 * calls outstanding (they share group-committed transactions), then consumes them all.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { OutgoingRecord } from '../../runtime/boundaries.ts';
import { openJournal } from '../../runtime/embedded/journal.ts';

const total = Number(process.argv[2] ?? 300_000);
const inFlight = Number(process.argv[3] ?? 8);
const sync = process.argv[4] === 'true';
const batchSize = 1_000;
const partitions = 4;

const dir = mkdtempSync(join(tmpdir(), 'argus-throughput-'));
try {
  const journal = openJournal(dir, { sync });
  await journal.mailbox.ensureKinds([{ kind: 'host', partitions }]);
  const value = new Uint8Array(100).fill(42);
  const batches: OutgoingRecord[][] = [];
  for (let b = 0; b < total / batchSize; b++) {
    const partition = b % partitions;
    batches.push(Array.from({ length: batchSize }, (_, i) => ({ partition, key: `host-${i % 500}`, value })));
  }

  const appendStart = performance.now();
  const pending = new Set<Promise<void>>();
  for (const batch of batches) {
    const p = journal.mailbox.append('host', batch).finally(() => pending.delete(p));
    pending.add(p);
    if (pending.size >= inFlight) await Promise.race(pending);
  }
  await Promise.all(pending);
  const appendSeconds = (performance.now() - appendStart) / 1000;

  const consumeStart = performance.now();
  let seen = 0;
  let allSeen: () => void = () => {};
  const finished = new Promise<void>((resolve) => {
    allSeen = resolve;
  });
  const consumption = await journal.mailbox.consume({
    kinds: ['host'],
    onBatch: async (batch) => {
      seen += batch.records.length;
      if (seen === total) allSeen();
    },
  });
  for (let p = 0; p < (await journal.mailbox.partitionCount('host')); p++) {
    consumption.assign({ kind: 'host', partition: p }, 0);
  }
  await finished;
  const consumeSeconds = (performance.now() - consumeStart) / 1000;
  await consumption.stop();
  await journal.close();

  const rate = (n: number, s: number) => Math.round(n / s).toLocaleString('en');
  console.log(
    `sync=${sync} inFlight=${inFlight}: appended ${total.toLocaleString('en')} records in ${appendSeconds.toFixed(2)} s ` +
      `(${rate(total, appendSeconds)}/s), consumed in ${consumeSeconds.toFixed(2)} s (${rate(total, consumeSeconds)}/s)`,
  );
} finally {
  rmSync(dir, { recursive: true, force: true });
}
