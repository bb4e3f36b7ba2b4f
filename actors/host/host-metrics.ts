/**
 * Host metrics as one runtime extension (`runtime.use(hostMetrics(options))`): the `host` kind, the
 * metric sets watched from the config source, the inventory re-read every cycle, the SNMP poller of the
 * shards this node owns, the recent history, and the push-ingest routes.
 *
 * Works the same on one node and in a cluster: placement decides which node polls which host (the
 * poller follows the node's `host` shards), the mailbox carries every result, and the config source is
 * etcd or memory.
 */
import { randomBytes } from 'node:crypto';
import type { Clock } from '../../runtime/boundaries.ts';
import { realClock } from '../../runtime/clock.ts';
import { describeError } from '../../runtime/errors.ts';
import type { HttpRoute } from '../../runtime/http.ts';
import { handleIngest } from '../../runtime/ingest/http.ts';
import type { Runtime, RuntimeExtension } from '../../runtime/runtime.ts';
import { type InventorySource, staticInventory } from '../inventory/sources.ts';
import { hostApi } from './api.ts';
import { HostHistory } from './history.ts';
import { HOST_KIND, type HostObserver, hostEntity, METRICS_STREAM, type MetricsRecord } from './host.ts';
import { type LocalAgent, startLocalAgent } from './local-agent.ts';
import type { HostPushed } from './messages.ts';
import { MetricSets } from './metricsets.ts';
import { HostPoller, type PollerStats } from './poller.ts';
import { createNetSnmpPoller, type SnmpClientFactory, type SnmpPoller } from './snmp.ts';
import type { InventoryHost } from './types.ts';

export interface HostMetricsOptions {
  /** Where hosts come from; none: push-only (hosts appear when they push). */
  readonly inventory?: InventorySource;
  /** How often the inventory is re-read (default 60,000 ms). */
  readonly cycleMs?: number;
  readonly snmp?: SnmpClientFactory;
  /** Polls in flight at most per node (default 512). */
  readonly concurrency?: number;
  readonly jitterMs?: number;
  readonly lateAfterMs?: number;
  /** Points kept per series in the recent history (default 12; 0: none). */
  readonly historyPoints?: number;
  /** Largest push body (default 32 MiB). */
  readonly maxBodyBytes?: number;
  /**
   * Serve this machine's real figures over SNMP on a free loopback port (local-agent.ts) and poll it as
   * host `localhost` beside the inventory: what `npm start` does, so a newcomer sees their own machine.
   */
  readonly localAgent?: boolean;
  /** Sees every record a host emits, inside the host's delivery (the alert rules: actors/rule). */
  readonly observer?: HostObserver;
  readonly clock?: Clock;
  readonly random?: () => number;
  readonly warn?: (message: string) => void;
}

/** The inventory entry of the local agent. */
export const localHost = (port: number, community: string): InventoryHost => ({
  id: 'localhost',
  address: '127.0.0.1',
  snmp: { version: '2c', community, port, timeoutMs: 2_000, retries: 1 },
  service: 'default',
  labels: { source: 'local-agent' },
  // Every 10 s: cheap for one machine, and a newcomer sees figures within seconds.
  intervalMs: 10_000,
});

export interface InventoryStatus {
  readonly source: string;
  readonly hosts: number;
  /** Hosts rejected by the last read, with why. */
  readonly errors: readonly string[];
  /** Why the last read failed as a whole (the previous inventory stays in force). */
  readonly failure: string | undefined;
  readonly loadedAt: number | undefined;
}

export class HostMetrics implements RuntimeExtension {
  readonly name = 'host-metrics';
  readonly routes: readonly HttpRoute[];
  readonly history: HostHistory;
  private runtime: Runtime | undefined;
  private snmp: SnmpPoller | undefined;
  private poller: HostPoller | undefined;
  private sets: MetricSets | undefined;
  private unsubscribe: (() => void)[] = [];
  private cycle: ReturnType<typeof setTimeout> | undefined;
  private local: InventoryHost | undefined;
  private reading: Promise<void> | undefined;
  private status: InventoryStatus;
  private readonly clock: Clock;
  private agent: LocalAgent | undefined;
  private latencyObservers: ((ms: number) => void)[] = [];
  private hostShards = 0;

  constructor(private readonly options: HostMetricsOptions = {}) {
    this.clock = options.clock ?? realClock;
    this.history = new HostHistory(options.historyPoints ?? 12);
    this.status = {
      source: options.inventory?.describe ?? 'none',
      hosts: 0,
      errors: [],
      failure: undefined,
      loadedAt: undefined,
    };
    this.routes = [
      (req, res, url) =>
        handleIngest(req, res, url, {
          sink: (id, points) => {
            const message: HostPushed = { type: 'host.pushed', points };
            return this.requireRuntime().send(HOST_KIND, id, message);
          },
          now: () => this.clock.now(),
          ...(options.maxBodyBytes ? { maxBodyBytes: options.maxBodyBytes } : {}),
        }),
      hostApi(this, () => this.runtime),
    ];
  }

  register(runtime: Runtime): void {
    const entity = hostEntity(this.options.observer);
    this.hostShards = entity.shards ?? runtime.config.shards;
    // `ask(host, id, 'history')` answers from the history of the node that owns the host — the node its
    // records landed on — so the inspector reaches it through the usual ask routing (api.ts).
    runtime.register({
      ...entity,
      query: (state, query, key) =>
        query === HISTORY_QUERY
          ? { id: key, series: this.history.seriesOf(key) }
          : entity.query?.(state, query, key),
    });
  }

  async start(runtime: Runtime): Promise<void> {
    this.runtime = runtime;
    const warn = this.options.warn ?? ((m: string) => process.emitWarning(`argus host-metrics: ${m}`));
    this.sets = new MetricSets(runtime.configSource, warn);
    await this.sets.start();
    // The history follows what this node's host entities emit, and forgets hosts whose shard left.
    this.unsubscribe.push(
      runtime.onNodeQuery(HOSTS_QUERY, (params) => this.localHosts(params)),
      runtime.onOutput(METRICS_STREAM, (outputs) => {
        for (const o of outputs) this.history.add(o.value as MetricsRecord);
      }),
      runtime.onShards((ref, held) => {
        if (held || ref.kind !== HOST_KIND) return;
        for (const id of this.history.hosts())
          if (runtime.shardOf(HOST_KIND, id) === ref.partition) this.history.forget(id);
      }),
    );
    this.snmp = (this.options.snmp ?? (() => createNetSnmpPoller()))();
    const sets = this.sets;
    this.poller = new HostPoller({
      runtime: {
        send: (kind, key, message) => runtime.send(kind, key, message),
        runningShards: (kind) => runtime.runningShards(kind),
        onShards: (o) => runtime.onShards(o),
        shardOf: (kind, key) => runtime.shardOf(kind, key),
      },
      snmp: this.snmp,
      metricSet: (service) => sets.forService(service),
      clock: this.clock,
      ...(this.options.random ? { random: this.options.random } : {}),
      ...(this.options.concurrency ? { concurrency: this.options.concurrency } : {}),
      ...(this.options.jitterMs !== undefined ? { jitterMs: this.options.jitterMs } : {}),
      ...(this.options.lateAfterMs !== undefined ? { lateAfterMs: this.options.lateAfterMs } : {}),
      // An observer that throws must not cost the poll its result (it runs inside the poll's chain).
      onLatency: (ms) => {
        for (const o of this.latencyObservers) {
          try {
            o(ms);
          } catch (e) {
            warn(`a poll latency observer failed: ${describeError(e).message}`);
          }
        }
      },
      warn,
    });
    this.poller.start();
    if (this.options.localAgent) {
      const community = randomBytes(9).toString('base64url');
      this.agent = await startLocalAgent({ host: '127.0.0.1', port: 0, community });
      this.local = localHost(this.agent.port, community);
    }
    if (this.options.inventory || this.local) {
      await this.reload();
      this.scheduleCycle();
    }
  }

  async stop(): Promise<void> {
    if (this.cycle) clearTimeout(this.cycle);
    this.cycle = undefined;
    await this.reading?.catch(() => undefined);
    await this.poller?.stop();
    for (const u of this.unsubscribe.splice(0)) u();
    await this.sets?.stop();
    await this.snmp?.close();
    await this.agent?.close();
    this.agent = undefined;
    this.runtime = undefined;
  }

  /** Reads the inventory now (also done every cycle); the previous one stays if this read fails. */
  reload(): Promise<void> {
    this.reading ??= this.readInventory().finally(() => {
      this.reading = undefined;
    });
    return this.reading;
  }

  private async readInventory(): Promise<void> {
    const source = this.options.inventory ?? staticInventory([]);
    if (!this.poller) return;
    try {
      const parsed = await source.load();
      const local = this.local;
      const hosts = local ? [local, ...parsed.hosts.filter((h) => h.id !== local.id)] : parsed.hosts;
      this.apply(hosts);
      this.status = {
        source: local ? `${source.describe} + local agent` : source.describe,
        hosts: hosts.length,
        errors: parsed.errors,
        failure: undefined,
        loadedAt: this.clock.now(),
      };
      for (const e of parsed.errors) this.options.warn?.(`inventory (${source.describe}): ${e}`);
    } catch (e) {
      this.status = { ...this.status, failure: describeError(e).message };
      this.options.warn?.(
        `inventory (${source.describe}) not read, the last one stays: ${describeError(e).message}`,
      );
    }
  }

  private apply(hosts: readonly InventoryHost[]): void {
    const { removed } = this.poller!.setInventory(hosts);
    for (const id of removed) this.history.forget(id);
  }

  private scheduleCycle(): void {
    this.cycle = setTimeout(() => {
      void this.reload().finally(() => {
        if (this.runtime) this.scheduleCycle();
      });
    }, this.options.cycleMs ?? 60_000);
    this.cycle.unref?.();
  }

  private requireRuntime(): Runtime {
    if (!this.runtime) throw new Error('host metrics are not running');
    return this.runtime;
  }

  /** The local agent's host, when it runs. */
  get localAgentHost(): InventoryHost | undefined {
    return this.local;
  }

  inventory(): InventoryStatus {
    return this.status;
  }

  pollerStats(): PollerStats | undefined {
    return this.poller?.stats();
  }

  /**
   * Observes the latency (ms) of every poll this node finishes, from now until the unsubscribe it
   * returns is called (the self-metrics histogram, runtime/metrics.ts). `pollerStats()` keeps only
   * quantiles of a window; a histogram needs each poll.
   */
  onPollLatency(observer: (ms: number) => void): () => void {
    this.latencyObservers = [...this.latencyObservers, observer];
    return () => {
      this.latencyObservers = this.latencyObservers.filter((o) => o !== observer);
    };
  }

  /** The hosts this node polls now. */
  polledHosts(): string[] {
    return this.poller?.scheduledHosts() ?? [];
  }

  metricSets(): MetricSets {
    if (!this.sets) throw new Error('host metrics are not running');
    return this.sets;
  }

  /**
   * This node's half of `GET /api/v1/hosts` (node query `hosts.list`): the hosts of the host shards it
   * holds — those it polls and those whose records landed here — whose id contains `q` (case-insensitive),
   * sorted by id; `total` counts them all, `items` are the first `take`, with their latest samples. A page
   * at `offset` of the merged list is among the first `offset + limit` of each node, so that is what the
   * asking node passes as `take`: the latest samples of the rest never cross the network.
   */
  localHosts(params: unknown): HostsAnswer {
    const rt = this.runtime;
    if (!rt) return { shards: [], total: 0, items: [] };
    const p = (typeof params === 'object' && params !== null ? params : {}) as {
      q?: unknown;
      take?: unknown;
    };
    const q = typeof p.q === 'string' ? p.q.toLowerCase() : '';
    const take = typeof p.take === 'number' && p.take >= 0 ? p.take : Number.POSITIVE_INFINITY;
    const shards = rt.runningShards(HOST_KIND);
    const held = new Set(shards);
    const ids = new Set<string>();
    for (const id of [...this.history.hosts(), ...this.polledHosts()])
      if ((q === '' || id.toLowerCase().includes(q)) && held.has(rt.shardOf(HOST_KIND, id))) ids.add(id);
    const sorted = [...ids].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
    return {
      shards,
      total: sorted.length,
      items: sorted.slice(0, take).map((id) => ({ id, node: rt.nodeId, latest: this.history.latestOf(id) })),
    };
  }

  /** The shard count of the host kind (0 before register). */
  get shardCount(): number {
    return this.hostShards;
  }

  /** The latest samples of a host, as the history has them. */
  latest(id: string): ReturnType<HostHistory['latest']> {
    return this.history.latest(id);
  }
}

/** The node query each member answers with its hosts (`localHosts`). */
export const HOSTS_QUERY = 'hosts.list';
/** The host entity query answered from the owning node's history. */
export const HISTORY_QUERY = 'history';

export interface HostListItem {
  readonly id: string;
  /** The node that answered for it (holds its shard). */
  readonly node: string;
  readonly latest: Record<string, { value: number | string; at: number }>;
}

export interface HostsAnswer {
  /** The host shards the member holds. */
  readonly shards: readonly number[];
  readonly total: number;
  readonly items: readonly HostListItem[];
}

export const hostMetrics = (options: HostMetricsOptions = {}): HostMetrics => new HostMetrics(options);

export type { MetricsRecord };
