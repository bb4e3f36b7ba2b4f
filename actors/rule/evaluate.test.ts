import { beforeEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { SimulatedClock } from '../../test/helpers/clock.ts';
import {
  buildRuleIndex,
  endHostRules,
  evaluateHostRules,
  FORGET_INACTIVE_AFTER_MS,
  type HostSample,
  type RuleIndex,
} from './evaluate.ts';
import { parseRule } from './schema.ts';
import { applyPartial, checkServices, combine, type ServiceRuleState } from './service.ts';
import type { AlertEvent, HostRuleState, Rule, ServicePartial } from './types.ts';

const rule = (id: string, fields: Record<string, unknown>): Rule =>
  parseRule(id, stringify({ metric: 'cpu.busy_pct', condition: '> 90', severity: 3, ...fields }));

const M = 60_000;

/** One host driven through evaluateHostRules with an injected clock. */
class Host {
  state: HostRuleState | undefined;
  readonly events: AlertEvent[] = [];
  readonly partials: { rule: string; partial: ServicePartial }[] = [];
  constructor(
    readonly clock: SimulatedClock,
    readonly host = 'web-1',
    public service = 'web',
  ) {}

  /** Samples at the clock's now; `[metric, value, tags?]`. */
  record(
    index: RuleIndex,
    samples: readonly (readonly [string, number | string, Record<string, string>?])[],
  ) {
    const ts = this.clock.now();
    const list: HostSample[] = samples.map(([metric, value, tags = {}]) => ({ metric, value, tags, ts }));
    return this.apply(index, { host: this.host, service: this.service, samples: list });
  }

  /** A failed poll / tick: no record. */
  check(index: RuleIndex) {
    return this.apply(index, undefined);
  }

  private apply(index: RuleIndex, record: Parameters<typeof evaluateHostRules>[2]) {
    const r = evaluateHostRules(index, this.state, record, this.clock.now());
    this.state = r.state;
    this.events.push(...r.events);
    this.partials.push(...r.partials);
    return r.events.map((e) => [e.status, e.seq, e.labels.ifDescr ?? e.labels.host] as const);
  }
}

let clock: SimulatedClock;
beforeEach(() => {
  clock = new SimulatedClock();
});

describe('evaluateHostRules: host rules', () => {
  it('fires and resolves a series, labelled with host, service, tags and rule labels', () => {
    const index = buildRuleIndex([rule('cpu-high', { labels: { team: 'infra' } })]);
    const h = new Host(clock);
    expect(h.record(index, [['cpu.busy_pct', 50]])).toEqual([]);
    expect(h.state).toBeUndefined();
    clock.advance(M);
    expect(h.record(index, [['cpu.busy_pct', 95]])).toEqual([['firing', 1, 'web-1']]);
    clock.advance(M);
    expect(h.record(index, [['cpu.busy_pct', 20]])).toEqual([['resolved', 2, 'web-1']]);
    const [firing, resolved] = h.events;
    expect(firing!.labels).toEqual({
      alertname: 'cpu-high',
      host: 'web-1',
      service: 'web',
      severity: '3',
      team: 'infra',
    });
    expect(resolved!.fingerprint).toBe(firing!.fingerprint);
    expect(resolved).toMatchObject({
      startsAt: firing!.at,
      endsAt: clock.now(),
      host: 'web-1',
      service: 'web',
    });
  });

  it('keeps one series per tag set, and only the series the selector picks', () => {
    const index = buildRuleIndex([
      rule('if-errors', { metric: 'if.err{ifDescr=~"eth.*"}', condition: '> 0' }),
    ]);
    const h = new Host(clock);
    const events = h.record(index, [
      ['if.err', 3, { ifDescr: 'eth0' }],
      ['if.err', 0, { ifDescr: 'eth1' }],
      ['if.err', 9, { ifDescr: 'lo' }],
      ['if.err', 5, { ifDescr: 'eth2' }],
      ['cpu.busy_pct', 99],
    ]);
    expect(events).toEqual([
      ['firing', 1, 'eth0'],
      ['firing', 1, 'eth2'],
    ]);
    expect(new Set(h.events.map((e) => e.fingerprint)).size).toBe(2);
  });

  it('applies a rule to the hosts of its services only, and ignores string values', () => {
    const index = buildRuleIndex([rule('db-cpu', { services: ['db'] }), rule('any-cpu', {})]);
    const h = new Host(clock);
    expect(h.record(index, [['cpu.busy_pct', 95]]).length).toBe(1);
    expect(h.events[0]!.rule).toBe('any-cpu');
    expect(new Host(clock, 'db-1', 'db').record(index, [['cpu.busy_pct', 95]]).length).toBe(2);
    expect(new Host(clock).record(index, [['cpu.busy_pct', 'high']])).toEqual([]);
  });

  it('goes on counting seq after a resolution (the state keeps the inactive series)', () => {
    const index = buildRuleIndex([rule('cpu-high', {})]);
    const h = new Host(clock);
    const statuses: unknown[] = [];
    for (const v of [95, 10, 95, 10]) {
      statuses.push(...h.record(index, [['cpu.busy_pct', v]]));
      clock.advance(M);
    }
    expect(statuses).toEqual([
      ['firing', 1, 'web-1'],
      ['resolved', 2, 'web-1'],
      ['firing', 3, 'web-1'],
      ['resolved', 4, 'web-1'],
    ]);
    expect(new Set(h.events.map((e) => e.fingerprint)).size).toBe(1);
  });

  it('forgets inactive series not seen for the horizon, at a check', () => {
    const index = buildRuleIndex([rule('cpu-high', {})]);
    const h = new Host(clock);
    h.record(index, [['cpu.busy_pct', 95]]);
    clock.advance(M);
    h.record(index, [['cpu.busy_pct', 10]]);
    h.check(index);
    expect(h.state).toBeDefined();
    clock.advance(FORGET_INACTIVE_AFTER_MS);
    h.check(index);
    expect(h.state).toBeUndefined();
  });
});

describe('evaluateHostRules: no-data', () => {
  const index = buildRuleIndex([
    rule('uptime', { metric: 'sys.uptime', condition: '< 0', no_data: { policy: 'alert', after: 3 } }),
  ]);

  it('fires a no-data alert at a check without a record after N intervals, labelled as before', () => {
    const h = new Host(clock);
    h.record(index, [['sys.uptime', 100]]);
    clock.advance(2 * M);
    expect(h.check(index)).toEqual([]);
    clock.advance(M);
    expect(h.check(index)).toEqual([['firing', 1, 'web-1']]);
    expect(h.events[0]).toMatchObject({
      value: null,
      annotations: { nodata: 'true' },
      labels: { host: 'web-1', service: 'web' },
    });
    clock.advance(M);
    expect(h.record(index, [['sys.uptime', 400]])).toEqual([['resolved', 2, 'web-1']]);
    expect(h.events[1]!.fingerprint).toBe(h.events[0]!.fingerprint);
  });

  it('a check of a host that never reported does nothing', () => {
    expect(evaluateHostRules(index, undefined, undefined, clock.now())).toEqual({
      state: undefined,
      events: [],
      partials: [],
    });
  });
});

describe('evaluateHostRules: state', () => {
  const deepFreeze = <T>(o: T): T => {
    if (typeof o === 'object' && o !== null && !Object.isFrozen(o)) {
      Object.freeze(o);
      for (const v of Object.values(o)) deepFreeze(v);
    }
    return o;
  };

  it('never changes the state it is given (a retried delivery may evaluate it again)', () => {
    const index = buildRuleIndex([
      rule('cpu-high', { for: '1m' }),
      rule('uptime', { metric: 'sys.uptime', condition: '< 0', no_data: { policy: 'alert', after: 1 } }),
    ]);
    const h = new Host(clock);
    for (const v of [95, 95, 10, 95]) {
      if (h.state) deepFreeze(h.state);
      const before = structuredClone(h.state);
      h.record(index, [
        ['cpu.busy_pct', v],
        ['sys.uptime', 5],
      ]);
      clock.advance(M);
      if (before) expect(structuredClone(h.state)).not.toEqual(before);
    }
    deepFreeze(h.state);
    clock.advance(5 * M);
    expect(h.check(index).map(([s]) => s)).toEqual(['firing']);
    const again = evaluateHostRules(buildRuleIndex([], index), h.state, undefined, clock.now());
    // cpu-high is pending again (95 after 10), uptime firing on no-data: deleting both ends both.
    expect(again.events.map((e) => [e.rule, e.status])).toEqual([
      ['cpu-high', 'inactive'],
      ['uptime', 'resolved'],
    ]);
  });

  it('keeps no-data series that never fired once per host, not once per rule', () => {
    const nd = (id: string) =>
      rule(id, { metric: 'if.err', condition: '> 1e9', no_data: { policy: 'alert', after: 2 } });
    const index = buildRuleIndex([nd('a'), nd('b'), nd('c')]);
    const h = new Host(clock);
    h.record(index, [
      ['if.err', 1, { ifDescr: 'eth0' }],
      ['if.err', 1, { ifDescr: 'eth1' }],
    ]);
    expect(Object.keys(h.state!).sort()).toEqual(['@host', '@seen']);
    expect(Object.keys(h.state!['@seen']!.series)).toEqual([
      'if.err{ifDescr="eth0"}',
      'if.err{ifDescr="eth1"}',
    ]);
    clock.advance(2 * M);
    expect(h.check(index)).toEqual([
      ['firing', 1, 'eth0'],
      ['firing', 1, 'eth1'],
      ['firing', 1, 'eth0'],
      ['firing', 1, 'eth1'],
      ['firing', 1, 'eth0'],
      ['firing', 1, 'eth1'],
    ]);
    expect(new Set(h.events.map((e) => e.fingerprint)).size).toBe(6);
  });
});

describe('evaluateHostRules: rules edited while firing keep their alerts consistent', () => {
  const fire = (r: Rule) => {
    const h = new Host(clock);
    h.record(buildRuleIndex([r]), [['cpu.busy_pct', 95]]);
    return h;
  };

  it('a raised threshold resolves the alert at the next sample, with the same fingerprint', () => {
    const v1 = rule('cpu-high', { condition: '> 90' });
    const h = fire(v1);
    const v2 = buildRuleIndex([rule('cpu-high', { condition: '> 97' })], buildRuleIndex([v1]));
    clock.advance(M);
    expect(h.record(v2, [['cpu.busy_pct', 95]])).toEqual([['resolved', 2, 'web-1']]);
    expect(h.events[1]!.fingerprint).toBe(h.events[0]!.fingerprint);
  });

  it('a firing series still over the new threshold goes on firing, with no event', () => {
    const v1 = rule('cpu-high', { condition: '> 90' });
    const h = fire(v1);
    const v2 = buildRuleIndex(
      [rule('cpu-high', { condition: '> 93', annotations: { summary: 'x' } })],
      buildRuleIndex([v1]),
    );
    clock.advance(M);
    expect(h.record(v2, [['cpu.busy_pct', 95]])).toEqual([]);
    expect(h.state?.['cpu-high']).toMatchObject({ version: v2.byId.get('cpu-high')!.version });
  });

  it('a severity change ends the old alert at the edit and fires the new one, seq going on', () => {
    const v1 = rule('cpu-high', {});
    const h = fire(v1);
    const v2 = buildRuleIndex([rule('cpu-high', { severity: 5 })], buildRuleIndex([v1]));
    clock.advance(M);
    expect(h.record(v2, [['cpu.busy_pct', 95]])).toEqual([
      ['resolved', 2, 'web-1'],
      ['firing', 3, 'web-1'],
    ]);
    const [first, resolved, again] = h.events;
    expect(resolved!.fingerprint).toBe(first!.fingerprint);
    expect(resolved!.labels.severity).toBe('3');
    expect(again!.fingerprint).not.toBe(first!.fingerprint);
    expect(again!.labels.severity).toBe('5');
  });

  it('a pending series is dropped when the operator changes', () => {
    const v1 = rule('cpu-high', { for: '5m' });
    const h = fire(v1);
    const v2 = buildRuleIndex([rule('cpu-high', { condition: '< 99', for: '5m' })], buildRuleIndex([v1]));
    clock.advance(M);
    expect(h.record(v2, [['cpu.busy_pct', 95]])).toEqual([
      ['inactive', 2, 'web-1'],
      ['pending', 3, 'web-1'],
    ]);
  });

  it('a series the new selector no longer covers resolves at the edit', () => {
    const v1 = rule('if-errors', { metric: 'if.err', condition: '> 0' });
    const h = new Host(clock);
    h.record(buildRuleIndex([v1]), [
      ['if.err', 1, { ifDescr: 'eth0' }],
      ['if.err', 1, { ifDescr: 'lo' }],
    ]);
    const v2 = buildRuleIndex(
      [rule('if-errors', { metric: 'if.err{ifDescr!="lo"}', condition: '> 0' })],
      buildRuleIndex([v1]),
    );
    clock.advance(M);
    expect(h.check(v2)).toEqual([['resolved', 2, 'lo']]);
  });
});

describe('evaluateHostRules: a deleted rule resolves its alerts', () => {
  it('firing series resolve, pending ones go inactive, and the state lets go of the rule', () => {
    const firing = rule('cpu-high', {});
    const pending = rule('cpu-warn', { condition: '> 80', for: '10m' });
    const v1 = buildRuleIndex([firing, pending]);
    const h = new Host(clock);
    h.record(v1, [['cpu.busy_pct', 95]]);
    const v2 = buildRuleIndex([], v1);
    clock.advance(M);
    expect(h.check(v2)).toEqual([
      ['resolved', 2, 'web-1'],
      ['inactive', 2, 'web-1'],
    ]);
    expect(h.events[2]).toMatchObject({ rule: 'cpu-high', status: 'resolved', endsAt: clock.now() });
    expect(h.events[2]!.fingerprint).toBe(h.events[0]!.fingerprint);
    expect(h.state).toBeUndefined();
  });

  it('a host that left: endHostRules resolves everything with the labels it fired with', () => {
    const index = buildRuleIndex([rule('cpu-high', {})]);
    const h = new Host(clock);
    h.record(index, [['cpu.busy_pct', 95]]);
    const events = endHostRules(index, h.state, clock.now());
    expect(events.map((e) => [e.status, e.fingerprint])).toEqual([['resolved', h.events[0]!.fingerprint]]);
  });

  it('a host moved to another service: its alerts end under the old labels first', () => {
    const index = buildRuleIndex([rule('cpu-high', {})]);
    const h = new Host(clock);
    h.record(index, [['cpu.busy_pct', 95]]);
    h.service = 'api';
    clock.advance(M);
    expect(h.record(index, [['cpu.busy_pct', 95]])).toEqual([
      ['resolved', 2, 'web-1'],
      ['firing', 1, 'web-1'],
    ]);
    expect(h.events.map((e) => e.labels.service)).toEqual(['web', 'web', 'api']);
  });
});

describe('service rules: a 10-host average through service.ts', () => {
  const latency = rule('web-latency', {
    metric: 'http.request_ms',
    scope: 'service',
    aggregate: 'avg',
    condition: '> 500',
    clear: 400,
    interval: '1m',
    no_data: { policy: 'alert', after: 3 },
  });
  const index = buildRuleIndex([latency]);
  let hosts: Host[];
  beforeEach(() => {
    hosts = Array.from({ length: 10 }, (_, i) => new Host(clock, `web-${i}`, 'web'));
  });

  /** Every host reports (two samples each: per-endpoint latency); the partials go to the rule entity. */
  const round = (
    state: ServiceRuleState | undefined,
    values: (host: number) => readonly [number, number],
  ) => {
    const events: AlertEvent[] = [];
    hosts.forEach((h, i) => {
      const [a, b] = values(i);
      h.record(index, [
        ['http.request_ms', a, { path: '/' }],
        ['http.request_ms', b, { path: '/api' }],
      ]);
    });
    for (const h of hosts)
      for (const p of h.partials.splice(0)) {
        expect(p.rule).toBe('web-latency');
        const r = applyPartial(latency, state, p.partial);
        state = r.state;
        events.push(...r.events);
      }
    return { state, events };
  };

  it('sends partials (sum, count, min, max) rather than samples', () => {
    const h = new Host(clock, 'web-x', 'web');
    h.record(index, [
      ['http.request_ms', 100, { path: '/' }],
      ['http.request_ms', 300, { path: '/api' }],
    ]);
    expect(h.partials).toEqual([
      {
        rule: 'web-latency',
        partial: { host: 'web-x', service: 'web', ts: clock.now(), sum: 400, count: 2, min: 100, max: 300 },
      },
    ]);
    expect(h.state).toBeUndefined();
  });

  it('fires on the average of the hosts, not on one host, and resolves below clear', () => {
    let state: ServiceRuleState | undefined;
    // One host at 2,000 ms: average (9 × 200 + 2000) / 10 = 380 — no alert.
    ({ state } = round(state, (i) => (i === 0 ? [2000, 2000] : [200, 200])));
    expect(combine(latency, state!.services.web!.hosts, clock.now())).toBeCloseTo(380);
    expect(state!.services.web!.series).toBeUndefined();
    clock.advance(M);
    // All go to 600 ms, one after the other: each step sees every host's latest value, so it fires
    // once 8 hosts are at 600 and 2 still at their last 200: (8 × 600 + 2 × 200) / 10 = 520.
    let events: AlertEvent[];
    ({ state, events } = round(state, () => [550, 650]));
    expect(events.map((e) => [e.status, e.labels, e.value])).toEqual([
      ['firing', { alertname: 'web-latency', service: 'web', severity: '3' }, 520],
    ]);
    clock.advance(M);
    // 450: between clear and threshold — keeps firing.
    ({ state, events } = round(state, () => [450, 450]));
    expect(events).toEqual([]);
    clock.advance(M);
    ({ state, events } = round(state, () => [100, 100]));
    expect(events.map((e) => e.status)).toEqual(['resolved']);
    expect(events[0]!.host).toBeUndefined();
  });

  it('does not step the series in the first interval of a service: one early host is not the service', () => {
    const h = hosts[0]!;
    h.record(index, [['http.request_ms', 5000]]);
    const first = applyPartial(latency, undefined, h.partials.splice(0)[0]!.partial);
    expect(first.events).toEqual([]);
    expect(first.state.services.web!.series).toBeUndefined();
    clock.advance(M);
    h.record(index, [['http.request_ms', 5000]]);
    expect(
      applyPartial(latency, first.state, h.partials.splice(0)[0]!.partial).events.map((e) => e.status),
    ).toEqual(['firing']);
  });

  it('ages out hosts that stopped, and alerts on no-data when none is left', () => {
    let { state } = round(undefined, () => [100, 100]);
    clock.advance(2 * M);
    let r = checkServices(latency, state, clock.now());
    expect(Object.keys(r.state.services.web!.hosts)).toHaveLength(10);
    clock.advance(1);
    r = checkServices(latency, r.state, clock.now());
    expect(r.state.services.web!.hosts).toEqual({});
    clock.advance(M);
    r = checkServices(latency, r.state, clock.now());
    expect(r.events.map((e) => [e.status, e.value])).toEqual([['firing', null]]);
    state = r.state;
    clock.advance(M);
    ({ state } = round(state, () => [100, 100]));
    expect(state!.services.web!.series).toMatchObject({ phase: 'inactive', seq: 2 });
  });
});

describe('combine', () => {
  const p = (
    host: string,
    ts: number,
    sum: number,
    count: number,
    min: number,
    max: number,
  ): ServicePartial => ({
    host,
    service: 's',
    ts,
    sum,
    count,
    min,
    max,
  });
  const partials = [
    p('a', 0, 10, 2, 4, 6),
    p('b', 0, 30, 1, 30, 30),
    p('old', -121_000, 1000, 1, 1000, 1000),
  ];
  it.each([
    ['avg', 40 / 3],
    ['sum', 40],
    ['min', 4],
    ['max', 30],
    ['count', 3],
  ] as const)('%s over the fresh hosts', (aggregate, value) => {
    const r = rule('x', { scope: 'service', aggregate, interval: '1m' });
    expect(combine(r, partials, 0)).toBeCloseTo(value);
  });

  it('is null when no host is fresh', () => {
    const r = rule('x', { scope: 'service', aggregate: 'avg', interval: '1m' });
    expect(combine(r, partials, 200_000)).toBeNull();
    expect(combine(r, {}, 0)).toBeNull();
  });
});
