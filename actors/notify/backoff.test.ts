/** Backoff: exponential ceiling with a cap, full jitter within it, deterministic per (id, attempt). */
import { describe, expect, it } from 'vitest';
import { backoffCeiling, backoffDelay, hashJitter, isRetryable, retryDelay } from './backoff.ts';

const policy = { initialMs: 1000, maxMs: 300_000 };

describe('backoff', () => {
  it.each([
    [1, 1000],
    [2, 2000],
    [3, 4000],
    [9, 256_000],
    [10, 300_000],
    [5000, 300_000],
  ])('ceiling after attempt %i is %i ms', (attempt, ceiling) => {
    expect(backoffCeiling(policy, attempt)).toBe(ceiling);
  });

  it.each([
    [0, 0],
    [0.5, 2000],
    [0.999999, 3999],
  ])('full jitter %f after attempt 3 is %i ms', (unit, delay) => {
    expect(backoffDelay(policy, 3, unit)).toBe(delay);
  });

  it('stays within [0, ceiling] for every attempt and id, and decides the same twice', () => {
    for (let attempt = 1; attempt <= 20; attempt++)
      for (const id of ['a', 'b', 'c', 'notification-with-a-long-id']) {
        const d = retryDelay(policy, id, attempt);
        expect(d).toBeGreaterThanOrEqual(0);
        expect(d).toBeLessThanOrEqual(backoffCeiling(policy, attempt));
        expect(retryDelay(policy, id, attempt)).toBe(d);
      }
  });

  it('spreads the jitter (not constant across ids)', () => {
    const units = Array.from({ length: 200 }, (_, i) => hashJitter(`n-${i}`, 1));
    expect(Math.min(...units)).toBeLessThan(0.1);
    expect(Math.max(...units)).toBeGreaterThan(0.9);
    expect(units.every((u) => u >= 0 && u < 1)).toBe(true);
  });

  it('takes an injected random source', () => {
    expect(retryDelay(policy, 'x', 2, () => 0.25)).toBe(500);
  });

  it.each([
    [undefined, true],
    [500, true],
    [503, true],
    [429, true],
    [408, true],
    [400, false],
    [401, false],
    [404, false],
    [301, false],
  ])('status %s retryable: %s', (status, retryable) => {
    expect(isRetryable(status)).toBe(retryable);
  });
});
