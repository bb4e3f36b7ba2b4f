/**
 * The etcd coordinator (DESIGN.md, contract 4): membership, leadership, placement and ownership.
 *
 * - **Membership.** The node holds a lease (lease.ts) and keeps `members/<node>` under it. Every node
 *   watches `members/`.
 * - **Leadership.** Every node campaigns in etcd's election (etcd3's `election('leader')`, the recipe of
 *   etcd's Go client). The leader recomputes placement (plan.ts) when members change, `settleMs` after
 *   the last change, and writes every changed kind in one transaction that only succeeds while its
 *   election key exists and no placement key moved since it read them. The write's revision is the epoch.
 * - **Ownership.** Placement says who *should* run a shard; a claim `owners/<kind>/<shard>` (created only
 *   if absent, under the node's lease) says who *does*. A node starts a shard after claiming it and
 *   deletes the claim only after the shard stopped (batch in flight committed): so a moved shard starts
 *   on its new node only after the old one let go, and a dead node's claims go with its lease.
 * - **Self-fencing.** When the lease cannot be renewed for TTL - margin, every shard stops (the node is
 *   'fenced'). When etcd answers again the node resumes with the same lease if it still exists, or
 *   joins again with a new one.
 *
 * Kafka fencing (kafka/checkpoints.ts) backs all of this up: whatever etcd believes, a shard's writes
 * are accepted only from the last node that opened its writer.
 */
import { ExponentialBackoff, noop } from 'cockatiel';
import {
  type Campaign,
  type Election,
  type ElectionObserver,
  Etcd3,
  type IKeyValue,
  type Watcher,
} from 'etcd3';
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
import {
  decodeClaim,
  decodeMember,
  decodePlacement,
  encodeClaim,
  encodeMember,
  encodePlacement,
  type KindPlacement,
} from './documents.ts';
import { type ClusterKeys, clusterKeys, parseOwnerKey } from './keys.ts';
import { LeaseKeeper } from './lease.ts';
import { planPlacement } from './plan.ts';

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

/** One shard as this node sees it: whether it should run here, and what is done about it. */
interface Slot {
  readonly ref: PartitionRef;
  readonly id: string;
  want: boolean;
  epoch: number;
  running: boolean;
  /** The claim value we wrote, while we hold the claim. */
  claim: string | undefined;
  driving: Promise<void> | undefined;
  again: boolean;
  retry: TimerHandle | undefined;
  failures: number;
  /** Why it is released, for the event. */
  reason: string;
}

const RETRY_MS = 250;

const text = (b: Buffer | undefined): string => (b ? b.toString('utf8') : '');

export class EtcdCoordinator implements Coordinator {
  readonly name = 'etcd';
  private readonly keys: ClusterKeys;
  private readonly client: Etcd3;
  private readonly leaseKeeper: LeaseKeeper;
  private host: ShardHost | undefined;
  private self: MemberInfo | undefined;
  private currentStatus: CoordinatorStatus = 'starting';
  private readonly members = new Map<string, MemberInfo>();
  private readonly placement = new Map<string, KindPlacement>();
  private readonly slots = new Map<string, Slot>();
  private readonly watchers: Watcher[] = [];
  private election: Election | undefined;
  private campaign: Campaign | undefined;
  private observer: ElectionObserver | undefined;
  private leader: string | undefined;
  private leading = false;
  private placementTimer: TimerHandle | undefined;
  private writing = false;
  private writeAgain = false;
  private rejoinTimer: TimerHandle | undefined;
  private campaignTimer: TimerHandle | undefined;
  private readonly reportedConflicts = new Set<string>();

  constructor(private readonly options: EtcdCoordinatorOptions) {
    this.keys = clusterKeys(options.prefix);
    const { callTimeoutMs } = options;
    this.client = new Etcd3({
      hosts: [...options.endpoints],
      dialTimeout: callTimeoutMs,
      // Our own loops retry; etcd3's default circuit breaker would keep a recovered etcd "open" for 5 s.
      faultHandling: {
        host: () => noop,
        global: noop,
        // etcd3 declares an IBackoff but calls next() on it as on this factory (namespace.js does the same).
        watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 1_000 }) as never,
      },
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + callTimeoutMs }),
    });
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
    this.startCampaign();
    this.reconcile();
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
      () => this.reconcile(),
    );
    const now = await this.client.get(this.keys.owners).exec();
    await watch(
      this.keys.owners,
      from(now),
      () => undefined,
      (kv) => this.claimDeleted(kv),
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
    this.schedulePlacement();
  }

  private memberDeleted(kv: IKeyValue): void {
    const id = text(kv.key).slice(this.keys.members.length);
    if (!this.members.delete(id)) return;
    this.publish('member-left', { member: id });
    this.schedulePlacement();
  }

  // ---- leadership and placement -----------------------------------------------------------------------

  private startCampaign(): void {
    if (this.currentStatus !== 'active' || this.campaign) return;
    this.election ??= this.client
      .namespace(this.keys.electionNamespace)
      .election(this.keys.electionName, this.options.leaseTtlS);
    const campaign = this.election.campaign(this.self!.id);
    this.campaign = campaign;
    campaign.on('elected', () => {
      if (campaign !== this.campaign) return;
      this.leading = true;
      this.schedulePlacement(0);
    });
    campaign.on('error', (e) => {
      if (campaign !== this.campaign) return;
      this.leading = false;
      this.campaign = undefined;
      if (this.currentStatus !== 'active') return;
      this.options.warn(`the leader campaign failed (${describeError(e).message}); campaigning again`);
      this.campaignTimer = this.options.clock.setTimeout(() => {
        this.campaignTimer = undefined;
        this.startCampaign();
      }, RETRY_MS);
    });
    if (!this.observer) void this.observe();
  }

  private async observe(): Promise<void> {
    if (!this.election || this.currentStatus === 'stopped') return;
    try {
      const observer = await this.election.observe();
      this.observer = observer;
      this.setLeader(observer.leader());
      observer.on('change', (leader) => this.setLeader(leader));
      observer.on('error', () => {
        if (this.observer === observer) this.observer = undefined;
        this.campaignTimer ??= this.options.clock.setTimeout(() => {
          this.campaignTimer = undefined;
          void this.observe();
        }, RETRY_MS);
      });
    } catch {
      this.options.clock.setTimeout(() => void this.observe(), RETRY_MS);
    }
  }

  private setLeader(leader: string | undefined): void {
    if (leader === this.leader) return;
    this.leader = leader;
    if (leader !== undefined) this.publish('leader', { member: leader });
  }

  private schedulePlacement(delay = this.options.settleMs): void {
    if (!this.leading || this.currentStatus !== 'active') return;
    if (this.placementTimer) this.options.clock.clearTimeout(this.placementTimer);
    this.placementTimer = this.options.clock.setTimeout(() => {
      this.placementTimer = undefined;
      void this.writePlacement();
    }, delay);
  }

  /** The leader's write: every changed kind in one transaction, guarded by leadership and revisions. */
  private async writePlacement(): Promise<void> {
    if (this.writing) {
      this.writeAgain = true;
      return;
    }
    const campaign = this.campaign;
    if (!this.leading || !campaign || this.currentStatus !== 'active') return;
    this.writing = true;
    try {
      const { changed, conflicts } = planPlacement([...this.members.values()], this.placement);
      for (const c of conflicts) {
        if (!this.reportedConflicts.has(c))
          this.options.warn(`placement: ${c}; it gets no shards of that kind`);
        this.reportedConflicts.add(c);
      }
      if (changed.size === 0) return;
      const leaderKey = await campaign.getCampaignKey();
      let txn = this.client.if(leaderKey, 'Create', '>', 0);
      for (const kind of changed.keys()) {
        txn = txn.and(this.keys.placementOf(kind), 'Mod', '==', this.placement.get(kind)?.revision ?? 0);
      }
      const result = await txn
        .then(
          ...[...changed].map(([kind, owners]) =>
            this.client.put(this.keys.placementOf(kind)).value(encodePlacement(owners)),
          ),
        )
        .commit();
      if (!result.succeeded) {
        // Someone wrote placement since we read it (or we are no longer leader): read again, retry.
        const fresh = await this.client.getAll().prefix(this.keys.placement).exec();
        for (const kv of fresh.kvs) this.placementPut(kv);
        this.writeAgain = true;
      }
    } catch (e) {
      this.options.warn(`writing placement failed: ${describeError(e).message}; retrying`);
      this.writeAgain = true;
    } finally {
      this.writing = false;
      if (this.writeAgain) {
        this.writeAgain = false;
        this.schedulePlacement(RETRY_MS);
      }
    }
  }

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
    this.reconcile();
  }

  // ---- ownership ----------------------------------------------------------------------------------------

  /** Brings every slot's `want` in line with placement and status, and drives the ones that changed. */
  private reconcile(): void {
    const selfId = this.self?.id;
    const active = this.currentStatus === 'active';
    const seen = new Set<string>();
    for (const [kind, p] of this.placement) {
      if (!this.self || !(kind in this.self.kinds)) continue;
      p.owners.forEach((owner, partition) => {
        const slot = this.slot({ kind, partition });
        seen.add(slot.id);
        const want = active && owner.node === selfId;
        if (slot.want !== want || (want && slot.epoch !== owner.epoch && !slot.running)) {
          slot.want = want;
          slot.epoch = owner.epoch;
          if (!want)
            slot.reason = active ? `placement moved it to ${owner.node ?? 'nobody'}` : this.currentStatus;
          this.drive(slot);
        }
      });
    }
    for (const slot of this.slots.values()) {
      if (seen.has(slot.id) || !slot.want) continue;
      slot.want = false;
      slot.reason = 'no longer placed';
      this.drive(slot);
    }
  }

  private slot(ref: PartitionRef): Slot {
    const id = `${ref.kind}/${ref.partition}`;
    let slot = this.slots.get(id);
    if (!slot) {
      slot = {
        ref: { kind: ref.kind, partition: ref.partition },
        id,
        want: false,
        epoch: 0,
        running: false,
        claim: undefined,
        driving: undefined,
        again: false,
        retry: undefined,
        failures: 0,
        reason: '',
      };
      this.slots.set(id, slot);
    }
    return slot;
  }

  /** Moves one shard towards what `want` says, one step at a time, never two drives of a slot at once. */
  private drive(slot: Slot): void {
    if (slot.driving) {
      slot.again = true;
      return;
    }
    if (slot.retry) {
      this.options.clock.clearTimeout(slot.retry);
      slot.retry = undefined;
    }
    slot.driving = (async () => {
      do {
        slot.again = false;
        try {
          if (slot.want && !slot.running) await this.startShard(slot);
          else if (!slot.want && (slot.running || slot.claim)) await this.stopShard(slot);
          slot.failures = 0;
        } catch (e) {
          slot.failures++;
          const delay = Math.min(5_000, RETRY_MS * 2 ** Math.min(slot.failures - 1, 5));
          if (slot.want === !slot.running || slot.claim) {
            this.options.warn(`shard ${slot.id}: ${describeError(e).message}; trying again in ${delay} ms`);
            this.retryLater(slot, delay);
          }
        }
      } while (slot.again);
    })().finally(() => {
      slot.driving = undefined;
    });
  }

  private retryLater(slot: Slot, delay: number): void {
    if (slot.retry) this.options.clock.clearTimeout(slot.retry);
    slot.retry = this.options.clock.setTimeout(() => {
      slot.retry = undefined;
      if (this.currentStatus !== 'stopped') this.drive(slot);
    }, delay);
  }

  private async startShard(slot: Slot): Promise<void> {
    if (!slot.claim) {
      const held = await this.claim(slot);
      if (!held) return; // another node still runs it: its claim's deletion drives this slot again
    }
    if (!slot.want) return;
    await this.host!.acquire(slot.ref, slot.epoch);
    slot.running = true;
    this.publish('shard-acquired', { ...slot.ref, epoch: slot.epoch });
    if (!slot.want) slot.again = true;
  }

  private async stopShard(slot: Slot): Promise<void> {
    if (slot.running) {
      await this.host!.release(slot.ref, slot.reason);
      slot.running = false;
      this.publish('shard-released', { ...slot.ref, epoch: slot.epoch, detail: slot.reason });
    }
    if (slot.claim && this.currentStatus === 'active') await this.unclaim(slot);
    // Fenced or stopping: the claim goes with the lease (or is kept by it, if the lease survives).
    if (this.currentStatus !== 'active') slot.claim = undefined;
  }

  /** Creates the shard's claim under our lease unless another node holds it. */
  private async claim(slot: Slot): Promise<boolean> {
    const key = this.keys.owner(slot.ref.kind, slot.ref.partition);
    const lease = this.leaseKeeper.leaseId;
    const value = encodeClaim({ node: this.self!.id, epoch: slot.epoch, lease });
    const result = await this.client
      .if(key, 'Create', '==', 0)
      .then(this.client.put(key).value(value).lease(lease))
      .else(this.client.get(key))
      .commit();
    if (result.succeeded) {
      slot.claim = value;
      return true;
    }
    const kv = result.responses[0]?.response_range?.kvs?.[0];
    if (kv) {
      try {
        const held = decodeClaim(key, text(kv.value));
        if (held.node === this.self!.id && String(kv.lease) === lease) {
          slot.claim = text(kv.value); // ours from before a fence that the lease outlived
          return true;
        }
      } catch (e) {
        this.options.warn(`${describeError(e).message}; waiting for it to go`);
      }
    }
    // Held by another node (or our previous incarnation): wait for its deletion, and look again now
    // and then in case the deletion was missed while etcd was unreachable.
    this.retryLater(slot, this.options.leaseTtlS * 1000);
    return false;
  }

  private async unclaim(slot: Slot): Promise<void> {
    const key = this.keys.owner(slot.ref.kind, slot.ref.partition);
    await this.client.if(key, 'Value', '==', slot.claim!).then(this.client.delete().key(key)).commit();
    slot.claim = undefined;
  }

  private claimDeleted(kv: IKeyValue): void {
    const ref = parseOwnerKey(this.keys, text(kv.key));
    if (!ref) return;
    const slot = this.slots.get(`${ref.kind}/${ref.partition}`);
    if (slot?.want && !slot.running && !slot.claim) this.drive(slot);
  }

  holds(ref: PartitionRef): boolean {
    const slot = this.slots.get(`${ref.kind}/${ref.partition}`);
    return this.currentStatus === 'active' && !!slot?.running && slot.want && this.leaseKeeper.valid;
  }

  fenced(ref: PartitionRef): void {
    const slot = this.slots.get(`${ref.kind}/${ref.partition}`);
    if (!slot?.running) return;
    this.options.warn(`shard ${slot.id}: another node opened its writer; stopping it here`);
    // Stop it now; while placement and our claim still say it is ours, take it back after a pause.
    const want = slot.want;
    slot.want = false;
    slot.reason = 'writer fenced';
    this.drive(slot);
    if (want) {
      this.options.clock.setTimeout(() => {
        if (this.currentStatus === 'active') this.reconcile();
      }, this.options.leaseTtlS * 1000);
    }
  }

  // ---- fencing and rejoining -------------------------------------------------------------------------

  private fence(why: string): void {
    if (this.currentStatus !== 'active') return;
    this.currentStatus = 'fenced';
    this.leading = false;
    const campaign = this.campaign;
    this.campaign = undefined;
    void campaign?.resign().catch(() => undefined);
    this.publish('fenced', { detail: why });
    this.options.warn(`fenced: ${why}; stopping every shard until etcd answers again`);
    this.reconcile();
  }

  private resume(why: string): void {
    if (this.currentStatus !== 'fenced' || !this.leaseKeeper.valid) return;
    this.currentStatus = 'active';
    this.publish('rejoined', { detail: why });
    this.startCampaign();
    this.reconcile();
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
    for (const slot of this.slots.values()) slot.claim = undefined;
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
      leader: this.leader,
      epoch,
      members: [...this.members.values()].sort((a, b) => (a.id < b.id ? -1 : 1)),
      placement,
      running: [...this.slots.values()].filter((s) => s.running).map((s) => ({ ...s.ref, epoch: s.epoch })),
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
    this.leading = false;
    const campaign = this.campaign;
    this.campaign = undefined;
    await campaign?.resign().catch(() => undefined);
    for (const slot of this.slots.values()) {
      slot.want = false;
      slot.reason = 'node stopping';
      if (slot.retry) this.options.clock.clearTimeout(slot.retry);
      slot.retry = undefined;
      this.drive(slot);
    }
    await Promise.allSettled([...this.slots.values()].map((s) => s.driving));
    this.currentStatus = 'stopped';
    await this.shutdownQuietly();
  }

  private async shutdownQuietly(): Promise<void> {
    this.currentStatus = 'stopped';
    for (const t of [this.placementTimer, this.rejoinTimer, this.campaignTimer]) {
      if (t) this.options.clock.clearTimeout(t);
    }
    for (const slot of this.slots.values()) if (slot.retry) this.options.clock.clearTimeout(slot.retry);
    await this.leaseKeeper.stop(true);
    await Promise.allSettled(this.watchers.map((w) => w.cancel()));
    await this.observer?.cancel().catch(() => undefined);
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
