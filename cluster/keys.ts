/**
 * The cluster's keys in etcd (DESIGN.md, "etcd layout"), all under `/<prefix>/`:
 *   members/<node>            leased: the member record (JSON), gone when the node's lease ends
 *   election/leader/<lease>   etcd3's election recipe: the oldest key is the leader
 *   placement/<kind>          the leader's assignment of every shard of the kind (JSON), all kinds
 *                             written in one transaction; the write's revision is the epoch
 *   owners/<kind>/<shard>     leased: the node running the shard now (a claim). A node starts a shard
 *                             only after creating this key, so a shard never has two runners even
 *                             while placement moves it; a dead node's claims vanish with its lease
 */
export const clusterKeys = (prefix: string) => {
  const root = `/${prefix}/`;
  return {
    root,
    members: `${root}members/`,
    member: (node: string) => `${root}members/${node}`,
    placement: `${root}placement/`,
    placementOf: (kind: string) => `${root}placement/${kind}`,
    owners: `${root}owners/`,
    owner: (kind: string, shard: number) => `${root}owners/${kind}/${shard}`,
    /** Namespace of etcd3's election (it appends `election/<name>/`). */
    electionNamespace: root,
    electionName: 'leader',
  };
};

export type ClusterKeys = ReturnType<typeof clusterKeys>;

/** `owners/<kind>/<shard>` → its kind and shard; undefined for anything else. */
export const parseOwnerKey = (
  keys: ClusterKeys,
  key: string,
): { kind: string; partition: number } | undefined => {
  if (!key.startsWith(keys.owners)) return undefined;
  const rest = key.slice(keys.owners.length);
  const i = rest.lastIndexOf('/');
  if (i <= 0) return undefined;
  const partition = Number(rest.slice(i + 1));
  if (!Number.isInteger(partition) || partition < 0) return undefined;
  return { kind: rest.slice(0, i), partition };
};
