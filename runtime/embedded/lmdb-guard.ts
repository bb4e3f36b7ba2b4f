/**
 * A guard against an lmdb-js 3.5.x defect that loses commits when processes share a folder (README.md,
 * "lmdb-js notes").
 *
 * LMDB keeps the id of the last committed transaction in its shared lock file, and every new write
 * transaction starts from the meta page that id points to. lmdb-js's bundled LMDB rewrites that shared
 * id on *every* environment open (`mdb_env_open2`), from the meta page it read at the start of the open;
 * upstream LMDB does so only for MDB_PREVSNAPSHOT, which needs exclusive access. If another process
 * commits while a process is opening, the shared id steps back, and the next write transaction — in any
 * process — starts from the older meta page and overwrites that commit: an acknowledged append is gone
 * and its offsets are handed out again. (Measured: 200 opens during a busy writer lost thousands.)
 *
 * The guard is two checks of the same fact — "this write transaction builds on the newest meta page":
 * - an opener checks it, under the write lock, right after opening, and reopens if it does not hold (a
 *   fresh open re-reads the header, which is now current): whoever steps the id back repairs it at once;
 * - every journal write checks it inside its transaction and, if it does not hold, writes nothing and is
 *   retried (env.ts) once the opener has repaired the id.
 */
import { open, type RootDatabase, type RootDatabaseOptionsWithPath } from 'lmdb';
import { ArgusError } from '../errors.ts';
import type { JournalKey } from './env.ts';

type Root = RootDatabase<unknown, JournalKey>;

/** Reopens before giving up: each reopen loses only to a commit landing inside the open itself. */
const MAX_OPENS = 20;

/**
 * lmdb-js's native environment, which `getStats()` uses internally but does not type. `info()` is
 * mdb_env_info: `lastTxnId` is the id of the newest meta page, read from the map, no transaction needed.
 */
interface NativeEnv {
  info(): { lastTxnId: number };
}

const nativeEnv = (root: Root): NativeEnv => {
  const env: unknown = (root as unknown as { env?: unknown }).env;
  if (typeof env !== 'object' || env === null || typeof (env as Partial<NativeEnv>).info !== 'function') {
    throw new ArgusError(
      'ARGUS_ERR_TRANSPORT',
      'this lmdb version does not expose env.info(), which the embedded journal needs to guard commits',
    );
  }
  return env as NativeEnv;
};

/**
 * Inside a write transaction: true if it started from an older meta page than the newest one, i.e. the
 * shared transaction id was stepped back and committing would overwrite a newer commit.
 */
export const buildsOnStaleMeta = (root: Root): boolean =>
  root.getWriteTxnId() !== nativeEnv(root).info().lastTxnId + 1;

/** Opens the environment and makes sure this open did not step the shared transaction id back. */
export const openGuarded = (options: RootDatabaseOptionsWithPath): Root => {
  for (let attempt = 1; ; attempt++) {
    const root = open<unknown, JournalKey>(options);
    // An empty write transaction: it takes the write lock (so no commit can land while we look) and
    // commits nothing, so it cannot do harm even when the id is stale.
    const stale = root.transactionSync(() => buildsOnStaleMeta(root));
    if (!stale) return root;
    // Nothing is pending, so this closes at once and the next open re-reads the (now newer) header.
    void root.close();
    if (attempt === MAX_OPENS) {
      throw new ArgusError(
        'ARGUS_ERR_TRANSPORT',
        `cannot open the embedded journal at ${options.path} consistently: another process commits during every open`,
        { path: options.path, attempts: attempt },
      );
    }
  }
};
