/**
 * The one LMDB environment of an embedded node and its named databases (README.md, "Layout").
 *
 * Every write of the journal goes through `write()`: an lmdb-js asynchronous child transaction. lmdb-js
 * queues every asynchronous transaction started in the same event turn into one LMDB write transaction
 * (group commit: one commit, and with `sync` one fsync, for all of them), and each child transaction
 * keeps its own writes atomic — if one callback throws, only its writes are rolled back.
 * Reads inside a write callback see the write transaction, and the write transaction holds LMDB's
 * single-writer lock, which is shared by every process that opens the folder: this is what makes
 * "read the tail, then write after it" safe across processes.
 *
 * Reads outside a write use lmdb-js's shared read transaction, which it renews on the next macrotask
 * and after our own commits. Reads that must see another process's latest commit call `fresh()` first.
 */
import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import type { Database, RootDatabase } from 'lmdb';
import type { Clock, TimerHandle } from '../boundaries.ts';
import { ArgusError } from '../errors.ts';
import { buildsOnStaleMeta, openGuarded } from './lmdb-guard.ts';

/** How long a write waits, in total, for a stepped-back transaction id to be repaired (lmdb-guard.ts). */
const STALE_RETRY_MS = 5;
const STALE_RETRIES = 400;

/** `[kind, partition, offset]`, `[kind, partition]`, `[kind, key]`, … — lmdb-js ordered-binary array keys. */
export type JournalKey = (string | number)[];

/** The databases of the environment; see README.md for each one's keys and values. */
export interface JournalDatabases {
  /** `[kind, partition, offset]` → record frame (codec.ts). */
  readonly records: Database<Buffer, JournalKey>;
  /** `[kind, partition]` → the log end: the offset the next record of the partition gets. */
  readonly heads: Database<number, JournalKey>;
  /** `kind` → number of append transactions on the kind so far; pollers compare it to notice writes. */
  readonly changes: Database<number, string>;
  /** `[kind, partition]` → committed next offset. */
  readonly offsets: Database<number, JournalKey>;
  /** `kind` → the kind's partition count, fixed once written. */
  readonly kinds: Database<number, string>;
  /** `[kind, key]` → snapshot frame (codec.ts). */
  readonly snapshots: Database<Buffer, JournalKey>;
  /** `[kind, partition, key]` → true: which keys of a shard have a snapshot (for `size`). */
  readonly shardKeys: Database<boolean, JournalKey>;
  /** sequence number → dead letter (msgpack), in insertion order. */
  readonly deadLetters: Database<unknown, number>;
}

export type StoreName = 'mailbox' | 'snapshots' | 'deadLetters';

export interface JournalEnvOptions {
  /** fsync every commit before it resolves (survives power loss), instead of leaving it to the OS. */
  readonly sync: boolean;
  /** Timers for write retries. */
  readonly clock: Clock;
}

/** What a guarded write transaction returns: the action's result, or "committed nothing, retry". */
type Attempt<T> = { readonly wrote: true; readonly result: T } | { readonly wrote: false };

export class JournalEnv {
  readonly db: JournalDatabases;
  readonly path: string;
  private readonly root: RootDatabase<unknown, JournalKey>;
  private readonly clock: Clock;
  private readonly open = new Set<StoreName>(['mailbox', 'snapshots', 'deadLetters']);
  private closing: Promise<void> | undefined;
  /** Write tickets: handed out in call order; only the write holding `ticketToCommit` may commit. */
  private nextTicket = 0;
  private ticketToCommit = 0;
  /** Writes waiting to be retried, by ticket, and the one timer that releases them. */
  private readonly waiting = new Map<number, () => void>();
  private retryTimer: TimerHandle | undefined;

  constructor(dataDir: string, options: JournalEnvOptions) {
    this.path = join(dataDir, 'journal');
    this.clock = options.clock;
    try {
      mkdirSync(this.path, { recursive: true });
      this.root = openGuarded({
        path: this.path,
        maxDbs: 16,
        // lmdb-js turns overlappingSync on by default on Linux. It is off here because it is not safe
        // with several processes: a process killed while flushing leaves LMDB's shared sync mutex
        // "owner dead", and the next process to commit then takes the recovery path meant for its own
        // dead writer and fails every later commit with MDB_PANIC (README.md, "lmdb-js notes").
        overlappingSync: false,
        // Without sync, a commit writes to the OS page cache and returns: it survives the death of the
        // process, not of the machine. With it, each commit is fsynced before it resolves. These are
        // per-process flags, so processes may differ.
        noSync: !options.sync,
      });
    } catch (e) {
      throw new ArgusError(
        'ARGUS_ERR_TRANSPORT',
        `cannot open the embedded journal at ${this.path}: ${String(e)}`,
        { path: this.path },
        { cause: e },
      );
    }
    const root = this.root;
    this.db = {
      records: root.openDB<Buffer, JournalKey>('records', { encoding: 'binary' }),
      heads: root.openDB<number, JournalKey>('heads', {}),
      changes: root.openDB<number, string>('changes', {}),
      offsets: root.openDB<number, JournalKey>('offsets', {}),
      kinds: root.openDB<number, string>('kinds', {}),
      snapshots: root.openDB<Buffer, JournalKey>('snapshots', { encoding: 'binary' }),
      shardKeys: root.openDB<boolean, JournalKey>('shard-keys', {}),
      deadLetters: root.openDB<unknown, number>('dead-letters', {}),
    };
  }

  /**
   * Runs `action` atomically in the next group-committed write transaction; resolves with its result
   * once committed (and fsynced, with `sync`). `action` must be synchronous.
   *
   * Writes commit in call order. If a transaction would build on a stale meta page (lmdb-guard.ts), the
   * write commits nothing and is retried shortly — and so is every later write until it has committed:
   * each write holds a ticket, and a write's transaction only commits if it holds the next ticket.
   */
  write<T>(action: () => T): Promise<T> {
    return this.attempt(action, this.nextTicket++, 1);
  }

  private async attempt<T>(action: () => T, ticket: number, attempt: number): Promise<T> {
    let outcome: Attempt<T>;
    try {
      outcome = await this.root.childTransaction((): Attempt<T> => {
        if (ticket !== this.ticketToCommit || buildsOnStaleMeta(this.root)) return { wrote: false };
        // Advanced before running the action: if it throws, its child transaction is rolled back, the
        // write fails for good, and the writes after it must not wait for it.
        this.ticketToCommit++;
        return { wrote: true, result: action() };
      });
    } catch (e) {
      // The transaction failed before reaching this callback (closed environment, LMDB error): this
      // write is over, so it must not hold back the ones after it either.
      if (ticket === this.ticketToCommit) this.ticketToCommit++;
      throw e;
    }
    if (outcome.wrote) return outcome.result;
    if (attempt >= STALE_RETRIES) {
      if (ticket === this.ticketToCommit) this.ticketToCommit++; // give up without blocking later writes
      throw new ArgusError(
        'ARGUS_ERR_TRANSPORT',
        `the embedded journal at ${this.path} stayed inconsistent for ${STALE_RETRIES * STALE_RETRY_MS} ms: ` +
          'a process opened it without repairing the shared transaction id (README.md, "lmdb-js notes")',
        { path: this.path },
      );
    }
    await this.retryRound(ticket);
    return this.attempt(action, ticket, attempt + 1);
  }

  /** Resolves after a short pause, releasing waiting writes in ticket order so they re-queue in order. */
  private retryRound(ticket: number): Promise<void> {
    return new Promise((resume) => {
      this.waiting.set(ticket, resume);
      this.retryTimer ??= this.clock.setTimeout(() => {
        this.retryTimer = undefined;
        const waiting = [...this.waiting].sort(([a], [b]) => a - b);
        this.waiting.clear();
        for (const [, release] of waiting) release();
      }, STALE_RETRY_MS);
    });
  }

  /** Makes the next read see every transaction committed so far, by any process. */
  fresh(): void {
    this.root.resetReadTxn();
  }

  isOpen(store: StoreName): boolean {
    return this.open.has(store);
  }

  /** Throws the coded error for use of a closed store. */
  assertOpen(store: StoreName): void {
    if (!this.open.has(store)) {
      throw new ArgusError('ARGUS_ERR_STORE_CLOSED', `the embedded ${store} store is closed`, {
        store,
        path: this.path,
      });
    }
  }

  /**
   * Marks one store closed; the environment itself closes (after pending writes commit) when the last of
   * the three stores is closed, so each store can be closed on its own like its Kafka counterpart.
   */
  async release(store: StoreName): Promise<void> {
    this.open.delete(store);
    if (this.open.size > 0) return;
    this.closing ??= this.root.close();
    await this.closing;
  }
}
