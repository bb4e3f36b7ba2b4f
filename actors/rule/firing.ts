/**
 * The alerts firing now, for the inspector (`GET /api/v1/alerts`): a durable index, kept by the entity
 * kind `firing` (keys `bucket-0` … `bucket-63`), fed with every firing and resolved transition in the
 * checkpoint of the entity that evaluated it (publish.ts: `ctx.send`, like the receiver messages).
 *
 * Why an entity, and not a per-node map fed by the `events` stream. The firing state really lives in
 * the host snapshots (`HostState.observed`, per series) and in the `rule/<id>` states; a node listing
 * the alerts of the shards it holds would have to read every host snapshot of those shards (50,000 of
 * them) per request, or keep a map. A map fed by the transitions this node sees since it started is
 * wrong after a failover: an alert that fired on another node and still fires emits nothing new here.
 * Seeding the map when a shard arrives would mean enumerating the shard's snapshots, which the
 * runtime does not offer (a ShardSnapshots answers by key) and which costs a full read per move. So
 * the index is itself state: a transition and its index entry land in one checkpoint (neither is lost
 * or doubled by a crash), the index moves with its shard like any entity, and listing it reads 64
 * small states. Each node answers for the buckets whose shards it holds (node query `alerts.firing`);
 * the inspector gathers them. The cost: one extra mailbox record per firing or resolved transition —
 * transitions are rare next to samples.
 *
 * Buckets are by the evaluating entity (`host/<id>` or `rule/<id>`), so one host's transitions stay in
 * order in one mailbox. An entry is kept by fingerprint with the series' `seq`: a resolution removes it
 * only if it is not older than the entry (a late duplicate cannot bring an alert back, or end a newer
 * one). The value and annotations are those of the firing transition (the index is not fed samples).
 *
 * What it does not see: transitions from before this index existed (an alert already firing when a
 * node with this code first ran is listed from its next transition on), and series dropped without an
 * event (a deleted rule whose version the process no longer knows, evaluate.ts) — the listing hides
 * alerts of rules no longer in force, so such leftovers never show.
 *
 * Pure apart from the entity plumbing: `applyFiring` and `listFiring` are tested as tables.
 */
import { defineEntity } from '../../runtime/entity.ts';
import { shardOf } from '../../runtime/envelope.ts';
import type { AlertEvent, Labels, Severity } from './types.ts';

export const FIRING_KIND = 'firing';
/** Index entities; fixed, so a bucket never changes when shard counts do. */
export const FIRING_BUCKETS = 64;
/** The node query each member answers (its buckets' alerts). */
export const FIRING_QUERY = 'alerts.firing';

/** One firing alert as the API lists it. */
export interface FiringAlert {
  readonly fingerprint: string;
  readonly rule: string;
  readonly severity: Severity;
  readonly labels: Labels;
  readonly annotations: Labels;
  /** The value it fired with (null: no data). */
  readonly value: number | null;
  /** When it fired. */
  readonly since: number;
  readonly seq: number;
  readonly host?: string;
  readonly service?: string;
}

/** A transition as the index takes it: a firing alert, or the end of one. */
export type FiringChange =
  | { readonly status: 'firing'; readonly alert: FiringAlert }
  | { readonly status: 'resolved'; readonly fingerprint: string; readonly seq: number };

export type FiringMessage = { readonly type: 'firing.changes'; readonly changes: readonly FiringChange[] };

export interface FiringState {
  readonly alerts: Readonly<Record<string, FiringAlert>>;
}

export const initialFiringState = (): FiringState => ({ alerts: {} });

/** The index entity an evaluating entity's transitions go to. */
export const firingBucket = (kind: string, key: string): string =>
  `bucket-${shardOf(`${kind}/${key}`, FIRING_BUCKETS)}`;

export const firingBuckets = (): string[] => Array.from({ length: FIRING_BUCKETS }, (_, i) => `bucket-${i}`);

/** The index changes of a batch of transitions: firing and resolved only (pending is not firing). */
export const firingChanges = (events: readonly AlertEvent[]): FiringChange[] => {
  const changes: FiringChange[] = [];
  for (const e of events) {
    if (e.status === 'firing')
      changes.push({
        status: 'firing',
        alert: {
          fingerprint: e.fingerprint,
          rule: e.rule,
          severity: e.severity,
          labels: e.labels,
          annotations: e.annotations,
          value: e.value,
          since: e.startsAt,
          seq: e.seq,
          ...(e.host !== undefined ? { host: e.host } : {}),
          ...(e.service !== undefined ? { service: e.service } : {}),
        },
      });
    else if (e.status === 'resolved')
      changes.push({ status: 'resolved', fingerprint: e.fingerprint, seq: e.seq });
  }
  return changes;
};

/** Applies changes in order; an entry only gives way to a change with a seq not older than its own. */
export const applyFiring = (state: FiringState, changes: readonly FiringChange[]): FiringState => {
  let alerts: Record<string, FiringAlert> | undefined;
  const current = () => alerts ?? state.alerts;
  for (const c of changes) {
    const fp = c.status === 'firing' ? c.alert.fingerprint : c.fingerprint;
    const seq = c.status === 'firing' ? c.alert.seq : c.seq;
    const known = Object.hasOwn(current(), fp) ? current()[fp] : undefined;
    if (known !== undefined && known.seq > seq) continue;
    if (c.status === 'resolved' && known === undefined) continue;
    alerts ??= { ...state.alerts };
    if (c.status === 'firing') alerts[fp] = c.alert;
    else delete alerts[fp];
  }
  return alerts === undefined ? state : { alerts };
};

export const parseFiringMessage = (payload: unknown): FiringMessage => {
  const m = payload as { type?: unknown; changes?: unknown };
  if (m?.type !== 'firing.changes' || !Array.isArray(m.changes))
    throw new Error(
      `firing message must be firing.changes { changes: [...] }, got ${JSON.stringify(m?.type)}`,
    );
  for (const [i, c] of (
    m.changes as Partial<{ status: unknown; alert: unknown; fingerprint: unknown }>[]
  ).entries()) {
    const ok =
      (c?.status === 'firing' && typeof c.alert === 'object' && c.alert !== null) ||
      (c?.status === 'resolved' && typeof c.fingerprint === 'string');
    if (!ok)
      throw new Error(
        `firing.changes: changes[${i}] must be { status: 'firing', alert } or { status: 'resolved', fingerprint, seq }`,
      );
  }
  return m as FiringMessage;
};

export const firingEntity = () =>
  defineEntity<FiringState, FiringMessage>({
    kind: FIRING_KIND,
    initialState: initialFiringState,
    parse: parseFiringMessage,
    receive: (state, message) => {
      switch (message.type) {
        case 'firing.changes':
          return applyFiring(state, message.changes);
        default: {
          const never: never = message.type;
          throw new Error(`unknown firing message ${String(never)}`);
        }
      }
    },
    query: (state, query) =>
      query === 'summary' ? { firing: Object.keys(state.alerts).length } : Object.values(state.alerts),
    summary: (state) => ({ firing: Object.keys(state.alerts).length }),
  });

/** What `GET /api/v1/alerts` filters by; every given field must match. */
export interface FiringFilter {
  readonly severity?: number;
  readonly rule?: string;
  readonly host?: string;
}

/** Most severe first, then oldest first (then by fingerprint, so the order is total). */
export const compareFiring = (a: FiringAlert, b: FiringAlert): number =>
  b.severity - a.severity ||
  a.since - b.since ||
  (a.fingerprint < b.fingerprint ? -1 : a.fingerprint > b.fingerprint ? 1 : 0);

/**
 * Merges lists (from several nodes; the same alert twice while a bucket moves — the newer seq wins),
 * keeps the alerts of rules in force (`live`) that match `filter`, and sorts them.
 */
export const listFiring = (
  lists: readonly (readonly FiringAlert[])[],
  filter: FiringFilter,
  live: (rule: string) => boolean,
): FiringAlert[] => {
  const byFingerprint = new Map<string, FiringAlert>();
  for (const list of lists)
    for (const a of list) {
      const known = byFingerprint.get(a.fingerprint);
      if (known === undefined || known.seq < a.seq) byFingerprint.set(a.fingerprint, a);
    }
  const hostOf = (a: FiringAlert) => a.host ?? a.labels.host;
  return [...byFingerprint.values()]
    .filter(
      (a) =>
        live(a.rule) &&
        (filter.severity === undefined || a.severity === filter.severity) &&
        (filter.rule === undefined || a.rule === filter.rule) &&
        (filter.host === undefined || hostOf(a) === filter.host),
    )
    .sort(compareFiring);
};
