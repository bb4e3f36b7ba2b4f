/**
 * The embedded journal: one LMDB environment in `<dataDir>/journal` holding the mailbox, the snapshots
 * and the dead letters of a single-node Argus (README.md). Several processes may open the same folder;
 * LMDB's one-writer-at-a-time lock keeps their offsets dense and unique.
 */
import type {
  CheckpointStore,
  Clock,
  DeadLetterStore,
  MailboxTransport,
  SnapshotStore,
} from '../boundaries.ts';
import { realClock } from '../clock.ts';
import { ArgusError } from '../errors.ts';
import { EmbeddedCheckpointStore } from './checkpoints.ts';
import { EmbeddedDeadLetterStore } from './deadletters.ts';
import { JournalEnv } from './env.ts';
import { KindRegistry } from './kinds.ts';
import { EmbeddedMailbox } from './mailbox.ts';
import { EmbeddedSnapshotStore } from './snapshots.ts';

export interface JournalOptions {
  /** How often a consumer checks for records appended by other processes (ms). Default 10. */
  readonly pollMs?: number;
  /**
   * Resolve writes only once flushed to disk, so they also survive power loss. Default false: a write
   * resolves when committed, which survives the death of the process (kill -9) but not of the machine.
   */
  readonly sync?: boolean;
  /** Largest batch handed to onBatch when a consumer does not say. Default 1,000. */
  readonly maxBatch?: number;
  /** Pause before re-delivering after onBatch rejected (ms). Default 50. */
  readonly retryMs?: number;
  /** Timers for polling and pauses. Default: the real clock. */
  readonly clock?: Clock;
  /** Records each output stream partition keeps; older ones are trimmed as new ones land. Default 20,000. */
  readonly streamRetention?: number;
}

/** Defaults in one place; README.md explains each choice. */
export const journalDefaults = { pollMs: 10, sync: false, maxBatch: 1_000, retryMs: 50 } as const;

export interface EmbeddedJournal {
  readonly mailbox: MailboxTransport;
  readonly snapshots: SnapshotStore;
  readonly deadLetters: DeadLetterStore;
  /** Snapshots, dead letters and the offset of a shard's batch in one transaction. */
  readonly checkpoints: CheckpointStore;
  /** The LMDB environment's folder. */
  readonly path: string;
  /** Closes the mailbox (stopping its consumers) first, then the stores, then the environment. */
  close(): Promise<void>;
}

/** Opens (creating if needed) the journal of a data folder. Synchronous: LMDB opens synchronously. */
export const openJournal = (dataDir: string, options: JournalOptions = {}): EmbeddedJournal => {
  const pollMs = positive('pollMs', options.pollMs ?? journalDefaults.pollMs);
  const retryMs = positive('retryMs', options.retryMs ?? journalDefaults.retryMs);
  const maxBatch = options.maxBatch ?? journalDefaults.maxBatch;
  if (!Number.isInteger(maxBatch) || maxBatch < 1) throw invalid('maxBatch', maxBatch, 'a positive integer');
  const clock = options.clock ?? realClock;
  const env = new JournalEnv(dataDir, { sync: options.sync ?? journalDefaults.sync, clock });
  const kinds = new KindRegistry(env);
  const streamRetention = options.streamRetention ?? 20_000;
  if (!Number.isInteger(streamRetention) || streamRetention < 1)
    throw invalid('streamRetention', streamRetention, 'a positive integer');
  const mailbox = new EmbeddedMailbox(env, kinds, { pollMs, retryMs, maxBatch, clock }, streamRetention);
  const snapshots = new EmbeddedSnapshotStore(env, kinds);
  const deadLetters = new EmbeddedDeadLetterStore(env);
  return {
    mailbox,
    snapshots,
    deadLetters,
    checkpoints: new EmbeddedCheckpointStore(env, mailbox, snapshots, deadLetters),
    path: env.path,
    async close() {
      // In order: in-flight batches of the mailbox's consumers may still save snapshots and dead letters.
      await mailbox.close();
      await snapshots.close();
      await deadLetters.close();
    },
  };
};

const positive = (field: string, value: number): number => {
  if (!Number.isFinite(value) || value <= 0) throw invalid(field, value, 'a positive number of milliseconds');
  return value;
};

const invalid = (field: string, value: unknown, expected: string): ArgusError =>
  new ArgusError(
    'ARGUS_ERR_INVALID_CONFIG',
    `journal option ${field} is ${String(value)}: expected ${expected}`,
    {
      field,
      value,
    },
  );
