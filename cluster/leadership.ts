/**
 * Leadership and the leader's placement writes (DESIGN.md, contract 4).
 *
 * Every node campaigns in etcd's election (etcd3's `election('leader')`, the recipe of etcd's Go
 * client) and observes it, so every node knows the leader. The leader recomputes placement (plan.ts)
 * when members change, `settleMs` after the last change, and writes every changed kind in one
 * transaction that only succeeds while its election key exists and no placement key moved since it
 * read them. The write's revision is the epoch. A failed or refused write is retried after reading
 * placement again; a new leader starts from what is in etcd, never from scratch.
 */
import type { Campaign, Election, ElectionObserver, IKeyValue } from 'etcd3';
import type { MemberInfo, TimerHandle } from '../runtime/boundaries.ts';
import { describeError } from '../runtime/errors.ts';
import { type CoordinatorContext, RETRY_MS } from './context.ts';
import { encodePlacement, type KindPlacement } from './documents.ts';
import { planPlacement } from './plan.ts';

export interface LeadershipDeps {
  readonly settleMs: number;
  /** The live members, as the coordinator's watch keeps them. */
  readonly members: ReadonlyMap<string, MemberInfo>;
  /** The placement read from etcd, as the coordinator's watch keeps it (kind → placement). */
  readonly placement: ReadonlyMap<string, KindPlacement>;
  /** Takes in a placement key read from etcd (the coordinator's watch handler). */
  readonly placementPut: (kv: IKeyValue) => void;
}

export class Leadership {
  private election: Election | undefined;
  private campaign: Campaign | undefined;
  private observer: ElectionObserver | undefined;
  private currentLeader: string | undefined;
  private leading = false;
  private placementTimer: TimerHandle | undefined;
  private writing = false;
  private writeAgain = false;
  private campaignTimer: TimerHandle | undefined;
  private readonly reportedConflicts = new Set<string>();

  constructor(
    private readonly ctx: CoordinatorContext,
    private readonly deps: LeadershipDeps,
  ) {}

  /** The leader's node id, as the election observer last reported it. */
  get leader(): string | undefined {
    return this.currentLeader;
  }

  /** Campaigns (while active and not already campaigning) and starts observing the election. */
  startCampaign(): void {
    if (this.ctx.status() !== 'active' || this.campaign) return;
    this.election ??= this.ctx.client
      .namespace(this.ctx.keys.electionNamespace)
      .election(this.ctx.keys.electionName, this.ctx.leaseTtlS);
    const campaign = this.election.campaign(this.ctx.self()!.id);
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
      if (this.ctx.status() !== 'active') return;
      this.ctx.warn(`the leader campaign failed (${describeError(e).message}); campaigning again`);
      this.campaignTimer = this.ctx.clock.setTimeout(() => {
        this.campaignTimer = undefined;
        this.startCampaign();
      }, RETRY_MS);
    });
    if (!this.observer) void this.observe();
  }

  /**
   * Stops leading and campaigning (fenced or stopping). Resolves when etcd took the resignation, or
   * failed to: a key it did not delete goes with the lease.
   */
  resign(): Promise<void> {
    this.leading = false;
    const campaign = this.campaign;
    this.campaign = undefined;
    return campaign ? campaign.resign().catch(() => undefined) : Promise.resolve();
  }

  private async observe(): Promise<void> {
    if (!this.election || this.ctx.status() === 'stopped') return;
    try {
      const observer = await this.election.observe();
      this.observer = observer;
      this.setLeader(observer.leader());
      observer.on('change', (leader) => this.setLeader(leader));
      observer.on('error', () => {
        if (this.observer === observer) this.observer = undefined;
        this.campaignTimer ??= this.ctx.clock.setTimeout(() => {
          this.campaignTimer = undefined;
          void this.observe();
        }, RETRY_MS);
      });
    } catch {
      this.ctx.clock.setTimeout(() => void this.observe(), RETRY_MS);
    }
  }

  private setLeader(leader: string | undefined): void {
    if (leader === this.currentLeader) return;
    this.currentLeader = leader;
    if (leader !== undefined) this.ctx.publish('leader', { member: leader });
  }

  /** While leading and active: writes placement `delay` ms from now (a later call restarts the wait). */
  schedulePlacement(delay = this.deps.settleMs): void {
    if (!this.leading || this.ctx.status() !== 'active') return;
    if (this.placementTimer) this.ctx.clock.clearTimeout(this.placementTimer);
    this.placementTimer = this.ctx.clock.setTimeout(() => {
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
    if (!this.leading || !campaign || this.ctx.status() !== 'active') return;
    const { client, keys } = this.ctx;
    const { placement } = this.deps;
    this.writing = true;
    try {
      const { changed, conflicts } = planPlacement([...this.deps.members.values()], placement);
      for (const c of conflicts) {
        if (!this.reportedConflicts.has(c)) this.ctx.warn(`placement: ${c}; it gets no shards of that kind`);
        this.reportedConflicts.add(c);
      }
      if (changed.size === 0) return;
      const leaderKey = await campaign.getCampaignKey();
      let txn = client.if(leaderKey, 'Create', '>', 0);
      for (const kind of changed.keys()) {
        txn = txn.and(keys.placementOf(kind), 'Mod', '==', placement.get(kind)?.revision ?? 0);
      }
      const result = await txn
        .then(
          ...[...changed].map(([kind, owners]) =>
            client.put(keys.placementOf(kind)).value(encodePlacement(owners)),
          ),
        )
        .commit();
      if (!result.succeeded) {
        // Someone wrote placement since we read it (or we are no longer leader): read again, retry.
        const fresh = await client.getAll().prefix(keys.placement).exec();
        for (const kv of fresh.kvs) this.deps.placementPut(kv);
        this.writeAgain = true;
      }
    } catch (e) {
      this.ctx.warn(`writing placement failed: ${describeError(e).message}; retrying`);
      this.writeAgain = true;
    } finally {
      this.writing = false;
      if (this.writeAgain) {
        this.writeAgain = false;
        this.schedulePlacement(RETRY_MS);
      }
    }
  }

  /** Cancels the pending placement write and campaign/observer retry (shutting down). */
  clearTimers(): void {
    for (const t of [this.placementTimer, this.campaignTimer]) {
      if (t) this.ctx.clock.clearTimeout(t);
    }
  }

  /** Stops observing the election (shutting down). */
  async stopObserving(): Promise<void> {
    await this.observer?.cancel().catch(() => undefined);
  }
}
