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

/**
 * One entity as this node knows it. Kept small (there may be 100,000 per node, next to ~1.9 KB of
 * actor): six fields, no key, kind or partition (the shard and the map key have them), the activation
 * time as whole seconds since the registry started (a small integer, not a heap number), and no
 * history until something other than an activation happens.
 */
export class EntityRecord {
  status: EntityStatus = 'active';
  /** Restarts since the shard came here (monotonic, unlike the supervisor's count inside its period). */
  restarts = 0;
  /** Messages applied since the shard came here. */
  processed = 0;
  /** When it was last activated: seconds since `EntityRegistry.epochMs`. */
  activatedAt = 0;
  lastError: { readonly message: string; readonly at: number } | undefined = undefined;
  /** The last HISTORY entries but activations, oldest first (allocated at the first one). */
  history: EntityHistoryEntry[] | undefined = undefined;
}

export const HISTORY = 20;

/** One shard's entities. */
export class ShardEntities {
  readonly entities = new Map<string, EntityRecord>();
  /** Keys with an admin restart under way: the crash it causes is not the entity's error. */
  readonly adminRestarts = new Set<string>();
  constructor(
    readonly kind: string,
    readonly partition: number,
    private readonly epochMs: number,
  ) {}

  record(key: string): EntityRecord {
    let r = this.entities.get(key);
    if (!r) {
      r = new EntityRecord();
      r.activatedAt = Math.max(0, Math.round((Date.now() - this.epochMs) / 1000));
      this.entities.set(key, r);
    }
    return r;
  }

  /** A delivery of `count` records to `key` was applied. */
  processed(key: string, count: number): void {
    (this.entities.get(key) ?? this.record(key)).processed += count;
  }

  /** Wall-clock ms of the entity's last activation (to the second). */
  activatedAtMs(r: EntityRecord): number {
    return this.epochMs + r.activatedAt * 1000;
  }

  /** The entity's recent history with its last activation, oldest first. */
  historyOf(r: EntityRecord): EntityHistoryEntry[] {
    const started: EntityHistoryEntry = { phase: 'started', at: this.activatedAtMs(r) };
    const h = r.history ?? [];
    const i = h.findIndex((e) => e.at > started.at);
    return i < 0 ? [...h, started] : [...h.slice(0, i), started, ...h.slice(i)];
  }

  item(key: string, r: EntityRecord): EntityListItem {
    return {
      kind: this.kind,
      key,
      partition: this.partition,
      status: r.status,
      restarts: r.restarts,
      processed: r.processed,
      lastError: r.lastError ?? null,
    };
  }
}

/**
 * Appends to the entity's history. The arrays are copied at exact size rather than grown (a pushed-to
 * array reserves 17 slots): entities with a history at all are few, but the busy ones churn.
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

interface Match {
  readonly shard: ShardEntities;
  readonly key: string;
  readonly r: EntityRecord;
}

const byKindThenKey = (a: Match, b: Match): number => {
  const ka = a.shard.kind;
  const kb = b.shard.kind;
  if (ka !== kb) return ka < kb ? -1 : 1;
  return a.key < b.key ? -1 : a.key > b.key ? 1 : 0;
};

/**
 * The `k` smallest matches in order, through a max-heap of `k`: O(n log k) instead of sorting all n.
 */
const smallest = (all: readonly Match[], k: number): Match[] => {
  const heap: Match[] = [];
  const up = (i: number) => {
    while (i > 0) {
      const p = (i - 1) >> 1;
      if (byKindThenKey(heap[i]!, heap[p]!) <= 0) return;
      [heap[i], heap[p]] = [heap[p]!, heap[i]!];
      i = p;
    }
  };
  const down = (i: number) => {
    for (;;) {
      const l = 2 * i + 1;
      const r = l + 1;
      let m = i;
      if (l < heap.length && byKindThenKey(heap[l]!, heap[m]!) > 0) m = l;
      if (r < heap.length && byKindThenKey(heap[r]!, heap[m]!) > 0) m = r;
      if (m === i) return;
      [heap[i], heap[m]] = [heap[m]!, heap[i]!];
      i = m;
    }
  };
  for (const m of all) {
    if (heap.length < k) {
      heap.push(m);
      up(heap.length - 1);
    } else if (byKindThenKey(m, heap[0]!) < 0) {
      heap[0] = m;
      down(0);
    }
  }
  return heap.sort(byKindThenKey);
};

const SHARDS_PATH = 'node/shards/';

export class EntityRegistry {
  /** By shard supervisor id (`<kind>-<partition>`, the path segment). */
  private readonly shards = new Map<string, ShardEntities>();
  /** What activation times count from. */
  readonly epochMs = Date.now();

  open(kind: string, partition: number): ShardEntities {
    const id = `${kind}-${partition}`;
    let s = this.shards.get(id);
    if (!s) {
      s = new ShardEntities(kind, partition, this.epochMs);
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
        r.activatedAt = Math.max(0, Math.round((event.at - this.epochMs) / 1000));
        // Activations are not kept in the history (most entities have nothing else): historyOf adds the last.
        return;
      case 'crashed':
        r.status = 'restarting';
        if (!shard.adminRestarts.delete(key))
          r.lastError = { message: event.error ?? 'crashed', at: event.at };
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
  search(s: EntitySearch): { total: number; items: EntityListItem[] } {
    // A case-insensitive regular expression of the literal text: no lower-cased copy of every key.
    const q = s.q ? new RegExp(s.q.replace(/[.*+?^${}()|[\]\\]/g, '\\$&'), 'i') : undefined;
    const matches: Match[] = [];
    for (const shard of this.shards.values()) {
      if (s.kind !== undefined && shard.kind !== s.kind) continue;
      for (const [key, r] of shard.entities) {
        if (s.status !== undefined && r.status !== s.status) continue;
        if (q !== undefined && !q.test(key)) continue;
        matches.push({ shard, key, r });
      }
    }
    const total = matches.length;
    if (s.first <= 0) return { total, items: [] };
    // Sorting 50,000 keys takes ~30 ms: when only a small first part is wanted, select it instead.
    const first = s.first * 4 < total ? smallest(matches, s.first) : matches.sort(byKindThenKey);
    const items = first.slice(0, s.first).map((m) => m.shard.item(m.key, m.r));
    return { total, items };
  }
}
