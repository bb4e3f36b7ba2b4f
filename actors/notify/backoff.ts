/**
 * Retry policy of a receiver: exponential backoff with full jitter (AWS' "full jitter": the delay
 * after the n-th failed attempt is uniform in [0, min(max, initial × 2^(n-1))]), which spreads the
 * retries of many notifications to one recovering receiver instead of synchronising them.
 *
 * The random source is injected; the default is not random at all but a hash of (notification id,
 * attempt), so a receiver entity that replays its mailbox after a crash decides the same delays — the
 * decision is part of the entity's state and must be reproducible.
 *
 * Which failures are worth retrying is Alertmanager's rule (notify.Retrier), widened by 408 and 429:
 * network errors, timeouts, 5xx, 408 and 429 are retried; any other answer (4xx, a redirect) would
 * fail the same way again, so the notification goes to the dead letters at once.
 */
import { createHash } from 'node:crypto';

export interface BackoffPolicy {
  readonly initialMs: number;
  readonly maxMs: number;
}

/** A source in [0, 1), given what it is for (so a deterministic one can derive from it). */
export type Jitter = (notificationId: string, attempt: number) => number;

/** The upper bound of the delay after the `attempt`-th failed attempt (1-based). */
export const backoffCeiling = (policy: BackoffPolicy, attempt: number): number => {
  const exp = Math.max(0, attempt - 1);
  // 2^exp overflows to Infinity long before it matters; min() keeps the cap exact.
  return Math.min(policy.maxMs, policy.initialMs * 2 ** Math.min(exp, 1023));
};

/** Full jitter: `unit` ∈ [0, 1) scaled to [0, ceiling], in whole ms. */
export const backoffDelay = (policy: BackoffPolicy, attempt: number, unit: number): number =>
  Math.floor(Math.min(Math.max(unit, 0), 1) * backoffCeiling(policy, attempt));

/** The deterministic jitter: the first 48 bits of sha256(`<id>:<attempt>`) as a fraction of 2^48. */
export const hashJitter: Jitter = (notificationId, attempt) => {
  const digest = createHash('sha256').update(`${notificationId}:${attempt}`).digest();
  return digest.readUIntBE(0, 6) / 2 ** 48;
};

/** The delay before the attempt after `attempt` failed. */
export const retryDelay = (
  policy: BackoffPolicy,
  notificationId: string,
  attempt: number,
  jitter: Jitter = hashJitter,
): number => backoffDelay(policy, attempt, jitter(notificationId, attempt));

/** Whether a failed delivery is worth retrying: no HTTP status (network, timeout), 5xx, 408, 429. */
export const isRetryable = (status: number | undefined): boolean =>
  status === undefined || status >= 500 || status === 408 || status === 429;
