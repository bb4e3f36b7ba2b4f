/**
 * What a host entity's mailbox carries. Everything a poll produces and everything pushed goes through
 * the mailbox (DESIGN.md): a crashed or moved host entity replays it and loses nothing. Polls are not
 * *triggered* through the mailbox — ticks are local to the node that owns the host's shard — only their
 * results travel.
 *
 * `parseHostMessage` is the kind's `parse`: the edge check of every payload (refused at send time,
 * dead-lettered if it ever comes from the mailbox), so `receive` only sees well-formed messages.
 */
import type { PollErrorCode } from './snmp.ts';
import type { DerivedMetric, PushedPoint, RawValue, Tags } from './types.ts';

/** A poll that answered: its raw values, and what the host is (from the inventory) at that moment. */
export interface HostPolled {
  readonly type: 'host.polled';
  /** Wall-clock ms when the poll was sent. */
  readonly ts: number;
  readonly latencyMs: number;
  readonly values: readonly RawValue[];
  /** OIDs that answered noSuchObject/noSuchInstance/endOfMibView. */
  readonly missing: number;
  /** The derivations of the host's metric set at poll time (so replay derives the same). */
  readonly derived: readonly DerivedMetric[];
  readonly service: string;
  readonly labels: Tags;
}

/** A poll that failed: timeout, authentication, unreachable, protocol. */
export interface HostPollFailed {
  readonly type: 'host.poll-failed';
  readonly ts: number;
  readonly latencyMs: number;
  readonly code: PollErrorCode;
  readonly error: string;
  readonly service: string;
  readonly labels: Tags;
}

/** Points pushed for this host (JSON or line protocol). */
export interface HostPushed {
  readonly type: 'host.pushed';
  readonly points: readonly PushedPoint[];
}

/** The inventory no longer lists the host: its state is dropped. */
export interface HostRemoved {
  readonly type: 'host.removed';
  readonly ts: number;
}

export type HostMessage = HostPolled | HostPollFailed | HostPushed | HostRemoved;

const POLL_ERROR_CODES: readonly PollErrorCode[] = ['timeout', 'auth', 'unreachable', 'protocol'];

const fail = (what: string): never => {
  throw new Error(what);
};

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const finite = (v: unknown, field: string): number =>
  typeof v === 'number' && Number.isFinite(v) ? v : fail(`${field} must be a finite number`);

const text = (v: unknown, field: string): string =>
  typeof v === 'string' ? v : fail(`${field} must be a string`);

const tags = (v: unknown, field: string): Tags => {
  if (!isObject(v)) return fail(`${field} must be an object of strings`);
  for (const [k, t] of Object.entries(v)) if (typeof t !== 'string') fail(`${field}.${k} must be a string`);
  return v as Tags;
};

const rawValue = (v: unknown, i: number): RawValue => {
  const f = `values[${i}]`;
  if (!isObject(v)) return fail(`${f} must be an object`);
  text(v.metric, `${f}.metric`);
  tags(v.tags, `${f}.tags`);
  if (v.type !== 'gauge' && v.type !== 'counter') fail(`${f}.type must be 'gauge' or 'counter'`);
  if (v.width !== undefined && v.width !== 32 && v.width !== 64) fail(`${f}.width must be 32 or 64`);
  finite(v.value, `${f}.value`);
  return v as unknown as RawValue;
};

const pushedPoint = (v: unknown, i: number): PushedPoint => {
  const f = `points[${i}]`;
  if (!isObject(v)) return fail(`${f} must be an object`);
  text(v.metric, `${f}.metric`);
  tags(v.tags, `${f}.tags`);
  finite(v.ts, `${f}.ts`);
  if (typeof v.value !== 'string') finite(v.value, `${f}.value`);
  if (v.type !== undefined && v.type !== 'gauge' && v.type !== 'counter')
    fail(`${f}.type must be 'gauge' or 'counter'`);
  return v as unknown as PushedPoint;
};

export const parseHostMessage = (payload: unknown): HostMessage => {
  if (!isObject(payload)) return fail('host message must be an object');
  const m = payload;
  switch (m.type) {
    case 'host.polled':
      finite(m.ts, 'ts');
      finite(m.latencyMs, 'latencyMs');
      finite(m.missing, 'missing');
      if (!Array.isArray(m.values)) fail('values must be an array');
      (m.values as unknown[]).forEach(rawValue);
      if (!Array.isArray(m.derived)) fail('derived must be an array');
      text(m.service, 'service');
      tags(m.labels, 'labels');
      return m as unknown as HostPolled;
    case 'host.poll-failed':
      finite(m.ts, 'ts');
      finite(m.latencyMs, 'latencyMs');
      if (!POLL_ERROR_CODES.includes(m.code as PollErrorCode))
        fail(`code must be one of ${POLL_ERROR_CODES.join(', ')}`);
      text(m.error, 'error');
      text(m.service, 'service');
      tags(m.labels, 'labels');
      return m as unknown as HostPollFailed;
    case 'host.pushed':
      if (!Array.isArray(m.points) || m.points.length === 0) fail('points must be a non-empty array');
      (m.points as unknown[]).forEach(pushedPoint);
      return m as unknown as HostPushed;
    case 'host.removed':
      finite(m.ts, 'ts');
      return m as unknown as HostRemoved;
    default:
      return fail(
        `host message type must be host.polled, host.poll-failed, host.pushed or host.removed, got ${JSON.stringify(m.type)}`,
      );
  }
};
