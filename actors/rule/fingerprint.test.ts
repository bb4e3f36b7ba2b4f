import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import {
  alertEvent,
  alertLabels,
  fingerprint,
  formatValue,
  parseSeriesKey,
  renderTemplate,
  seriesKey,
} from './fingerprint.ts';
import { stepSeries } from './machine.ts';
import { parseRule } from './schema.ts';

const rule = (fields: Record<string, unknown> = {}) =>
  parseRule('cpu-high', stringify({ metric: 'cpu', condition: '> 90', severity: 4, ...fields }));

describe('seriesKey', () => {
  it.each([
    ['cpu', {}, 'cpu'],
    ['if.rate', { ifDescr: 'eth0' }, 'if.rate{ifDescr="eth0"}'],
    ['m', { b: '2', a: '1' }, 'm{a="1",b="2"}'],
    ['m', { a: 'say "hi"\\', 'x=y': 'v' }, 'm{a="say \\"hi\\"\\\\",x\\=y="v"}'],
  ])('%s %j → %s', (metric, tags, key) => {
    expect(seriesKey(metric, tags)).toBe(key);
    expect(parseSeriesKey(key)).toEqual({ metric, tags });
  });

  it('does not depend on the order of the tags', () => {
    expect(seriesKey('m', { a: '1', b: '2', c: '3' })).toBe(seriesKey('m', { c: '3', a: '1', b: '2' }));
  });

  it('parses back awkward names and values', () => {
    const tags = { 'a,b': 'x}y', '{': '\n', q: '"' };
    expect(parseSeriesKey(seriesKey('m', tags))).toEqual({ metric: 'm', tags });
  });
});

describe('alertLabels', () => {
  it('has the tags, host, service, the rule labels (which win), alertname and severity, sorted', () => {
    const r = rule({ labels: { team: 'infra', ifDescr: 'overridden' } });
    const labels = alertLabels(r, {
      host: 'web-1',
      service: 'web',
      tags: { ifDescr: 'eth0', host: 'pushed' },
    });
    expect(labels).toEqual({
      alertname: 'cpu-high',
      host: 'web-1',
      ifDescr: 'overridden',
      service: 'web',
      severity: '4',
      team: 'infra',
    });
    expect(Object.keys(labels)).toEqual([...Object.keys(labels)].sort());
  });

  it('leaves out host for a service series, and empty values', () => {
    expect(alertLabels(rule(), { service: '', tags: { x: '' } })).toEqual({
      alertname: 'cpu-high',
      severity: '4',
    });
  });
});

describe('fingerprint', () => {
  const labels = { alertname: 'cpu-high', host: 'web-1', severity: '4' };

  it('is 16 hex characters, independent of label order, and differs by rule and labels', () => {
    const f = fingerprint('cpu-high', labels);
    expect(f).toMatch(/^[0-9a-f]{16}$/);
    expect(fingerprint('cpu-high', { severity: '4', host: 'web-1', alertname: 'cpu-high' })).toBe(f);
    expect(fingerprint('other', labels)).not.toBe(f);
    expect(fingerprint('cpu-high', { ...labels, host: 'web-2' })).not.toBe(f);
  });

  it('is the same in another process', () => {
    const script = `import { fingerprint } from './actors/rule/fingerprint.ts'; process.stdout.write(fingerprint('cpu-high', ${JSON.stringify(labels)}));`;
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], {
      cwd: new URL('../..', import.meta.url),
      encoding: 'utf8',
    });
    expect(r.stderr).toBe('');
    expect(r.stdout).toBe(fingerprint('cpu-high', labels));
  });
});

describe('renderTemplate', () => {
  const vars = {
    rule: 'cpu-high',
    host: 'web-1',
    service: 'web',
    value: 93.456789,
    threshold: 90,
    labels: { ifDescr: 'eth0' },
  };
  it.each([
    ['CPU {{value}}% on {{host}}', 'CPU 93.4568% on web-1'],
    ['{{ rule }} > {{threshold}} ({{service}})', 'cpu-high > 90 (web)'],
    ['{{labels.ifDescr}}/{{labels.missing}}', 'eth0/'],
    ['{{unknown}} {{ host', '{{unknown}} {{ host'],
    ['no placeholders', 'no placeholders'],
  ])('%s', (text, out) => {
    expect(renderTemplate(text, vars)).toBe(out);
  });

  it.each([
    [null, 'nodata'],
    [42, '42'],
    [0.1 + 0.2, '0.3'],
    [-1.23456, '-1.2346'],
    [0.000123456, '0.0001235'],
    [1e21, '1e+21'],
  ])('formats %s as %s', (v, s) => {
    expect(formatValue(v)).toBe(s);
  });
});

describe('alertEvent', () => {
  const r = rule({ for: '1m', annotations: { summary: '{{host}} at {{value}}' } });
  const labels = alertLabels(r, { host: 'web-1', service: 'web', tags: {} });

  it('builds the event of each transition: startsAt is the pending start, then the fire time', () => {
    const pending = stepSeries(r, undefined, { at: 1000, value: 95 });
    const firing = stepSeries(r, pending.next, { at: 61_000, value: 96 });
    const resolved = stepSeries(r, firing.next, { at: 121_000, value: 10 });
    const ctx = (at: number) => ({ at, host: 'web-1', service: 'web' });
    const events = [
      alertEvent(r, labels, undefined, pending, ctx(1000)),
      alertEvent(r, labels, pending.next, firing, ctx(61_000)),
      alertEvent(r, labels, firing.next, resolved, ctx(121_000)),
    ];
    expect(
      events.map((e) => [e?.status, e?.seq, e?.startsAt, e?.endsAt, e?.value, e?.annotations.summary]),
    ).toEqual([
      ['pending', 1, 1000, undefined, 95, 'web-1 at 95'],
      ['firing', 2, 61_000, undefined, 96, 'web-1 at 96'],
      ['resolved', 3, 61_000, 121_000, 10, 'web-1 at 10'],
    ]);
    expect(events[1]).toEqual({
      type: '@argus.alert',
      fingerprint: fingerprint('cpu-high', labels),
      seq: 2,
      rule: 'cpu-high',
      status: 'firing',
      severity: 4,
      labels,
      annotations: { summary: 'web-1 at 96' },
      value: 96,
      startsAt: 61_000,
      at: 61_000,
      host: 'web-1',
      service: 'web',
    });
  });

  it('gives nothing for a step without a transition', () => {
    expect(alertEvent(r, labels, undefined, { next: undefined }, { at: 0 })).toBeUndefined();
  });
});
