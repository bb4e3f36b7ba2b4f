/**
 * Memory per polled host: heap after HOSTS host entities (`host/<id>`, actors/host/host.ts) were each
 * sent POLLS `host.polled` messages through `rt.send('host', id, message)` — the 20 raw values of
 * bench/snmp-common.ts `polledValues` (CPU tick counters, memory/load/uptime gauges, two interfaces'
 * octet counters, two filesystems), a minute apart, with the CPU and disk-ratio derivations — all applied
 * and checkpointed, passivation off (`idleMs: 0`), minus the heap of the started runtime before, over the
 * count. Heaps are read after full collections (node --expose-gc). The entity's state then holds its
 * poll statistics and the last reading of its 12 counter series (derive.ts `DeriveState`).
 *
 * Also, in the same run:
 * - the packed snapshot per host: `msgpackr.pack(state)` as runtime/shard.ts stores it, plus the
 *   journal's 12-byte snapshot frame (runtime/embedded/codec.ts), averaged over a sample of hosts;
 * - the same with the whole extension (`rt.use(hostMetrics())`, push-only so nothing is polled): the
 *   recent history (actors/host/history.ts, 12 points per series by default) of what the host emitted
 *   is per-host memory too, held by the node, not by the entity.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pack } from 'msgpackr';
import { DEFAULT_METRIC_SET } from '../actors/host/default-metricset.ts';
import { host, METRICS_STREAM } from '../actors/host/host.ts';
import { hostMetrics } from '../actors/host/host-metrics.ts';
import type { HostPolled } from '../actors/host/messages.ts';
import { createRuntime } from '../runtime/runtime.ts';
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
import { BENCH_SERVICE, polledValues } from './snmp-common.ts';

const POLLS = 3;
const SNAPSHOT_FRAME_BYTES = 12;

/** The default set's derivations: CPU % from the tick counters, disk.used_pct from the storage rows. */
const DERIVED = DEFAULT_METRIC_SET.derived;

const polled = (i: number, poll: number, t0: number): HostPolled => {
  const ts = t0 + poll * 60_000;
  return {
    type: 'host.polled',
    ts,
    latencyMs: 3 + (i % 7),
    values: polledValues(i, ts),
    missing: 0,
    derived: DERIVED,
    service: BENCH_SERVICE,
    labels: { rack: `r${i % 40}`, env: 'prod', dc: 'eu-1' },
  };
};

interface Measure {
  readonly bytes: number;
  readonly snapshotBytes: number;
  readonly active: number;
  readonly seconds: number;
}

/** Heap per host after `count` hosts applied POLLS polls each; `withExtension`: hostMetrics() too. */
const measure = async (count: number, withExtension: boolean): Promise<Measure> => {
  const dir = mkdtempSync(join(tmpdir(), 'argus-bench-host-memory-'));
  const rt = createRuntime({
    nodeId: 'bench-host-memory',
    mode: 'embedded',
    dataDir: dir,
    http: false,
    shards: 16,
    passivation: { idleMs: 0 },
  });
  if (withExtension) rt.use(hostMetrics());
  else rt.register(host);
  const target = count * POLLS;
  let applied = 0;
  const done = signal();
  // Every applied poll emits one metrics record (gauges always give samples): the count of applies.
  const unsubscribe = rt.onOutput(METRICS_STREAM, (outputs) => {
    applied += outputs.length;
    if (applied >= target) done.resolve();
  });
  try {
    await rt.start();
    while (rt.inspect().shards.length < 16) await sleep(10);
    const before = await settleHeap();
    const t0 = Date.now() - POLLS * 60_000;
    const started = performance.now();
    for (let poll = 0; poll < POLLS; poll++) {
      const inFlight: Promise<unknown>[] = [];
      for (let i = 0; i < count; i += 1_000) {
        const chunk: Promise<void>[] = [];
        for (let j = i; j < Math.min(count, i + 1_000); j++)
          chunk.push(rt.send('host', `h-${j}`, polled(j, poll, t0)));
        inFlight.push(Promise.all(chunk));
        if (inFlight.length >= 8) await inFlight.shift();
        else await new Promise((resolve) => setImmediate(resolve));
      }
      await Promise.all(inFlight);
    }
    await done.promise;
    const seconds = (performance.now() - started) / 1000;
    await sleep(500); // the last checkpoints and commits
    const after = await settleHeap();
    const active = rt.inspect().shards.reduce((n, s) => n + s.active, 0);
    let packed = 0;
    const sampleKeys = Array.from({ length: 100 }, (_, k) => `h-${Math.floor((k * count) / 100)}`);
    for (const key of sampleKeys) packed += pack((await rt.entityState('host', key)).state).length;
    return {
      bytes: (after - before) / count,
      snapshotBytes: packed / sampleKeys.length + SNAPSHOT_FRAME_BYTES,
      active,
      seconds,
    };
  } finally {
    unsubscribe();
    await rt.stop();
    rmSync(dir, { recursive: true, force: true });
  }
};

const run = async (options: BenchOptions & { readonly rounds: number }): Promise<Figures> => {
  const count = options.quick ? 2_000 : 10_000;
  header(
    'host-memory',
    `heap per polled host, ${count.toLocaleString('en')} host entities × ${POLLS} polls of 20 values`,
    options,
  );
  const samples = new Samples();
  await measure(Math.round(count / 10), false); // warm-up: code and caches that live for the process
  for (let round = 0; round < options.rounds; round++) {
    const entity = await measure(count, false);
    const extension = await measure(count, true);
    samples.add('entity', entity.bytes);
    samples.add('snapshot', entity.snapshotBytes);
    samples.add('extension', extension.bytes);
    for (const m of [entity, extension])
      if (m.active !== count) log(`warning: ${m.active} host entities active, expected ${count}`);
    log(
      `round ${round + 1}: host entity ${tidy(entity.bytes)} B/host, snapshot ${tidy(entity.snapshotBytes)} B/host, ` +
        `with hostMetrics() history ${tidy(extension.bytes)} B/host; ` +
        `${Math.round((count * POLLS) / entity.seconds).toLocaleString('en')} polls applied/s`,
    );
  }
  log();
  log(`bytes per host (entity + state)      ${withRuns(samples.of('entity'))}   target <= 4096`);
  log(`packed snapshot per host, bytes      ${withRuns(samples.of('snapshot'))}`);
  log(`with hostMetrics() (history, 12 pts)  ${withRuns(samples.of('extension'))}`);
  return {
    bytes_per_host: tidy(samples.median('entity')),
    snapshot_bytes_per_host: tidy(samples.median('snapshot')),
  };
};

export const benchmark: Benchmark = {
  name: 'host-memory',
  summary: 'heap bytes per polled host entity after 3 polls of 20 values (target <= 4 KB), snapshot size',
  defaultRounds: 1,
  run,
};
