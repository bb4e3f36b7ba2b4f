/**
 * What the leader writes: from the live members and the placement in etcd, the new owner of every shard
 * of every kind (rendezvous hashing, placement.ts), keeping the epoch of every shard whose owner did not
 * change. Pure: the leader's loop (coordinator.ts) does the I/O.
 *
 * A new leader runs the same function on what is in etcd, so it continues from it: with the same
 * members it computes the same owners and writes nothing.
 */
import type { MemberInfo, ShardOwner } from '../runtime/boundaries.ts';
import type { KindPlacement } from './documents.ts';
import { placeKind } from './placement.ts';

export interface PlanResult {
  /** The kinds whose placement changes, with every shard's owner (epoch 0: assigned by this write). */
  readonly changed: ReadonlyMap<string, ShardOwner[]>;
  /** Members left out of a kind because they disagree on its shard count (a misconfiguration). */
  readonly conflicts: readonly string[];
}

export const planPlacement = (
  members: readonly MemberInfo[],
  current: ReadonlyMap<string, KindPlacement>,
): PlanResult => {
  const sorted = [...members].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const kinds = new Set<string>(current.keys());
  for (const m of sorted) for (const kind of Object.keys(m.kinds)) kinds.add(kind);
  const changed = new Map<string, ShardOwner[]>();
  const conflicts: string[] = [];
  for (const kind of [...kinds].sort()) {
    const existing = current.get(kind);
    // The shard count is fixed once a kind is placed; before that the first member's count decides.
    const shards = existing?.owners.length ?? sorted.find((m) => kind in m.kinds)!.kinds[kind]!;
    const candidates = [];
    for (const m of sorted) {
      const count = m.kinds[kind];
      if (count === undefined) continue;
      if (count !== shards) {
        conflicts.push(`member '${m.id}' has ${count} shards of '${kind}', the cluster has ${shards}`);
        continue;
      }
      candidates.push({ id: m.id, weight: m.weight });
    }
    const owners = placeKind(kind, shards, candidates);
    let differs = existing === undefined;
    const next: ShardOwner[] = owners.map((node, shard) => {
      const before = existing?.owners[shard];
      if (before && before.node === node) return before;
      differs = true;
      return { node, epoch: 0 };
    });
    if (differs) changed.set(kind, next);
  }
  return { changed, conflicts };
};
