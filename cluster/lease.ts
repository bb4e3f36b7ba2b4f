/**
 * The node's membership lease, renewed by hand rather than by etcd3's automatic keepalive, because
 * self-fencing needs one number the library does not give: when the last renewal etcd acknowledged was
 * *sent*. etcd received it after that, so the lease cannot expire before `sentAt + TTL`; the node stops
 * its shards at `sentAt + TTL - margin` unless a newer renewal got through (DESIGN.md, contract 4).
 *
 * Renewals go every TTL/3 or every second if that is sooner, each with its own deadline; after a failure they
 * are retried every `retryMs` so the node notices etcd's return quickly. `expired` is reported when
 * etcd says the lease is gone (it expired while we could not reach etcd): the coordinator then rejoins
 * with a new lease.
 */
import type { Etcd3, Lease } from 'etcd3';
import { EtcdLeaseInvalidError } from 'etcd3';
import type { Clock, TimerHandle } from '../runtime/boundaries.ts';
import { ArgusError, describeError } from '../runtime/errors.ts';

export interface LeaseHandlers {
  /** A renewal failed (etcd unreachable or slow); the lease may still be alive. */
  unreachable(error: Error): void;
  /** A renewal succeeded after failures. */
  reachable(): void;
  /** No acknowledged renewal for TTL - margin: stop every shard now. */
  fence(): void;
  /** etcd says the lease no longer exists. */
  expired(): void;
}

export interface LeaseSettings {
  readonly ttlS: number;
  readonly fenceMarginMs: number;
  readonly callTimeoutMs: number;
  /** Pause between renewals after a failed one. */
  readonly retryMs: number;
}

const withTimeout = <T>(work: Promise<T>, ms: number, what: string): Promise<T> =>
  new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new ArgusError('ARGUS_ERR_TIMEOUT', `${what} took longer than ${ms} ms`)),
      ms,
    );
    work.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e) => {
        clearTimeout(timer);
        reject(e);
      },
    );
  });

export class LeaseKeeper {
  private lease: Lease | undefined;
  private id: string | undefined;
  /** Monotonic ms until which etcd cannot have expired the lease (send time of the last ack + TTL). */
  private validUntil = 0;
  private renewTimer: TimerHandle | undefined;
  private fenceTimer: TimerHandle | undefined;
  private failing = false;
  private stopped = false;

  constructor(
    private readonly client: Etcd3,
    private readonly settings: LeaseSettings,
    private readonly clock: Clock,
    private readonly handlers: LeaseHandlers,
  ) {}

  get leaseId(): string {
    if (this.id === undefined) throw new ArgusError('ARGUS_ERR_COORDINATION', 'no lease granted yet');
    return this.id;
  }

  /** Whether the lease is certainly still alive at etcd (with the margin to spare). */
  get valid(): boolean {
    return this.clock.monotonic() < this.validUntil - this.settings.fenceMarginMs;
  }

  /** Grants a new lease (dropping any previous one locally) and starts renewing it. */
  async grant(): Promise<string> {
    this.clearTimers();
    this.lease?.release();
    const sentAt = this.clock.monotonic();
    const lease = this.client.lease(this.settings.ttlS, { autoKeepAlive: false });
    // etcd3 also reports a failed grant as 'lost'; the rejection below is what we act on.
    lease.on('lost', () => undefined);
    this.lease = lease;
    const id = await withTimeout(lease.grant(), this.settings.callTimeoutMs, 'granting the membership lease');
    this.id = id;
    this.failing = false;
    this.acknowledged(sentAt);
    this.scheduleRenewal(this.renewEveryMs);
    return id;
  }

  /**
   * etcd's Go client renews every TTL/3; we renew at least every second too, because the fence comes
   * at `last acknowledged send + TTL − margin`: the more often we renew, the longer an etcd hiccup
   * (a quick restart, a leader election) can last without fencing a healthy node.
   */
  private get renewEveryMs(): number {
    return Math.min(1_000, Math.floor((this.settings.ttlS * 1000) / 3));
  }

  private scheduleRenewal(ms: number): void {
    if (this.stopped) return;
    if (this.renewTimer) this.clock.clearTimeout(this.renewTimer);
    this.renewTimer = this.clock.setTimeout(() => {
      this.renewTimer = undefined;
      void this.renew();
    }, ms);
  }

  private async renew(): Promise<void> {
    const lease = this.lease;
    if (!lease || this.stopped) return;
    const sentAt = this.clock.monotonic();
    try {
      const res = await withTimeout(
        lease.keepaliveOnce({ deadline: Date.now() + this.settings.callTimeoutMs }),
        this.settings.callTimeoutMs,
        'renewing the membership lease',
      );
      if (lease !== this.lease || this.stopped) return;
      if (res.TTL === '0') throw new EtcdLeaseInvalidError(String(res.ID));
      this.acknowledged(sentAt);
      if (this.failing) {
        this.failing = false;
        this.handlers.reachable();
      }
      this.scheduleRenewal(this.renewEveryMs);
    } catch (e) {
      if (lease !== this.lease || this.stopped) return;
      if (e instanceof EtcdLeaseInvalidError) {
        this.clearTimers();
        this.handlers.expired();
        return;
      }
      if (!this.failing) {
        this.failing = true;
        this.handlers.unreachable(e instanceof Error ? e : new Error(describeError(e).message));
      }
      this.scheduleRenewal(this.settings.retryMs);
    }
  }

  private acknowledged(sentAt: number): void {
    this.validUntil = Math.max(this.validUntil, sentAt + this.settings.ttlS * 1000);
    this.scheduleFence();
  }

  /**
   * Arms the fence for `validUntil - margin`. Timers may fire a fraction of a millisecond early by the
   * monotonic clock (libuv rounds its loop time), so an early wake-up re-arms instead of giving up.
   */
  private scheduleFence(): void {
    if (this.fenceTimer) this.clock.clearTimeout(this.fenceTimer);
    const fenceAt = this.validUntil - this.settings.fenceMarginMs;
    this.fenceTimer = this.clock.setTimeout(
      () => {
        this.fenceTimer = undefined;
        if (this.stopped) return;
        if (this.clock.monotonic() >= fenceAt) this.handlers.fence();
        else this.scheduleFence();
      },
      Math.max(1, Math.ceil(fenceAt - this.clock.monotonic())),
    );
  }

  private clearTimers(): void {
    if (this.renewTimer) this.clock.clearTimeout(this.renewTimer);
    if (this.fenceTimer) this.clock.clearTimeout(this.fenceTimer);
    this.renewTimer = undefined;
    this.fenceTimer = undefined;
  }

  /** Stops renewing; `revoke` also deletes the lease (and every key under it) at etcd. */
  async stop(revoke: boolean): Promise<void> {
    this.stopped = true;
    this.clearTimers();
    const lease = this.lease;
    this.lease = undefined;
    if (!lease) return;
    if (revoke) {
      await withTimeout(
        lease.revoke({ deadline: Date.now() + this.settings.callTimeoutMs }),
        this.settings.callTimeoutMs,
        'revoking the membership lease',
      ).catch(() => undefined);
    } else lease.release();
  }
}
