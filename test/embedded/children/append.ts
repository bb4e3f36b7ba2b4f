/**
 * Test child: appends `count` records of `writer` (record seq → partition seq % partitions) to `kind`,
 * four append calls in flight, `batch` records per call. Prints `ready` once open; with `--go`, waits
 * for a `go` line on stdin before appending (so two children start together). Prints `done` when every
 * append resolved.
 *
 *   node --import tsx append.ts <dataDir> <writer> <kind> <partitions> <count> <batch> [--go]
 */
import { createInterface } from 'node:readline';
import { openJournal } from '../../../runtime/embedded/journal.ts';
import { keyFor, valueFor } from '../helpers.ts';

const [dataDir, writer, kind, partitionsArg, countArg, batchArg, goFlag] = process.argv.slice(2);
const partitions = Number(partitionsArg);
const count = Number(countArg);
const batch = Number(batchArg);

const journal = openJournal(dataDir!);
await journal.mailbox.ensureKinds([{ kind: kind!, partitions }]);
console.log('ready');
if (goFlag === '--go') {
  const lines = createInterface({ input: process.stdin });
  await new Promise<void>((go) => lines.on('line', (line) => line === 'go' && go()));
  lines.close();
}

const inFlight = new Set<Promise<void>>();
for (let first = 0; first < count; first += batch) {
  const records = [];
  for (let seq = first; seq < Math.min(first + batch, count); seq++) {
    records.push({ partition: seq % partitions, key: keyFor(writer!, seq), value: valueFor(writer!, seq) });
  }
  const append = journal.mailbox.append(kind!, records).finally(() => inFlight.delete(append));
  inFlight.add(append);
  if (inFlight.size >= 4) await Promise.race(inFlight);
}
await Promise.all(inFlight);
console.log('done');
await journal.close();
