/**
 * The node's SNMP poller: polls the hosts whose shards run on this node, each on its own interval and
 * phase (schedule.ts), at most `concurrency` polls in flight and one per host, and sends each result to
 * the host's mailbox (`host.polled` / `host.poll-failed`). Ticks are local — never through Kafka — but
 * everything a poll produces goes through the mailbox, so a crashed or moved host entity loses nothing.
 *
 * Placement decides who polls: a shard acquired here starts polling its hosts, a shard released stops
 * them (a poll in flight still delivers its result: the mailbox takes it whoever owns the shard now).
 * The inventory decides what exists: a new host starts in the next slot of its phase, a removed one stops
 * and gets `host.removed` (its state is dropped).
 *
 * A failed poll never stops the loop: each host's failure is its own message, with a code and a text
 * that names the host.
 */
import type { Clock, PartitionRef, TimerHandle } from '../../runtime/boundaries.ts';
import { describeError } from '../../runtime/errors.ts';
import { HOST_KIND } from './host.ts';
import type { HostMessage } from './messages.ts';
import { PollSchedule } from './schedule.ts';
import type { SnmpPoller } from './snmp.ts';
import type { InventoryHost, MetricSet } from './types.ts';

/** What the poller needs of the runtime. */
export interface PollerRuntime {
  send(kind: string, key: string, message: HostMessage): Promise<void>;
  runningShards(kind: string): number[];
  onShards(observer: (ref: PartitionRef, held: boolean) => void): () => void;
  shardOf(kind: string, key: string): number;
}

export interface HostPollerOptions {
  readonly runtime: PollerRuntime;
  readonly snmp: SnmpPoller;
  /** The metric set of a service (the default set when the service has none). */
  readonly metricSet: (service: string) => MetricSet;
  readonly clock: Clock;
  readonly random?: () => number;
  /** Polls in flight at most (default 512). */
  readonly concurrency?: number;
  /** Random spread added to each slot, ms (default 0: the hash phase alone spreads the hosts). */
  readonly jitterMs?: number;
  /** A poll that starts this much after its slot counts as late (default 5,000 ms). */
  readonly lateAfterMs?: number;
  /** Sees the latency of every finished poll, ms (the node's self-metrics histogram). */
  readonly onLatency?: (ms: number) => void;
  readonly warn?: (message: string) => void;
}

export interface PollerStats {
  /** Hosts scheduled on this node (SNMP hosts of the shards running here). */
  readonly scheduled: number;
  readonly inFlight: number;
  readonly started: number;
  readonly succeeded: number;
  readonly failed: number;
  /** Slots skipped: the poller was saturated past a whole interval, or the host's last poll was still running. */
  readonly missed: number;
  /** Polls started more than `lateAfterMs` after their slot. */
  readonly late: number;
  /** Poll latency quantiles over the last 4,096 polls (ms). */
  readonly latencyP50Ms: number;
  readonly latencyP99Ms: number;
  /** Results that could not be sent to the mailbox (runtime stopping, transport down). */
  readonly sendErrors: number;
}

const LATENCY_WINDOW = 4_096;

export class HostPoller {
  private readonly schedule: PollSchedule;
  private hosts = new Map<string, InventoryHost>();
  private readonly owned = new Set<number>();
  private readonly inFlight = new Set<string>();
  private readonly pending = new Set<Promise<void>>();
  private timer: TimerHandle | undefined;
  private timerDue = Number.POSITIVE_INFINITY;
  private running = false;
  private unsubscribe: (() => void) | undefined;
  private readonly concurrency: number;
  private readonly lateAfterMs: number;
  private readonly latencies = new Float64Array(LATENCY_WINDOW);
  private latencyCount = 0;
  private counts = { started: 0, succeeded: 0, failed: 0, missed: 0, late: 0, sendErrors: 0 };

  constructor(private readonly options: HostPollerOptions) {
    this.schedule = new PollSchedule(options.random ?? Math.random, options.jitterMs ?? 0);
    this.concurrency = options.concurrency ?? 512;
    this.lateAfterMs = options.lateAfterMs ?? 5_000;
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    const rt = this.options.runtime;
    for (const p of rt.runningShards(HOST_KIND)) this.owned.add(p);
    this.unsubscribe = rt.onShards((ref, held) => {
      if (ref.kind !== HOST_KIND) return;
      if (held) this.owned.add(ref.partition);
      else this.owned.delete(ref.partition);
      this.reconcile();
    });
    this.reconcile();
  }

  /** Stops scheduling; resolves once the polls in flight have sent their results. */
  async stop(): Promise<void> {
    this.running = false;
    this.unsubscribe?.();
    if (this.timer) this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
    await Promise.allSettled([...this.pending]);
  }

  /**
   * Applies a new inventory: hosts that left it are unscheduled and told `host.removed` (when their
   * shard runs here); new and changed ones are (re)scheduled. Returns the ids added and removed.
   */
  setInventory(hosts: readonly InventoryHost[]): { added: string[]; removed: string[] } {
    const next = new Map(hosts.map((h) => [h.id, h]));
    const added = hosts.filter((h) => !this.hosts.has(h.id)).map((h) => h.id);
    const removed = [...this.hosts.keys()].filter((id) => !next.has(id));
    this.hosts = next;
    for (const id of removed) {
      this.schedule.remove(id);
      if (this.running && this.ownsHost(id))
        this.send(id, { type: 'host.removed', ts: this.options.clock.now() });
    }
    this.reconcile();
    return { added, removed };
  }

  /** The hosts this node polls now (its shards' SNMP hosts), sorted. */
  scheduledHosts(): string[] {
    return this.schedule.ids();
  }

  stats(): PollerStats {
    const n = Math.min(this.latencyCount, LATENCY_WINDOW);
    const sorted = Array.from(this.latencies.subarray(0, n)).sort((a, b) => a - b);
    const q = (p: number) => (n === 0 ? 0 : sorted[Math.min(n - 1, Math.floor(p * n))]!);
    return {
      scheduled: this.schedule.size,
      inFlight: this.inFlight.size,
      ...this.counts,
      latencyP50Ms: q(0.5),
      latencyP99Ms: q(0.99),
    };
  }

  private ownsHost(id: string): boolean {
    return this.owned.has(this.options.runtime.shardOf(HOST_KIND, id));
  }

  /** Schedules exactly the SNMP hosts of the inventory whose shards run here. */
  private reconcile(): void {
    if (!this.running) return;
    const now = this.options.clock.now();
    for (const h of this.hosts.values()) {
      const pollable = h.address !== undefined && h.snmp !== undefined && this.ownsHost(h.id);
      if (pollable) this.schedule.add(h.id, h.intervalMs, now);
      else this.schedule.remove(h.id);
    }
    this.arm();
  }

  /** Sets the timer for the earliest due slot (or leaves it when one is set for no later). */
  private arm(): void {
    if (!this.running) return;
    const due = this.schedule.peek();
    if (due === undefined || due >= this.timerDue) return;
    if (this.timer) this.options.clock.clearTimeout(this.timer);
    this.timerDue = due;
    const wait = Math.max(0, due - this.options.clock.now());
    this.timer = this.options.clock.setTimeout(() => {
      this.timer = undefined;
      this.timerDue = Number.POSITIVE_INFINITY;
      this.tick();
    }, wait);
  }

  private tick(): void {
    if (!this.running) return;
    const now = this.options.clock.now();
    while (this.inFlight.size < this.concurrency) {
      const slot = this.schedule.take(now);
      if (!slot) break;
      this.counts.missed += slot.missed;
      if (this.inFlight.has(slot.id)) {
        this.counts.missed++;
        continue;
      }
      if (now - slot.due > this.lateAfterMs) this.counts.late++;
      const host = this.hosts.get(slot.id);
      if (host) this.poll(host);
    }
    // Saturated: the next slot starts when a poll finishes (poll() calls arm()).
    if (this.inFlight.size < this.concurrency) this.arm();
  }

  private poll(host: InventoryHost): void {
    const { snmp, clock } = this.options;
    this.inFlight.add(host.id);
    this.counts.started++;
    const ts = clock.now();
    const set = this.options.metricSet(host.service);
    const work = snmp
      .poll({ address: host.address!, snmp: host.snmp! }, set)
      .then(
        (r): HostMessage =>
          r.ok
            ? {
                type: 'host.polled',
                ts,
                latencyMs: r.latencyMs,
                values: r.values,
                missing: r.missing.length,
                derived: set.derived,
                service: host.service,
                labels: host.labels,
              }
            : {
                type: 'host.poll-failed',
                ts,
                latencyMs: r.latencyMs,
                code: r.error.code,
                error: r.error.message,
                service: host.service,
                labels: host.labels,
              },
        (e): HostMessage => ({
          type: 'host.poll-failed',
          ts,
          latencyMs: clock.now() - ts,
          code: 'protocol',
          error: `polling ${host.id}: ${describeError(e).message}`,
          service: host.service,
          labels: host.labels,
        }),
      )
      .then((message) => {
        if (message.type === 'host.polled') this.counts.succeeded++;
        else this.counts.failed++;
        if (message.type !== 'host.removed' && message.type !== 'host.pushed')
          this.recordLatency(message.latencyMs);
        // A host that left the inventory while this poll was out has had its `host.removed`: a late
        // result would bring it back (reachable again, samples after its removal), so it is dropped.
        return this.hosts.has(host.id) ? this.send(host.id, message) : undefined;
      })
      .finally(() => {
        this.inFlight.delete(host.id);
        this.pending.delete(work);
        this.tick();
      });
    this.pending.add(work);
  }

  private recordLatency(ms: number): void {
    this.latencies[this.latencyCount % LATENCY_WINDOW] = ms;
    this.latencyCount++;
    this.options.onLatency?.(ms);
  }

  private send(id: string, message: HostMessage): Promise<void> {
    return this.options.runtime.send(HOST_KIND, id, message).catch((e) => {
      this.counts.sendErrors++;
      this.options.warn?.(`sending ${message.type} of host ${id}: ${describeError(e).message}`);
    });
  }
}
