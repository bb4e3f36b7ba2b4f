/**
 * The Alertmanager webhook v4 body, byte for byte for a fixed group: Go's field order and map key
 * order, QuoteMeta'd receiver, zero endsAt for firing alerts, RFC 3339 times with trimmed fractions,
 * Alertmanager's alert order, common labels/annotations over the alerts sent, max_alerts truncation,
 * Go's HTML-safe escapes and trailing newline.
 */
import { describe, expect, it } from 'vitest';
import type { AlertEvent } from '../rule/types.ts';
import {
  ALERTMANAGER_V4_FIELDS,
  alertmanagerBody,
  alertmanagerMessage,
  encodeGoJSON,
  quoteMeta,
  rfc3339,
  sortAlerts,
} from './alertmanager.ts';

const T0 = Date.parse('2026-05-01T10:00:00Z');

const alert = (over: Partial<AlertEvent> & Pick<AlertEvent, 'fingerprint' | 'labels'>): AlertEvent => ({
  type: '@argus.alert',
  seq: 2,
  rule: 'cpu-high',
  status: 'firing',
  severity: 4,
  annotations: { summary: 'CPU busy' },
  value: 97,
  startsAt: T0,
  at: T0,
  ...over,
});

const web2 = alert({
  fingerprint: 'b2',
  labels: { alertname: 'cpu-high', host: 'web-2', service: 'web', severity: '4' },
  annotations: { summary: 'CPU busy', description: 'web-2 at 97%' },
});
const web1 = alert({
  fingerprint: 'a1',
  seq: 3,
  status: 'resolved',
  labels: { alertname: 'cpu-high', host: 'web-1', service: 'web', severity: '4' },
  annotations: { summary: 'CPU busy', description: 'web-1 at 91%' },
  startsAt: T0 - 60_500,
  endsAt: T0 + 250,
});

describe('alertmanagerBody', () => {
  it('is exactly the v4 message for a fixed group', () => {
    const body = alertmanagerBody({
      receiver: 'web.hook',
      groupKey: 'root.1{alertname="cpu-high",service="web"}',
      groupLabels: { service: 'web', alertname: 'cpu-high' },
      alerts: [web2, web1],
      maxAlerts: 0,
      externalURL: 'http://argus.example:8080',
    });
    expect(body).toBe(
      `${[
        '{"receiver":"web\\\\.hook","status":"firing","alerts":[',
        '{"status":"resolved","labels":{"alertname":"cpu-high","host":"web-1","service":"web","severity":"4"},',
        '"annotations":{"description":"web-1 at 91%","summary":"CPU busy"},',
        '"startsAt":"2026-05-01T09:58:59.5Z","endsAt":"2026-05-01T10:00:00.25Z","generatorURL":"","fingerprint":"a1"},',
        '{"status":"firing","labels":{"alertname":"cpu-high","host":"web-2","service":"web","severity":"4"},',
        '"annotations":{"description":"web-2 at 97%","summary":"CPU busy"},',
        '"startsAt":"2026-05-01T10:00:00Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"","fingerprint":"b2"}],',
        '"groupLabels":{"alertname":"cpu-high","service":"web"},',
        '"commonLabels":{"alertname":"cpu-high","service":"web","severity":"4"},',
        '"commonAnnotations":{"summary":"CPU busy"},',
        '"externalURL":"http://argus.example:8080","version":"4",',
        '"groupKey":"root.1{alertname=\\"cpu-high\\",service=\\"web\\"}","truncatedAlerts":0}',
      ].join('')}\n`,
    );
    const parsed = JSON.parse(body);
    expect(Object.keys(parsed)).toEqual(ALERTMANAGER_V4_FIELDS.message);
    expect(Object.keys(parsed.alerts[0])).toEqual(ALERTMANAGER_V4_FIELDS.alert);
  });

  it('is resolved when no alert fires, and truncates to max_alerts after sorting', () => {
    const resolved = (fp: string, host: string) =>
      alert({ fingerprint: fp, status: 'resolved', endsAt: T0 + 1000, labels: { alertname: 'a', host } });
    const m = alertmanagerMessage({
      receiver: 'r',
      groupKey: 'k',
      groupLabels: {},
      alerts: [resolved('3', 'c'), resolved('1', 'a'), resolved('2', 'b')],
      maxAlerts: 2,
    });
    expect(m.status).toBe('resolved');
    expect(m.alerts.map((a) => a.fingerprint)).toEqual(['1', '2']);
    expect(m.truncatedAlerts).toBe(1);
    expect(m.externalURL).toBe('');
    expect(m.commonLabels).toEqual({ alertname: 'a' });
  });
});

describe('Alertmanager details', () => {
  it.each([
    [T0, '2026-05-01T10:00:00Z'],
    [T0 + 500, '2026-05-01T10:00:00.5Z'],
    [T0 + 120, '2026-05-01T10:00:00.12Z'],
    [T0 + 7, '2026-05-01T10:00:00.007Z'],
  ])('rfc3339(%i) = %s', (ms, text) => {
    expect(rfc3339(ms)).toBe(text);
  });

  it.each([
    ['infra', 'infra'],
    ['web.hook', 'web\\.hook'],
    ['a+b(c)|[d]{e}^$*?\\', 'a\\+b\\(c\\)\\|\\[d\\]\\{e\\}\\^\\$\\*\\?\\\\'],
    ['pay-owners_1', 'pay-owners_1'],
  ])('quoteMeta(%s) = %s', (s, q) => {
    expect(quoteMeta(s)).toBe(q);
  });

  it('escapes like Go json.Encoder', () => {
    expect(encodeGoJSON({ a: '<b> & "c"\u2028\n' })).toBe(
      '{"a":"\\u003cb\\u003e \\u0026 \\"c\\"\\u2028\\n"}\n',
    );
  });

  it('sorts by job, then instance, then label sets (fewer labels first, then LabelSet.Before)', () => {
    const l = (labels: Record<string, string>) => ({ labels });
    const sorted = sortAlerts([
      l({ x: '1', y: '2' }),
      l({ instance: 'b' }),
      l({ job: 'z', instance: 'a' }),
      l({ job: 'a', instance: 'b' }),
      l({ job: 'a', instance: 'a' }),
      l({ z: '9' }),
      l({ instance: 'a' }),
      l({ a: '1', b: '2' }),
    ]);
    expect(sorted.map((s) => s.labels)).toEqual([
      { job: 'a', instance: 'a' },
      { job: 'a', instance: 'b' },
      { job: 'z', instance: 'a' },
      { instance: 'a' },
      { instance: 'b' },
      { z: '9' },
      // Go's LabelSet.Before: the set lacking the first name of the sorted union comes first.
      { x: '1', y: '2' },
      { a: '1', b: '2' },
    ]);
  });
});
