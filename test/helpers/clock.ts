import type { Clock, TimerHandle } from '../../runtime/boundaries.ts';

/** A clock that moves only when the test says so. Timers fire in time order during advance(). */
export class SimulatedClock implements Clock {
  private time: number;
  private mono = 0;
  private seq = 0;
  private timers = new Map<number, { at: number; fn: () => void }>();

  constructor(start = 1_700_000_000_000) {
    this.time = start;
  }

  now(): number {
    return this.time;
  }

  monotonic(): number {
    return this.mono;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const id = ++this.seq;
    this.timers.set(id, { at: this.mono + Math.max(0, ms), fn });
    return { id };
  }

  clearTimeout(handle: TimerHandle): void {
    this.timers.delete(handle.id as number);
  }

  /** Pending timers' due times, relative to now. */
  pending(): number[] {
    return [...this.timers.values()].map((t) => t.at - this.mono).sort((a, b) => a - b);
  }

  advance(ms: number): void {
    const end = this.mono + ms;
    for (;;) {
      let nextId: number | undefined;
      let nextAt = Number.POSITIVE_INFINITY;
      for (const [id, t] of this.timers) {
        if (t.at <= end && t.at < nextAt) {
          nextAt = t.at;
          nextId = id;
        }
      }
      if (nextId === undefined) break;
      const timer = this.timers.get(nextId)!;
      this.timers.delete(nextId);
      this.time += nextAt - this.mono;
      this.mono = nextAt;
      timer.fn();
    }
    this.time += end - this.mono;
    this.mono = end;
  }
}
