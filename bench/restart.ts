/**
 * Restart latency: from the moment a 'crash' message is sent to a worker until the next message is
 * handled by its restarted incarnation.
 *
 * A worker under a one_for_one supervisor (intensity high enough never to escalate). One sample: send
 * 'crash' at t0; the supervisor hears of the crash, restarts the worker and tells its observer
 * (`ChildObserver.started`), which at once sends a 'ping' carrying t0; the new incarnation records
 * `now - t0`. The ping cannot be sent right after the crash: it would reach the crashing incarnation,
 * which drops everything after its crash (runtime/actor.ts), so the earliest a client can reach the new
 * incarnation is when the supervisor has started it. Crash and ping alternate, so every restart follows
 * a healthy message and is immediate (no backoff).
 *
 * Peer: nact's own restart (`onCrash` → `reset`) of the same actor, same samples, in the same run.
 *
 * Also measured (printed, not in the JSON):
 * - the same with 10,000 idle siblings under the supervisor, which is what a shard supervisor looks like;
 * - an entity through the embedded runtime: from the throw to the retried record applied by the
 *   restarted entity (which reloads its snapshot).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import nact from 'nact';
import { type ActorRef, defineActor, tell } from '../runtime/actor.ts';
import { realClock } from '../runtime/clock.ts';
import { defineEntity } from '../runtime/entity.ts';
import { EventBus } from '../runtime/events.ts';
import { createRuntime } from '../runtime/runtime.ts';
import { type ChildSpec, supervisor, worker } from '../supervisors/spec.ts';
import { startTree } from '../supervisors/tree.ts';
import {
  type Benchmark,
  type BenchOptions,
  collect,
  type Figures,
  header,
  Latency,
  log,
  Samples,
  signal,
  tidy,
  withRuns,
} from './common.ts';

type CrashMessage = { readonly type: 'crash' } | { readonly type: 'ping'; readonly crashedAt: number };

const latency = new Latency();
let handled: () => void = () => {};

const crasher = defineActor<number, CrashMessage>({
  init: () => 0,
  receive: (state, m) => {
    if (m.type === 'crash') throw new Error('crash on purpose');
    latency.recordMs(performance.now() - m.crashedAt);
    handled();
    return state + 1;
  },
});

const idle = defineActor<number, { type: 'noop' }>({ init: () => 0, receive: (s) => s });

/** `samples` crash → ping round trips on a fresh tree; returns p50/p99/max in ms. */
const workerRound = async (samples: number, siblings: number) => {
  latency.reset();
  let crashedAt = 0;
  const children: ChildSpec[] = [];
  for (let i = 0; i < siblings; i++) children.push(worker(`idle-${i}`, idle));
  children.push(worker('crasher', crasher));
  const tree = startTree(
    // Intensity above the sample count, so the supervisor never gives up; period long enough to hold them.
    supervisor('bench', { strategy: 'one_for_one', intensity: samples * 2, periodMs: 60_000 }, children),
    { clock: realClock, random: Math.random, events: new EventBus() },
    (e) => {
      throw e;
    },
    {
      started: (id, ref, restart) => {
        if (restart && id === 'crasher') tell(ref as ActorRef<CrashMessage>, { type: 'ping', crashedAt });
      },
    },
  );
  const ref = tree.root.childRef('crasher') as ActorRef<CrashMessage>;
  collect();
  for (let i = 0; i < samples; i++) {
    const s = signal();
    handled = s.resolve;
    crashedAt = performance.now();
    tell(ref, { type: 'crash' });
    await s.promise;
  }
  await tree.stop();
  return { p50: latency.percentileMs(50), p99: latency.percentileMs(99), max: latency.maxMs };
};

/**
 * Peer: nact's own restart, an actor whose `onCrash` answers `reset` (state re-initialised, mailbox
 * kept). Its ping can go right after the crash: it waits in the mailbox and reaches the reset actor.
 */
const nactRound = async (samples: number) => {
  latency.reset();
  const system = nact.start();
  const ref = nact.spawn(
    system,
    (state: number, m: CrashMessage) => {
      if (m.type === 'crash') throw new Error('crash on purpose');
      latency.recordMs(performance.now() - m.crashedAt);
      handled();
      return state + 1;
    },
    'crasher',
    { initialState: 0, onCrash: (_msg, _error, ctx) => ctx.reset },
  );
  collect();
  for (let i = 0; i < samples; i++) {
    const s = signal();
    handled = s.resolve;
    const crashedAt = performance.now();
    nact.dispatch(ref, { type: 'crash' });
    nact.dispatch(ref, { type: 'ping', crashedAt });
    await s.promise;
  }
  nact.stop(system);
  return { p50: latency.percentileMs(50), p99: latency.percentileMs(99), max: latency.maxMs };
};

// The entity variant: a record crashes its entity once, then is applied by the restarted entity.
const entityLatency = new Latency();
const crashed = new Map<string, number>();
let entityHandled: () => void = () => {};

const flaky = defineEntity<{ n: number }, { type: 'crash-once'; id: string }>({
  kind: 'flaky',
  initialState: () => ({ n: 0 }),
  receive: (state, m) => {
    const at = crashed.get(m.id);
    if (at === undefined) {
      crashed.set(m.id, performance.now());
      throw new Error('crash on purpose');
    }
    entityLatency.recordMs(performance.now() - at);
    crashed.delete(m.id);
    state.n++;
    entityHandled();
    return state;
  },
});

const entityRounds = async (rounds: number, samples: number, out: Samples): Promise<void> => {
  const dir = mkdtempSync(join(tmpdir(), 'argus-bench-restart-'));
  const rt = createRuntime({
    nodeId: 'bench-restart',
    dataDir: dir,
    passivation: { idleMs: 0 },
    supervision: { shard: { intensity: 1_000_000, periodMs: 60_000 } },
  });
  const client = rt.register(flaky);
  await rt.start();
  try {
    let id = 0;
    const one = async (i: number) => {
      const s = signal();
      entityHandled = s.resolve;
      await client.send(`k-${i % 100}`, { type: 'crash-once', id: String(id++) });
      await s.promise;
    };
    for (let i = 0; i < Math.min(200, samples); i++) await one(i); // warm-up, activates the keys
    for (let round = 0; round < rounds; round++) {
      entityLatency.reset();
      collect();
      for (let i = 0; i < samples; i++) await one(i);
      out.add('entity_p50', entityLatency.percentileMs(50));
      out.add('entity_p99', entityLatency.percentileMs(99));
      log(
        `entity round ${round + 1}: ${samples} restarts, p50 ${tidy(entityLatency.percentileMs(50))} ms, ` +
          `p99 ${tidy(entityLatency.percentileMs(99))} ms, max ${tidy(entityLatency.maxMs)} ms`,
      );
    }
  } finally {
    await rt.stop();
    rmSync(dir, { recursive: true, force: true });
  }
};

const run = async (options: BenchOptions & { readonly rounds: number }): Promise<Figures> => {
  const samples = options.quick ? 2_000 : 10_000;
  const siblingSamples = options.quick ? 500 : 2_000;
  const entitySamples = options.quick ? 200 : 1_000;
  header(
    'restart',
    `crash → next message handled by the restarted worker, ${samples} samples per round`,
    options,
  );
  const out = new Samples();
  await workerRound(Math.round(samples / 5), 0);
  await nactRound(Math.round(samples / 5));
  await workerRound(Math.round(siblingSamples / 5), 10_000);
  for (let round = 0; round < options.rounds; round++) {
    const alone = await workerRound(samples, 0);
    const peer = await nactRound(samples);
    const crowded = await workerRound(siblingSamples, 10_000);
    out.add('p50', alone.p50);
    out.add('p99', alone.p99);
    out.add('nact_p50', peer.p50);
    out.add('nact_p99', peer.p99);
    out.add('ratio_p50', alone.p50 / peer.p50);
    out.add('ratio_p99', alone.p99 / peer.p99);
    out.add('crowded_p50', crowded.p50);
    out.add('crowded_p99', crowded.p99);
    log(
      `round ${round + 1}: worker p50 ${tidy(alone.p50)} ms, p99 ${tidy(alone.p99)} ms, max ${tidy(alone.max)} ms; ` +
        `nact reset p50 ${tidy(peer.p50)} ms, p99 ${tidy(peer.p99)} ms; ` +
        `with 10,000 siblings p50 ${tidy(crowded.p50)} ms, p99 ${tidy(crowded.p99)} ms, max ${tidy(crowded.max)} ms`,
    );
  }
  await entityRounds(options.rounds, entitySamples, out);

  log();
  log(`worker restart p50 ms                 ${withRuns(out.of('p50'))}`);
  log(`worker restart p99 ms                 ${withRuns(out.of('p99'))}   target < 5`);
  log(`nact reset (peer) p50 ms              ${withRuns(out.of('nact_p50'))}`);
  log(`nact reset (peer) p99 ms              ${withRuns(out.of('nact_p99'))}`);
  log(`ratio argus/nact p50                  ${withRuns(out.of('ratio_p50'))}`);
  log(`ratio argus/nact p99                  ${withRuns(out.of('ratio_p99'))}`);
  log(`with 10,000 idle siblings p50 ms      ${withRuns(out.of('crowded_p50'))}`);
  log(`with 10,000 idle siblings p99 ms      ${withRuns(out.of('crowded_p99'))}`);
  log(`entity (embedded runtime) p50 ms      ${withRuns(out.of('entity_p50'))}`);
  log(`entity (embedded runtime) p99 ms      ${withRuns(out.of('entity_p99'))}`);
  return { p50_ms: tidy(out.median('p50')), p99_ms: tidy(out.median('p99')) };
};

export const benchmark: Benchmark = {
  name: 'restart',
  summary: 'crash → next message processed by the restarted worker, p50/p99 (target p99 < 5 ms)',
  defaultRounds: 5,
  run,
};
