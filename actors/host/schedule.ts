/**
 * When each host is polled: a min-heap of due times, pure (time is passed in), so the poller's timing
 * is tested as tables with a simulated clock.
 *
 * Every host polls at a fixed phase inside its interval — `hash(id) mod interval`, plus an optional
 * random jitter per cycle — so 100,000 hosts with a 60 s interval spread evenly over the minute instead
 * of all firing at once (Telegraf's `collection_jitter`, Zabbix's item delay spreading), and a host keeps
 * its phase across restarts and moves between nodes.
 *
 * A host whose poll could not start before its *next* due time (the poller was saturated) counts as
 * missed for that cycle and moves on to the next slot: polls never pile up behind each other.
 */
import { fnv1a } from '../../runtime/envelope.ts';

export interface Due {
  readonly id: string;
  /**
   * The slot's due time: wall-clock ms, so that a host's phase is the same on every node and across
   * restarts (a clock step moves every slot alike, it never bunches them).
   */
  readonly due: number;
  /** Cycles skipped because the poller could not keep up. */
  readonly missed: number;
}

interface Entry {
  readonly id: string;
  due: number;
  readonly intervalMs: number;
  readonly generation: number;
}

export class PollSchedule {
  private heap: Entry[] = [];
  /** The live generation of each scheduled host: heap entries of older generations are dropped lazily. */
  private readonly live = new Map<string, { generation: number; intervalMs: number }>();
  private nextGeneration = 0;

  constructor(
    private readonly random: () => number = Math.random,
    private readonly jitterMs = 0,
  ) {}

  get size(): number {
    return this.live.size;
  }

  has(id: string): boolean {
    return this.live.has(id);
  }

  /** Schedules (or reschedules, with a new interval) a host; its first slot is its phase after `now`. */
  add(id: string, intervalMs: number, now: number): void {
    const current = this.live.get(id);
    if (current && current.intervalMs === intervalMs) return;
    const generation = this.nextGeneration++;
    this.live.set(id, { generation, intervalMs });
    this.push({ id, due: this.slotAfter(id, intervalMs, now), intervalMs, generation });
  }

  /** The scheduled host ids, sorted. */
  ids(): string[] {
    return [...this.live.keys()].sort();
  }

  remove(id: string): boolean {
    return this.live.delete(id);
  }

  /** The earliest due time, or undefined when nothing is scheduled. */
  peek(): number | undefined {
    this.dropStale();
    return this.heap[0]?.due;
  }

  /**
   * Takes the host due first if it is due at `now`, and schedules its next slot. `missed` counts the
   * slots that passed entirely before `now` (the poll of the latest of them is the one to run).
   */
  take(now: number): Due | undefined {
    this.dropStale();
    const top = this.heap[0];
    if (!top || top.due > now) return undefined;
    this.pop();
    const missed = Math.floor((now - top.due) / top.intervalMs);
    const due = top.due + missed * top.intervalMs;
    this.push({ ...top, due: due + top.intervalMs + this.jitter(top.intervalMs) });
    return { id: top.id, due, missed };
  }

  /** The first slot of `id` strictly after `now`: its phase within the interval. */
  slotAfter(id: string, intervalMs: number, now: number): number {
    // Salted, so that the phase does not follow the shard (both hash the id).
    const phase = fnv1a(`phase:${id}`) % intervalMs;
    const cycle = Math.floor((now - phase) / intervalMs) + 1;
    return cycle * intervalMs + phase + this.jitter(intervalMs);
  }

  private jitter(intervalMs: number): number {
    if (this.jitterMs <= 0) return 0;
    return Math.floor(this.random() * Math.min(this.jitterMs, intervalMs / 2));
  }

  private dropStale(): void {
    while (this.heap.length > 0) {
      const top = this.heap[0]!;
      const live = this.live.get(top.id);
      if (live && live.generation === top.generation) return;
      this.pop();
    }
  }

  private push(e: Entry): void {
    const h = this.heap;
    h.push(e);
    let i = h.length - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (h[parent]!.due <= e.due) break;
      h[i] = h[parent]!;
      i = parent;
    }
    h[i] = e;
  }

  private pop(): void {
    const h = this.heap;
    const last = h.pop()!;
    if (h.length === 0) return;
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= h.length) break;
      const r = l + 1;
      const c = r < h.length && h[r]!.due < h[l]!.due ? r : l;
      if (h[c]!.due >= last.due) break;
      h[i] = h[c]!;
      i = c;
    }
    h[i] = last;
  }
}
