/**
 * The metric-calculator stage of a host entity: turns one poll's raw values into final samples.
 * Gauges pass through, counters become per-second rates, tick counters become CPU percentages and
 * ratios divide two metrics of the same series. Pure: the poll's time comes in as `ts`, the previous
 * counter readings come in as `DeriveState` and the next ones go out with the samples.
 *
 * Why the counter rules are what they are (MRTG/RRDtool practice):
 * - A counter that went down either wrapped at its width or was reset (agent restart, interface
 *   reset, 32-bit counter on a fast link). A wrong guess turns into a rate of gigabytes per second on a
 *   graph and a false alert, so when in doubt it is a reset: the sample gives no rate, a note says so
 *   and the next poll starts from the new value. We never emit a negative or an invented rate.
 * - Counter32: a decrease is a wrap when the wrapped delta `2^32 − prev + value` is under 2^31, i.e. the
 *   previous value was in the upper part of the range (MRTG's heuristic); otherwise a reset.
 * - Counter64: wrapping 2^64 takes decades even at 100 Gbit/s, so a decrease is a reset — unless the
 *   wrapped delta is under 2^53: then the previous value sat within 2^53 of 2^64 and a wrap is the only
 *   sane reading. We do not use 2^63 (the symmetric MRTG bound): it would turn a reset from a value in
 *   the upper half into an astronomic rate, and a delta past 2^53 per poll (9 PB) is neither physical
 *   nor exactly representable in a JS number. Near 2^64 numbers are spaced 4096 apart, so such a
 *   wrapped rate is right to ~4 KB per interval.
 * - Counters without a known width (pushed by clients) never wrap: any decrease is a reset.
 * - The host's uptime (`sys.uptime`) going down means the agent restarted: every counter of that poll
 *   is taken as reset, whatever the values say.
 *
 * State growth is bounded by two rules: a metric present in this poll replaces all of its series
 * (series of that metric not in the poll, e.g. a removed interface, are dropped at once), and any
 * series not seen for `staleAfterMs` (default 1 h) is dropped, which also clears metrics that left the
 * metric set and counters that clients stopped pushing.
 */
import type { CounterWidth, DerivedMetric, RawValue, Tags } from './types.ts';

/** The last reading of one counter series: `[value, ts ms]`. */
export type CounterEntry = readonly [value: number, ts: number];

/**
 * What a host remembers between polls: plain data, small when packed (it lives in every host's
 * snapshot). `s` maps `seriesKey(metric, tags)` to the last reading of each counter series; `u` is
 * the last uptime seen.
 */
export interface DeriveState {
  readonly s: Readonly<Record<string, CounterEntry>>;
  readonly u?: number;
}

export const EMPTY_DERIVE_STATE: DeriveState = { s: {} };

export interface DerivedSample {
  readonly metric: string;
  readonly tags: Tags;
  readonly value: number;
}

export interface DeriveOptions {
  /** Drop a series not seen for this long (ms). Default 3,600,000. */
  readonly staleAfterMs?: number;
  /** The gauge whose decrease means the agent restarted. Default `sys.uptime`. */
  readonly uptimeMetric?: string;
}

export interface DeriveResult {
  readonly state: DeriveState;
  readonly samples: DerivedSample[];
  /** For people: resets, bad values (`counter reset: if.in_octets{ifName=eth0}`). */
  readonly notes: string[];
}

const DEFAULTS = { staleAfterMs: 3_600_000, uptimeMetric: 'sys.uptime' } as const;

const escapeTagPart = (s: string): string => s.replace(/[\\,={}]/g, (c) => `\\${c}`);

/**
 * A compact, stable key of a series: `metric` alone, or `metric{a=1,b=2}` with tags sorted by name
 * (`\ , = { }` in tag names and values are escaped with `\`, so distinct series never share a key).
 * Metric names cannot contain `{` (see metricset.ts), so the metric is everything before the first `{`.
 */
export const seriesKey = (metric: string, tags: Tags): string => {
  const names = Object.keys(tags).sort();
  if (names.length === 0) return metric;
  return `${metric}{${names.map((n) => `${escapeTagPart(n)}=${escapeTagPart(tags[n] ?? '')}`).join(',')}}`;
};

const metricOfKey = (key: string): string => {
  const i = key.indexOf('{');
  return i < 0 ? key : key.slice(0, i);
};

export interface CounterStep {
  /** What to remember for this series (absent when there was nothing valid to remember). */
  readonly entry?: CounterEntry;
  /** Per-second rate; absent on a first sample, Δt ≤ 0, a reset or a bad value. */
  readonly rate?: number;
  /** The increase behind `rate` (wrap included). */
  readonly delta?: number;
  /** The counter went down and it was not a plausible wrap. */
  readonly reset?: boolean;
  /** The value was negative or not finite; the previous reading is kept. */
  readonly invalid?: boolean;
}

const TWO_32 = 2 ** 32;
const TWO_64 = 2 ** 64;

/** The increase from `prev` to `value`, wrap-aware; undefined means a reset. */
const counterDelta = (prev: number, value: number, width: CounterWidth | undefined): number | undefined => {
  if (value >= prev) return value - prev;
  if (width === undefined) return undefined;
  switch (width) {
    case 32: {
      if (prev >= TWO_32) return undefined;
      const wrapped = TWO_32 - prev + value;
      return wrapped < 2 ** 31 ? wrapped : undefined;
    }
    case 64: {
      const wrapped = TWO_64 - prev + value;
      return wrapped < 2 ** 53 ? wrapped : undefined;
    }
    default: {
      const never: never = width;
      throw new Error(`unknown counter width ${String(never)}`);
    }
  }
};

/**
 * One step of one counter series: the same rule for polled and pushed counters. `width` is the SNMP
 * counter width (wrap-aware) or undefined for counters that must never wrap (pushed ones).
 * Δt = 0 keeps the new reading; Δt < 0 (an older point arriving late) keeps the newer, previous one.
 */
export const counterRate = (
  prev: CounterEntry | undefined,
  value: number,
  ts: number,
  width: CounterWidth | undefined,
): CounterStep => {
  if (!Number.isFinite(value) || value < 0 || !Number.isFinite(ts))
    return prev ? { entry: prev, invalid: true } : { invalid: true };
  const entry: CounterEntry = [value, ts];
  if (!prev) return { entry };
  const dt = ts - prev[1];
  if (dt < 0) return { entry: prev };
  if (dt === 0) return { entry };
  const delta = counterDelta(prev[0], value, width);
  if (delta === undefined) return { entry, reset: true };
  return { entry, rate: delta / (dt / 1000), delta };
};

/**
 * A counter pushed by a client (one point at a time), kept in the same state as polled counters so
 * it is snapshotted and pruned the same way. The sample is `${metric}.rate`.
 */
export const pushCounter = (
  state: DeriveState,
  metric: string,
  tags: Tags,
  value: number,
  ts: number,
): { state: DeriveState; sample?: DerivedSample; note?: string } => {
  const key = seriesKey(metric, tags);
  const step = counterRate(state.s[key], value, ts, undefined);
  const s = { ...state.s };
  if (step.entry) s[key] = step.entry;
  const next: DeriveState = state.u === undefined ? { s } : { s, u: state.u };
  const note = step.reset
    ? `counter reset: ${key}`
    : step.invalid
      ? `invalid counter value: ${key}`
      : undefined;
  const sample = step.rate === undefined ? undefined : { metric: `${metric}.rate`, tags, value: step.rate };
  return { state: next, ...(sample ? { sample } : {}), ...(note ? { note } : {}) };
};

const getOrInsert = <K, V>(map: Map<K, V>, key: K, make: () => V): V => {
  const found = map.get(key);
  if (found !== undefined) return found;
  const made = make();
  map.set(key, made);
  return made;
};

type CpuMetric = Extract<DerivedMetric, { kind: 'cpu' }>;
type RatioMetric = Extract<DerivedMetric, { kind: 'ratio' }>;

/** Percentages of one CPU series from its per-state tick increases; none when no tick passed. */
const cpuPercentages = (cpu: CpuMetric, deltas: ReadonlyMap<string, number>, tags: Tags): DerivedSample[] => {
  let total = 0;
  for (const d of deltas.values()) total += d;
  if (total <= 0) return [];
  const out: DerivedSample[] = [];
  let idle = 0;
  for (const [state, d] of deltas) {
    out.push({ metric: `${cpu.name}.${state}_pct`, tags, value: (d * 100) / total });
    if (cpu.idle.includes(state)) idle += d;
  }
  // Ticks are integers, so Δ·100/Σ is exact wherever the result is, and busy is taken as (Σ − Σidle)·100/Σ
  // rather than 100 − Σ idle pct: the same number without accumulated rounding.
  out.push({ metric: `${cpu.name}.busy_pct`, tags, value: ((total - idle) * 100) / total });
  return out;
};

const ratioSamples = (ratio: RatioMetric, values: ReadonlyMap<string, Map<string, DerivedSample>>) => {
  const nums = values.get(ratio.numerator);
  const dens = values.get(ratio.denominator);
  const out: DerivedSample[] = [];
  if (!nums || !dens) return out;
  for (const [tagsKey, num] of nums) {
    const den = dens.get(tagsKey);
    if (!den || den.value === 0) continue;
    const value = (num.value / den.value) * ratio.factor;
    if (Number.isFinite(value)) out.push({ metric: ratio.name, tags: num.tags, value });
  }
  return out;
};

/**
 * One poll through the calculator. `raws` are already scaled by the metric set; `ts` is the poll's
 * wall-clock time in ms; `derived` are the metric set's derived metrics.
 */
export const derive = (
  prev: DeriveState,
  raws: readonly RawValue[],
  ts: number,
  derived: readonly DerivedMetric[],
  options: DeriveOptions = {},
): DeriveResult => {
  const staleAfterMs = options.staleAfterMs ?? DEFAULTS.staleAfterMs;
  const uptimeMetric = options.uptimeMetric ?? DEFAULTS.uptimeMetric;
  const notes: string[] = [];
  const samples: DerivedSample[] = [];

  const polledMetrics = new Set(raws.map((r) => r.metric));
  const s: Record<string, CounterEntry> = {};
  for (const [key, entry] of Object.entries(prev.s))
    if (!polledMetrics.has(metricOfKey(key)) && ts - entry[1] < staleAfterMs) s[key] = entry;

  let u = prev.u;
  const uptime = raws.find((r) => r.metric === uptimeMetric && Number.isFinite(r.value));
  const restarted = uptime !== undefined && prev.u !== undefined && uptime.value < prev.u;
  if (uptime) u = uptime.value;
  if (restarted) notes.push(`uptime reset: ${uptimeMetric} went from ${prev.u} to ${uptime?.value}`);

  const cpus = derived.filter((d): d is CpuMetric => d.kind === 'cpu');
  const tickState = new Map<string, { cpu: CpuMetric; state: string }>();
  for (const cpu of cpus)
    for (const [state, metric] of Object.entries(cpu.ticks)) tickState.set(metric, { cpu, state });
  // cpu derivation → tags key → state → tick delta (undefined: no delta this poll, so no percentages)
  const ticks = new Map<CpuMetric, Map<string, { tags: Tags; deltas: Map<string, number>; ok: boolean }>>();

  // metric → tags key → value usable by ratios: gauges and counter rates of this poll.
  const values = new Map<string, Map<string, DerivedSample>>();
  const remember = (sample: DerivedSample, tagsKey: string) => {
    getOrInsert(values, sample.metric, () => new Map()).set(tagsKey, sample);
  };

  for (const raw of raws) {
    const key = seriesKey(raw.metric, raw.tags);
    const tagsKey = seriesKey('', raw.tags);
    switch (raw.type) {
      case 'gauge': {
        if (!Number.isFinite(raw.value)) {
          notes.push(`invalid gauge value: ${key}`);
          break;
        }
        const sample = { metric: raw.metric, tags: raw.tags, value: raw.value };
        samples.push(sample);
        remember(sample, tagsKey);
        break;
      }
      case 'counter': {
        const tick = tickState.get(raw.metric);
        const step = counterRate(prev.s[key], raw.value, ts, raw.width ?? (tick ? 32 : undefined));
        if (step.entry) s[key] = step.entry;
        if (step.invalid) notes.push(`invalid counter value: ${key}`);
        if (step.reset && !restarted) notes.push(`counter reset: ${key}`);
        const rate = restarted ? undefined : step.rate;
        if (tick) {
          const byTags = getOrInsert(ticks, tick.cpu, () => new Map());
          const series = getOrInsert(byTags, tagsKey, () => ({
            tags: raw.tags,
            deltas: new Map(),
            ok: true,
          }));
          if (rate === undefined || step.delta === undefined) series.ok = false;
          else series.deltas.set(tick.state, step.delta);
          break;
        }
        if (rate !== undefined) {
          const sample = { metric: `${raw.metric}.rate`, tags: raw.tags, value: rate };
          samples.push(sample);
          remember(sample, tagsKey);
        }
        break;
      }
      default: {
        const never: never = raw.type;
        notes.push(`unknown raw type ${String(never)}: ${key}`);
      }
    }
  }

  for (const d of derived) {
    switch (d.kind) {
      case 'cpu':
        for (const series of ticks.get(d)?.values() ?? [])
          if (series.ok) samples.push(...cpuPercentages(d, series.deltas, series.tags));
        break;
      case 'ratio':
        samples.push(...ratioSamples(d, values));
        break;
      default: {
        const never: never = d;
        notes.push(`unknown derived kind: ${JSON.stringify(never)}`);
      }
    }
  }

  return { state: u === undefined ? { s } : { s, u }, samples, notes };
};
