/**
 * What this node knows of the entities of the shards it holds, for the inspector: status, restarts with
 * the last error, messages processed, the last offset applied and the last lifecycle events of each.
 *
 * It is fed from two places: the shard runner (a delivery applied: `processed`) and the event bus
 * (lifecycle events, whose path `node/shards/<kind>-<partition>/<key>` names the entity). It is memory
 * only: a shard's entries are dropped when the shard leaves the node, and the new owner starts counting
 * afresh (the inspector says "since the shard came here").
 *
 * Cost on the hot path: one map lookup and two additions per delivered group. Searching is a scan: with
 * 50,000 entities a substring match over every key takes a few milliseconds, and only the matches are
 * sorted.
 */
import type { LifecycleEvent, LifecyclePhase } from './events.ts';

export type EntityStatus = 'active' | 'restarting' | 'passivated' | 'stopped';

/** One entry of an entity's recent history: a lifecycle phase, or an administrator's action. */
export interface EntityHistoryEntry {
  readonly phase: LifecyclePhase | 'admin';
  readonly at: number;
  readonly error?: string;
  readonly reason?: string;
  /** On `admin`: restart, stop, message. */
  readonly action?: string;
  /** On `admin`: the token name that asked. */
  readonly by?: string;
}

export interface EntityRecord {
  readonly kind: string;
  readonly key: string;
  readonly partition: number;
  status: EntityStatus;
  /** Restarts since the shard came here (monotonic, unlike the supervisor's count inside its period). */
  restarts: number;
  /** Messages applied since the shard came here. */
  processed: number;
  /** The last mailbox offset applied (-1: none here yet). */
  offset: number;
  lastError: { readonly message: string; readonly at: number } | undefined;
  /** The last HISTORY entries, oldest first (allocated at the first one). */
  history: EntityHistoryEntry[] | undefined;
  /** Set by an admin restart: the crash it causes is not the entity's error. */
  adminRestart?: boolean;
}

export const HISTORY = 20;

/** One shard's entities. */
export class ShardEntities {
  readonly entities = new Map<string, EntityRecord>();
  constructor(
    readonly kind: string,
    readonly partition: number,
  ) {}

  record(key: string): EntityRecord {
    let r = this.entities.get(key);
    if (!r) {
      r = {
        kind: this.kind,
        key,
        partition: this.partition,
        status: 'active',
        restarts: 0,
        processed: 0,
        offset: -1,
        lastError: undefined,
        history: undefined,
      };
      this.entities.set(key, r);
    }
    return r;
  }

  /** A delivery of `count` records to `key` was applied, up to `offset`. */
  processed(key: string, count: number, offset: number): void {
    const r = this.entities.get(key) ?? this.record(key);
    r.processed += count;
    if (offset > r.offset) r.offset = offset;
  }
}

/**
 * Appends to the entity's history. The arrays are copied at exact size rather than grown (a pushed-to
 * array reserves 17 slots): most entities only ever have their 'started', and there may be 100,000.
 */
const remember = (r: EntityRecord, entry: EntityHistoryEntry): void => {
  const h = r.history;
  r.history = h === undefined ? [entry] : h.length < HISTORY ? [...h, entry] : [...h.slice(1), entry];
};

export interface EntitySearch {
  /** A case-insensitive substring of the key. */
  readonly q?: string;
  readonly kind?: string;
  readonly status?: string;
  /** How many matches to return, from the first (sorted by kind, then key). */
  readonly first: number;
}

export interface EntityListItem {
  readonly kind: string;
  readonly key: string;
  readonly partition: number;
  readonly status: EntityStatus;
  readonly restarts: number;
  readonly processed: number;
  readonly lastError: { readonly message: string; readonly at: number } | null;
}

export const listItem = (r: EntityRecord): EntityListItem => ({
  kind: r.kind,
  key: r.key,
  partition: r.partition,
  status: r.status,
  restarts: r.restarts,
  processed: r.processed,
  lastError: r.lastError ?? null,
});

const byKindThenKey = (a: EntityRecord, b: EntityRecord): number =>
  a.kind < b.kind ? -1 : a.kind > b.kind ? 1 : a.key < b.key ? -1 : a.key > b.key ? 1 : 0;

const SHARDS_PATH = 'node/shards/';

export class EntityRegistry {
  /** By shard supervisor id (`<kind>-<partition>`, the path segment). */
  private readonly shards = new Map<string, ShardEntities>();

  open(kind: string, partition: number): ShardEntities {
    const id = `${kind}-${partition}`;
    let s = this.shards.get(id);
    if (!s) {
      s = new ShardEntities(kind, partition);
      this.shards.set(id, s);
    }
    return s;
  }

  drop(kind: string, partition: number): void {
    this.shards.delete(`${kind}-${partition}`);
  }

  shard(kind: string, partition: number): ShardEntities | undefined {
    return this.shards.get(`${kind}-${partition}`);
  }

  get(kind: string, partition: number, key: string): EntityRecord | undefined {
    return this.shard(kind, partition)?.entities.get(key);
  }

  /** Entities known here (of one kind). */
  count(kind?: string): number {
    let n = 0;
    for (const s of this.shards.values()) if (kind === undefined || s.kind === kind) n += s.entities.size;
    return n;
  }

  /** Follows a lifecycle event of an entity (events of supervisors themselves are ignored). */
  lifecycle(event: LifecycleEvent): void {
    if (!event.path.startsWith(SHARDS_PATH)) return;
    const rest = event.path.slice(SHARDS_PATH.length);
    const slash = rest.indexOf('/');
    if (slash < 0) return;
    const shard = this.shards.get(rest.slice(0, slash));
    if (!shard) return;
    const key = rest.slice(slash + 1);
    const r = shard.record(key);
    switch (event.phase) {
      case 'started':
        r.status = 'active';
        break;
      case 'crashed':
        r.status = 'restarting';
        if (r.adminRestart) r.adminRestart = false;
        else r.lastError = { message: event.error ?? 'crashed', at: event.at };
        break;
      case 'restarted':
        r.status = 'active';
        r.restarts++;
        break;
      case 'passivated':
        r.status = 'passivated';
        break;
      case 'stopped':
        // A stop on its way to a restart is followed by 'restarted'; any other leaves it stopped.
        if (event.reason !== 'restart') r.status = 'stopped';
        break;
      case 'escalated':
        r.status = 'stopped';
        break;
    }
    const entry: EntityHistoryEntry = { phase: event.phase, at: event.at };
    if (event.error !== undefined) (entry as { error?: string }).error = event.error;
    if (event.reason !== undefined) (entry as { reason?: string }).reason = event.reason;
    remember(r, entry);
  }

  /** Records an administrator's action in the entity's history. */
  admin(kind: string, partition: number, key: string, action: string, by: string, at: number): EntityRecord {
    const r = this.open(kind, partition).record(key);
    remember(r, { phase: 'admin', at, action, by });
    return r;
  }

  /** Matching entities: how many, and the first `first` of them sorted by kind, then key. */
  search(s: EntitySearch): { total: number; items: EntityRecord[] } {
    const q = s.q ? s.q.toLowerCase() : undefined;
    const matches: EntityRecord[] = [];
    for (const shard of this.shards.values()) {
      if (s.kind !== undefined && shard.kind !== s.kind) continue;
      for (const r of shard.entities.values()) {
        if (s.status !== undefined && r.status !== s.status) continue;
        if (q !== undefined && !r.key.toLowerCase().includes(q)) continue;
        matches.push(r);
      }
    }
    const total = matches.length;
    if (s.first <= 0) return { total, items: [] };
    if (total <= s.first) return { total, items: matches.sort(byKindThenKey) };
    // Only the first `first` are wanted: a partial selection is cheaper than sorting everything when
    // the page is small, but the sort of 50,000 strings is ~30 ms, so keep it simple and sort.
    return { total, items: matches.sort(byKindThenKey).slice(0, s.first) };
  }
}
