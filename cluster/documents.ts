/**
 * The JSON documents the cluster keeps in etcd, with their checks. Anything read from etcd is outside
 * input: a document that does not check out is reported (naming the key and the field) and ignored,
 * never trusted and never allowed to crash a node.
 */
import type { MemberInfo, ShardOwner } from '../runtime/boundaries.ts';

const fail = (what: string, problem: string): never => {
  throw new Error(`${what}: ${problem}`);
};

const parseJson = (what: string, text: string): Record<string, unknown> => {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return fail(what, 'is not JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return fail(what, 'must be a JSON object');
  return v as Record<string, unknown>;
};

export const encodeMember = (m: MemberInfo): string => JSON.stringify(m);

export const decodeMember = (key: string, text: string): MemberInfo => {
  const what = `member record ${key}`;
  const v = parseJson(what, text);
  if (typeof v.id !== 'string' || v.id === '') fail(what, "'id' must be a non-empty string");
  if (v.address !== undefined && typeof v.address !== 'string') fail(what, "'address' must be a string");
  if (typeof v.version !== 'string') fail(what, "'version' must be a string");
  if (typeof v.weight !== 'number' || !Number.isFinite(v.weight) || v.weight < 0)
    fail(what, "'weight' must be a number ≥ 0");
  if (typeof v.joinedAt !== 'number') fail(what, "'joinedAt' must be a number");
  const kinds = v.kinds;
  if (typeof kinds !== 'object' || kinds === null || Array.isArray(kinds))
    fail(what, "'kinds' must be an object");
  for (const [kind, shards] of Object.entries(kinds as Record<string, unknown>)) {
    if (!Number.isInteger(shards) || (shards as number) < 1 || (shards as number) > 1024)
      fail(what, `'kinds.${kind}' must be a shard count 1..1024`);
  }
  return {
    id: v.id as string,
    address: v.address as string | undefined,
    version: v.version as string,
    weight: v.weight as number,
    kinds: kinds as Record<string, number>,
    joinedAt: v.joinedAt as number,
  };
};

/**
 * One kind's placement as stored: the owner of each shard (null: nobody) and the epoch each owner was
 * assigned at. An epoch of 0 means "in the write that stored this document": its revision is not
 * known before the write, so readers take the key's mod revision for it.
 */
export interface StoredPlacement {
  readonly v: 1;
  readonly owners: (string | null)[];
  readonly since: number[];
}

export interface KindPlacement {
  readonly owners: readonly ShardOwner[];
  /** The revision the document was written at (the placement epoch of the kind). */
  readonly revision: number;
}

export const encodePlacement = (owners: readonly ShardOwner[]): string => {
  const stored: StoredPlacement = {
    v: 1,
    owners: owners.map((o) => o.node ?? null),
    since: owners.map((o) => o.epoch),
  };
  return JSON.stringify(stored);
};

export const decodePlacement = (key: string, text: string, modRevision: number): KindPlacement => {
  const what = `placement ${key}`;
  const v = parseJson(what, text);
  if (v.v !== 1) fail(what, `'v' must be 1, found ${JSON.stringify(v.v)}`);
  const { owners, since } = v;
  if (!Array.isArray(owners) || owners.length === 0 || owners.length > 1024)
    fail(what, "'owners' must be an array of 1..1024 entries");
  if (!Array.isArray(since) || since.length !== (owners as unknown[]).length)
    fail(what, "'since' must be an array as long as 'owners'");
  return {
    revision: modRevision,
    owners: (owners as unknown[]).map((node, i) => {
      if (node !== null && (typeof node !== 'string' || node === ''))
        fail(what, `'owners[${i}]' must be a node id or null`);
      const epoch = (since as unknown[])[i];
      if (!Number.isInteger(epoch) || (epoch as number) < 0)
        fail(what, `'since[${i}]' must be a revision ≥ 0`);
      return { node: (node as string | null) ?? undefined, epoch: (epoch as number) || modRevision };
    }),
  };
};

/** A claim: who runs the shard now, at which epoch, under which lease. */
export interface Claim {
  readonly node: string;
  readonly epoch: number;
  readonly lease: string;
}

export const encodeClaim = (c: Claim): string => JSON.stringify(c);

export const decodeClaim = (key: string, text: string): Claim => {
  const what = `claim ${key}`;
  const v = parseJson(what, text);
  if (typeof v.node !== 'string' || v.node === '') fail(what, "'node' must be a non-empty string");
  if (!Number.isInteger(v.epoch)) fail(what, "'epoch' must be an integer");
  if (typeof v.lease !== 'string') fail(what, "'lease' must be a string");
  return { node: v.node as string, epoch: v.epoch as number, lease: v.lease as string };
};
