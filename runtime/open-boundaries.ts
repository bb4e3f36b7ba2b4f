/** Opens the boundary implementations the configuration names: the LMDB journal or Kafka. */
import type { ArgusConfig } from './config.ts';
import type { Boundaries } from './runtime.ts';

export const openBoundaries = async (config: ArgusConfig): Promise<Boundaries> => {
  if (config.mode === 'embedded') {
    const { openJournal } = await import('./embedded/journal.ts');
    const journal = await openJournal(config.dataDir, {
      pollMs: config.embedded.pollMs,
      sync: config.embedded.sync,
      maxBatch: config.delivery.maxBatch,
      streamRetention: config.embedded.streamRetention,
    });
    return {
      mailbox: journal.mailbox,
      snapshots: journal.snapshots,
      deadLetters: journal.deadLetters,
      checkpoints: journal.checkpoints,
      close: () => journal.close(),
    };
  }
  const { openKafkaBoundaries } = await import('./kafka/open.ts');
  return openKafkaBoundaries(config);
};
