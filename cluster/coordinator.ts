/**
 * The etcd coordinator (DESIGN.md, contract 4): membership, leadership, placement and ownership.
 *
 * - **Membership** (here). The node holds a lease (lease.ts) and keeps `members/<node>` under it.
 *   Every node watches `members/`, `placement/` and `owners/` from the revision it read them at.
 * - **Leadership** (leadership.ts). Every node campaigns in etcd's election; the leader recomputes
 *   placement when members change, `settleMs` after the last change, and writes every changed kind in
 *   one transaction guarded by its election key and the placement keys' revisions. The write's
 *   revision is the epoch.
 * - **Ownership** (ownership.ts). Placement says who *should* run a shard; a claim
 *   `owners/<kind>/<shard>` (created only if absent, under the node's lease) says who *does*. A node
 *   starts a shard after claiming it and deletes the claim only after the shard stopped (batch in
 *   flight committed): so a moved shard starts on its new node only after the old one let go, and a
 *   dead node's claims go with its lease.
 * - **Self-fencing** (here). When the lease cannot be renewed for TTL - margin, every shard stops (the
 *   node is 'fenced'). When etcd answers again the node resumes with the same lease if it still
 *   exists, or joins again with a new one.
 *
 * Kafka fencing (kafka/checkpoints.ts) backs all of this up: whatever etcd believes, a shard's writes
 * are accepted only from the last node that opened its writer.
 */
import type { Etcd3, IKeyValue, Watcher } from 'etcd3';
import type {
  Clock,
  ClusterView,
  Coordinator,
  CoordinatorStatus,
  MemberInfo,
  PartitionRef,
  ShardHost,
  ShardOwner,
  TimerHandle,
} from '../runtime/boundaries.ts';
import { ArgusError, describeError } from '../runtime/errors.ts';
import type { ClusterEvent, EventBus } from '../runtime/events.ts';
import { type CoordinatorContext, RETRY_MS, text } from './context.ts';
import { decodeMember, decodePlacement, encodeMember, type KindPlacement } from './documents.ts';
import { createEtcdClient } from './etcd-client.ts';
import { type ClusterKeys, clusterKeys } from './keys.ts';
import { Leadership } from './leadership.ts';
import { LeaseKeeper } from './lease.ts';
import { Ownership } from './ownership.ts';

export interface EtcdCoordinatorOptions {
  readonly endpoints: readonly string[];
  readonly prefix: string;
  readonly callTimeoutMs: number;
  readonly leaseTtlS: number;
  readonly fenceMarginMs: number;
  readonly settleMs: number;
  readonly clock: Clock;
  readonly events: EventBus;
  readonly warn: (message: string) => void;
}

export class EtcdCoordinator implements Coordinator {
  readonly name = 'etcd';
  private readonly keys: ClusterKeys;
  private readonly client: Etcd3;
  private readonly leaseKeeper: LeaseKeeper;
  private readonly leadership: Leadership;
  private readonly ownership: Ownership;
  private host: ShardHost | undefined;
  private self: MemberInfo | undefined;
  private currentStatus: CoordinatorStatus = 'starting';
  private readonly members = new Map<string, MemberInfo>();
  private readonly placement = new Map<string, KindPlacement>();
  private readonly watchers: Watcher[] = [];
  private rejoinTimer: TimerHandle | undefined;

  constructor(private readonly options: EtcdCoordinatorOptions) {
    this.keys = clusterKeys(options.prefix);
    const { callTimeoutMs } = options;
    this.client = createEtcdClient(options.endpoints, callTimeoutMs);
    this.leaseKeeper = new LeaseKeeper(
      this.client,
      {
        ttlS: options.leaseTtlS,
        fenceMarginMs: options.fenceMarginMs,
        callTimeoutMs,
        retryMs: RETRY_MS,
      },
      options.clock,
      {
        unreachable: (e) => {
          this.publish('etcd-unreachable', { detail: e.message });
        },
        reachable: () => {
          this.publish('etcd-reachable', {});
          if (this.currentStatus === 'fenced') this.resume('the lease was still alive');
        },
        fence: () =>
          this.fence(
            `no lease renewal acknowledged for ${options.leaseTtlS * 1000 - options.fenceMarginMs} ms`,
          ),
        expired: () => {
          this.fence('the lease expired at etcd');
          this.scheduleRejoin(0);
        },
      },
    );
    const context: CoordinatorContext = {
      client: this.client,
      keys: this.keys,
      clock: options.clock,
      warn: options.warn,
      leaseTtlS: options.leaseTtlS,
      status: () => this.currentStatus,
      self: () => this.self,
      publish: (event, extra) => this.publish(event, extra),
    };
    this.leadership = new Leadership(context, {
      settleMs: options.settleMs,
      members: this.members,
      placement: this.placement,
      placementPut: (kv) => this.placementPut(kv),
    });
    this.ownership = new Ownership(context, {
      placement: this.placement,
      host: () => this.host!,
      lease: this.leaseKeeper,
    });
  }

  get status(): CoordinatorStatus {
    return this.currentStatus;
  }

  async start(host: ShardHost, self: Omit<MemberInfo, 'joinedAt'>): Promise<void> {
    this.host = host;
    this.self = { ...self, joinedAt: this.options.clock.now() };
    try {
      await this.register();
      await this.loadAndWatch();
    } catch (e) {
      await this.shutdownQuietly();
      throw new ArgusError(
        'ARGUS_ERR_COORDINATION',
        `joining the cluster at ${this.options.endpoints.join(',')} failed: ${describeError(e).message}`,
        { endpoints: this.options.endpoints },
      );
    }
    this.currentStatus = 'active';
    this.publish('joined', { member: this.self.id });
    this.leadership.startCampaign();
    this.ownership.reconcile();
  }

  /** Grants a lease and writes the member record under it. */
  private async register(): Promise<void> {
    const lease = await this.leaseKeeper.grant();
    await this.client.put(this.keys.member(this.self!.id)).value(encodeMember(this.self!)).lease(lease);
  }

  /** Reads members, placement and claims at one revision, then watches each from the next. */
  private async loadAndWatch(): Promise<void> {
    const [members, placement] = await Promise.all([
      this.client.getAll().prefix(this.keys.members).exec(),
      this.client.getAll().prefix(this.keys.placement).exec(),
    ]);
    for (const kv of members.kvs) this.memberPut(kv, false);
    for (const kv of placement.kvs) this.placementPut(kv);
    const from = (r: { header: { revision: string } }) => String(BigInt(r.header.revision) + 1n);
    const watch = async (
      prefix: string,
      revision: string,
      put: (kv: IKeyValue) => void,
      del: (kv: IKeyValue) => void,
    ) => {
      const w = await this.client.watch().prefix(prefix).startRevision(revision).create();
      w.on('put', put);
      w.on('delete', del);
      w.on('error', (e) => this.options.warn(`watch of ${prefix} failed: ${e.message}`));
      this.watchers.push(w);
    };
    await watch(
      this.keys.members,
      from(members),
      (kv) => this.memberPut(kv, true),
      (kv) => this.memberDeleted(kv),
    );
    await watch(
      this.keys.placement,
      from(placement),
      (kv) => this.placementPut(kv),
      () => this.ownership.reconcile(),
    );
    const now = await this.client.get(this.keys.owners).exec();
    await watch(
      this.keys.owners,
      from(now),
      () => undefined,
      (kv) => this.ownership.claimDeleted(kv),
    );
  }

  // ---- membership -------------------------------------------------------------------------------------

  private memberPut(kv: IKeyValue, announce: boolean): void {
    const key = text(kv.key);
    let member: MemberInfo;
    try {
      member = decodeMember(key, text(kv.value));
    } catch (e) {
      this.options.warn(`ignoring ${describeError(e).message}`);
      return;
    }
    const known = this.members.has(member.id);
    this.members.set(member.id, member);
    if (announce && !known) this.publish('member-joined', { member: member.id });
    this.leadership.schedulePlacement();
  }

  private memberDeleted(kv: IKeyValue): void {
    const id = text(kv.key).slice(this.keys.members.length);
    if (!this.members.delete(id)) return;
    this.publish('member-left', { member: id });
    this.leadership.schedulePlacement();
  }

  // ---- placement as read from etcd ------------------------------------------------------------------

  private placementPut(kv: IKeyValue): void {
    const key = text(kv.key);
    const kind = key.slice(this.keys.placement.length);
    const revision = Number(kv.mod_revision);
    const known = this.placement.get(kind);
    if (known && known.revision >= revision) return;
    try {
      this.placement.set(kind, decodePlacement(key, text(kv.value), revision));
    } catch (e) {
      this.options.warn(`ignoring ${describeError(e).message}`);
      return;
    }
    this.publish('placement', { kind, epoch: revision });
    this.ownership.reconcile();
  }

  // ---- ownership (ownership.ts) ------------------------------------------------------------------------

  holds(ref: PartitionRef): boolean {
    return this.ownership.holds(ref);
  }

  fenced(ref: PartitionRef): void {
    this.ownership.fenced(ref);
  }

  // ---- fencing and rejoining -------------------------------------------------------------------------

  private fence(why: string): void {
    if (this.currentStatus !== 'active') return;
    this.currentStatus = 'fenced';
    void this.leadership.resign();
    this.publish('fenced', { detail: why });
    this.options.warn(`fenced: ${why}; stopping every shard until etcd answers again`);
    this.ownership.reconcile();
  }

  private resume(why: string): void {
    if (this.currentStatus !== 'fenced' || !this.leaseKeeper.valid) return;
    this.currentStatus = 'active';
    this.publish('rejoined', { detail: why });
    this.leadership.startCampaign();
    this.ownership.reconcile();
  }

  private scheduleRejoin(delay: number): void {
    if (this.rejoinTimer || this.currentStatus === 'stopped') return;
    this.rejoinTimer = this.options.clock.setTimeout(() => {
      this.rejoinTimer = undefined;
      void this.rejoin();
    }, delay);
  }

  /** The lease is gone: join again with a new one (claims of the old one went with it). */
  private async rejoin(): Promise<void> {
    if (this.currentStatus === 'stopped') return;
    this.ownership.forgetClaims();
    try {
      await this.register();
    } catch (e) {
      this.options.warn(`joining again failed: ${describeError(e).message}`);
      this.scheduleRejoin(RETRY_MS);
      return;
    }
    this.resume('joined again with a new lease');
  }

  // ---- the Coordinator API ---------------------------------------------------------------------------

  view(): ClusterView {
    const placement: Record<string, readonly ShardOwner[]> = {};
    let epoch = 0;
    for (const [kind, p] of this.placement) {
      placement[kind] = p.owners;
      epoch = Math.max(epoch, p.revision);
    }
    return {
      coordinator: 'etcd',
      nodeId: this.self?.id ?? '',
      status: this.currentStatus,
      leader: this.leadership.leader,
      epoch,
      members: [...this.members.values()].sort((a, b) => (a.id < b.id ? -1 : 1)),
      placement,
      running: this.ownership.running(),
    };
  }

  ownerOf(kind: string, partition: number): MemberInfo | undefined {
    const node = this.placement.get(kind)?.owners[partition]?.node;
    return node === undefined ? undefined : this.members.get(node);
  }

  async stop(): Promise<void> {
    if (this.currentStatus === 'stopped') return;
    const wasActive = this.currentStatus === 'active';
    // Hand every shard off (each commits its batch in flight and deletes its claim), then leave.
    this.currentStatus = wasActive ? 'active' : this.currentStatus;
    await this.leadership.resign();
    await this.ownership.releaseAll('node stopping');
    this.currentStatus = 'stopped';
    await this.shutdownQuietly();
  }

  private async shutdownQuietly(): Promise<void> {
    this.currentStatus = 'stopped';
    this.leadership.clearTimers();
    if (this.rejoinTimer) this.options.clock.clearTimeout(this.rejoinTimer);
    this.ownership.clearRetries();
    await this.leaseKeeper.stop(true);
    await Promise.allSettled(this.watchers.map((w) => w.cancel()));
    await this.leadership.stopObserving();
    this.client.close();
  }

  private publish(event: ClusterEvent['event'], extra: Partial<Omit<ClusterEvent, 'type' | 'event'>>): void {
    if (!this.options.events.listening) return;
    this.options.events.publish({
      type: '@argus.cluster',
      event,
      node: this.self?.id ?? '',
      at: this.options.clock.now(),
      ...extra,
    });
  }
}
