import { describe, expect, it } from 'vitest';
import { addRestart, backoffDelay, planRestart, shouldRestart } from './restart.ts';
import type { RestartType, Strategy } from './spec.ts';

describe('addRestart (OTP add_restart/3)', () => {
  it.each([
    { history: [], now: 0, intensity: 1, period: 5000, ok: true, kept: [0] },
    { history: [0], now: 4999, intensity: 1, period: 5000, ok: false, kept: [] },
    { history: [0], now: 5000, intensity: 1, period: 5000, ok: true, kept: [5000] },
    { history: [0, 10], now: 20, intensity: 3, period: 100, ok: true, kept: [0, 10, 20] },
    { history: [0, 10, 20], now: 30, intensity: 3, period: 100, ok: false, kept: [] },
    { history: [0, 10, 20], now: 105, intensity: 3, period: 100, ok: true, kept: [10, 20, 105] },
    { history: [], now: 0, intensity: 0, period: 100, ok: false, kept: [] },
  ])(
    '$history + $now within $period (intensity $intensity) → ok=$ok',
    ({ history, now, intensity, period, ok, kept }) => {
      const r = addRestart(history, now, intensity, period);
      expect(r.ok).toBe(ok);
      if (r.ok) expect(r.history).toEqual(kept);
    },
  );
});

describe('backoffDelay', () => {
  const backoff = { minMs: 100, maxMs: 1000, jitter: 0 };
  it.each([
    [0, 0],
    [1, 100],
    [2, 200],
    [3, 400],
    [4, 800],
    [5, 1000],
    [50, 1000],
  ])('after %i restarts in the period waits %i ms', (n, ms) => {
    expect(backoffDelay(n, backoff, () => 0.5)).toBe(ms);
  });

  it('spreads by ±jitter and never passes the cap', () => {
    const b = { minMs: 100, maxMs: 1000, jitter: 0.2 };
    expect(backoffDelay(1, b, () => 0)).toBe(80);
    expect(backoffDelay(1, b, () => 0.999999)).toBe(120);
    expect(backoffDelay(5, b, () => 0.999999)).toBe(1000);
    expect(backoffDelay(5, b, () => 0)).toBe(800);
  });

  it('is off when maxMs is 0', () => {
    expect(backoffDelay(3, { minMs: 0, maxMs: 0, jitter: 0 }, Math.random)).toBe(0);
  });
});

describe('shouldRestart', () => {
  it.each<[RestartType, boolean, boolean]>([
    ['permanent', true, true],
    ['permanent', false, true],
    ['transient', true, true],
    ['transient', false, false],
    ['temporary', true, false],
    ['temporary', false, false],
  ])('%s child, crashed=%s → %s', (type, crashed, expected) => {
    expect(shouldRestart(type, crashed)).toBe(expected);
  });
});

describe('planRestart', () => {
  const kids = (types: Record<string, RestartType>) =>
    Object.entries(types).map(([id, restart]) => ({ id, restart }));
  const all = kids({ a: 'permanent', b: 'permanent', c: 'permanent', d: 'permanent' });

  it.each<[Strategy, string, { stop: string[]; start: string[]; remove: string[] }]>([
    ['one_for_one', 'b', { stop: [], start: ['b'], remove: [] }],
    ['one_for_all', 'b', { stop: ['d', 'c', 'a'], start: ['a', 'b', 'c', 'd'], remove: [] }],
    ['rest_for_one', 'b', { stop: ['d', 'c'], start: ['b', 'c', 'd'], remove: [] }],
    ['rest_for_one', 'd', { stop: [], start: ['d'], remove: [] }],
    ['one_for_all', 'a', { stop: ['d', 'c', 'b'], start: ['a', 'b', 'c', 'd'], remove: [] }],
  ])('%s when %s crashes', (strategy, dead, plan) => {
    expect(planRestart(strategy, all, dead, true)).toEqual(plan);
  });

  it('removes a dead child that does not come back and touches nobody else', () => {
    const c = kids({ a: 'permanent', b: 'transient', t: 'temporary' });
    expect(planRestart('one_for_all', c, 'b', false)).toEqual({ stop: [], start: [], remove: ['b'] });
    expect(planRestart('one_for_all', c, 't', true)).toEqual({ stop: [], start: [], remove: ['t'] });
  });

  it('stops temporary siblings with the group and does not bring them back', () => {
    const c = kids({ a: 'permanent', t: 'temporary', b: 'transient' });
    expect(planRestart('one_for_all', c, 'a', true)).toEqual({
      stop: ['b', 't'],
      start: ['a', 'b'],
      remove: ['t'],
    });
  });

  it('ignores an unknown child', () => {
    expect(planRestart('one_for_one', all, 'zz', true)).toEqual({ stop: [], start: [], remove: [] });
  });
});
