/**
 * Log search: recent records of one stream, newest first, filtered by time range and a filter
 * expression (filter.ts), paged with a cursor. Records are read back from the log kind's mailbox — the
 * Kafka topic for its retention, or the embedded journal, which keeps `logs.retainRecords` records per
 * shard — so nothing is stored twice. Each shard holding the stream (its sub-streams may hash to
 * several) is read backwards in chunks; the pages of the shards are merged by record time.
 *
 * A request reads at most `maxScan` mailbox messages; past that the answer says `complete: false` and
 * gives the cursor to go on from, so a filter that matches nothing cannot make one request read the
 * whole retention.
 */
import type { Runtime } from '../../runtime/runtime.ts';
import { LOG_KIND } from './entity.ts';
import type { Expr } from './expr.ts';
import { matchesFilter } from './filter.ts';
import type { StoredLog } from './types.ts';

export interface SearchQuery {
  /** The entity keys of the stream (itself, or its sub-streams). */
  readonly keys: readonly string[];
  /** Inclusive lower bound on record time (ms). */
  readonly from?: number;
  /** Exclusive upper bound on record time (ms). */
  readonly to?: number;
  readonly filter: Expr | null;
  readonly limit: number;
  readonly cursor?: string;
  /** Mailbox messages read at most (default 20,000). */
  readonly maxScan?: number;
  /** Messages per read (default 500). */
  readonly chunk?: number;
}

export interface SearchPage {
  readonly items: readonly (StoredLog & { readonly key: string; readonly offset: number })[];
  /** Give it back as `cursor` for older records; absent when there are none. */
  readonly next?: string;
  /** False when the scan bound stopped the search before `limit` matches were found. */
  readonly complete: boolean;
  readonly scanned: number;
}

/** Where a shard's reading stands: records strictly before (offset, index) are still to be read. */
interface Position {
  offset: number;
  index: number;
}

type Cursor = Record<string, Position | null>;

export const encodeCursor = (c: Cursor): string =>
  Buffer.from(JSON.stringify(c), 'utf8').toString('base64url');

export const decodeCursor = (text: string): Cursor | undefined => {
  try {
    const c = JSON.parse(Buffer.from(text, 'base64url').toString('utf8')) as unknown;
    if (typeof c !== 'object' || c === null || Array.isArray(c)) return undefined;
    for (const [p, v] of Object.entries(c as Record<string, unknown>)) {
      if (!/^\d+$/.test(p)) return undefined;
      if (v === null) continue;
      const pos = v as Partial<Position>;
      if (!Number.isSafeInteger(pos.offset) || !Number.isSafeInteger(pos.index)) return undefined;
    }
    return c as Cursor;
  } catch {
    return undefined;
  }
};

interface Candidate extends StoredLog {
  readonly key: string;
  readonly offset: number;
  readonly index: number;
}

/** One shard read backwards: matching records, newest first (mailbox order). */
class ShardReader {
  readonly found: Candidate[] = [];
  exhausted = false;
  private upper: Position;

  constructor(
    readonly partition: number,
    start: Position,
  ) {
    this.upper = start;
  }

  async fill(rt: Runtime, q: SearchQuery, keys: ReadonlySet<string>, want: number, budget: { left: number }) {
    const chunk = q.chunk ?? 500;
    while (!this.exhausted && this.found.length < want && budget.left > 0) {
      // The message at `upper.offset` is still to be read when index > 0 (part of it was returned).
      const end = this.upper.index > 0 ? this.upper.offset + 1 : this.upper.offset;
      const from = Math.max(0, end - Math.min(chunk, budget.left));
      if (end <= 0) {
        this.exhausted = true;
        break;
      }
      const read = await rt.readMailbox(LOG_KIND, this.partition, from, end - from);
      budget.left -= end - from;
      for (let i = read.records.length - 1; i >= 0; i--) {
        const m = read.records[i]!;
        if (m.offset >= end || m.type !== 'log.records' || !keys.has(m.key)) continue;
        const records = (m.payload as { records?: StoredLog[] }).records ?? [];
        const top =
          m.offset === this.upper.offset && this.upper.index > 0 ? this.upper.index : records.length;
        for (let j = top - 1; j >= 0; j--) {
          const r = records[j]!;
          if (q.from !== undefined && r.time < q.from) continue;
          if (q.to !== undefined && r.time >= q.to) continue;
          if (!matchesFilter(q.filter, r.fields)) continue;
          this.found.push({ time: r.time, fields: r.fields, key: m.key, offset: m.offset, index: j });
        }
      }
      // Retention may have removed what lies before `from`: the read started at the log's start then.
      if (from === 0 || read.start > from) this.exhausted = true;
      this.upper = { offset: from, index: 0 };
    }
  }

  /** Where the next page starts after `taken` of `found` were returned. */
  positionAfter(taken: number): Position | null {
    if (taken < this.found.length) {
      const last = this.found[taken]!;
      return { offset: last.offset, index: last.index + 1 };
    }
    return this.exhausted ? null : this.upper;
  }
}

export const searchLogs = async (rt: Runtime, q: SearchQuery): Promise<SearchPage> => {
  const keys = new Set(q.keys);
  const partitions = [...new Set(q.keys.map((k) => rt.shardOf(LOG_KIND, k)))].sort((a, b) => a - b);
  const cursor = q.cursor === undefined ? undefined : decodeCursor(q.cursor);
  const readers: ShardReader[] = [];
  for (const p of partitions) {
    const at = cursor ? cursor[String(p)] : undefined;
    if (at === null) continue;
    const start = at ?? { offset: await rt.mailboxEnd(LOG_KIND, p), index: 0 };
    readers.push(new ShardReader(p, start));
  }
  const budget = { left: q.maxScan ?? 20_000 };
  const scanStart = budget.left;
  await Promise.all(readers.map((r) => r.fill(rt, q, keys, q.limit, budget)));
  // Merge the shards' newest-first lists by time.
  const taken = new Map<ShardReader, number>(readers.map((r) => [r, 0]));
  const items: Candidate[] = [];
  while (items.length < q.limit) {
    let best: ShardReader | undefined;
    for (const r of readers) {
      const i = taken.get(r)!;
      if (i >= r.found.length) continue;
      if (!best || r.found[i]!.time > best.found[taken.get(best)!]!.time) best = r;
    }
    if (!best) break;
    const i = taken.get(best)!;
    items.push(best.found[i]!);
    taken.set(best, i + 1);
  }
  const next: Cursor = {};
  let more = false;
  for (const r of readers) {
    const pos = r.positionAfter(taken.get(r)!);
    next[String(r.partition)] = pos;
    if (pos !== null) more = true;
  }
  for (const p of partitions) if (!(String(p) in next)) next[String(p)] = null;
  const complete = items.length >= q.limit || readers.every((r) => r.exhausted);
  return {
    items: items.map((c) => ({ time: c.time, fields: c.fields, key: c.key, offset: c.offset })),
    ...(more ? { next: encodeCursor(next) } : {}),
    complete,
    scanned: scanStart - budget.left,
  };
};
