import type { Clock, TimerHandle } from './boundaries.ts';

/** The real clock: wall time from Date, monotonic time from performance.now(). */
export const realClock: Clock = {
  now: () => Date.now(),
  monotonic: () => performance.now(),
  setTimeout: (fn, ms) => ({ id: setTimeout(fn, ms) }),
  clearTimeout: (handle: TimerHandle) => clearTimeout(handle.id as NodeJS.Timeout),
};

/** A random source in [0, 1), injected so jitter and sampling are reproducible in tests. */
export type Random = () => number;
