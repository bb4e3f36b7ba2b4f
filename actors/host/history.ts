/**
 * A short in-memory history of each host's final samples, for the inspector (sparklines, "latest
 * metrics"). Fed from the `metrics` stream as records become durable on this node, so it shows what
 * the node's host entities produced; it is a view, not a store — a restarted node starts it empty, and
 * the stream (Kafka topic or journal log) is the record of truth.
 *
 * Bounded: `points` per series (a ring), `maxSeriesPerHost` series per host, and hosts that leave this
 * node (their shard moved) are dropped with `forget`.
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

interface Ring {
  readonly metric: string;
  readonly tags: Tags;
  readonly ts: number[];
  readonly values: (number | string)[];
  next: number;
}

export class HostHistory {
  private readonly byHost = new Map<string, Map<string, Ring>>();

  constructor(
    private readonly points = 60,
    private readonly maxSeriesPerHost = 500,
  ) {}

  add(record: MetricsRecord): void {
    if (this.points <= 0) return;
    let series = this.byHost.get(record.host);
    if (!series) {
      series = new Map();
      this.byHost.set(record.host, series);
    }
    for (const s of record.samples) {
      const key = seriesKey(s.metric, s.tags);
      let ring = series.get(key);
      if (!ring) {
        if (series.size >= this.maxSeriesPerHost) continue;
        ring = { metric: s.metric, tags: s.tags, ts: [], values: [], next: 0 };
        series.set(key, ring);
      }
      if (ring.ts.length < this.points) {
        ring.ts.push(s.ts);
        ring.values.push(s.value);
      } else {
        ring.ts[ring.next] = s.ts;
        ring.values[ring.next] = s.value;
        ring.next = (ring.next + 1) % this.points;
      }
    }
  }

  /** Every series of a host, each oldest point first; empty when the host has none here. */
  of(host: string): SeriesHistory[] {
    const series = this.byHost.get(host);
    if (!series) return [];
    return [...series.values()].map((r) => {
      const n = r.ts.length;
      const points = [];
      for (let i = 0; i < n; i++) {
        const j = (r.next + i) % n;
        points.push({ ts: r.ts[j]!, value: r.values[j]! });
      }
      return { metric: r.metric, tags: r.tags, points };
    });
  }

  /** The latest value of each series of a host. */
  latest(host: string): { metric: string; tags: Tags; ts: number; value: number | string }[] {
    return this.of(host).map((s) => {
      const last = s.points[s.points.length - 1]!;
      return { metric: s.metric, tags: s.tags, ts: last.ts, value: last.value };
    });
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
