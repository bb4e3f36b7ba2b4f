/**
 * Rule evaluation throughput: samples per second the host part of the rules (actors/rule/evaluate.ts,
 * what every host entity runs on each record it emits) evaluates against 1,000 rules over 50,000
 * series on one core, with the alert state of every series kept and stepped as in production.
 *
 * Load: 1,000 hosts × 50 metrics (one series each: 50,000 series); 1,000 host-scope rules, 20 per
 * metric, 0.5 % of the series (the same ones every poll) in the rules' 80-100 threshold band, so
 * some alerts go pending, fire and resolve while most samples hold nothing,
 * one rule in ten with a tag matcher. A round evaluates ROUNDS_OF_POLLS polls of every host (one
 * record of 50 samples each), time advancing one interval a poll.
 *
 * Peer, in the same run: the floor — the same samples compared against the same rules by a plain loop
 * (metric lookup, selector match, threshold comparison; no state, no events). The ratio says what the
 * alert state machine, series keys and copy-on-write state cost on top of the comparisons themselves.
 *
 * Then the whole node: an embedded runtime (8 shards, journal in a temp dir) with `hostMetrics()` and
 * the alerting extension's host observer, the same 1,000 rules in its config source, and the same
 * records sent as pushes straight into the host mailboxes (no HTTP); samples/s counted when their
 * checkpoints landed (`onOutput('metrics')`), against the same node without rules in the same run.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostMetrics } from '../actors/host/host-metrics.ts';
import type { HostPushed } from '../actors/host/messages.ts';
import { alerting } from '../actors/rule/alerting.ts';
import { buildRuleIndex, evaluateHostRules, type HostSample } from '../actors/rule/evaluate.ts';
import { compare } from '../actors/rule/machine.ts';
import { parseRule } from '../actors/rule/schema.ts';
import { matchesTags } from '../actors/rule/selector.ts';
import type { HostRuleState, Rule } from '../actors/rule/types.ts';
import { MemoryConfigSource } from '../runtime/memory-config.ts';
import { createRuntime } from '../runtime/runtime.ts';
import {
  type Benchmark,
  type BenchOptions,
  type Figures,
  fmt,
  header,
  log,
  Samples,
  tidy,
  withRuns,
} from './common.ts';

const HOSTS = 1_000;
const METRICS = 50;
const RULES = 1_000;
const POLLS = 5;
const INTERVAL = 60_000;

/** The rule documents, by id. */
const ruleTexts = (): Record<string, string> =>
  Object.fromEntries(
    Array.from({ length: RULES }, (_, i) => {
      const metric = `m.${i % METRICS}`;
      const selector = i % 10 === 0 ? `${metric}{disk!="/boot"}` : metric;
      const threshold = 80 + (i % 20);
      const doc = {
        metric: selector,
        condition: `> ${threshold}`,
        clear: threshold - 5,
        for: '2m',
        severity: 1 + (i % 5),
      };
      return [`r-${i}`, JSON.stringify(doc)];
    }),
  );

const rules = (): Rule[] => Object.entries(ruleTexts()).map(([id, text]) => parseRule(id, text));

/** Deterministic values: mostly 0-80, 0.5 % of them (the same series from poll to poll) 80-100. */
const sampleValue = (host: number, metric: number, poll: number): number => {
  const x = (host * 7_919 + metric * 104_729) % 1_000;
  return x < 5 ? 80 + ((x * 7 + poll) % 20) + 0.5 : ((x + poll * 13) % 800) / 10;
};

const pollRecords = (poll: number) =>
  Array.from({ length: HOSTS }, (_, h) => {
    const samples: HostSample[] = Array.from({ length: METRICS }, (_, m) => ({
      metric: `m.${m}`,
      tags: { disk: '/' },
      ts: poll * INTERVAL,
      value: sampleValue(h, m, poll),
    }));
    return { host: `host-${h}`, service: 'bench', labels: {}, samples };
  });

/** Samples/s one embedded node applies (checkpoints landed) for the pushes of `polls`, with or without rules. */
const nodeRate = async (polls: ReturnType<typeof pollRecords>[], withRules: boolean): Promise<number> => {
  const dir = mkdtempSync(join(tmpdir(), 'argus-bench-rules-'));
  const configSource = new MemoryConfigSource(withRules ? { rules: ruleTexts() } : {});
  const rt = createRuntime({ mode: 'embedded', dataDir: dir, shards: 8, http: false }, { configSource });
  const alerts = alerting({ tickMs: 1_000 });
  if (withRules) rt.use(alerts);
  rt.use(hostMetrics({ historyPoints: 0, ...(withRules ? { observer: alerts.observer } : {}) }));
  let applied = 0;
  rt.onOutput('metrics', (outputs) => {
    for (const o of outputs) applied += (o.value as { samples: unknown[] }).samples.length;
  });
  await rt.start();
  try {
    const total = polls.length * HOSTS * METRICS;
    const t = performance.now();
    for (const poll of polls) {
      const sends: Promise<void>[] = [];
      for (const record of poll) {
        const message: HostPushed = {
          type: 'host.pushed',
          points: record.samples.map((x) => ({ metric: x.metric, tags: x.tags, ts: x.ts, value: x.value })),
        };
        sends.push(rt.send('host', record.host, message));
      }
      await Promise.all(sends);
    }
    while (applied < total) await new Promise((r) => setTimeout(r, 5));
    return total / ((performance.now() - t) / 1000);
  } finally {
    await rt.stop();
    rmSync(dir, { recursive: true, force: true });
  }
};

export const benchmark: Benchmark = {
  name: 'rule-eval',
  summary: 'samples/s the host part of 1,000 rules evaluates over 50,000 series, one core',
  defaultRounds: 5,
  async run(options: BenchOptions & { rounds: number }): Promise<Figures> {
    header(
      'rule-eval',
      `${RULES} rules, ${HOSTS} hosts × ${METRICS} metrics = ${HOSTS * METRICS} series`,
      options,
    );
    const index = buildRuleIndex(rules());
    const polls = Array.from({ length: POLLS }, (_, p) => pollRecords(p + 1));
    const perRound = HOSTS * METRICS * POLLS;
    const samples = new Samples();
    for (let round = -1; round < options.rounds; round++) {
      // Argus: stateful evaluation, every host's state carried from poll to poll.
      const states: (HostRuleState | undefined)[] = new Array(HOSTS).fill(undefined);
      let events = 0;
      let t = performance.now();
      for (const poll of polls)
        for (let h = 0; h < HOSTS; h++) {
          const record = poll[h]!;
          const r = evaluateHostRules(index, states[h], record, record.samples[0]!.ts);
          states[h] = r.state;
          events += r.events.length;
        }
      const argus = perRound / ((performance.now() - t) / 1000);
      // Peer: the comparisons alone.
      let held = 0;
      t = performance.now();
      for (const poll of polls)
        for (const record of poll) {
          const byMetric = index.forService(record.service);
          for (const s of record.samples) {
            const list = byMetric.get(s.metric);
            if (!list || typeof s.value !== 'number') continue;
            for (const rule of list)
              if (matchesTags(rule.selector, s.tags) && compare(rule.op, s.value, rule.threshold)) held++;
          }
        }
      const peer = perRound / ((performance.now() - t) / 1000);
      log(
        `round ${round < 0 ? 'warm-up' : round + 1}: argus ${fmt(argus)} samples/s (${events} alert events), floor ${fmt(peer)} samples/s (${held} holds), ratio ${fmt(argus / peer)}`,
      );
      if (round < 0) continue;
      samples.add('samples_per_s', argus);
      samples.add('floor_samples_per_s', peer);
      samples.add('ratio', argus / peer);
    }
    for (let round = 0; round < Math.min(3, options.rounds); round++) {
      const plain = await nodeRate(polls, false);
      const ruled = await nodeRate(polls, true);
      log(
        `node round ${round + 1}: with 1,000 rules ${fmt(ruled)} samples/s, without rules ${fmt(plain)} samples/s, ratio ${fmt(ruled / plain)}`,
      );
      samples.add('node_samples_per_s', ruled);
      samples.add('node_without_rules_samples_per_s', plain);
      samples.add('node_ratio', ruled / plain);
    }
    const figures: Figures = Object.fromEntries(
      [
        'samples_per_s',
        'floor_samples_per_s',
        'ratio',
        'node_samples_per_s',
        'node_without_rules_samples_per_s',
        'node_ratio',
      ].map((n) => [n, tidy(samples.median(n))]),
    );
    log();
    log(`samples_per_s        ${withRuns(samples.of('samples_per_s'))}`);
    log(`floor_samples_per_s  ${withRuns(samples.of('floor_samples_per_s'))}`);
    log(`ratio                ${withRuns(samples.of('ratio'))}`);
    log(`node_samples_per_s   ${withRuns(samples.of('node_samples_per_s'))}`);
    log(`node_without_rules   ${withRuns(samples.of('node_without_rules_samples_per_s'))}`);
    log(`node_ratio           ${withRuns(samples.of('node_ratio'))}`);
    log('target: >= 200,000 samples/s on 2 cores');
    return figures;
  },
};
