/**
 * Alertmanager's dispatcher for one receiver, as pure functions over data kept in the receiver's
 * snapshot: aggregation groups (dispatch.go `aggrGroup`) and the decision whether a flush notifies
 * (notify.go `DedupStage.needsUpdate`), with the time passed in.
 *
 * - A new group waits `group_wait` before its first flush (at once when the alert started longer than
 *   group_wait ago, as Alertmanager). After a flush, changes wait for the next tick of the group's
 *   `group_interval` grid; an unchanged firing group is notified again after `repeat_interval` (at the
 *   first grid tick past it).
 * - A flush notifies when the group has firing alerts not in the last notification, or every alert
 *   the last notification reported firing is gone (all resolved), or — with send_resolved — resolved
 *   alerts not notified yet, or the repeat interval passed. A group never notified that holds only
 *   resolved alerts notifies nothing (the receiver never heard of them).
 * - Silenced alerts (at flush time) are left out; a group whose every alert is silenced does nothing,
 *   and is looked at again every group_interval while any of its alerts is silenced.
 * - Resolved alerts leave the group after the flush that saw them: sent once with send_resolved, else
 *   dropped. A group with no alerts left is removed.
 * - Only firing and resolved events matter (pending/inactive are ignored), a stale or repeated event
 *   (seq not above the one held) changes nothing, and a resolved event for an alert the group does not
 *   hold is ignored.
 *
 * A notification's id — its idempotency key — is the hex sha256 of receiver id, group key and the
 * sorted `fingerprint:seq:status` of the alerts it carries, so the same notification rebuilt after a
 * crash has the same key. A repeat (repeat_interval) is a new notification: its id also has the repeat
 * number, or an idempotent receiver would drop every repeat as a duplicate.
 */
import { createHash } from 'node:crypto';
import type { AlertEvent, Labels } from '../rule/types.ts';
import { alertmanagerBody, type GroupNotice, sortAlerts } from './alertmanager.ts';
import { chatBody } from './chat.ts';
import { isSilenced } from './silences.ts';
import type { GroupTiming, Notification, ReceiverConfig, ReceiverMessage, Silence } from './types.ts';

export type NotifiedStatus = 'firing' | 'resolved';

export interface NotifiedAlert {
  readonly seq: number;
  readonly status: NotifiedStatus;
}

/** One aggregation group of a receiver. Plain data (it lives in the snapshot). */
export interface Group {
  readonly routeId: string;
  /** The group-by labels' values. */
  readonly labels: Labels;
  /** The route's timing, as of the latest alert routed here. */
  readonly timing: GroupTiming;
  /** The latest firing or resolved event of each alert, by fingerprint. */
  readonly alerts: Readonly<Record<string, AlertEvent>>;
  readonly firstAt: number;
  readonly nextFlushAt: number;
  /** The last flush (the anchor of the group_interval grid); absent before the first. */
  readonly lastFlushAt?: number;
  /** When the last notification was decided (repeat_interval counts from here). */
  readonly lastNotifiedAt?: number;
  /** What the last notification reported, by fingerprint. */
  readonly lastNotified: Readonly<Record<string, NotifiedAlert>>;
  /** Repeats of the current content so far (part of a repeat's id). */
  readonly repeats: number;
}

export interface GroupsState {
  readonly groups: Readonly<Record<string, Group>>;
}

export const EMPTY_GROUPS: GroupsState = { groups: {} };

export type AlertMessage = Extract<ReceiverMessage, { type: 'receiver.alert' }>;

export interface FlushOptions {
  /** Sent as externalURL (webhook). */
  readonly externalURL?: string;
  readonly generatorURL?: (alert: AlertEvent) => string;
}

export interface FlushResult {
  readonly state: GroupsState;
  /** In the order they are to be delivered. */
  readonly notifications: readonly Notification[];
}

/** The first tick of the grid `anchor + k × interval` (k ≥ 1) at or after `t`. */
export const gridTick = (anchor: number, interval: number, t: number): number =>
  anchor + interval * Math.max(1, Math.ceil((t - anchor) / interval));

const isNotifiable = (status: string): status is NotifiedStatus =>
  status === 'firing' || status === 'resolved';

/** Adds one routed alert event to its group (pure). */
export const addAlert = (
  state: GroupsState,
  msg: Omit<AlertMessage, 'type' | 'at'>,
  at: number,
): GroupsState => {
  const { alert, groupKey, timing } = msg;
  if (!isNotifiable(alert.status)) return state;
  const g = state.groups[groupKey];
  const held = g?.alerts[alert.fingerprint];
  const notified = g?.lastNotified[alert.fingerprint];
  if ((held && held.seq >= alert.seq) || (notified && notified.seq >= alert.seq)) return state;
  if (alert.status === 'resolved' && !held) return state;
  const startedLongAgo = alert.startsAt + timing.groupWaitMs <= at;
  let next: Group;
  if (!g) {
    next = {
      routeId: msg.routeId,
      labels: msg.groupLabels,
      timing,
      alerts: { [alert.fingerprint]: alert },
      firstAt: at,
      nextFlushAt: startedLongAgo ? at : at + timing.groupWaitMs,
      lastNotified: {},
      repeats: 0,
    };
  } else {
    const due =
      g.lastFlushAt === undefined
        ? startedLongAgo
          ? at
          : g.nextFlushAt
        : gridTick(g.lastFlushAt, timing.groupIntervalMs, at);
    next = {
      ...g,
      timing,
      alerts: { ...g.alerts, [alert.fingerprint]: alert },
      nextFlushAt: Math.min(g.nextFlushAt, due),
    };
  }
  return { groups: { ...state.groups, [groupKey]: next } };
};

/** When the earliest group is due for a flush; null when there are no groups. */
export const dueAt = (state: GroupsState): number | null => {
  let due: number | null = null;
  for (const g of Object.values(state.groups)) if (due === null || g.nextFlushAt < due) due = g.nextFlushAt;
  return due;
};

const alertKey = (a: { fingerprint: string; seq: number }) => `${a.fingerprint}:${a.seq}`;

/** The idempotency key of a notification (see the module doc). */
export const notificationId = (
  receiverId: string,
  groupKey: string,
  alerts: readonly { readonly fingerprint: string; readonly seq: number; readonly status: string }[],
  repeat = 0,
): string => {
  const list = alerts.map((a) => `${a.fingerprint}:${a.seq}:${a.status}`).sort();
  const text = `${receiverId}\n${groupKey}\n${list.join(',')}${repeat > 0 ? `\nrepeat:${repeat}` : ''}`;
  return createHash('sha256').update(text).digest('hex');
};

/** Alertmanager's needsUpdate over the visible alerts; 'repeat' when only the repeat interval says so. */
const decide = (
  g: Group,
  firing: readonly AlertEvent[],
  resolved: readonly AlertEvent[],
  sendResolved: boolean,
  at: number,
): 'no' | 'changed' | 'repeat' => {
  if (firing.length === 0 && resolved.length === 0) return 'no';
  if (g.lastNotifiedAt === undefined) return firing.length > 0 ? 'changed' : 'no';
  const prev = Object.entries(g.lastNotified);
  const prevFiring = new Set(
    prev.filter(([, n]) => n.status === 'firing').map(([fp, n]) => `${fp}:${n.seq}`),
  );
  const prevResolved = new Set(
    prev.filter(([, n]) => n.status === 'resolved').map(([fp, n]) => `${fp}:${n.seq}`),
  );
  if (!firing.every((a) => prevFiring.has(alertKey(a)))) return 'changed';
  if (firing.length === 0) return prevFiring.size > 0 ? 'changed' : 'no';
  if (sendResolved && !resolved.every((a) => prevResolved.has(alertKey(a)))) return 'changed';
  return at >= g.lastNotifiedAt + g.timing.repeatIntervalMs ? 'repeat' : 'no';
};

const bodyOf = (receiver: ReceiverConfig, notice: GroupNotice): string => {
  switch (receiver.kind) {
    case 'webhook':
      return alertmanagerBody(notice);
    case 'chat':
      return chatBody(notice);
    default: {
      const never: never = receiver.kind;
      throw new Error(`unknown receiver kind ${String(never)}`);
    }
  }
};

/** One group's flush: its next state (undefined: the group is done) and its notification, if any. */
const flushGroup = (
  key: string,
  g: Group,
  receiver: ReceiverConfig,
  silences: readonly Silence[],
  at: number,
  options: FlushOptions,
): { group: Group | undefined; notification?: Notification } => {
  const all = Object.values(g.alerts);
  const visible = all.filter((a) => !isSilenced(silences, a.labels, at));
  const firing = visible.filter((a) => a.status === 'firing');
  const resolved = visible.filter((a) => a.status === 'resolved');
  const decision = decide(g, firing, resolved, receiver.sendResolved, at);
  let group: Group = { ...g, lastFlushAt: at };
  let notification: Notification | undefined;
  if (decision !== 'no') {
    const repeats = decision === 'repeat' ? g.repeats + 1 : 0;
    const lastNotified: Record<string, NotifiedAlert> = {};
    for (const a of visible) lastNotified[a.fingerprint] = { seq: a.seq, status: a.status as NotifiedStatus };
    group = { ...group, lastNotifiedAt: at, lastNotified, repeats };
    const sent = sortAlerts(receiver.sendResolved ? visible : firing);
    if (sent.length > 0) {
      const carried = sent.map((a) => ({
        fingerprint: a.fingerprint,
        seq: a.seq,
        status: a.status as NotifiedStatus,
      }));
      notification = {
        id: notificationId(receiver.id, key, carried, repeats),
        groupKey: key,
        body: bodyOf(receiver, {
          receiver: receiver.id,
          groupKey: key,
          groupLabels: g.labels,
          alerts: sent,
          maxAlerts: receiver.maxAlerts,
          ...options,
        }),
        alerts: carried,
        createdAt: at,
        attempts: 0,
        nextAttemptAt: at,
      };
    }
  }
  // Resolved alerts leave after the flush that saw them, notified or not (Alertmanager's flush).
  const remaining: Record<string, AlertEvent> = {};
  for (const a of all) if (a.status === 'firing') remaining[a.fingerprint] = a;
  if (Object.keys(remaining).length === 0)
    return notification ? { group: undefined, notification } : { group: undefined };
  const anySilenced = visible.length < all.length;
  const { groupIntervalMs, repeatIntervalMs } = g.timing;
  const nextFlushAt =
    anySilenced || group.lastNotifiedAt === undefined
      ? at + groupIntervalMs
      : gridTick(at, groupIntervalMs, group.lastNotifiedAt + repeatIntervalMs);
  group = { ...group, alerts: remaining, nextFlushAt };
  return notification ? { group, notification } : { group };
};

/**
 * Flushes every group due at `at` (earliest first, then by group key) for `receiver`, with the
 * silences in force. Pure: the same inputs give the same notifications, ids and bodies.
 */
export const flushDue = (
  state: GroupsState,
  receiver: ReceiverConfig,
  silences: readonly Silence[],
  at: number,
  options: FlushOptions = {},
): FlushResult => {
  const due = Object.entries(state.groups)
    .filter(([, g]) => g.nextFlushAt <= at)
    .sort(([ka, a], [kb, b]) => a.nextFlushAt - b.nextFlushAt || (ka < kb ? -1 : ka > kb ? 1 : 0));
  if (due.length === 0) return { state, notifications: [] };
  const groups: Record<string, Group> = { ...state.groups };
  const notifications: Notification[] = [];
  for (const [key, g] of due) {
    const r = flushGroup(key, g, receiver, silences, at, options);
    if (r.group) groups[key] = r.group;
    else delete groups[key];
    if (r.notification) notifications.push(r.notification);
  }
  return { state: { groups }, notifications };
};
