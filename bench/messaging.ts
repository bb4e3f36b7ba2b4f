/**
 * In-process messaging: Argus's typed layer (a worker under a supervisor, `tell`, `tellBatch`) against
 * raw nact (`nact.spawn` + `nact.dispatch`) in the same process, same message shape and count. Rounds
 * interleave the variants so they share the machine's noise.
 *
 * Each variant sends N messages `{ type: 'tick', n }` synchronously, then waits until the actor has
 * counted them all; the rate is N over the time from the first send to the last receive. The receive
 * does the same trivial work in every variant (count; resolve a promise at N).
 *
 * Diagnostic (printed, not in the JSON): raw nact with one shared sender object passed to its dispatch, as
 * `tell` does, which shows what nact's per-message `new Nobody()` costs the peer.
 */
import nact from 'nact';
import type { ActorRef } from '../runtime/actor.ts';
import { defineActor, tell, tellBatch } from '../runtime/actor.ts';
import { realClock } from '../runtime/clock.ts';
import { EventBus } from '../runtime/events.ts';
import { supervisor, worker } from '../supervisors/spec.ts';
import { startTree } from '../supervisors/tree.ts';
import {
  type Benchmark,
  type BenchOptions,
  collect,
  type Figures,
  header,
  log,
  median,
  Samples,
  signal,
  tidy,
  withRuns,
} from './common.ts';

type Tick = { readonly type: 'tick'; readonly n: number };

/** What every variant's receive does: count, and say so when the expected count is reached. */
const sink = { received: 0, expected: 0, done: () => {} };
const received = (): void => {
  if (++sink.received === sink.expected) sink.done();
};

const arm = (expected: number): Promise<void> => {
  const s = signal();
  sink.received = 0;
  sink.expected = expected;
  sink.done = s.resolve;
  return s.promise;
};

const sinkActor = defineActor<number, Tick>({
  init: () => 0,
  receive: (state) => {
    received();
    return state;
  },
});

/** The sender nact's dispatch otherwise allocates per message (`new Nobody()`), allocated once. */
const sharedSender = { system: { name: undefined }, path: { parts: [] }, type: 'nobody' };
const dispatchWithSender = nact.dispatch as unknown as (ref: unknown, msg: unknown, sender: unknown) => void;

type Variant = 'argus' | 'nact' | 'batched' | 'nact-shared-sender';

const startArgus = () => {
  const tree = startTree(
    supervisor('bench', { strategy: 'one_for_one', intensity: 10 }, [worker('sink', sinkActor)]),
    { clock: realClock, random: Math.random, events: new EventBus() },
  );
  const ref = tree.root.childRef('sink') as ActorRef<Tick>;
  return { ref, stop: () => tree.stop() };
};

const startNact = () => {
  const system = nact.start();
  const ref = nact.spawn(
    system,
    (state: number, _msg: Tick) => {
      received();
      return state;
    },
    'sink',
    { initialState: 0 },
  );
  return {
    ref,
    stop: async () => {
      nact.stop(system);
    },
  };
};

/** Messages per second of one variant over `count` messages. */
const measure = async (variant: Variant, count: number, batchSize: number): Promise<number> => {
  collect();
  const argus = variant === 'argus' || variant === 'batched';
  const target = argus ? startArgus() : startNact();
  const finished = arm(count);
  const t0 = performance.now();
  switch (variant) {
    case 'argus': {
      const ref = target.ref as ActorRef<Tick>;
      for (let n = 0; n < count; n++) tell(ref, { type: 'tick', n });
      break;
    }
    case 'nact': {
      const ref = target.ref as nact.Ref<Tick>;
      for (let n = 0; n < count; n++) nact.dispatch(ref, { type: 'tick', n });
      break;
    }
    case 'batched': {
      const ref = target.ref as ActorRef<Tick>;
      let batch: Tick[] = [];
      for (let n = 0; n < count; n++) {
        batch.push({ type: 'tick', n });
        if (batch.length === batchSize) {
          tellBatch(ref, batch);
          batch = [];
        }
      }
      if (batch.length > 0) tellBatch(ref, batch);
      break;
    }
    case 'nact-shared-sender': {
      const ref = target.ref;
      for (let n = 0; n < count; n++) dispatchWithSender(ref, { type: 'tick', n }, sharedSender);
      break;
    }
    default: {
      const never: never = variant;
      throw new Error(`unknown variant ${String(never)}`);
    }
  }
  await finished;
  const seconds = (performance.now() - t0) / 1000;
  await target.stop();
  return count / seconds;
};

const run = async (options: BenchOptions & { readonly rounds: number }): Promise<Figures> => {
  const count = options.quick ? 200_000 : 1_000_000;
  const batchSize = 256;
  header('messaging', `${count.toLocaleString('en')} messages, batches of ${batchSize}`, options);

  const main: Variant[] = ['argus', 'nact', 'batched'];
  const diagnostics: Variant[] = ['nact-shared-sender'];
  for (const v of [...main, ...diagnostics]) await measure(v, Math.round(count / 5), batchSize);

  const samples = new Samples();
  for (let round = 0; round < options.rounds; round++) {
    // Rotate the order so no variant always runs first (or right after the batched one's garbage).
    const order = [...main.slice(round % 3), ...main.slice(0, round % 3), ...diagnostics];
    const line: string[] = [];
    for (const v of order) {
      const rate = await measure(v, count, batchSize);
      samples.add(v, rate);
      line.push(`${v} ${Math.round(rate).toLocaleString('en')}`);
    }
    const a = samples.of('argus').at(-1)!;
    const n = samples.of('nact').at(-1)!;
    const b = samples.of('batched').at(-1)!;
    samples.add('ratio', a / n);
    samples.add('batched_ratio', b / n);
    log(`round ${round + 1}: ${line.join(', ')} msg/s; ratio ${tidy(a / n)}, batched ratio ${tidy(b / n)}`);
  }

  log();
  log(`argus tell        msg/s  ${withRuns(samples.of('argus'))}`);
  log(`raw nact          msg/s  ${withRuns(samples.of('nact'))}   <- peer`);
  log(`argus tellBatch   msg/s  ${withRuns(samples.of('batched'))}`);
  log(`ratio (argus/nact)       ${withRuns(samples.of('ratio'))}   target >= 0.9`);
  log(`batched ratio (batch/nact) ${withRuns(samples.of('batched_ratio'))}   target >= 5`);
  log(`diagnostic: raw nact, shared sender   msg/s  ${withRuns(samples.of('nact-shared-sender'))}`);

  return {
    argus_msgs_per_s: tidy(samples.median('argus')),
    nact_msgs_per_s: tidy(samples.median('nact')),
    ratio: tidy(median(samples.of('ratio'))),
    batched_msgs_per_s: tidy(samples.median('batched')),
    batched_ratio: tidy(median(samples.of('batched_ratio'))),
  };
};

export const benchmark: Benchmark = {
  name: 'messaging',
  summary:
    'in-process messages/s through Argus tell/tellBatch vs raw nact (targets: ratio >= 0.9, batched >= 5)',
  defaultRounds: 5,
  run,
};
