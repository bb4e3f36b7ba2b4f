import { describe, expect, it } from 'vitest';
import {
  applyFiring,
  type FiringAlert,
  type FiringChange,
  firingBucket,
  firingChanges,
  initialFiringState,
  listFiring,
  parseFiringMessage,
} from './firing.ts';
import type { AlertEvent } from './types.ts';

const alert = (fingerprint: string, seq: number, over: Partial<FiringAlert> = {}): FiringAlert => ({
  fingerprint,
  rule: 'cpu-high',
  severity: 4,
  labels: { alertname: 'cpu-high', host: 'h-1', severity: '4' },
  annotations: {},
  value: 97,
  since: 1_000,
  seq,
  host: 'h-1',
  ...over,
});

const firing = (a: FiringAlert): FiringChange => ({ status: 'firing', alert: a });
const resolved = (fingerprint: string, seq: number): FiringChange => ({
  status: 'resolved',
  fingerprint,
  seq,
});

describe('applyFiring', () => {
  const cases: [string, FiringChange[], Record<string, number>][] = [
    ['a firing alert is kept', [firing(alert('a', 1))], { a: 1 }],
    ['its resolution removes it', [firing(alert('a', 1)), resolved('a', 2)], {}],
    [
      'it fires again with a higher seq',
      [firing(alert('a', 1)), resolved('a', 2), firing(alert('a', 3))],
      { a: 3 },
    ],
    ['an older resolution does not end a newer firing', [firing(alert('a', 3)), resolved('a', 2)], { a: 3 }],
    [
      'an older firing does not replace a newer one',
      [firing(alert('a', 3)), firing(alert('a', 1))],
      { a: 3 },
    ],
    ['a resolution of an unknown alert changes nothing', [resolved('x', 4)], {}],
    ['alerts are independent', [firing(alert('a', 1)), firing(alert('b', 1)), resolved('a', 2)], { b: 1 }],
  ];
  for (const [name, changes, expected] of cases)
    it(name, () => {
      const state = applyFiring(initialFiringState(), changes);
      expect(Object.fromEntries(Object.entries(state.alerts).map(([fp, a]) => [fp, a.seq]))).toEqual(
        expected,
      );
    });

  it('returns the same state when nothing changes (no snapshot to write)', () => {
    const s = initialFiringState();
    expect(applyFiring(s, [resolved('x', 1)])).toBe(s);
  });

  it('never changes the state it was given', () => {
    const s = applyFiring(initialFiringState(), [firing(alert('a', 1))]);
    applyFiring(s, [resolved('a', 2)]);
    expect(Object.keys(s.alerts)).toEqual(['a']);
  });
});

describe('firingChanges', () => {
  const event = (status: AlertEvent['status'], seq: number): AlertEvent => ({
    type: '@argus.alert',
    fingerprint: 'f',
    seq,
    rule: 'cpu-high',
    status,
    severity: 4,
    labels: { alertname: 'cpu-high' },
    annotations: { summary: 's' },
    value: 97,
    startsAt: 500,
    at: 600,
    host: 'h-1',
  });

  it('keeps firing and resolved transitions, as index entries', () => {
    expect(
      firingChanges([event('pending', 1), event('firing', 2), event('resolved', 3), event('inactive', 4)]),
    ).toEqual([
      {
        status: 'firing',
        alert: {
          fingerprint: 'f',
          rule: 'cpu-high',
          severity: 4,
          labels: { alertname: 'cpu-high' },
          annotations: { summary: 's' },
          value: 97,
          since: 500,
          seq: 2,
          host: 'h-1',
        },
      },
      { status: 'resolved', fingerprint: 'f', seq: 3 },
    ]);
  });
});

describe('listFiring', () => {
  const a = alert('a', 1, { severity: 2, since: 100 });
  const b = alert('b', 1, { since: 300, host: 'h-2', labels: { host: 'h-2' } });
  const c = alert('c', 1, { since: 200, rule: 'disk-full' });
  const all = () => true;

  it('sorts most severe first, then oldest first', () => {
    expect(listFiring([[a, b], [c]], {}, all).map((x) => x.fingerprint)).toEqual(['c', 'b', 'a']);
  });

  it('keeps the newer seq of an alert two members answered (its bucket moving)', () => {
    expect(listFiring([[alert('a', 1)], [alert('a', 3)]], {}, all).map((x) => x.seq)).toEqual([3]);
  });

  const filters: [string, Parameters<typeof listFiring>[1], string[]][] = [
    ['severity', { severity: 4 }, ['c', 'b']],
    ['rule', { rule: 'disk-full' }, ['c']],
    ['host', { host: 'h-2' }, ['b']],
    ['all of them', { severity: 4, host: 'h-1' }, ['c']],
    ['none matching', { severity: 5 }, []],
  ];
  for (const [name, filter, expected] of filters)
    it(`filters by ${name}`, () => {
      expect(listFiring([[a, b, c]], filter, all).map((x) => x.fingerprint)).toEqual(expected);
    });

  it('hides alerts of rules no longer in force', () => {
    expect(listFiring([[a, c]], {}, (rule) => rule !== 'disk-full').map((x) => x.fingerprint)).toEqual(['a']);
  });
});

describe('firingBucket', () => {
  it('is stable per evaluating entity, one of 64', () => {
    expect(firingBucket('host', 'h-1')).toBe(firingBucket('host', 'h-1'));
    expect(firingBucket('host', 'h-1')).toMatch(/^bucket-([0-9]|[1-5][0-9]|6[0-3])$/);
  });
});

describe('parseFiringMessage', () => {
  it('takes firing.changes', () => {
    const m = { type: 'firing.changes', changes: [resolved('a', 2)] };
    expect(parseFiringMessage(m)).toBe(m);
  });
  it.each([
    [{ type: 'nope' }, 'firing message must be firing.changes { changes: [...] }, got "nope"'],
    [
      { type: 'firing.changes', changes: [{ status: 'firing' }] },
      "firing.changes: changes[0] must be { status: 'firing', alert } or { status: 'resolved', fingerprint, seq }",
    ],
  ])('refuses %j', (payload, message) => {
    expect(() => parseFiringMessage(payload)).toThrow(message);
  });
});
