/**
 * What every benchmark shares: the options from the command line, rounds and medians, latency
 * histograms, heap measurement and the machine description for docs/BENCHMARKS.md.
 *
 * A benchmark prints its figures as it goes (human lines on stdout) and returns them; bench/run.ts
 * prints them as one JSON object on the last line when `--json` is given.
 */
import { cpus, freemem, loadavg, totalmem } from 'node:os';
import * as hdr from 'hdr-histogram-js';

/** The figures of one benchmark: fixed keys (they are tracked in CI), numbers only. */
export type Figures = Record<string, number>;

export interface BenchOptions {
  /** Measured rounds after the warm-up (each figure is the median over them); undefined: the benchmark's default. */
  readonly rounds: number | undefined;
  /** Smaller sizes, for a quick look (not for the record). */
  readonly quick: boolean;
  /** Extra diagnostics that cost time (e.g. heap snapshots in entity-memory). */
  readonly deep: boolean;
}

export interface Benchmark {
  readonly name: string;
  /** One line for the list run.ts prints. */
  readonly summary: string;
  /** Rounds when --rounds is not given. */
  readonly defaultRounds: number;
  run(options: BenchOptions & { readonly rounds: number }): Promise<Figures>;
}

export const log = (line = ''): void => {
  process.stdout.write(`${line}\n`);
};

export const median = (values: readonly number[]): number => {
  if (values.length === 0) return Number.NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 === 1 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
};

/** Rounds a figure for JSON and text: integers above 100, else 3 significant digits. */
export const tidy = (v: number): number =>
  !Number.isFinite(v) ? v : Math.abs(v) >= 100 ? Math.round(v) : Number(v.toPrecision(3));

export const fmt = (v: number): string =>
  Number.isFinite(v) ? tidy(v).toLocaleString('en-US', { maximumFractionDigits: 3 }) : String(v);

/** "1,234,567 (runs: 1,200,000 1,234,567 1,300,000)" */
export const withRuns = (values: readonly number[]): string =>
  `${fmt(median(values))}  (runs: ${values.map(fmt).join(' | ')})`;

/** Collects one array of values per figure name over the rounds. */
export class Samples {
  private readonly values = new Map<string, number[]>();

  add(name: string, value: number): void {
    const list = this.values.get(name);
    if (list) list.push(value);
    else this.values.set(name, [value]);
  }

  of(name: string): number[] {
    return this.values.get(name) ?? [];
  }

  median(name: string): number {
    return median(this.of(name));
  }
}

/** A latency histogram in microseconds (1 µs .. 60 s, 3 significant digits), read back in ms. */
export class Latency {
  private readonly histogram = hdr.build({
    lowestDiscernibleValue: 1,
    highestTrackableValue: 60_000_000,
    numberOfSignificantValueDigits: 3,
  });

  recordMs(ms: number): void {
    this.histogram.recordValue(Math.max(1, Math.round(ms * 1000)));
  }

  get count(): number {
    return this.histogram.totalCount;
  }

  percentileMs(p: number): number {
    return this.histogram.getValueAtPercentile(p) / 1000;
  }

  get maxMs(): number {
    return this.histogram.maxValue / 1000;
  }

  reset(): void {
    this.histogram.reset();
  }
}

const gcFunction = (globalThis as { gc?: () => void }).gc;

/** Full garbage collections until the heap stops shrinking (needs node --expose-gc). */
export const settleHeap = async (): Promise<number> => {
  if (!gcFunction) throw new Error('run with node --expose-gc (npm run bench does)');
  let last = Number.POSITIVE_INFINITY;
  for (let i = 0; i < 10; i++) {
    // Let pending callbacks (setImmediate, timers) drop their references before collecting.
    await new Promise((resolve) => setImmediate(resolve));
    gcFunction();
    const used = process.memoryUsage().heapUsed;
    if (used >= last - 1024 && i >= 2) return used;
    last = used;
  }
  return process.memoryUsage().heapUsed;
};

/** A GC between rounds so one round's garbage is not collected on the next one's time. */
export const collect = (): void => {
  gcFunction?.();
};

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Paced sending: `total` messages at `perSecond`, in ticks of about a millisecond; `tick(from, to)` sends
 * messages [from, to) that are due. Resolves with the tick results once every message was sent.
 */
export const paced = async <T>(
  total: number,
  perSecond: number,
  tick: (from: number, to: number) => T,
): Promise<T[]> => {
  const results: T[] = [];
  const t0 = performance.now();
  let sent = 0;
  while (sent < total) {
    const due = Math.min(total, Math.floor(((performance.now() - t0) / 1000) * perSecond) + 1);
    if (due > sent) results.push(tick(sent, due));
    sent = Math.max(sent, due);
    await sleep(1);
  }
  return results;
};

/** Yields to the event loop (a macrotask turn), so per-tick batching sees what was issued so far. */
export const nextTick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** A promise with its resolve, for "done when the count is reached". */
export const signal = (): { promise: Promise<void>; resolve: () => void } => {
  let resolve: () => void = () => {};
  const promise = new Promise<void>((r) => {
    resolve = r;
  });
  return { promise, resolve };
};

/** The machine, as BENCHMARKS.md quotes it. */
export const machine = (): string => {
  const cpu = cpus();
  const gib = (n: number) => `${(n / 2 ** 30).toFixed(1)} GiB`;
  return (
    `${cpu.length} cores (${cpu[0]?.model ?? 'unknown CPU'}), ${gib(totalmem())} RAM (${gib(freemem())} free), ` +
    `node ${process.version}`
  );
};

export const header = (name: string, what: string, options: BenchOptions & { rounds: number }): void => {
  log(`# ${name}: ${what}`);
  log(`# ${machine()}; ${options.rounds} rounds after warm-up${options.quick ? ' (quick)' : ''}`);
  log(`# ${loadAverage()} at start`);
};

/** The 1-minute load average: the machine is shared, so a figure is read together with it. */
export const loadAverage = (): string => `load average ${loadavg()[0]!.toFixed(2)} (${cpus().length} cores)`;
