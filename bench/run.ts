/**
 * Runs one benchmark by name (docs/BENCHMARKS.md holds the figures and how they were taken).
 *
 *   npm run bench -- <name> [--json] [--rounds N] [--quick] [--deep]
 *
 * Benchmarks are not tests: they print their figures, the peer measured in the same run and the
 * ratio. With --json the last line of stdout is one JSON object of the figures (for CI tracking).
 */
import { type Benchmark, type BenchOptions, loadAverage } from './common.ts';

const benchmarks: Record<string, () => Promise<{ benchmark: Benchmark }>> = {
  messaging: () => import('./messaging.ts'),
  mailbox: () => import('./mailbox.ts'),
  restart: () => import('./restart.ts'),
  'entity-memory': () => import('./entity-memory.ts'),
  rebalance: () => import('./rebalance.ts'),
  failover: () => import('./failover.ts'),
  'cluster-throughput': () => import('./cluster-throughput.ts'),
  'snmp-poll': () => import('./snmp-poll.ts'),
  ingest: () => import('./ingest.ts'),
  'host-memory': () => import('./host-memory.ts'),
  'alert-latency': () => import('./alert-latency.ts'),
  'rule-eval': () => import('./rule-eval.ts'),
  inspector: () => import('./inspector.ts'),
  'log-ingest': () => import('./log-ingest.ts'),
  'log-rule-latency': () => import('./log-rule-latency.ts'),
};

const usage = async (problem: string): Promise<never> => {
  process.stderr.write(
    `${problem}\nusage: npm run bench -- <name> [--json] [--rounds N] [--quick] [--deep]\n`,
  );
  process.stderr.write('benchmarks:\n');
  for (const [name, load] of Object.entries(benchmarks)) {
    const { benchmark } = await load();
    process.stderr.write(`  ${name.padEnd(18)} ${benchmark.summary}\n`);
  }
  process.exit(2);
};

const parseArgs = async (argv: readonly string[]) => {
  let name: string | undefined;
  let json = false;
  let rounds: number | undefined;
  let quick = false;
  let deep = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === '--json') json = true;
    else if (arg === '--quick') quick = true;
    else if (arg === '--deep') deep = true;
    else if (arg === '--rounds' || arg.startsWith('--rounds=')) {
      const value = arg.includes('=') ? arg.slice('--rounds='.length) : argv[++i];
      rounds = Number(value);
      if (!Number.isInteger(rounds) || rounds < 1)
        await usage(`--rounds must be a positive integer, got ${value}`);
    } else if (arg.startsWith('-')) await usage(`unknown option ${arg}`);
    else if (name === undefined) name = arg;
    else await usage(`one benchmark at a time (got '${name}' and '${arg}')`);
  }
  return { name, json, options: { rounds, quick, deep } satisfies BenchOptions };
};

const { name, json, options } = await parseArgs(process.argv.slice(2));
if (name === undefined) await usage('which benchmark?');
const load = benchmarks[name!];
if (!load) await usage(`no benchmark named '${name}'`);

try {
  const { benchmark } = await load!();
  const figures = await benchmark.run({ ...options, rounds: options.rounds ?? benchmark.defaultRounds });
  process.stdout.write(`# ${loadAverage()} at end\n`);
  if (json) process.stdout.write(`${JSON.stringify(figures)}\n`);
  // Exit here: a benchmark leaves nact systems and client sockets behind on purpose (it measured them).
  process.stdout.write('', () => process.exit(0));
} catch (e) {
  process.stderr.write(
    `benchmark ${name} failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`,
  );
  process.exit(1);
}
