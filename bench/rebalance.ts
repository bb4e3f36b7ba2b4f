/**
 * Shard movement when a member joins or leaves, for the leader's placement (cluster/placement.ts,
 * weighted rendezvous hashing), against two peers computed on the same trials:
 * - naive `shard mod N` (each member in the list `weight` times, sorted by id, offset per kind);
 * - a consistent-hash ring with 100 virtual nodes per unit of weight (the same murmur3).
 *
 * A trial is one kind name on one cluster shape (shards × members before → after). Its
 * `movement_ratio` is the shards the algorithm moved over `minimalMoves(before, after)`: the fewest any
 * balanced assignment would have to move from where that algorithm had put them. 1 is ideal on a join;
 * below 1 means the algorithm moved less than a balanced assignment would, by staying unbalanced (a
 * leave from an unbalanced assignment: evening it out would cost more than the leaver's shards), which
 * is why `imbalance` is reported beside it: the most loaded member's shards over its fair share after
 * the change (1 is perfect).
 *
 * The figures are deterministic (no randomness; round r uses kind names `kind-r-i`), so the rounds differ
 * by their kinds, not by noise; only `place_1024x50_ms` (placeKind of 1024 shards over 50 members) is
 * a timing.
 */
import {
  minimalMoves,
  movedShards,
  murmur3,
  type PlacementCandidate,
  placeKind,
} from '../cluster/placement.ts';
import {
  type Benchmark,
  type BenchOptions,
  type Figures,
  header,
  log,
  median,
  Samples,
  tidy,
  withRuns,
} from './common.ts';

type Owners = readonly (string | undefined)[];
type Placement = (kind: string, shards: number, candidates: readonly PlacementCandidate[]) => Owners;

const utf8 = new TextEncoder();
const hash = (text: string): number => {
  const bytes = utf8.encode(text);
  return murmur3(bytes, bytes.length, 0);
};

const byId = (a: PlacementCandidate, b: PlacementCandidate) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

/** Peer: shard mod N over the member list (each member `weight` times), rotated by a hash of the kind. */
const modN: Placement = (kind, shards, candidates) => {
  const slots = [...candidates]
    .filter((c) => c.weight > 0)
    .sort(byId)
    .flatMap((c) => Array.from({ length: Math.max(1, Math.round(c.weight)) }, () => c.id));
  const offset = hash(kind);
  return Array.from({ length: shards }, (_, shard) =>
    slots.length === 0 ? undefined : slots[(offset + shard) % slots.length],
  );
};

const VNODES = 100;

/** Peer: a consistent-hash ring, 100 virtual nodes per unit of weight; a shard goes to the next point clockwise. */
const ring = (): Placement => {
  // The ring depends only on the members; built once per member set.
  const rings = new Map<string, { points: Uint32Array; owners: string[] }>();
  const build = (candidates: readonly PlacementCandidate[]) => {
    const key = candidates.map((c) => `${c.id}:${c.weight}`).join(',');
    const cached = rings.get(key);
    if (cached) return cached;
    const all = candidates
      .filter((c) => c.weight > 0)
      .flatMap((c) =>
        Array.from({ length: Math.round(VNODES * c.weight) }, (_, v) => ({
          at: hash(`${c.id}#${v}`),
          id: c.id,
        })),
      )
      .sort((a, b) => a.at - b.at || (a.id < b.id ? -1 : 1));
    const built = { points: Uint32Array.from(all, (p) => p.at), owners: all.map((p) => p.id) };
    rings.set(key, built);
    return built;
  };
  return (kind, shards, candidates) => {
    const { points, owners } = build(candidates);
    return Array.from({ length: shards }, (_, shard) => {
      if (points.length === 0) return undefined;
      const at = hash(`${kind}\u0000${shard}`);
      let lo = 0;
      let hi = points.length;
      while (lo < hi) {
        const mid = (lo + hi) >> 1;
        if (points[mid]! < at) lo = mid + 1;
        else hi = mid;
      }
      return owners[lo % points.length];
    });
  };
};

const algorithms = [
  { name: 'hrw', label: 'rendezvous (argus)', place: placeKind as Placement },
  { name: 'mod', label: 'shard mod N', place: modN },
  { name: 'ring', label: `ring, ${VNODES} vnodes`, place: ring() },
] as const;

const nodes = (weights: readonly number[]): PlacementCandidate[] =>
  weights.map((weight, i) => ({ id: `node-${i}`, weight }));

interface Transition {
  readonly name: string;
  readonly move: 'join' | 'leave';
  readonly before: readonly PlacementCandidate[];
  readonly after: readonly PlacementCandidate[];
}

const join = (name: string, weights: readonly number[], weight: number): Transition => {
  const before = nodes(weights);
  return { name, move: 'join', before, after: [...before, { id: `node-${weights.length}`, weight }] };
};
const leave = (name: string, weights: readonly number[], leaver: number): Transition => {
  const before = nodes(weights);
  return { name, move: 'leave', before, after: before.filter((_, i) => i !== leaver) };
};

const transitions: readonly Transition[] = [
  join('join 3→4', [1, 1, 1], 1),
  leave('leave 4→3', [1, 1, 1, 1], 1),
  join('join 8→9', [1, 1, 1, 1, 1, 1, 1, 1], 1),
  join('join w1,2,3 +w2', [1, 2, 3], 2),
  leave('leave w1,1,2,4 −w2', [1, 1, 2, 4], 2),
];
const shardCounts = [64, 256, 1024];

/** The most loaded member's shards over its fair share (1 is perfect). */
const imbalanceOf = (owners: Owners, candidates: readonly PlacementCandidate[]): number => {
  const members = candidates.filter((c) => c.weight > 0);
  const total = members.reduce((sum, c) => sum + c.weight, 0);
  const counts = new Map<string | undefined, number>();
  for (const owner of owners) counts.set(owner, (counts.get(owner) ?? 0) + 1);
  return Math.max(...members.map((c) => (counts.get(c.id) ?? 0) / ((owners.length * c.weight) / total)));
};

const percentile = (values: readonly number[], p: number): number => {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
};

interface Trial {
  readonly shape: string;
  readonly move: 'join' | 'leave';
  readonly algorithm: string;
  readonly ratio: number;
  readonly imbalance: number;
}

const trial = (
  algorithm: (typeof algorithms)[number],
  kind: string,
  shards: number,
  t: Transition,
): Trial => {
  const before = algorithm.place(kind, shards, t.before);
  const after = algorithm.place(kind, shards, t.after);
  const moved = movedShards(before, after).length;
  const minimal = minimalMoves(before, t.after);
  return {
    shape: `${shards} shards, ${t.name}`,
    move: t.move,
    algorithm: algorithm.name,
    ratio: minimal === 0 ? (moved === 0 ? 1 : Number.POSITIVE_INFINITY) : moved / minimal,
    imbalance: imbalanceOf(after, t.after),
  };
};

/** Median time of placeKind(1024 shards, 50 members of weight 1..3) over `times` kinds. */
const placementTime = (round: number, times: number): number => {
  const candidates = nodes(Array.from({ length: 50 }, (_, i) => 1 + (i % 3)));
  const ms: number[] = [];
  for (let i = 0; i < times; i++) {
    const start = performance.now();
    placeKind(`time-${round}-${i}`, 1024, candidates);
    ms.push(performance.now() - start);
  }
  return median(ms);
};

const run = async (options: BenchOptions & { readonly rounds: number }): Promise<Figures> => {
  const kindsPerShape = options.quick ? 10 : 40;
  const trialsPerRound = kindsPerShape * transitions.length * shardCounts.length;
  header(
    'rebalance',
    `shards moved on join/leave over the minimum, ${trialsPerRound} trials (kind × shape) per algorithm per round`,
    options,
  );
  placementTime(-1, 20); // warm-up
  const out = new Samples();
  const every: Trial[] = [];
  for (let round = 0; round < options.rounds; round++) {
    const trials: Trial[] = [];
    for (const shards of shardCounts)
      for (const t of transitions)
        for (let i = 0; i < kindsPerShape; i++)
          for (const algorithm of algorithms) trials.push(trial(algorithm, `kind-${round}-${i}`, shards, t));
    every.push(...trials);
    const parts: string[] = [];
    for (const { name, label } of algorithms) {
      const mine = trials.filter((x) => x.algorithm === name);
      const ratios = mine.map((x) => x.ratio);
      out.add(`${name}_join_ratio`, median(mine.filter((x) => x.move === 'join').map((x) => x.ratio)));
      out.add(`${name}_leave_ratio`, median(mine.filter((x) => x.move === 'leave').map((x) => x.ratio)));
      const imbalance = mine.map((x) => x.imbalance);
      out.add(`${name}_ratio`, median(ratios));
      out.add(`${name}_p95`, percentile(ratios, 95));
      out.add(`${name}_worst`, Math.max(...ratios));
      out.add(`${name}_imbalance`, median(imbalance));
      out.add(`${name}_imbalance_p95`, percentile(imbalance, 95));
      parts.push(
        `${label} ${tidy(median(ratios))} (p95 ${tidy(percentile(ratios, 95))}, worst ${tidy(Math.max(...ratios))})`,
      );
    }
    const ms = placementTime(round, 20);
    out.add('place_ms', ms);
    log(`round ${round + 1}: movement ratio ${parts.join('; ')}; placeKind 1024×50 ${tidy(ms)} ms`);
  }

  log();
  log(
    'movement ratio (moved / minimal) and imbalance (max load / fair share) by shape, all rounds: median / worst',
  );
  log(`${'shape'.padEnd(34)}${algorithms.map((a) => a.label.padEnd(34)).join('')}`);
  const cell = (trials: readonly Trial[]) => {
    const ratios = trials.map((x) => x.ratio);
    const imbalance = trials.map((x) => x.imbalance);
    return `${tidy(median(ratios))} / ${tidy(Math.max(...ratios))}  imb ${tidy(median(imbalance))}`.padEnd(
      34,
    );
  };
  for (const shards of shardCounts)
    for (const t of transitions) {
      const shape = `${shards} shards, ${t.name}`;
      const row = every.filter((x) => x.shape === shape);
      log(
        `${shape.padEnd(34)}${algorithms.map((a) => cell(row.filter((x) => x.algorithm === a.name))).join('')}`,
      );
    }

  log();
  for (const { name, label } of algorithms) {
    log(`${`${label}: movement ratio median`.padEnd(44)}${withRuns(out.of(`${name}_ratio`))}`);
    log(`${`${label}: movement ratio p95`.padEnd(44)}${withRuns(out.of(`${name}_p95`))}`);
    log(`${`${label}: movement ratio worst`.padEnd(44)}${withRuns(out.of(`${name}_worst`))}`);
    log(`${`${label}: movement ratio, joins`.padEnd(44)}${withRuns(out.of(`${name}_join_ratio`))}`);
    log(`${`${label}: movement ratio, leaves`.padEnd(44)}${withRuns(out.of(`${name}_leave_ratio`))}`);
    log(`${`${label}: imbalance median`.padEnd(44)}${withRuns(out.of(`${name}_imbalance`))}`);
    log(`${`${label}: imbalance p95`.padEnd(44)}${withRuns(out.of(`${name}_imbalance_p95`))}`);
  }
  log(
    `${'ratio (mod N / rendezvous), median'.padEnd(44)}${tidy(out.median('mod_ratio') / out.median('hrw_ratio'))}`,
  );
  log(
    `${'ratio (ring / rendezvous), median'.padEnd(44)}${tidy(out.median('ring_ratio') / out.median('hrw_ratio'))}`,
  );
  log(`${'placeKind 1024 shards × 50 members, ms'.padEnd(44)}${withRuns(out.of('place_ms'))}   target < 10`);
  return {
    movement_ratio: tidy(out.median('hrw_ratio')),
    movement_ratio_p95: tidy(out.median('hrw_p95')),
    movement_ratio_worst: tidy(out.median('hrw_worst')),
    join_movement_ratio: tidy(out.median('hrw_join_ratio')),
    leave_movement_ratio: tidy(out.median('hrw_leave_ratio')),
    imbalance: tidy(out.median('hrw_imbalance')),
    imbalance_p95: tidy(out.median('hrw_imbalance_p95')),
    mod_movement_ratio: tidy(out.median('mod_ratio')),
    mod_movement_ratio_worst: tidy(out.median('mod_worst')),
    ring_movement_ratio: tidy(out.median('ring_ratio')),
    ring_movement_ratio_p95: tidy(out.median('ring_p95')),
    ring_movement_ratio_worst: tidy(out.median('ring_worst')),
    ring_join_movement_ratio: tidy(out.median('ring_join_ratio')),
    ring_imbalance: tidy(out.median('ring_imbalance')),
    ring_imbalance_p95: tidy(out.median('ring_imbalance_p95')),
    place_1024x50_ms: tidy(out.median('place_ms')),
  };
};

export const benchmark: Benchmark = {
  name: 'rebalance',
  summary: 'shards moved on join/leave over the minimum: rendezvous vs shard mod N vs a 100-vnode ring',
  defaultRounds: 5,
  run,
};
