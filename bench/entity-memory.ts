/**
 * Memory per idle activated entity: heap after 100,000 counter entities were activated through the
 * embedded runtime (one message each, all applied, passivation off), minus the heap of the started
 * runtime before, over the count. Heaps are measured after full collections (node --expose-gc).
 *
 * Peer: 100,000 raw nact actors (`nact.spawn` children with names, each holding the same counter state
 * and having handled one message), bytes per actor, in the same run.
 *
 * Breakdown, also in the same run, each piece measured alone over 100,000 instances:
 * - raw nact actor with a shared state (what nact itself costs per actor),
 * - the counter state,
 * - an Argus worker (`spawnWorker`: nact actor + cell + context + closures),
 * - a supervisor child (a Supervisor started with 100,000 worker specs: + child record + spec),
 * the rest of the full entity being its state, the shard runner's own per-key data and longer paths.
 * With --deep, heap snapshots before and after 10,000 entities give bytes per entity by V8 object type,
 * and the backing stores (property dictionaries, Map tables, closure contexts) by the object owning them.
 *
 * One 100,000-entity round takes ~100 s on the 2-core machine (activation slows down as the shard
 * supervisors fill up, see docs/BENCHMARKS.md), so the default is one round per run; the heap figure
 * varies by well under 1 % between runs. `--rounds N` asks for more.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getHeapSnapshot } from 'node:v8';
import nact from 'nact';
import { type CounterMessage, type CounterState, counter } from '../actors/counter/counter.ts';
import { type SpawnedWorker, spawnWorker, type WorkerParent } from '../runtime/actor.ts';
import { realClock } from '../runtime/clock.ts';
import { defineEntity, entityActor } from '../runtime/entity.ts';
import { EventBus } from '../runtime/events.ts';
import { createRuntime } from '../runtime/runtime.ts';
import { supervisor, worker } from '../supervisors/spec.ts';
import { Supervisor } from '../supervisors/supervisor.ts';
import {
  type Benchmark,
  type BenchOptions,
  type Figures,
  header,
  log,
  Samples,
  settleHeap,
  signal,
  sleep,
  tidy,
  withRuns,
} from './common.ts';

/** The counter of actors/counter, counting applies so the benchmark knows when all are in. */
const applied = { count: 0, target: Number.POSITIVE_INFINITY, reached: () => {}, marks: [] as number[] };
const countedCounter = defineEntity<CounterState, CounterMessage>({
  ...counter,
  receive: (state, m, ctx) => {
    const next = counter.receive(state, m, ctx);
    // A time mark at every tenth of the activations: shows how activation slows as shards fill up.
    if (++applied.count % Math.ceil(applied.target / 10) === 0) applied.marks.push(performance.now());
    if (applied.count === applied.target) applied.reached();
    return next;
  },
});

const keyOf = (i: number): string => `c-${i}`;

/** Sends one message to each of `count` keys (chunks of 1,000 per tick); resolves when all are applied. */
const activate = async (send: (key: string) => Promise<void>, count: number): Promise<void> => {
  const s = signal();
  applied.count = 0;
  applied.target = count;
  applied.reached = s.resolve;
  applied.marks = [performance.now()];
  const inFlight: Promise<unknown>[] = [];
  for (let i = 0; i < count; i += 1_000) {
    const chunk: Promise<void>[] = [];
    for (let j = i; j < Math.min(count, i + 1_000); j++) chunk.push(send(keyOf(j)));
    inFlight.push(Promise.all(chunk));
    if (inFlight.length >= 16) await inFlight.shift();
    else await new Promise((resolve) => setImmediate(resolve));
  }
  await Promise.all(inFlight);
  await s.promise;
};

interface RuntimeMeasure {
  readonly bytes: number;
  readonly activationSeconds: number;
  /** Activations per second in the first and in the last tenth of the entities. */
  readonly firstTenthRate: number;
  readonly lastTenthRate: number;
  readonly active: number;
}

/** Heap per entity through the runtime; `between` runs before each heap reading (--deep snapshots there). */
const runtimeEntities = async (
  count: number,
  between?: (phase: 'before' | 'after') => Promise<void>,
): Promise<RuntimeMeasure> => {
  const dir = mkdtempSync(join(tmpdir(), 'argus-bench-memory-'));
  const rt = createRuntime({ nodeId: 'bench-memory', dataDir: dir, passivation: { idleMs: 0 } });
  const client = rt.register(countedCounter);
  try {
    await rt.start();
    // The shards open as the consumption assigns them: wait until all 8 are there.
    while (rt.inspect().shards.length < rt.config.shards) await sleep(10);
    await between?.('before');
    const before = await settleHeap();
    const t0 = performance.now();
    await activate((key) => client.send(key, { type: 'inc', by: 1 }), count);
    const activationSeconds = (performance.now() - t0) / 1000;
    const marks = applied.marks;
    const tenth = Math.ceil(count / 10);
    const rate = (i: number) => tenth / ((marks[i + 1]! - marks[i]!) / 1000);
    const firstTenthRate = rate(0);
    const lastTenthRate = rate(marks.length - 2);
    await sleep(300); // the last snapshots and commits
    const after = await settleHeap();
    await between?.('after');
    const active = rt.inspect().shards.reduce((n, s) => n + s.active, 0);
    return { bytes: (after - before) / count, activationSeconds, firstTenthRate, lastTenthRate, active };
  } finally {
    await rt.stop();
    rmSync(dir, { recursive: true, force: true });
  }
};

/** Heap per instance of whatever `make` builds, `count` times, kept alive until measured. */
const perInstance = async <T>(count: number, make: (i: number) => T): Promise<number> => {
  const kept: T[] = new Array(count);
  const before = await settleHeap();
  for (let i = 0; i < count; i++) kept[i] = make(i);
  const after = await settleHeap();
  kept.length = 0;
  return (after - before - 8 * count) / count; // minus the slot in `kept`
};

const nactActors = async (count: number, perActorState: boolean, handleOne: boolean): Promise<number> => {
  const system = nact.start();
  const parent = nact.spawn(system, (s: number) => s, 'parent', { initialState: 0 });
  const shared: CounterState = { count: 0, applied: [] };
  let handled = 0;
  let all = signal();
  // One receive function for all, like Argus's workers share theirs.
  const receive = (state: CounterState, m: CounterMessage) => {
    if (++handled === count) all.resolve();
    return perActorState ? counter.receive(state, m, undefined as never) : state;
  };
  const before = await settleHeap();
  const refs = new Array<nact.Ref<CounterMessage>>(count);
  for (let i = 0; i < count; i++) {
    const key = keyOf(i);
    refs[i] = nact.spawn(parent, receive, key, {
      initialState: perActorState ? counter.initialState(key) : shared,
    });
  }
  if (handleOne) {
    for (const ref of refs) nact.dispatch(ref, { type: 'inc', by: 1 });
    await all.promise;
  }
  all = signal();
  const after = await settleHeap();
  nact.stop(system);
  return (after - before - 8 * count) / count;
};

const argusWorkers = async (count: number): Promise<number> => {
  const system = nact.start();
  const parent = nact.spawn(system, (s: number) => s, 'parent', { initialState: 0 });
  const actor = entityActor(
    countedCounter,
    () => ({ state: { count: 0, applied: [] }, offset: -1 }),
    realClock,
  );
  const supervisorStandIn: WorkerParent = { childEnded: () => {}, childHealthy: () => {} };
  const bytes = await perInstance(
    count,
    (i): SpawnedWorker<unknown> =>
      spawnWorker(
        parent,
        keyOf(i),
        keyOf(i),
        'node/shards/counter-0',
        actor,
        realClock,
        supervisorStandIn,
        1,
        false,
      ),
  );
  nact.stop(system);
  return bytes;
};

const supervisorChildren = async (count: number): Promise<number> => {
  const system = nact.start();
  const actor = entityActor(
    countedCounter,
    () => ({ state: { count: 0, applied: [] }, offset: -1 }),
    realClock,
  );
  const env = { clock: realClock, random: Math.random, events: new EventBus() };
  const before = await settleHeap();
  // Built from a spec list: StartChild messages would each copy nact's children Map (docs/BENCHMARKS.md).
  const specs = Array.from({ length: count }, (_, i) =>
    worker(keyOf(i), actor, { restart: 'transient', shutdownMs: 30_000 }),
  );
  const sup = new Supervisor(
    supervisor('counter-0', { intensity: 100 }, specs),
    system,
    'node/shards/counter-0',
    env,
    () => {},
  );
  const after = await settleHeap();
  const bytes = (after - before) / count;
  sup.kill();
  nact.stop(system);
  return bytes;
};

interface HeapTally {
  /** Self size and count by V8 node type and name (constructor or function name). */
  readonly byType: Map<string, { size: number; count: number }>;
  /**
   * Backing stores (property dictionaries, Map/Set tables, elements, closure contexts) by the object that
   * owns them, with the owner's property names: says *which* object a "(object properties)" array is.
   */
  readonly byOwner: Map<string, { size: number; count: number }>;
}

const tally = (map: Map<string, { size: number; count: number }>, label: string, size: number): void => {
  const entry = map.get(label);
  if (entry) {
    entry.size += size;
    entry.count++;
  } else map.set(label, { size, count: 1 });
};

const BACKING = new Set(['properties', 'elements', 'table', 'context']);

/** Tallies a heap snapshot of this process (node:v8 getHeapSnapshot). */
const heapTally = async (): Promise<HeapTally> => {
  const chunks: string[] = [];
  for await (const chunk of getHeapSnapshot()) chunks.push(typeof chunk === 'string' ? chunk : String(chunk));
  const snapshot = JSON.parse(chunks.join('')) as {
    snapshot: {
      meta: { node_fields: string[]; node_types: [string[]]; edge_fields: string[]; edge_types: [string[]] };
    };
    nodes: number[];
    edges: number[];
    strings: string[];
  };
  chunks.length = 0;
  const { meta } = snapshot.snapshot;
  const { nodes, edges, strings } = snapshot;
  const width = meta.node_fields.length;
  const edgeWidth = meta.edge_fields.length;
  const [typeAt, nameAt, sizeAt, edgeCountAt] = ['type', 'name', 'self_size', 'edge_count'].map((f) =>
    meta.node_fields.indexOf(f),
  ) as [number, number, number, number];
  const [edgeTypeAt, edgeNameAt, edgeToAt] = ['type', 'name_or_index', 'to_node'].map((f) =>
    meta.edge_fields.indexOf(f),
  ) as [number, number, number];
  const nodeTypes = meta.node_types[0];
  const edgeTypes = meta.edge_types[0];
  const label = (i: number): string => {
    const type = nodeTypes[nodes[i + typeAt]!]!;
    const name = strings[nodes[i + nameAt]!]!;
    return type === 'object' ||
      type === 'closure' ||
      type === 'hidden' ||
      type === 'array' ||
      type === 'native'
      ? `${type} ${name.length > 50 ? `${name.slice(0, 47)}...` : name}`
      : type;
  };
  const byType = new Map<string, { size: number; count: number }>();
  const byOwner = new Map<string, { size: number; count: number }>();
  // A store reachable from several owners (a closure context shared by sibling closures) counts once.
  const attributed = new Set<number>();
  let edge = 0;
  for (let i = 0; i < nodes.length; i += width) {
    tally(byType, label(i), nodes[i + sizeAt]!);
    const edgeEnd = edge + nodes[i + edgeCountAt]! * edgeWidth;
    const type = nodeTypes[nodes[i + typeAt]!];
    if (type === 'object' || type === 'closure') {
      const props: string[] = [];
      const stores: [string, number][] = [];
      for (let e = edge; e < edgeEnd; e += edgeWidth) {
        const edgeType = edgeTypes[edges[e + edgeTypeAt]!];
        if (edgeType === 'property') props.push(strings[edges[e + edgeNameAt]!]!);
        else if (edgeType === 'internal') {
          const name = strings[edges[e + edgeNameAt]!]!;
          if (BACKING.has(name)) stores.push([name, edges[e + edgeToAt]!]);
        }
      }
      const owner = `${label(i)} {${props
        .filter((p) => p !== '__proto__')
        .slice(0, 8)
        .join(',')}}`;
      for (const [name, to] of stores) {
        if (attributed.has(to)) continue;
        attributed.add(to);
        tally(byOwner, `${owner} -> ${name}`, nodes[to + sizeAt]!);
      }
    }
    edge = edgeEnd;
  }
  return { byType, byOwner };
};

const diffRows = (
  before: Map<string, { size: number; count: number }>,
  after: Map<string, { size: number; count: number }>,
  count: number,
) => {
  const rows: { label: string; bytes: number; objects: number }[] = [];
  for (const [label, a] of after) {
    const b = before.get(label) ?? { size: 0, count: 0 };
    rows.push({ label, bytes: (a.size - b.size) / count, objects: (a.count - b.count) / count });
  }
  return rows.sort((x, y) => y.bytes - x.bytes);
};

/** Heap snapshots around `count` entities: bytes per entity by object type and by owner (--deep). */
const deepBreakdown = async (count: number): Promise<void> => {
  let before: HeapTally | undefined;
  let after: HeapTally | undefined;
  const m = await runtimeEntities(count, async (phase) => {
    await settleHeap();
    if (phase === 'before') before = await heapTally();
    else after = await heapTally();
    await settleHeap();
  });
  const types = diffRows(before!.byType, after!.byType, count);
  const total = types.reduce((n, r) => n + r.bytes, 0);
  log(
    `heap snapshot diff over ${count.toLocaleString('en')} entities: ${tidy(total)} bytes/entity (self sizes)`,
  );
  log(`  (heapUsed delta of the same run: ${tidy(m.bytes)} bytes/entity)`);
  log('  by V8 type and constructor:');
  for (const r of types.slice(0, 25)) {
    if (Math.abs(r.bytes) < 4) continue;
    log(
      `  ${tidy(r.bytes).toString().padStart(7)} B  ${tidy(r.objects).toString().padStart(6)} objects  ${r.label}`,
    );
  }
  log('  backing stores by owner {owner properties} -> store:');
  for (const r of diffRows(before!.byOwner, after!.byOwner, count).slice(0, 20)) {
    if (Math.abs(r.bytes) < 4) continue;
    log(
      `  ${tidy(r.bytes).toString().padStart(7)} B  ${tidy(r.objects).toString().padStart(6)} x  ${r.label}`,
    );
  }
};

const run = async (options: BenchOptions & { readonly rounds: number }): Promise<Figures> => {
  const count = options.quick ? 20_000 : 100_000;
  header(
    'entity-memory',
    `heap per idle activated entity, ${count.toLocaleString('en')} counter entities`,
    options,
  );
  const samples = new Samples();
  // A warm-up run, so code and caches that live for the process are not counted in the first round.
  await runtimeEntities(Math.round(count / 10));
  for (let round = 0; round < options.rounds; round++) {
    const entity = await runtimeEntities(count);
    const raw = await nactActors(count, true, true);
    samples.add('entity', entity.bytes);
    samples.add('nact', raw);
    samples.add('ratio', entity.bytes / raw);
    samples.add('activation', count / entity.activationSeconds);
    samples.add('activation_first', entity.firstTenthRate);
    samples.add('activation_last', entity.lastTenthRate);
    if (entity.active !== count) log(`warning: ${entity.active} entities active, expected ${count}`);
    log(
      `round ${round + 1}: entity ${tidy(entity.bytes)} B, raw nact actor ${tidy(raw)} B, ratio ${tidy(entity.bytes / raw)}; ` +
        `activation ${Math.round(count / entity.activationSeconds).toLocaleString('en')} entities/s ` +
        `(first tenth ${Math.round(entity.firstTenthRate).toLocaleString('en')}/s, ` +
        `last tenth ${Math.round(entity.lastTenthRate).toLocaleString('en')}/s)`,
    );
  }

  log('breakdown (each piece alone, bytes per instance):');
  const pieces = new Samples();
  for (let round = 0; round < 3; round++) {
    pieces.add('nact-bare', await nactActors(count, false, false));
    pieces.add('nact-handled', await nactActors(count, false, true));
    pieces.add('state', await perInstance(count, (i) => counter.initialState(keyOf(i))));
    pieces.add('worker', await argusWorkers(count));
    pieces.add('supervised', await supervisorChildren(count));
  }
  const nactBare = pieces.median('nact-bare');
  const state = pieces.median('state');
  const workerBytes = pieces.median('worker');
  const supervised = pieces.median('supervised');
  const entity = samples.median('entity');
  log(`  raw nact actor, never messaged           ${withRuns(pieces.of('nact-bare'))}`);
  log(`  raw nact actor, after one message        ${withRuns(pieces.of('nact-handled'))}`);
  log(`  counter state { count, applied: [] }     ${withRuns(pieces.of('state'))}`);
  log(`  Argus worker (spawnWorker, incl. nact)   ${withRuns(pieces.of('worker'))}`);
  log(`    of which Argus cell/context/closures   ${tidy(workerBytes - nactBare)}`);
  log(`  supervisor child (incl. worker)          ${withRuns(pieces.of('supervised'))}`);
  log(`    of which child record + spec           ${tidy(supervised - workerBytes)}`);
  log(`  full entity (runtime)                    ${tidy(entity)}`);
  log(
    `    rest: state + shard runner + message    ${tidy(entity - supervised)} (state alone ${tidy(state)})`,
  );

  if (options.deep) await deepBreakdown(10_000);

  log();
  log(`bytes per entity (runtime)    ${withRuns(samples.of('entity'))}   target <= 2048`);
  log(`bytes per raw nact actor      ${withRuns(samples.of('nact'))}   <- peer`);
  log(`ratio                         ${withRuns(samples.of('ratio'))}`);
  log(`activation, entities/s        ${withRuns(samples.of('activation'))}`);
  log(
    `  first / last tenth           ${withRuns(samples.of('activation_first'))} / ${withRuns(samples.of('activation_last'))}`,
  );
  return { bytes_per_entity: tidy(entity) };
};

export const benchmark: Benchmark = {
  name: 'entity-memory',
  summary: 'heap bytes per idle activated entity vs raw nact actor (target <= 2 KB)',
  defaultRounds: 1,
  run,
};
