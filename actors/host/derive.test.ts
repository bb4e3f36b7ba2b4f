import { pack } from 'msgpackr';
import { describe, expect, it } from 'vitest';
import { DEFAULT_METRIC_SET } from './default-metricset.ts';
import {
  type CounterEntry,
  counterRate,
  type DeriveState,
  derive,
  EMPTY_DERIVE_STATE,
  pushCounter,
  seriesKey,
} from './derive.ts';
import type { CounterWidth, DerivedMetric, RawValue, Tags } from './types.ts';

const counter = (metric: string, value: number, width: CounterWidth, tags: Tags = {}): RawValue => ({
  metric,
  tags,
  type: 'counter',
  width,
  value,
});
const gauge = (metric: string, value: number, tags: Tags = {}): RawValue => ({
  metric,
  tags,
  type: 'gauge',
  value,
});

describe('seriesKey', () => {
  it.each<[string, Tags, string]>([
    ['sys.uptime', {}, 'sys.uptime'],
    ['if.in_octets', { ifName: 'eth0' }, 'if.in_octets{ifName=eth0}'],
    ['x', { b: '2', a: '1' }, 'x{a=1,b=2}'],
    ['x', { a: '1,b=2' }, 'x{a=1\\,b\\=2}'],
    ['x', { 'a}': '{\\' }, 'x{a\\}=\\{\\\\}'],
  ])('%s %j → %s', (metric, tags, key) => {
    expect(seriesKey(metric, tags)).toBe(key);
  });

  it('keeps series apart that a naive join would merge', () => {
    expect(seriesKey('x', { a: '1,b=2' })).not.toBe(seriesKey('x', { a: '1', b: '2' }));
  });
});

describe('counterRate', () => {
  const top64 = 2 ** 64 - 2 ** 20; // exactly representable: doubles near 2^64 are 2048 apart
  it.each<{
    name: string;
    prev: CounterEntry | undefined;
    value: number;
    ts: number;
    width: CounterWidth | undefined;
    rate?: number;
    reset?: boolean;
    entry?: CounterEntry;
  }>([
    { name: 'first sample gives no rate', prev: undefined, value: 100, ts: 0, width: 32, entry: [100, 0] },
    {
      name: 'steady rate',
      prev: [1000, 0],
      value: 2000,
      ts: 10_000,
      width: 32,
      rate: 100,
      entry: [2000, 10_000],
    },
    { name: 'unchanged counter is rate 0', prev: [7, 0], value: 7, ts: 60_000, width: 64, rate: 0 },
    {
      name: '32-bit wrap',
      prev: [4294967000, 0],
      value: 200,
      ts: 10_000,
      width: 32,
      rate: (2 ** 32 - 4294967000 + 200) / 10,
      entry: [200, 10_000],
    },
    {
      name: '32-bit wrap just under 2^31',
      prev: [2 ** 31 + 1, 0],
      value: 0,
      ts: 1000,
      width: 32,
      rate: 2 ** 31 - 1,
    },
    {
      name: '32-bit wrapped delta of 2^31 is a reset',
      prev: [2 ** 31, 0],
      value: 0,
      ts: 1000,
      width: 32,
      reset: true,
    },
    {
      name: '32-bit big decrease is a reset',
      prev: [1_000_000, 0],
      value: 10,
      ts: 10_000,
      width: 32,
      reset: true,
    },
    {
      name: '32-bit counter above 2^32 is a reset',
      prev: [2 ** 32 + 5, 0],
      value: 1,
      ts: 1000,
      width: 32,
      reset: true,
    },
    { name: '64-bit increase', prev: [1e15, 0], value: 1e15 + 5e9, ts: 10_000, width: 64, rate: 5e8 },
    { name: '64-bit decrease is a reset', prev: [5e12, 0], value: 1000, ts: 10_000, width: 64, reset: true },
    {
      name: '64-bit wrap just below 2^64',
      prev: [top64, 0],
      value: 2 ** 20,
      ts: 1000,
      width: 64,
      rate: 2 ** 21,
    },
    {
      name: '64-bit decrease from the upper half but far from 2^64 is a reset',
      prev: [2 ** 63 + 2 ** 62, 0],
      value: 0,
      ts: 1000,
      width: 64,
      reset: true,
    },
    {
      name: 'pushed counter (no width) never wraps',
      prev: [4294967000, 0],
      value: 200,
      ts: 1000,
      width: undefined,
      reset: true,
    },
    {
      name: 'Δt = 0 keeps the new value',
      prev: [10, 5000],
      value: 20,
      ts: 5000,
      width: 64,
      entry: [20, 5000],
    },
    {
      name: 'Δt < 0 keeps the newer reading',
      prev: [10, 5000],
      value: 5,
      ts: 4000,
      width: 64,
      entry: [10, 5000],
    },
  ])('$name', ({ prev, value, ts, width, rate, reset, entry }) => {
    const step = counterRate(prev, value, ts, width);
    expect(step.rate).toBe(rate);
    expect(step.reset ?? false).toBe(reset ?? false);
    expect(step.entry).toEqual(entry ?? [value, ts]);
  });

  it.each([Number.NaN, Number.POSITIVE_INFINITY, -1])('rejects %d and keeps the previous reading', (v) => {
    expect(counterRate([10, 0], v, 1000, 64)).toEqual({ entry: [10, 0], invalid: true });
    expect(counterRate(undefined, v, 1000, 64)).toEqual({ invalid: true });
  });
});

describe('derive: gauges and counters', () => {
  it('passes gauges through and gives counters a rate from the second poll on', () => {
    const raws1 = [gauge('load.1', 0.25), counter('if.in_octets', 1000, 64, { ifName: 'eth0' })];
    const r1 = derive(EMPTY_DERIVE_STATE, raws1, 60_000, []);
    expect(r1.samples).toEqual([{ metric: 'load.1', tags: {}, value: 0.25 }]);
    expect(r1.notes).toEqual([]);
    expect(r1.state).toEqual({ s: { 'if.in_octets{ifName=eth0}': [1000, 60_000] } });

    const raws2 = [gauge('load.1', 0.5), counter('if.in_octets', 7000, 64, { ifName: 'eth0' })];
    const r2 = derive(r1.state, raws2, 120_000, []);
    expect(r2.samples).toEqual([
      { metric: 'load.1', tags: {}, value: 0.5 },
      { metric: 'if.in_octets.rate', tags: { ifName: 'eth0' }, value: 100 },
    ]);
    expect(r2.state.s).toEqual({ 'if.in_octets{ifName=eth0}': [7000, 120_000] });
  });

  it('notes a counter reset and gives no rate for it', () => {
    const s: DeriveState = { s: { 'if.in_octets{ifName=eth0}': [5e12, 0] } };
    const r = derive(s, [counter('if.in_octets', 100, 64, { ifName: 'eth0' })], 60_000, []);
    expect(r.samples).toEqual([]);
    expect(r.notes).toEqual(['counter reset: if.in_octets{ifName=eth0}']);
    expect(r.state.s['if.in_octets{ifName=eth0}']).toEqual([100, 60_000]);
  });

  it('takes every counter as reset when the uptime went down, even one that went up', () => {
    const s: DeriveState = { s: { 'if.in_errors{ifDescr=eth0}': [100, 0] }, u: 86_400 };
    const raws = [gauge('sys.uptime', 30), counter('if.in_errors', 150, 32, { ifDescr: 'eth0' })];
    const r = derive(s, raws, 60_000, []);
    expect(r.samples).toEqual([{ metric: 'sys.uptime', tags: {}, value: 30 }]);
    expect(r.notes).toEqual(['uptime reset: sys.uptime went from 86400 to 30']);
    expect(r.state).toEqual({ s: { 'if.in_errors{ifDescr=eth0}': [150, 60_000] }, u: 30 });
    const next = derive(
      r.state,
      [gauge('sys.uptime', 90), counter('if.in_errors', 210, 32, { ifDescr: 'eth0' })],
      120_000,
      [],
    );
    expect(next.samples).toContainEqual({ metric: 'if.in_errors.rate', tags: { ifDescr: 'eth0' }, value: 1 });
    expect(next.notes).toEqual([]);
  });

  it('keeps the last uptime when a poll lacks it', () => {
    const r = derive({ s: {}, u: 500 }, [gauge('load.1', 1)], 1000, []);
    expect(r.state.u).toBe(500);
  });

  it('skips a non-finite gauge with a note', () => {
    const r = derive(EMPTY_DERIVE_STATE, [gauge('load.1', Number.NaN)], 1000, []);
    expect(r.samples).toEqual([]);
    expect(r.notes).toEqual(['invalid gauge value: load.1']);
  });

  it('gives no rate when two polls share a timestamp', () => {
    const s: DeriveState = { s: { c: [10, 1000] } };
    const r = derive(s, [counter('c', 20, 64)], 1000, []);
    expect(r.samples).toEqual([]);
    expect(r.state.s).toEqual({ c: [20, 1000] });
  });
});

describe('derive: ratio', () => {
  const diskUsed: DerivedMetric = {
    kind: 'ratio',
    name: 'disk.used_pct',
    numerator: 'disk.used',
    denominator: 'disk.size',
    factor: 100,
  };
  const d = (n: string) => ({ hrStorageDescr: n });

  it('divides per series and skips a zero denominator or a missing partner', () => {
    const raws = [
      gauge('disk.used', 25, d('/')),
      gauge('disk.size', 200, d('/')),
      gauge('disk.used', 0, d('/empty')),
      gauge('disk.size', 0, d('/empty')),
      gauge('disk.used', 3, d('/lonely')),
    ];
    const r = derive(EMPTY_DERIVE_STATE, raws, 1000, [diskUsed]);
    expect(r.samples.filter((x) => x.metric === 'disk.used_pct')).toEqual([
      { metric: 'disk.used_pct', tags: d('/'), value: 12.5 },
    ]);
  });

  it('can divide counter rates of this poll', () => {
    const errRatio: DerivedMetric = {
      kind: 'ratio',
      name: 'if.err_ratio',
      numerator: 'if.in_errors.rate',
      denominator: 'if.in_octets.rate',
      factor: 1,
    };
    const t = { ifName: 'eth0' };
    const s: DeriveState = {
      s: { 'if.in_errors{ifName=eth0}': [0, 0], 'if.in_octets{ifName=eth0}': [0, 0] },
    };
    const raws = [counter('if.in_errors', 10, 32, t), counter('if.in_octets', 40, 64, t)];
    const r = derive(s, raws, 1000, [errRatio]);
    expect(r.samples).toContainEqual({ metric: 'if.err_ratio', tags: t, value: 0.25 });
  });
});

describe('derive: cpu', () => {
  const states = ['user', 'nice', 'system', 'idle', 'wait'] as const;
  const cpu: DerivedMetric = {
    kind: 'cpu',
    name: 'cpu',
    ticks: Object.fromEntries(states.map((s) => [s, `cpu.raw.${s}`])),
    idle: ['idle', 'wait'],
  };
  const poll = (ticks: readonly number[]) => ticks.map((v, i) => counter(`cpu.raw.${states[i]}`, v, 32));

  it('gives nothing on the first poll, then exact percentages, and no tick rates', () => {
    const r1 = derive(EMPTY_DERIVE_STATE, poll([1000, 0, 500, 9000, 100]), 0, [cpu]);
    expect(r1.samples).toEqual([]);
    const r2 = derive(r1.state, poll([1050, 0, 525, 9100, 125]), 10_000, [cpu]);
    expect(r2.samples).toEqual([
      { metric: 'cpu.user_pct', tags: {}, value: 25 },
      { metric: 'cpu.nice_pct', tags: {}, value: 0 },
      { metric: 'cpu.system_pct', tags: {}, value: 12.5 },
      { metric: 'cpu.idle_pct', tags: {}, value: 50 },
      { metric: 'cpu.wait_pct', tags: {}, value: 12.5 },
      { metric: 'cpu.busy_pct', tags: {}, value: 37.5 },
    ]);
    expect(r2.notes).toEqual([]);
  });

  it('handles a tick counter wrapping at 2^32', () => {
    const r1 = derive(EMPTY_DERIVE_STATE, poll([2 ** 32 - 10, 0, 0, 0, 0]), 0, [cpu]);
    const r2 = derive(r1.state, poll([30, 0, 20, 40, 0]), 10_000, [cpu]);
    expect(r2.samples.find((x) => x.metric === 'cpu.user_pct')?.value).toBe(40);
    expect(r2.samples.find((x) => x.metric === 'cpu.busy_pct')?.value).toBe(60);
  });

  it('gives nothing when no tick passed or a tick counter reset', () => {
    const r1 = derive(EMPTY_DERIVE_STATE, poll([10, 10, 10, 10, 10]), 0, [cpu]);
    expect(derive(r1.state, poll([10, 10, 10, 10, 10]), 10_000, [cpu]).samples).toEqual([]);
    const reset = derive(r1.state, poll([10, 10, 10, 5, 10]), 10_000, [cpu]);
    expect(reset.samples).toEqual([]);
    expect(reset.notes).toEqual(['counter reset: cpu.raw.idle']);
  });
});

describe('derive: state bounds', () => {
  it('drops series of a polled metric that are gone, keeps unpolled metrics, drops stale ones', () => {
    const s: DeriveState = {
      s: { 'if.in_octets{ifName=eth0}': [1, 0], 'if.in_octets{ifName=eth9}': [1, 0], 'cpu.raw.user': [5, 0] },
    };
    const r = derive(s, [counter('if.in_octets', 2, 64, { ifName: 'eth0' })], 1000, []);
    expect(Object.keys(r.state.s).sort()).toEqual(['cpu.raw.user', 'if.in_octets{ifName=eth0}']);
    const later = derive(r.state, [counter('if.in_octets', 3, 64, { ifName: 'eth0' })], 3_600_000, []);
    expect(Object.keys(later.state.s)).toEqual(['if.in_octets{ifName=eth0}']);
    const custom = derive(s, [], 500, [], { staleAfterMs: 500 });
    expect(custom.state.s).toEqual({});
  });

  it('keeps a 20-metric host under 2 KB packed, and a host with the default set and 8 interfaces under 4 KB', () => {
    const ts = 1_767_225_600_000;
    const raws: RawValue[] = [gauge('sys.uptime', 12_345_678.9)];
    for (const st of ['user', 'nice', 'system', 'idle', 'wait', 'interrupt', 'softirq', 'steal'])
      raws.push(counter(`cpu.raw.${st}`, 4_000_000_000, 32));
    for (const ifName of ['eth0', 'eth1']) {
      raws.push(counter('if.in_octets', 2 ** 52 + 12345, 64, { ifName }));
      raws.push(counter('if.out_octets', 2 ** 52 + 54321, 64, { ifName }));
    }
    for (const ifDescr of ['eth0', 'eth1'])
      for (const m of ['if.in_discards', 'if.in_errors', 'if.out_discards', 'if.out_errors'])
        raws.push(counter(m, 4_000_000_000, 32, { ifDescr }));
    const small = derive(EMPTY_DERIVE_STATE, raws.slice(0, 21), ts, []).state;
    expect(Object.keys(small.s)).toHaveLength(20);
    expect(pack(small).length).toBeLessThan(2048);

    const wide = [...raws.slice(0, 9)];
    for (let i = 0; i < 8; i++)
      for (const m of ['in_octets', 'out_octets', 'in_discards', 'in_errors', 'out_discards', 'out_errors'])
        wide.push(
          counter(`if.${m}`, 2 ** 40, 64, { [m.endsWith('octets') ? 'ifName' : 'ifDescr']: `eth${i}` }),
        );
    const big = derive(EMPTY_DERIVE_STATE, wide, ts, []).state;
    expect(Object.keys(big.s)).toHaveLength(56);
    expect(pack(big).length).toBeLessThan(4096);
  });
});

describe('pushCounter', () => {
  it('uses the counter rule for pushed points and stores them in the same state', () => {
    const a = pushCounter(EMPTY_DERIVE_STATE, 'app.requests', { route: '/' }, 100, 0);
    expect(a.sample).toBeUndefined();
    expect(a.state.s).toEqual({ 'app.requests{route=/}': [100, 0] });
    const b = pushCounter(a.state, 'app.requests', { route: '/' }, 400, 30_000);
    expect(b.sample).toEqual({ metric: 'app.requests.rate', tags: { route: '/' }, value: 10 });
    const c = pushCounter(b.state, 'app.requests', { route: '/' }, 3, 60_000);
    expect(c.sample).toBeUndefined();
    expect(c.note).toBe('counter reset: app.requests{route=/}');
    expect(c.state.s['app.requests{route=/}']).toEqual([3, 60_000]);
  });
});

describe('derive with the default metric set', () => {
  it('turns the default tick counters into cpu percentages with iowait counted as idle', () => {
    const ticks = ['user', 'nice', 'system', 'idle', 'wait', 'interrupt', 'softirq', 'steal'];
    const poll = (values: number[]) => values.map((v, i) => counter(`cpu.raw.${ticks[i]}`, v, 32));
    const r1 = derive(EMPTY_DERIVE_STATE, poll([0, 0, 0, 0, 0, 0, 0, 0]), 0, DEFAULT_METRIC_SET.derived);
    const r2 = derive(r1.state, poll([100, 0, 50, 600, 200, 0, 25, 25]), 10_000, DEFAULT_METRIC_SET.derived);
    const pct = Object.fromEntries(r2.samples.map((x) => [x.metric, x.value]));
    expect(pct).toEqual({
      'cpu.user_pct': 10,
      'cpu.nice_pct': 0,
      'cpu.system_pct': 5,
      'cpu.idle_pct': 60,
      'cpu.wait_pct': 20,
      'cpu.interrupt_pct': 0,
      'cpu.softirq_pct': 2.5,
      'cpu.steal_pct': 2.5,
      'cpu.busy_pct': 20,
    });
  });
});
