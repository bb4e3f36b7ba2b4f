/**
 * Shard placement: which member owns each shard of a kind. The leader computes it; this module is
 * the pure decision, with no I/O, time or randomness, so every machine computes the same owners.
 *
 * Weighted rendezvous hashing (highest random weight): every (member, kind, shard) gets a score
 * `weight / -ln(u)`, u a hash in (0,1), and the highest score owns the shard. Because -ln(u) is
 * exponentially distributed, a member wins a shard with probability weight / total weight
 * (Schindelhauer & Schomaker's logarithmic method), and a shard's winner depends only on the scores of
 * the members present, which gives minimal movement:
 * - a member that joins takes exactly the shards where it now has the top score, and nothing else moves;
 * - a member that leaves gives up exactly its own shards, each to the runner-up of that shard.
 * Shares are proportional to weight in expectation, not exactly: a kind of 64 shards over 4 members
 * gives each a binomial count around 16. Balance improves with shards per member.
 *
 * The hash is MurmurHash3 (x86, 32-bit) run twice with independent seeds over the UTF-8 bytes of
 * `${id}\0${kind}\0${shard}`, the two results combined into a 52-bit fraction. Math.log in V8 is a port
 * of fdlibm, the same bits on every platform.
 */
import { ArgusError } from '../runtime/errors.ts';

export interface PlacementCandidate {
  readonly id: string;
  /** Capacity, relative to the other candidates. Weight <= 0 means "owns nothing" (draining). */
  readonly weight: number;
}

/** The largest shard count of a kind (runtime/config.ts bounds `shards` the same way). */
export const MAX_SHARDS = 1024;

// Arbitrary odd constants; changing them moves every shard of every kind.
const SEED_HIGH = 0x2545f491;
const SEED_LOW = 0x9e3779b9;
const TWO_POW_20 = 2 ** 20;
const TWO_POW_52 = 2 ** 52;

/** MurmurHash3_x86_32 of `bytes[0, length)`: the reference algorithm (Appleby), unsigned result. */
export const murmur3 = (bytes: Uint8Array, length: number, seed: number): number => {
  const c1 = 0xcc9e2d51;
  const c2 = 0x1b873593;
  let h = seed | 0;
  const blocks = length & ~3;
  for (let i = 0; i < blocks; i += 4) {
    let k = bytes[i]! | (bytes[i + 1]! << 8) | (bytes[i + 2]! << 16) | (bytes[i + 3]! << 24);
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, c2);
    h = (h << 13) | (h >>> 19);
    h = (Math.imul(h, 5) + 0xe6546b64) | 0;
  }
  const tail = length & 3;
  if (tail > 0) {
    let k = bytes[blocks]!;
    if (tail > 1) k |= bytes[blocks + 1]! << 8;
    if (tail > 2) k |= bytes[blocks + 2]! << 16;
    k = Math.imul(k, c1);
    k = (k << 15) | (k >>> 17);
    h ^= Math.imul(k, c2);
  }
  h ^= length;
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
};

/** u in (0,1), never 0 or 1: 32 bits of one hash and 20 of the other, centred in their 2^-52 cell. */
const unitOf = (bytes: Uint8Array, length: number): number => {
  const bits = murmur3(bytes, length, SEED_HIGH) * TWO_POW_20 + (murmur3(bytes, length, SEED_LOW) >>> 12);
  return (bits + 0.5) / TWO_POW_52;
};

const scoreOf = (bytes: Uint8Array, length: number, weight: number): number =>
  weight / -Math.log(unitOf(bytes, length));

const utf8 = new TextEncoder();

const invalid = (message: string, detail: Record<string, unknown>): ArgusError =>
  new ArgusError('ARGUS_ERR_INVALID_CONFIG', `placement: ${message}`, detail);

// U+0000 separates the parts of the hashed key, so a part containing it could collide with another split.
const checkName = (field: string, value: string): void => {
  if (typeof value !== 'string' || value.length === 0 || value.includes('\u0000'))
    throw invalid(`${field} must be a non-empty string without U+0000, got ${JSON.stringify(value)}`, {
      field,
      value,
    });
};

const checkShards = (shards: number): void => {
  if (!Number.isInteger(shards) || shards < 1 || shards > MAX_SHARDS)
    throw invalid(`shards must be an integer 1..${MAX_SHARDS}, got ${shards}`, {
      field: 'shards',
      value: shards,
    });
};

const checkCandidates = (candidates: readonly PlacementCandidate[]): void => {
  const seen = new Map<string, number>();
  candidates.forEach(({ id, weight }, i) => {
    checkName(`candidates[${i}].id`, id);
    const first = seen.get(id);
    if (first !== undefined)
      throw invalid(`candidates[${i}].id '${id}' is a duplicate of candidates[${first}]`, {
        field: `candidates[${i}].id`,
        value: id,
      });
    seen.set(id, i);
    if (typeof weight !== 'number' || !Number.isFinite(weight))
      throw invalid(`candidates[${i}].weight must be a finite number, got ${weight} (id '${id}')`, {
        field: `candidates[${i}].weight`,
        value: weight,
      });
  });
};

/** The weighted highest-random-weight score: weight / -ln(u), u = a hash of (id, kind, shard) mapped into (0,1). */
export const rendezvousScore = (id: string, kind: string, shard: number, weight: number): number => {
  checkName('id', id);
  checkName('kind', kind);
  if (!Number.isInteger(shard) || shard < 0)
    throw invalid(`shard must be a non-negative integer, got ${shard}`, { field: 'shard', value: shard });
  if (!Number.isFinite(weight))
    throw invalid(`weight must be a finite number, got ${weight}`, { field: 'weight', value: weight });
  const bytes = utf8.encode(`${id}\u0000${kind}\u0000${shard}`);
  return scoreOf(bytes, bytes.length, weight);
};

/**
 * Owner of each shard 0..shards-1 of `kind`: the candidate with the highest weighted rendezvous score,
 * equal scores going to the smaller id (so the order of `candidates` never matters).
 * undefined for every shard when no candidate has weight > 0. Candidates with weight <= 0 never own.
 */
export const placeKind = (
  kind: string,
  shards: number,
  candidates: readonly PlacementCandidate[],
): (string | undefined)[] => {
  checkName('kind', kind);
  checkShards(shards);
  checkCandidates(candidates);
  const owners = candidates.filter((c) => c.weight > 0);
  // One buffer per owner holding `${id}\0${kind}\0`, with room for the shard's digits (at most 4).
  const buffers = owners.map(({ id }) => {
    const prefix = utf8.encode(`${id}\u0000${kind}\u0000`);
    const buffer = new Uint8Array(prefix.length + 4);
    buffer.set(prefix);
    return { buffer, prefix: prefix.length };
  });
  const digits = new Uint8Array(4);
  const result: (string | undefined)[] = new Array(shards);
  for (let shard = 0; shard < shards; shard++) {
    let count = 0;
    for (let n = shard; count === 0 || n > 0; n = Math.floor(n / 10)) digits[count++] = 0x30 + (n % 10);
    let best: string | undefined;
    let bestScore = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < owners.length; i++) {
      const { buffer, prefix } = buffers[i]!;
      for (let d = 0; d < count; d++) buffer[prefix + d] = digits[count - 1 - d]!;
      const { id, weight } = owners[i]!;
      const score = scoreOf(buffer, prefix + count, weight);
      if (score > bestScore || (score === bestScore && best !== undefined && id < best)) {
        best = id;
        bestScore = score;
      }
    }
    result[shard] = best;
  }
  return result;
};

/** Shards whose owner differs between two assignments of the same length, ascending. */
export const movedShards = (
  before: readonly (string | undefined)[],
  after: readonly (string | undefined)[],
): number[] => {
  if (before.length !== after.length)
    throw invalid(`after has ${after.length} shards but before has ${before.length}`, {
      field: 'after.length',
      value: after.length,
    });
  const moved: number[] = [];
  for (let shard = 0; shard < before.length; shard++) if (before[shard] !== after[shard]) moved.push(shard);
  return moved;
};

/**
 * The fewest shards any balanced assignment must move to go from `before` (the owner of each shard)
 * to the candidates `after`. Precisely, with S = before.length, W the total weight of the candidates of
 * weight > 0 (the members), member i's fair share f_i = S·w_i/W, and k_i the shards member i owns in
 * `before` (it keeps them if it can):
 * - an assignment is balanced when every member holds ⌊f_i⌋ or ⌈f_i⌉ shards (and all S are owned);
 * - reaching targets t_i moves at least Σ max(0, t_i − k_i) shards (what a member gains beyond what it
 *   kept has to move to it), and exactly that many suffice (move only surplus and orphaned shards);
 * - the result is the minimum of that sum over balanced targets: members start at ⌊f_i⌋, and the
 *   S − Σ⌊f_i⌋ extra shards go first to members that already hold more than ⌊f_i⌋ (free), then to any.
 * So a join onto a balanced assignment costs the newcomer's share, a leave costs the leaver's shards,
 * and shards of owners absent from `after` (or undefined) always count. An assignment that is already
 * unbalanced costs more: a balanced one has to even it out. With no member, every owned shard must
 * lose its owner: the count of owned shards.
 */
export const minimalMoves = (
  before: readonly (string | undefined)[],
  after: readonly PlacementCandidate[],
): number => {
  checkCandidates(after);
  const members = after.filter((c) => c.weight > 0);
  if (members.length === 0) return before.filter((owner) => owner !== undefined).length;
  const kept = new Map<string, number>(members.map((m) => [m.id, 0]));
  for (const owner of before) {
    const k = owner === undefined ? undefined : kept.get(owner);
    if (k !== undefined) kept.set(owner!, k + 1);
  }
  const total = members.reduce((sum, m) => sum + m.weight, 0);
  const shards = before.length;
  const plan = members.map((m) => {
    const share = (shards * m.weight) / total;
    // A share within float noise of an integer is that integer (weights 0.1 + 0.2 …).
    const nearest = Math.round(share);
    const exact = Math.abs(share - nearest) < 1e-9;
    const floor = exact ? nearest : Math.floor(share);
    return { floor, fractional: !exact, kept: kept.get(m.id)! };
  });
  let extra = shards - plan.reduce((sum, p) => sum + p.floor, 0);
  let moves = 0;
  // Free extras first (the member already holds more than its floor), then the rest.
  const order = [...plan].sort((a, b) => Number(b.kept > b.floor) - Number(a.kept > a.floor));
  for (const p of order) {
    const target = p.floor + (extra > 0 && p.fractional ? 1 : 0);
    if (target > p.floor) extra--;
    moves += Math.max(0, target - p.kept);
  }
  return moves;
};
