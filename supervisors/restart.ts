/**
 * The pure decisions of a supervisor: whether a restart stays within intensity, how long to back off,
 * and which children a strategy stops and restarts. No time, randomness or I/O is read here: callers
 * pass `now` and `random`, so tests pin both.
 */
import type { Backoff, RestartType, Strategy } from './spec.ts';

/** OTP's add_restart/3: keep restart times inside the period; one too many means shut down. */
export const addRestart = (
  history: readonly number[],
  now: number,
  intensity: number,
  periodMs: number,
): { ok: true; history: number[] } | { ok: false } => {
  const kept = history.filter((t) => now - t < periodMs);
  kept.push(now);
  return kept.length > intensity ? { ok: false } : { ok: true, history: kept };
};

/**
 * Delay before a restart, given how many restarts this child already had inside the period
 * (0 for the first). The first restart is immediate; then minMs, 2·minMs, 4·minMs… capped at maxMs,
 * spread by ±jitter.
 */
export const backoffDelay = (previousRestarts: number, backoff: Backoff, random: () => number): number => {
  if (previousRestarts <= 0 || backoff.maxMs === 0) return 0;
  const base = Math.min(backoff.maxMs, backoff.minMs * 2 ** Math.min(previousRestarts - 1, 30));
  const spread = 1 + backoff.jitter * (2 * random() - 1);
  return Math.min(backoff.maxMs, Math.round(base * spread));
};

/** Whether a child that ended comes back, by its restart type and how it ended. */
export const shouldRestart = (restart: RestartType, crashed: boolean): boolean =>
  restart === 'permanent' || (restart === 'transient' && crashed);

export interface RestartPlan {
  /** Children to stop before restarting, in stop order (reverse start order). */
  readonly stop: readonly string[];
  /** Children to start again, in start order. */
  readonly start: readonly string[];
  /** Children removed for good (temporary ones caught in a group restart, or the dead one itself). */
  readonly remove: readonly string[];
}

export interface ChildView {
  readonly id: string;
  readonly restart: RestartType;
}

/**
 * Which children a strategy touches when `deadId` ended (crashed or not). `children` are in start order.
 * A dead child that should not come back is removed and nothing else happens (OTP behaves the same:
 * strategies only act on restarts).
 */
export const planRestart = (
  strategy: Strategy,
  children: readonly ChildView[],
  deadId: string,
  crashed: boolean,
): RestartPlan => {
  const index = children.findIndex((c) => c.id === deadId);
  const dead = children[index];
  if (!dead) return { stop: [], start: [], remove: [] };
  if (!shouldRestart(dead.restart, crashed)) return { stop: [], start: [], remove: [deadId] };

  const affected =
    strategy === 'one_for_one' ? [dead] : strategy === 'one_for_all' ? children : children.slice(index);
  const others = affected.filter((c) => c.id !== deadId);
  return {
    stop: others.map((c) => c.id).reverse(),
    // Temporary siblings are stopped with the group but never come back.
    start: affected.filter((c) => c.id === deadId || c.restart !== 'temporary').map((c) => c.id),
    remove: others.filter((c) => c.restart === 'temporary').map((c) => c.id),
  };
};
