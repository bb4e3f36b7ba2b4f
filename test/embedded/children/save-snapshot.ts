/**
 * Test child: saves one snapshot and prints `saved` once `save` resolved.
 *
 *   node --import tsx save-snapshot.ts <dataDir> <kind> <partitions> <key> <partition> <offset> <stateText>
 */
import { openJournal } from '../../../runtime/embedded/journal.ts';

const [dataDir, kind, partitions, key, partition, offset, stateText] = process.argv.slice(2);
const journal = openJournal(dataDir!);
await journal.snapshots.ensureKinds([{ kind: kind!, partitions: Number(partitions) }]);
await journal.snapshots.save(kind!, [
  { key: key!, partition: Number(partition), offset: Number(offset), state: Buffer.from(stateText!) },
]);
console.log('saved');
await journal.close();
