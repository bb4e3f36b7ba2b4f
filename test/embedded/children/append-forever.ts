/**
 * Test child for kill -9: appends records of writer `k` to `kind` until killed, eight append calls of
 * five records in flight. Record seq goes to partition seq % partitions; this process is the only writer,
 * so it lands at offset floor(seq / partitions). After each append resolves it prints
 * `ack <partition>:<offset> …` for the records of that call.
 *
 *   node --import tsx append-forever.ts <dataDir> <kind> <partitions>
 */
import { openJournal } from '../../../runtime/embedded/journal.ts';
import { keyFor, valueFor } from '../helpers.ts';

const [dataDir, kind, partitionsArg] = process.argv.slice(2);
const partitions = Number(partitionsArg);
const journal = openJournal(dataDir!);
await journal.mailbox.ensureKinds([{ kind: kind!, partitions }]);
console.log('ready');

let next = 0;
const appendFive = async (): Promise<void> => {
  const seqs = [next, next + 1, next + 2, next + 3, next + 4];
  next += 5;
  await journal.mailbox.append(
    kind!,
    seqs.map((seq) => ({ partition: seq % partitions, key: keyFor('k', seq), value: valueFor('k', seq) })),
  );
  // Pipes are written synchronously on Linux: a printed ack has left the process before any kill.
  process.stdout.write(
    `ack ${seqs.map((seq) => `${seq % partitions}:${Math.floor(seq / partitions)}`).join(' ')}\n`,
  );
};
const loop = async (): Promise<void> => {
  for (;;) await appendFive();
};
await Promise.all(Array.from({ length: 8 }, loop));
