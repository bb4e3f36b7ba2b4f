import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { SimulatedClock } from '../../test/helpers/clock.ts';
import { endSeries, seriesAfterEdit, stepSeries } from './machine.ts';
import { parseRule } from './schema.ts';
import type { AlertStatus, Rule, SeriesAlert } from './types.ts';

const rule = (fields: Record<string, unknown> = {}, id = 'r'): Rule =>
  parseRule(id, stringify({ metric: 'cpu', condition: '> 90', severity: 3, ...fields }));

const S = 1000;
const M = 60 * S;

/**
 * Drives one series with an injected clock: each step is [seconds after the last step, value] (value
 * null: a no-data check). Returns the transitions as [seconds since start, status, seq].
 */
const drive = (r: Rule, steps: readonly (readonly [number, number | null])[], start?: SeriesAlert) => {
  const clock = new SimulatedClock();
  const t0 = clock.now();
  let s = start;
  const transitions: [number, AlertStatus, number][] = [];
  for (const [after, value] of steps) {
    clock.advance(after * S);
    const step = stepSeries(r, s, { at: clock.now(), value });
    if (step.transition) transitions.push([(clock.now() - t0) / S, step.transition, step.next!.seq]);
    s = step.next;
  }
  return { transitions, last: s };
};

const every = (seconds: number, values: readonly (number | null)[]) =>
  values.map((v, i) => [i === 0 ? 0 : seconds, v] as const);

describe('stepSeries: pending and for', () => {
  it('goes pending, then fires once the condition held for `for`, then resolves', () => {
    const r = rule({ for: '2m' });
    expect(drive(r, every(60, [95, 95, 95, 95, 50])).transitions).toEqual([
      [0, 'pending', 1],
      [120, 'firing', 2],
      [240, 'resolved', 3],
    ]);
  });

  it('goes back to inactive when the condition stops before `for`', () => {
    expect(drive(rule({ for: '2m' }), every(60, [95, 95, 50, 95])).transitions).toEqual([
      [0, 'pending', 1],
      [120, 'inactive', 2],
      [180, 'pending', 3],
    ]);
  });

  it('with for = 0 fires at the first sample that holds, with no pending transition', () => {
    expect(drive(rule(), every(60, [50, 95, 96, 40])).transitions).toEqual([
      [60, 'firing', 1],
      [180, 'resolved', 2],
    ]);
  });

  it('forgets a series that never had a transition, of a rule without no-data', () => {
    expect(stepSeries(rule(), undefined, { at: 1, value: 10 })).toEqual({ next: undefined });
  });

  it('ignores a sample older than the last one seen', () => {
    const r = rule({ for: '1m' });
    const pending = stepSeries(r, undefined, { at: 100 * S, value: 95 }).next!;
    expect(stepSeries(r, pending, { at: 99 * S, value: 10 })).toEqual({ next: pending });
  });
});

describe('stepSeries: hysteresis', () => {
  // A value wandering between clear (80) and threshold (90) after firing.
  const wander = [91, 85, 89, 81, 92, 85, 80, 85, 89, 91, 79];

  it('does not flap between threshold and clear: ends only at or below clear', () => {
    expect(drive(rule({ clear: 80 }), every(60, wander)).transitions).toEqual([
      [0, 'firing', 1],
      [360, 'resolved', 2],
      [540, 'firing', 3],
      [600, 'resolved', 4],
    ]);
  });

  it('flaps at every crossing without clear (the reason to set it)', () => {
    expect(drive(rule(), every(60, wander)).transitions.map(([, status]) => status)).toEqual([
      'firing',
      'resolved',
      'firing',
      'resolved',
      'firing',
      'resolved',
    ]);
  });

  it('holds a pending series through the band too', () => {
    expect(drive(rule({ clear: 80, for: '3m' }), every(60, [95, 85, 88, 95])).transitions).toEqual([
      [0, 'pending', 1],
      [180, 'firing', 2],
    ]);
  });

  it('works the other way round for < (clear above the threshold)', () => {
    const r = rule({ condition: '< 10', clear: 20 });
    expect(drive(r, every(60, [5, 15, 19, 20, 12, 9])).transitions).toEqual([
      [0, 'firing', 1],
      [180, 'resolved', 2],
      [300, 'firing', 3],
    ]);
  });

  it('>= with clear: the value must fall below clear', () => {
    const r = rule({ condition: '>= 90', clear: 80 });
    expect(drive(r, every(60, [90, 80, 79.9])).transitions).toEqual([
      [0, 'firing', 1],
      [120, 'resolved', 2],
    ]);
  });

  it.each([
    ['== 0', [1, 0, 0, 2], ['firing', 'resolved']],
    ['!= 1', [1, 3, 1], ['firing', 'resolved']],
  ] as const)('%s compares exactly', (condition, values, statuses) => {
    expect(drive(rule({ condition }), every(60, values)).transitions.map(([, s]) => s)).toEqual(statuses);
  });
});

describe('stepSeries: keep_firing_for', () => {
  it('keeps firing for keep_firing_for after the condition last held', () => {
    const r = rule({ keep_firing_for: '2m' });
    // fires at 0; last holds at 90; resolves once 120 s passed since 90, at the first sample after.
    const steps = [
      [0, 95],
      [60, 50],
      [30, 95],
      [30, 50],
      [80, 50],
      [10, 50],
    ] as const;
    expect(drive(r, steps).transitions).toEqual([
      [0, 'firing', 1],
      [210, 'resolved', 2],
    ]);
  });
});

describe('stepSeries: no-data', () => {
  const nodata = rule({ no_data: { policy: 'alert', after: 3 }, interval: '1m' });

  it('fires as no-data after N intervals without a sample, and resolves when data is back', () => {
    const { transitions, last } = drive(nodata, [
      [0, 50],
      [60, null],
      [60, null],
      [59, null],
      [1, null], // 180 s since the sample: 3 intervals
      [60, null],
      [60, 50],
    ]);
    expect(transitions).toEqual([
      [180, 'firing', 1],
      [300, 'resolved', 2],
    ]);
    expect(last).toMatchObject({ phase: 'inactive', seq: 2, noData: false, value: 50 });
  });

  it('reports the no-data alert with value null and noData set', () => {
    const s = stepSeries(nodata, stepSeries(nodata, undefined, { at: 0, value: 1 }).next, {
      at: 3 * M,
      value: null,
    });
    expect(s).toEqual({
      next: {
        phase: 'firing',
        seq: 1,
        activeSince: 3 * M,
        firedAt: 3 * M,
        lastActiveAt: 3 * M,
        lastSeenAt: 0,
        value: null,
        noData: true,
      },
      transition: 'firing',
    });
  });

  it('fires directly whatever `for` says: the N intervals are its wait', () => {
    const r = rule({ for: '10m', no_data: { policy: 'alert', after: 2 } });
    expect(
      drive(r, [
        [0, 1],
        [120, null],
      ]).transitions,
    ).toEqual([[120, 'firing', 1]]);
  });

  it('goes on firing for the value when the sample that comes back meets the condition', () => {
    const { transitions, last } = drive(nodata, [
      [0, 50],
      [180, null],
      [60, 95],
      [60, 50],
    ]);
    expect(transitions).toEqual([
      [180, 'firing', 1],
      [300, 'resolved', 2],
    ]);
    expect(last?.noData).toBe(false);
  });

  it('a series firing for its value goes on firing as no-data when data stops', () => {
    const { transitions, last } = drive(nodata, [
      [0, 95],
      [180, null],
    ]);
    expect(transitions).toEqual([[0, 'firing', 1]]);
    expect(last).toMatchObject({ phase: 'firing', noData: true, value: null });
  });

  it('with policy ignore a check changes nothing', () => {
    const r = rule({ for: '1m' });
    const pending = stepSeries(r, undefined, { at: 0, value: 95 }).next!;
    expect(stepSeries(r, pending, { at: 100 * M, value: null })).toEqual({ next: pending });
    expect(stepSeries(r, undefined, { at: 100 * M, value: null })).toEqual({ next: undefined });
  });
});

describe('stepSeries: seq', () => {
  it('counts every transition and survives resolution, so the next alert goes on counting', () => {
    const r = rule({ for: '1m' });
    const { transitions, last } = drive(r, every(60, [95, 95, 50, 50, 95, 50, 95, 95]));
    expect(transitions).toEqual([
      [0, 'pending', 1],
      [60, 'firing', 2],
      [120, 'resolved', 3],
      [240, 'pending', 4],
      [300, 'inactive', 5],
      [360, 'pending', 6],
      [420, 'firing', 7],
    ]);
    expect(last?.seq).toBe(7);
  });

  it('keeps a resolved series as an inactive SeriesAlert carrying its seq', () => {
    const { last } = drive(rule(), every(60, [95, 50, 40]));
    expect(last).toMatchObject({ phase: 'inactive', seq: 2, activeSince: 0, firedAt: 0, value: 40 });
  });
});

describe('endSeries and seriesAfterEdit', () => {
  const r = rule({ for: '1m' });
  const pending = stepSeries(r, undefined, { at: 0, value: 95 }).next!;
  const firing = stepSeries(r, pending, { at: M, value: 95 }).next!;
  const inactive = stepSeries(r, firing, { at: 2 * M, value: 50 }).next!;

  it('ends a series: firing resolves, pending goes inactive, inactive stays', () => {
    expect(endSeries(firing)).toMatchObject({ transition: 'resolved', next: { phase: 'inactive', seq: 3 } });
    expect(endSeries(pending)).toMatchObject({ transition: 'inactive', next: { phase: 'inactive', seq: 2 } });
    expect(endSeries(inactive)).toEqual({ next: inactive });
  });

  it.each([
    ['threshold raised: firing kept', { condition: '> 99' }, firing, true, undefined],
    ['threshold raised: pending kept', { condition: '> 99' }, pending, true, undefined],
    ['annotations edited', { annotations: { summary: 'x' } }, firing, true, undefined],
    ['operator changed: firing kept', { condition: '< 10' }, firing, true, undefined],
    ['operator changed: pending dropped', { condition: '< 10' }, pending, true, 'inactive'],
    ['severity changed: a different alert', { severity: 5 }, firing, true, 'resolved'],
    ['labels changed: a different alert', { labels: { team: 'x' } }, firing, true, 'resolved'],
    ['no longer covered', {}, firing, false, 'resolved'],
    ['no longer covered, pending', {}, pending, false, 'inactive'],
  ] as const)('%s', (_, change, s, covered, transition) => {
    const after = rule({ for: '1m', ...change });
    const step = seriesAfterEdit(r, after, s, covered);
    expect(step.transition).toBe(transition);
    if (transition === undefined) expect(step.next).toBe(s);
  });

  it('a no-data alert ends when the rule stops alerting on no-data', () => {
    const nd = rule({ no_data: { policy: 'alert', after: 1 } });
    const seen = stepSeries(nd, undefined, { at: 0, value: 1 }).next!;
    const fired = stepSeries(nd, seen, { at: M, value: null }).next!;
    expect(seriesAfterEdit(nd, rule(), fired, true).transition).toBe('resolved');
    expect(
      seriesAfterEdit(nd, rule({ no_data: { policy: 'alert', after: 5 } }), fired, true).transition,
    ).toBe(undefined);
  });

  it('an edited firing series resolves at its next sample under the new threshold, not at the edit', () => {
    const after = rule({ condition: '> 99', for: '1m' });
    const kept = seriesAfterEdit(r, after, firing, true);
    expect(kept.transition).toBeUndefined();
    expect(stepSeries(after, kept.next, { at: 3 * M, value: 95 })).toMatchObject({
      transition: 'resolved',
      next: { seq: 3 },
    });
  });
});
