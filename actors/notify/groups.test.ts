/**
 * The dispatcher of one receiver with an injected clock (times passed in): group_wait before the first
 * notification, group_interval between changes, repeat_interval for unchanged firing groups, resolved
 * alerts sent once (or dropped without send_resolved), silences muting, stale events ignored, and
 * notification ids that are the same whenever the same notification is rebuilt.
 */
import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import type { AlertEvent, Labels } from '../rule/types.ts';
import {
  type AlertMessage,
  addAlert,
  dueAt,
  EMPTY_GROUPS,
  flushDue,
  type GroupsState,
  notificationId,
} from './groups.ts';
import { parseReceiver } from './receivers.ts';
import { parseSilence } from './silences.ts';
import type { GroupTiming, Notification, Silence } from './types.ts';

const T = 1_777_629_600_000;
const S = 1000;
const M = 60 * S;
const H = 60 * M;
const TIMING: GroupTiming = {
  groupBy: ['service'],
  groupWaitMs: 30 * S,
  groupIntervalMs: 5 * M,
  repeatIntervalMs: 4 * H,
};
const KEY = 'root{service="pay"}';
const webhook = parseReceiver('infra', { kind: 'webhook', url: 'https://x.example/hook' });
const quiet = parseReceiver('infra', {
  kind: 'webhook',
  url: 'https://x.example/hook',
  send_resolved: false,
});

const event = (
  fp: string,
  seq: number,
  status: AlertEvent['status'],
  at: number,
  labels: Labels = {},
): AlertEvent => ({
  type: '@argus.alert',
  fingerprint: fp,
  seq,
  rule: 'cpu',
  status,
  severity: 4,
  labels: { alertname: 'cpu', service: 'pay', host: fp, ...labels },
  annotations: {},
  value: 1,
  startsAt: at,
  ...(status === 'resolved' ? { endsAt: at } : {}),
  at,
});

const routed = (alert: AlertEvent, timing = TIMING): Omit<AlertMessage, 'type' | 'at'> => ({
  alert,
  routeId: 'root',
  groupKey: KEY,
  groupLabels: { service: 'pay' },
  timing,
});

/** A scripted receiver: add events and flush at given times; collects what it sends. */
const script = (receiver = webhook, silences: Silence[] = []) => {
  let state: GroupsState = EMPTY_GROUPS;
  const sent: Notification[] = [];
  return {
    add(alert: AlertEvent, at = alert.at, timing = TIMING) {
      state = addAlert(state, routed(alert, timing), at);
      return this;
    },
    flush(at: number) {
      const r = flushDue(state, receiver, silences, at);
      state = r.state;
      sent.push(...r.notifications);
      return r.notifications.map((n) => n.alerts.map((a) => `${a.fingerprint}:${a.status}`).join(' '));
    },
    get state() {
      return state;
    },
    due: () => dueAt(state),
    sent,
  };
};

describe('group_wait', () => {
  it('waits group_wait before the first notification and gathers what came meanwhile', () => {
    const r = script().add(event('a', 1, 'firing', T));
    expect(r.due()).toBe(T + 30 * S);
    expect(r.flush(T + 29 * S)).toEqual([]);
    r.add(event('b', 1, 'firing', T + 10 * S));
    expect(r.due()).toBe(T + 30 * S);
    expect(r.flush(T + 30 * S)).toEqual(['a:firing b:firing']);
  });

  it('flushes at once when group_wait is 0, or when the alert started longer than group_wait ago', () => {
    const zero = script().add(event('a', 1, 'firing', T), T, { ...TIMING, groupWaitMs: 0 });
    expect(zero.due()).toBe(T);
    expect(zero.flush(T)).toEqual(['a:firing']);
    const late = script().add(event('a', 1, 'firing', T), T + 31 * S);
    expect(late.due()).toBe(T + 31 * S);
  });

  it('sends nothing for an alert that fired and resolved within group_wait', () => {
    const r = script()
      .add(event('a', 1, 'firing', T))
      .add(event('a', 2, 'resolved', T + 5 * S));
    expect(r.flush(T + 30 * S)).toEqual([]);
    expect(r.state.groups).toEqual({});
    expect(r.due()).toBeNull();
  });
});

describe('group_interval', () => {
  it('sends a change at the next tick of the group_interval grid, not before', () => {
    const r = script().add(event('a', 1, 'firing', T));
    r.flush(T + 30 * S);
    r.add(event('b', 1, 'firing', T + 31 * S));
    expect(r.due()).toBe(T + 30 * S + 5 * M);
    expect(r.flush(T + 30 * S + 5 * M - 1)).toEqual([]);
    expect(r.flush(T + 30 * S + 5 * M)).toEqual(['a:firing b:firing']);
  });

  it('after an idle time, a change waits only for the next grid tick', () => {
    const r = script().add(event('a', 1, 'firing', T));
    r.flush(T + 30 * S);
    r.add(event('b', 1, 'firing', T + 2 * H + 1 * M));
    expect(r.due()).toBe(T + 30 * S + 25 * 5 * M);
  });
});

describe('repeat_interval', () => {
  it('re-sends an unchanged firing group after repeat_interval, as a new notification', () => {
    const r = script().add(event('a', 1, 'firing', T));
    r.flush(T + 30 * S);
    expect(r.due()).toBe(T + 30 * S + 4 * H);
    expect(r.flush(T + 30 * S + 4 * H - 1)).toEqual([]);
    expect(r.flush(T + 30 * S + 4 * H)).toEqual(['a:firing']);
    expect(r.flush(T + 30 * S + 8 * H)).toEqual(['a:firing']);
    const [first, repeat, again] = r.sent;
    expect(repeat!.id).not.toBe(first!.id);
    expect(again!.id).not.toBe(repeat!.id);
    expect(repeat!.id).toBe(notificationId('infra', KEY, first!.alerts, 1));
  });
});

describe('resolved alerts', () => {
  it('with send_resolved: notified once, then gone from the group', () => {
    const r = script()
      .add(event('a', 1, 'firing', T))
      .add(event('b', 1, 'firing', T));
    r.flush(T + 30 * S);
    r.add(event('b', 2, 'resolved', T + 1 * M));
    expect(r.flush(T + 30 * S + 5 * M)).toEqual(['a:firing b:resolved']);
    expect(Object.keys(r.state.groups[KEY]!.alerts)).toEqual(['a']);
    r.add(event('a', 2, 'resolved', T + 6 * M));
    expect(r.flush(T + 30 * S + 10 * M)).toEqual(['a:resolved']);
    expect(r.state.groups).toEqual({});
  });

  it('without send_resolved: dropped, and nothing is sent when the last one resolves', () => {
    const r = script(quiet)
      .add(event('a', 1, 'firing', T))
      .add(event('b', 1, 'firing', T));
    expect(r.flush(T + 30 * S)).toEqual(['a:firing b:firing']);
    r.add(event('b', 2, 'resolved', T + 1 * M));
    expect(r.flush(T + 30 * S + 5 * M)).toEqual([]);
    expect(Object.keys(r.state.groups[KEY]!.alerts)).toEqual(['a']);
    r.add(event('a', 2, 'resolved', T + 6 * M));
    expect(r.flush(T + 30 * S + 10 * M)).toEqual([]);
    expect(r.state.groups).toEqual({});
  });

  it('re-firing (a new seq) is a change and is notified again', () => {
    const r = script().add(event('a', 1, 'firing', T));
    r.flush(T + 30 * S);
    r.add(event('a', 2, 'resolved', T + 1 * M)).add(event('a', 3, 'firing', T + 2 * M));
    expect(r.flush(T + 30 * S + 5 * M)).toEqual(['a:firing']);
    expect(r.sent[1]!.alerts).toEqual([{ fingerprint: 'a', seq: 3, status: 'firing' }]);
  });
});

describe('silences', () => {
  const silence = (matcher: string, startsAt: number, endsAt: number) =>
    parseSilence('s', {
      matchers: [matcher],
      starts_at: startsAt,
      ends_at: endsAt,
      created_by: 'a',
      comment: 'c',
    });

  it('leave silenced alerts out of the notification', () => {
    const r = script(webhook, [silence('host="b"', T, T + H)])
      .add(event('a', 1, 'firing', T))
      .add(event('b', 1, 'firing', T));
    expect(r.flush(T + 30 * S)).toEqual(['a:firing']);
  });

  it('a group whose every alert is silenced sends nothing, and is looked at again each group_interval', () => {
    const r = script(webhook, [silence('service="pay"', T, T + 10 * M)]).add(event('a', 1, 'firing', T));
    expect(r.flush(T + 30 * S)).toEqual([]);
    expect(r.due()).toBe(T + 30 * S + 5 * M);
    expect(r.flush(T + 30 * S + 5 * M)).toEqual([]);
    // The silence ended: the alert, never notified, goes out at the next look.
    expect(r.flush(T + 30 * S + 10 * M)).toEqual(['a:firing']);
  });
});

describe('events that change nothing', () => {
  it.each([
    ['a pending event', [event('a', 1, 'pending', T)]],
    ['an inactive event', [event('a', 1, 'inactive', T)]],
    ['a resolved event for an alert the group does not hold', [event('a', 2, 'resolved', T)]],
  ])('%s', (_, events) => {
    const r = script();
    for (const e of events) r.add(e);
    expect(r.state).toBe(EMPTY_GROUPS);
  });

  it('a stale or repeated event', () => {
    const r = script().add(event('a', 5, 'firing', T));
    const before = r.state;
    r.add(event('a', 5, 'firing', T + 1)).add(event('a', 4, 'resolved', T + 2));
    expect(r.state).toBe(before);
  });
});

describe('notification ids', () => {
  it('are sha256 of receiver, group key and the sorted fingerprint:seq:status list', () => {
    const r = script()
      .add(event('b', 2, 'firing', T))
      .add(event('a', 7, 'firing', T));
    r.flush(T + 30 * S);
    const expected = createHash('sha256').update(`infra\n${KEY}\na:7:firing,b:2:firing`).digest('hex');
    expect(r.sent[0]!.id).toBe(expected);
  });

  it('are the same when the same inputs are replayed (after a crash)', () => {
    const run = () => {
      const r = script()
        .add(event('a', 1, 'firing', T))
        .add(event('b', 1, 'firing', T + S));
      r.flush(T + 30 * S);
      r.add(event('a', 2, 'resolved', T + M));
      r.flush(T + 30 * S + 5 * M);
      return r.sent.map((n) => [n.id, n.body]);
    };
    expect(run()).toEqual(run());
  });

  it('carry the Alertmanager body of the group', () => {
    const r = script().add(event('a', 1, 'firing', T));
    r.flush(T + 30 * S);
    const body = JSON.parse(r.sent[0]!.body);
    expect(body).toMatchObject({
      version: '4',
      receiver: 'infra',
      groupKey: KEY,
      status: 'firing',
      groupLabels: { service: 'pay' },
    });
    expect(r.sent[0]).toMatchObject({
      groupKey: KEY,
      createdAt: T + 30 * S,
      attempts: 0,
      nextAttemptAt: T + 30 * S,
    });
  });
});
