/**
 * A short in-memory history of each host's final samples, for the inspector (sparklines, "latest
 * metrics"). Fed from the `metrics` stream as records become durable on this node, so it shows what
 * the node's host entities produced; it is a view, not a store — a restarted node starts it empty, and
 * the stream (Kafka topic or journal log) is the record of truth.
 *
 * Bounded: `points` per series (a ring of typed arrays, default 12: a sparkline of the last 12 polls),
 * `maxSeriesPerHost` series per host, and hosts that leave this node (their shard moved) are dropped
 * with `forget`.
 */
import { seriesKey } from './derive.ts';
import type { MetricsRecord } from './host.ts';
import type { Tags } from './types.ts';

export interface SeriesHistory {
  readonly metric: string;
  readonly tags: Tags;
  /** Oldest first. */
  readonly points: readonly { readonly ts: number; readonly value: number | string }[];
}

/** What a series is, shared by every host that has it (`cpu.busy_pct` on 50,000 hosts is one entry). */
interface SeriesMeta {
  readonly key: string;
  readonly metric: string;
  readonly tags: Tags;
}

/**
 * A host's rings, packed: slot `i * points + k` of `ts` and `values` is point k of its series i. 16 bytes
 * a point, and a few dozen bytes a series — no object, array or key string per series per host.
 */
interface HostRings {
  readonly index: Map<string, number>;
  readonly series: SeriesMeta[];
  ts: Float64Array;
  values: Float64Array;
  /** Points held and the next slot, per series. */
  n: Uint16Array;
  next: Uint16Array;
  /** String values by slot, only for hosts that have string series. */
  texts: Map<number, string> | undefined;
}

const MAX_SHARED_SERIES = 1_000_000;

export class HostHistory {
  private readonly byHost = new Map<string, HostRings>();
  private readonly metas = new Map<string, SeriesMeta>();

  constructor(
    private readonly points = 12,
    private readonly maxSeriesPerHost = 500,
  ) {}

  add(record: MetricsRecord): void {
    if (this.points <= 0) return;
    let h = this.byHost.get(record.host);
    if (!h) {
      h = {
        index: new Map(),
        series: [],
        ts: new Float64Array(0),
        values: new Float64Array(0),
        n: new Uint16Array(0),
        next: new Uint16Array(0),
        texts: undefined,
      };
      this.byHost.set(record.host, h);
    }
    for (const s of record.samples) {
      const key = seriesKey(s.metric, s.tags);
      let i = h.index.get(key);
      if (i === undefined) {
        if (h.series.length >= this.maxSeriesPerHost) continue;
        i = this.addSeries(h, key, s.metric, s.tags);
      }
      const k = h.next[i]!;
      const slot = i * this.points + k;
      h.ts[slot] = s.ts;
      if (typeof s.value === 'string') {
        h.texts ??= new Map();
        h.texts.set(slot, s.value);
        h.values[slot] = Number.NaN;
      } else {
        h.values[slot] = s.value;
        h.texts?.delete(slot);
      }
      h.next[i] = (k + 1) % this.points;
      if (h.n[i]! < this.points) h.n[i]!++;
    }
  }

  private addSeries(h: HostRings, key: string, metric: string, tags: Tags): number {
    let meta = this.metas.get(key);
    if (!meta) {
      meta = { key, metric, tags };
      // Shared while the distinct series stay countable; past that (pushes with endless tag values)
      // each host keeps its own.
      if (this.metas.size < MAX_SHARED_SERIES) this.metas.set(key, meta);
    }
    const i = h.series.length;
    h.series.push(meta);
    h.index.set(meta.key, i);
    if (i * this.points >= h.ts.length) {
      // Grow by half again (at least 8 series): amortised, and small hosts stay small.
      const capacity = Math.max(8, Math.ceil((i + 1) * 1.5));
      const grow = <A extends Float64Array | Uint16Array>(a: A, per: number, make: (n: number) => A): A => {
        const b = make(capacity * per);
        b.set(a);
        return b;
      };
      h.ts = grow(h.ts, this.points, (n) => new Float64Array(n));
      h.values = grow(h.values, this.points, (n) => new Float64Array(n));
      h.n = grow(h.n, 1, (n) => new Uint16Array(n));
      h.next = grow(h.next, 1, (n) => new Uint16Array(n));
    }
    return i;
  }

  /** Every series of a host, each oldest point first; empty when the host has none here. */
  of(host: string): SeriesHistory[] {
    const h = this.byHost.get(host);
    if (!h) return [];
    return h.series.map((meta, i) => {
      const n = h.n[i]!;
      const first = n < this.points ? 0 : h.next[i]!;
      const points = [];
      for (let k = 0; k < n; k++) {
        const slot = i * this.points + ((first + k) % this.points);
        const text = h.texts?.get(slot);
        points.push({ ts: h.ts[slot]!, value: text ?? h.values[slot]! });
      }
      return { metric: meta.metric, tags: meta.tags, points };
    });
  }

  /** The latest value of each series of a host. */
  latest(host: string): { metric: string; tags: Tags; ts: number; value: number | string }[] {
    return this.of(host).map((s) => {
      const last = s.points[s.points.length - 1]!;
      return { metric: s.metric, tags: s.tags, ts: last.ts, value: last.value };
    });
  }

  /** The inspector's view of a host's history: series key (`metric{tag=v}`) → `[ts, value]` pairs, oldest first. */
  seriesOf(host: string): Record<string, [number, number | string][]> {
    const out: Record<string, [number, number | string][]> = {};
    for (const s of this.of(host)) out[seriesKey(s.metric, s.tags)] = s.points.map((p) => [p.ts, p.value]);
    return out;
  }

  /** The inspector's view of a host's latest samples: series key → its last value and time. */
  latestOf(host: string): Record<string, { value: number | string; at: number }> {
    const out: Record<string, { value: number | string; at: number }> = {};
    for (const s of this.latest(host)) out[seriesKey(s.metric, s.tags)] = { value: s.value, at: s.ts };
    return out;
  }

  forget(host: string): void {
    this.byHost.delete(host);
  }

  hosts(): string[] {
    return [...this.byHost.keys()];
  }

  get hostCount(): number {
    return this.byHost.size;
  }
}
