import { describe, expect, it } from 'vitest';
import { asFeedEvent, type FeedEvent, type FeedFilter, matches, parseFilter } from './filter.ts';

const alert = (over: Record<string, unknown> = {}): FeedEvent => ({
  type: '@argus.alert',
  rule: 'cpu-high',
  severity: 3,
  host: 'web-1',
  labels: { alertname: 'cpu-high', host: 'web-1', service: 'pay' },
  ...over,
});
const lifecycle: FeedEvent = { type: '@argus.lifecycle', phase: 'started', path: 'node/shards' };

describe('matches', () => {
  it.each<[string, FeedFilter, FeedEvent, boolean]>([
    ['empty filter: everything', {}, lifecycle, true],
    ['exact type', { types: ['@argus.alert'] }, alert(), true],
    ['exact type, other event', { types: ['@argus.alert'] }, lifecycle, false],
    ['prefix type', { types: ['@argus.*'] }, lifecycle, true],
    ['prefix type, no match', { types: ['@argus.al*'] }, lifecycle, false],
    ['one of several types', { types: ['@argus.notify', '@argus.lifecycle'] }, lifecycle, true],
    ['lone * matches all', { types: ['*'] }, lifecycle, true],
    ['minSeverity met', { minSeverity: 3 }, alert(), true],
    ['minSeverity above', { minSeverity: 4 }, alert(), false],
    ['minSeverity 5 with 5', { minSeverity: 5 }, alert({ severity: 5 }), true],
    ['minSeverity excludes events without severity', { minSeverity: 1 }, lifecycle, false],
    ['minSeverity excludes a non-numeric severity', { minSeverity: 1 }, alert({ severity: '5' }), false],
    ['host field', { host: 'web-1' }, alert(), true],
    ['host from labels', { host: 'web-2' }, alert({ host: undefined, labels: { host: 'web-2' } }), true],
    ['host other', { host: 'web-9' }, alert(), false],
    ['service from labels', { service: 'pay' }, alert(), true],
    ['service other', { service: 'shop' }, alert(), false],
    ['rule field', { rule: 'cpu-high' }, alert(), true],
    ['rule other', { rule: 'disk-full' }, alert(), false],
    ['host on an event without one', { host: 'web-1' }, lifecycle, false],
    [
      'all together',
      { types: ['@argus.alert'], minSeverity: 3, host: 'web-1', service: 'pay', rule: 'cpu-high' },
      alert(),
      true,
    ],
    ['all together, one fails', { types: ['@argus.alert'], minSeverity: 3, service: 'shop' }, alert(), false],
  ])('%s', (_name, filter, event, expected) => {
    expect(matches(filter, event)).toBe(expected);
  });
});

describe('parseFilter', () => {
  it('takes every field and an absent filter', () => {
    const f = { types: ['@argus.*'], minSeverity: 2, host: 'h', service: 's', rule: 'r' };
    expect(parseFilter(f)).toEqual({ ok: true, value: f });
    expect(parseFilter(undefined)).toEqual({ ok: true, value: {} });
    expect(parseFilter(null)).toEqual({ ok: true, value: {} });
  });

  it.each([
    ['x', 'filter: must be an object, got "x"'],
    [[1], 'filter: must be an object, got an array'],
    [{ hosts: 'a' }, 'filter.hosts: unknown field (known: types, minSeverity, host, service, rule)'],
    [{ types: '@argus.alert' }, 'filter.types: must be an array of event types, got "@argus.alert"'],
    [
      { types: ['ok', 3] },
      'filter.types[1]: must be a non-empty string of at most 256 characters, got number',
    ],
    [
      { types: ['@argus.*.x'] },
      "filter.types[0]: '*' may only end a type (a prefix match such as '@argus.*'), got \"@argus.*.x\"",
    ],
    [{ minSeverity: 9 }, 'filter.minSeverity: must be an integer from 1 to 5 (5 most severe), got number 9'],
    [
      { minSeverity: 2.5 },
      'filter.minSeverity: must be an integer from 1 to 5 (5 most severe), got number 2.5',
    ],
    [{ minSeverity: '3' }, 'filter.minSeverity: must be an integer from 1 to 5 (5 most severe), got "3"'],
    [{ host: '' }, 'filter.host: must be a non-empty string of at most 256 characters, got ""'],
    [{ rule: 7 }, 'filter.rule: must be a non-empty string of at most 256 characters, got number'],
  ])('refuses %j naming the field', (raw, error) => {
    expect(parseFilter(raw)).toEqual({ ok: false, error });
  });
});

describe('asFeedEvent', () => {
  it('takes objects with a string type only', () => {
    expect(asFeedEvent({ type: 'x', a: 1 })).toEqual({ type: 'x', a: 1 });
    for (const v of [null, 'x', 1, [], {}, { type: '' }, { type: 3 }]) expect(asFeedEvent(v)).toBeUndefined();
  });
});
