/**
 * Self-metrics: the node's own figures at `GET /metrics`, in Prometheus' text exposition format
 * (`runtime.use(selfMetrics(options))`, on under `npm start` with `http`). docs/OPERATIONS.md lists
 * every metric.
 *
 * Principles:
 * - Everything is observed, nothing is asked of the hot path: '@argus.batch', '@argus.lifecycle' and
 *   '@argus.deadletter' from the event bus, '@argus.notify' from the `events` output stream, poll
 *   latencies from the host poller's hook. Observing costs a map update; the prom-client values are
 *   filled in at scrape, and what is costly to know (mailbox lag: log ends) is asked only then.
 * - Every label is bounded: kinds, shards, dead-letter reasons, configured receivers, delivery
 *   statuses — never a host, an entity key or an error text.
 * - One registry per runtime (never prom-client's global one), so two runtimes in one process never
 *   mix. prom-client's process metrics (heap, CPU, GC, handles) describe the process, not a runtime,
 *   and prom-client cannot stop their GC observer: they live in one process-wide registry, created at
 *   the first scrape and appended to every runtime's answer.
 * - Nothing runs while nobody scrapes: the event-loop monitor starts at the first scrape after start;
 *   stop unsubscribes every observer and disables it.
 */
import { type ELDHistogram, monitorEventLoopDelay } from 'node:perf_hooks';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import { ArgusError } from './errors.ts';
import type { ArgusEvent, EventObserver } from './events.ts';
import type { HttpRoute } from './http.ts';
import {
  ARGUS_VERSION,
  type Output,
  type OutputObserver,
  type RuntimeExtension,
  type ShardLag,
} from './runtime.ts';

/** What self-metrics needs of the runtime; a `Runtime` is one. */
export interface MetricsSource {
  readonly nodeId: string;
  readonly config: { readonly mode: string };
  subscribe(observer: EventObserver): () => void;
  onOutput(stream: string, observer: OutputObserver): () => void;
  lag(): Promise<ShardLag[]>;
}

/** Where poll latencies come from: the host-metrics extension (`HostMetrics.onPollLatency`). */
export interface PollLatencySource {
  onPollLatency(observer: (ms: number) => void): () => void;
}

export interface SelfMetricsOptions {
  readonly pollLatency?: PollLatencySource;
  /** Upper bounds of `argus_poll_latency_seconds`, seconds. */
  readonly pollLatencyBuckets?: readonly number[];
  /** Sampling resolution of the event-loop monitor, ms. */
  readonly eventLoopResolutionMs?: number;
  /** How long a scrape waits for `runtime.lag()` before it answers without `argus_mailbox_lag`. */
  readonly lagTimeoutMs?: number;
  /** prom-client's process metrics (`argus_process_*`, `argus_nodejs_*`). */
  readonly processMetrics?: boolean;
}

export const SELF_METRICS_DEFAULTS = {
  pollLatencyBuckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
  eventLoopResolutionMs: 20,
  lagTimeoutMs: 2_000,
  processMetrics: true,
} as const;

export const METRICS_PATH = '/metrics';
/** The output stream receivers emit their `@argus.notify` events to (actors/notify EVENTS_STREAM). */
export const NOTIFY_STREAM = 'events';
/** The `kind` of restarts of the node's own supervisors (a kind name starts with a letter: no clash). */
export const NODE_KIND = '(node)';

const DELIVERY_STATUSES: ReadonlySet<string> = new Set(['delivered', 'failed', 'dead-letter']);
const EVENT_LOOP_QUANTILES = [
  ['0.5', 50],
  ['0.99', 99],
  ['1', 100],
] as const;

/**
 * The entity kind an actor path belongs to: `node/shards/<kind>-<partition>` (a shard's supervisor)
 * and everything below it (its entities) → `<kind>`; any other path → NODE_KIND.
 */
export const kindOfPath = (path: string): string => {
  const parts = path.split('/');
  if (parts.length < 3 || parts[1] !== 'shards') return NODE_KIND;
  const shard = /^([a-z][a-z0-9._-]*)-\d+$/.exec(parts[2]!);
  return shard ? shard[1]! : NODE_KIND;
};

/** A counter's values by label set, kept as plain numbers between scrapes. */
class Tally<L extends string> {
  private readonly values = new Map<string, { readonly labels: Record<L, string>; value: number }>();

  add(labels: Record<L, string>, n: number): void {
    const key = Object.values(labels).join('\u0000');
    const entry = this.values.get(key);
    if (entry) entry.value += n;
    else this.values.set(key, { labels, value: n });
  }

  /** Sets the prom-client counter to exactly these values. */
  fill(counter: Counter<L>): void {
    counter.reset();
    for (const { labels, value } of this.values.values()) counter.inc(labels, value);
  }
}

interface NotifyValue {
  readonly type: '@argus.notify';
  readonly receiver: string;
  readonly status: string;
}

const isNotify = (v: unknown): v is NotifyValue =>
  typeof v === 'object' &&
  v !== null &&
  (v as { type?: unknown }).type === '@argus.notify' &&
  typeof (v as { receiver?: unknown }).receiver === 'string' &&
  typeof (v as { status?: unknown }).status === 'string';

let processRegistry: Registry | undefined;

/** prom-client's default metrics, registered once per process (see the module doc). */
const processMetrics = (): Registry => {
  if (!processRegistry) {
    processRegistry = new Registry();
    collectDefaultMetrics({ register: processRegistry, prefix: 'argus_' });
  }
  return processRegistry;
};

const withTimeout = <T>(work: Promise<T>, ms: number): Promise<T | undefined> => {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  return Promise.race([work.catch(() => undefined), timeout]).finally(() => clearTimeout(timer));
};

export class SelfMetrics implements RuntimeExtension {
  readonly name = 'metrics';
  readonly routes: readonly HttpRoute[];
  readonly registry = new Registry();
  private readonly settings: Required<Omit<SelfMetricsOptions, 'pollLatency'>>;
  private source: MetricsSource | undefined;
  private running = false;
  private unsubscribe: (() => void)[] = [];
  private loop: ELDHistogram | undefined;
  private scrape: Promise<string> | undefined;

  private readonly processed = new Tally<'kind'>();
  private readonly restarts = new Tally<'kind'>();
  private readonly deadLetters = new Tally<'kind' | 'reason'>();
  private readonly deliveries = new Tally<'receiver' | 'status'>();

  private readonly families = {
    processed: new Counter({
      name: 'argus_messages_processed_total',
      help: 'Mailbox records processed and checkpointed on this node, by entity kind.',
      labelNames: ['kind'] as const,
      registers: [this.registry],
    }),
    lag: new Gauge({
      name: 'argus_mailbox_lag',
      help: 'Records appended to a shard mailbox and not yet processed and committed, per shard running here.',
      labelNames: ['kind', 'partition'] as const,
      registers: [this.registry],
    }),
    restarts: new Counter({
      name: 'argus_restarts_total',
      help: `Supervisor restarts of actors, by the entity kind of their path (${NODE_KIND}: the node's own supervisors).`,
      labelNames: ['kind'] as const,
      registers: [this.registry],
    }),
    deadLetters: new Counter({
      name: 'argus_dead_letters_total',
      help: 'Mailbox records dead-lettered on this node, by entity kind and reason.',
      labelNames: ['kind', 'reason'] as const,
      registers: [this.registry],
    }),
    pollLatency: undefined as Histogram | undefined,
    deliveries: new Counter({
      name: 'argus_webhook_deliveries_total',
      help: 'Notification delivery outcomes of the receivers whose shards run here (failed: one failed attempt).',
      labelNames: ['receiver', 'status'] as const,
      registers: [this.registry],
    }),
    eventLoop: new Gauge({
      name: 'argus_event_loop_lag_seconds',
      help: 'Event-loop delay since the previous scrape (monitorEventLoopDelay), by quantile (1: the maximum).',
      labelNames: ['quantile'] as const,
      registers: [this.registry],
    }),
    info: new Gauge({
      name: 'argus_node_info',
      help: 'Always 1: the node id, its mode and the Argus version.',
      labelNames: ['node', 'mode', 'version'] as const,
      registers: [this.registry],
    }),
  };

  constructor(private readonly options: SelfMetricsOptions = {}) {
    this.settings = {
      pollLatencyBuckets: options.pollLatencyBuckets ?? SELF_METRICS_DEFAULTS.pollLatencyBuckets,
      eventLoopResolutionMs: options.eventLoopResolutionMs ?? SELF_METRICS_DEFAULTS.eventLoopResolutionMs,
      lagTimeoutMs: options.lagTimeoutMs ?? SELF_METRICS_DEFAULTS.lagTimeoutMs,
      processMetrics: options.processMetrics ?? SELF_METRICS_DEFAULTS.processMetrics,
    };
    if (options.pollLatency) {
      this.families.pollLatency = new Histogram({
        name: 'argus_poll_latency_seconds',
        help: 'Latency of the SNMP polls this node finished (successful or not).',
        buckets: [...this.settings.pollLatencyBuckets],
        registers: [this.registry],
      });
    }
    this.routes = [
      async (req, res, url) => {
        if (url.pathname !== METRICS_PATH || (req.method !== 'GET' && req.method !== 'HEAD')) return false;
        const text = await this.metrics();
        res.writeHead(200, {
          'content-type': this.registry.contentType,
          'content-length': Buffer.byteLength(text),
        });
        res.end(req.method === 'HEAD' ? undefined : text);
        return true;
      },
    ];
  }

  /**
   * Subscribes as soon as the extension is used, so the batches and restarts of the runtime's start
   * count too. One runtime per instance.
   */
  register(source: MetricsSource): void {
    if (this.source)
      throw new ArgusError('ARGUS_ERR_ALREADY_STARTED', 'selfMetrics() serves one runtime: create another');
    this.source = source;
    this.families.info.set({ node: source.nodeId, mode: source.config.mode, version: ARGUS_VERSION }, 1);
    this.unsubscribe.push(
      source.subscribe((e) => this.observe(e)),
      source.onOutput(NOTIFY_STREAM, (outputs) => this.observeNotify(outputs)),
    );
    const histogram = this.families.pollLatency;
    if (this.options.pollLatency && histogram) {
      this.unsubscribe.push(
        this.options.pollLatency.onPollLatency((ms) => {
          if (Number.isFinite(ms) && ms >= 0) histogram.observe(ms / 1_000);
        }),
      );
    }
  }

  async start(source: MetricsSource): Promise<void> {
    if (this.source !== source) this.register(source);
    this.running = true;
  }

  async stop(): Promise<void> {
    this.running = false;
    for (const u of this.unsubscribe.splice(0)) u();
    this.loop?.disable();
    this.loop = undefined;
  }

  /** The exposition text, as `GET /metrics` answers it. Concurrent scrapes share one rendering. */
  metrics(): Promise<string> {
    this.scrape ??= this.render().finally(() => {
      this.scrape = undefined;
    });
    return this.scrape;
  }

  private observe(e: ArgusEvent): void {
    switch (e.type) {
      case '@argus.batch':
        this.processed.add({ kind: e.kind }, e.records);
        return;
      case '@argus.lifecycle':
        if (e.phase === 'restarted') this.restarts.add({ kind: kindOfPath(e.path) }, 1);
        return;
      case '@argus.deadletter':
        this.deadLetters.add({ kind: e.kind, reason: e.reason }, 1);
        return;
      case '@argus.cluster':
      case '@argus.admin':
        return;
      default: {
        // A new event type is decided on here when it is added (compile time); until then, not counted.
        const unhandled: never = e;
        void unhandled;
      }
    }
  }

  private observeNotify(outputs: readonly Output[]): void {
    for (const o of outputs) {
      const v = o.value;
      if (isNotify(v) && DELIVERY_STATUSES.has(v.status))
        this.deliveries.add({ receiver: v.receiver, status: v.status }, 1);
    }
  }

  private async render(): Promise<string> {
    const lag = this.running && this.source ? await this.lag(this.source) : undefined;
    const m = this.families;
    m.lag.reset();
    for (const s of lag ?? []) {
      m.lag.set({ kind: s.kind, partition: String(s.partition) }, s.lag);
      // A kind with shards here shows 0 until its first record, so rate() sees its first increase.
      this.processed.add({ kind: s.kind }, 0);
      this.restarts.add({ kind: s.kind }, 0);
    }
    this.processed.fill(m.processed);
    this.restarts.fill(m.restarts);
    this.deadLetters.fill(m.deadLetters);
    this.deliveries.fill(m.deliveries);
    this.sampleEventLoop();
    const own = await this.registry.metrics();
    return this.settings.processMetrics ? `${own}\n${await processMetrics().metrics()}` : own;
  }

  private lag(source: MetricsSource): Promise<ShardLag[] | undefined> {
    return withTimeout(source.lag(), this.settings.lagTimeoutMs);
  }

  /** Reports the delay since the previous scrape; the monitor starts at the first one. */
  private sampleEventLoop(): void {
    if (!this.running) return;
    const loop = this.loop;
    if (!loop) {
      this.loop = monitorEventLoopDelay({ resolution: this.settings.eventLoopResolutionMs });
      this.loop.enable();
      return;
    }
    if (loop.count === 0) return;
    // The monitor records the time between its timer's runs, so an idle loop reads as one resolution.
    const resolutionNs = this.settings.eventLoopResolutionMs * 1e6;
    for (const [label, p] of EVENT_LOOP_QUANTILES)
      this.families.eventLoop.set({ quantile: label }, Math.max(0, loop.percentile(p) - resolutionNs) / 1e9);
    loop.reset();
  }
}

/** The self-metrics extension: `runtime.use(selfMetrics({ pollLatency: hosts }))`. */
export const selfMetrics = (options: SelfMetricsOptions = {}): SelfMetrics => new SelfMetrics(options);
