/**
 * What the coordinator's parts (leadership.ts, ownership.ts) share with it: the etcd client and key
 * layout, the injected clock, the warning sink, the event publisher, and live readings of the node's
 * status and member record. Status and member record are functions, not values, because they change
 * under the parts' feet (a fence, a rejoin) and every decision must see the current one.
 */
import type { Etcd3 } from 'etcd3';
import type { Clock, CoordinatorStatus, MemberInfo } from '../runtime/boundaries.ts';
import type { ClusterEvent } from '../runtime/events.ts';
import type { ClusterKeys } from './keys.ts';

/** Pause before retrying an etcd step that failed (campaign, observer, placement write, rejoin). */
export const RETRY_MS = 250;

/** An etcd key or value as text. */
export const text = (b: Buffer | undefined): string => (b ? b.toString('utf8') : '');

/** Publishes an `@argus.cluster` event from this node (costs nothing when nobody listens). */
export type PublishClusterEvent = (
  event: ClusterEvent['event'],
  extra: Partial<Omit<ClusterEvent, 'type' | 'event'>>,
) => void;

export interface CoordinatorContext {
  readonly client: Etcd3;
  readonly keys: ClusterKeys;
  readonly clock: Clock;
  readonly warn: (message: string) => void;
  readonly leaseTtlS: number;
  /** The coordinator's status now. */
  readonly status: () => CoordinatorStatus;
  /** This node's member record; set once `start` was called. */
  readonly self: () => MemberInfo | undefined;
  readonly publish: PublishClusterEvent;
}
