/**
 * Ownership: which shards run on this node, and the claims that make it so (DESIGN.md, contract 4).
 *
 * Placement says who *should* run a shard; a claim `owners/<kind>/<shard>` (created only if absent,
 * under the node's lease) says who *does*. Each shard this node knows of has a slot: what placement
 * and the node's status want (`want`), and what is done about it (`claim`, `running`). A slot is
 * driven one step at a time, never by two drives at once:
 *
 * - to start, claim the shard, then acquire it through the runtime's ShardHost;
 * - to stop, release it (the batch in flight commits), and only then delete the claim — and only
 *   while the node is 'active': fenced or stopping, the claim goes with the lease (or is kept by it,
 *   if the lease survives).
 *
 * So a moved shard starts on its new node only after the old one let go, and a dead node's claims go
 * with its lease. A claim held by another node is waited for: its deletion (watched by the
 * coordinator, `claimDeleted`) drives the slot again, and so does a look every lease TTL in case the
 * deletion was missed. A failed step is retried with backoff.
 */
import type { IKeyValue } from 'etcd3';
import type { ClusterView, PartitionRef, ShardHost, TimerHandle } from '../runtime/boundaries.ts';
import { describeError } from '../runtime/errors.ts';
import { type CoordinatorContext, RETRY_MS, text } from './context.ts';
import { decodeClaim, encodeClaim, type KindPlacement } from './documents.ts';
import { parseOwnerKey } from './keys.ts';

export interface OwnershipDeps {
  /** The placement read from etcd, as the coordinator's watch keeps it (kind → placement). */
  readonly placement: ReadonlyMap<string, KindPlacement>;
  /** The runtime's side: starts and stops shards. Set once `start` was called. */
  readonly host: () => ShardHost;
  /** The node's membership lease: its id (claims are written under it) and whether it is surely alive. */
  readonly lease: { readonly leaseId: string; readonly valid: boolean };
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

const slotId = (ref: PartitionRef): string => `${ref.kind}/${ref.partition}`;

export class Ownership {
  private readonly slots = new Map<string, Slot>();

  constructor(
    private readonly ctx: CoordinatorContext,
    private readonly deps: OwnershipDeps,
  ) {}

  /** Brings every slot's `want` in line with placement and status, and drives the ones that changed. */
  reconcile(): void {
    const self = this.ctx.self();
    const status = this.ctx.status();
    const active = status === 'active';
    const seen = new Set<string>();
    for (const [kind, p] of this.deps.placement) {
      if (!self || !(kind in self.kinds)) continue;
      p.owners.forEach((owner, partition) => {
        const slot = this.slot({ kind, partition });
        seen.add(slot.id);
        const want = active && owner.node === self.id;
        if (slot.want !== want || (want && slot.epoch !== owner.epoch && !slot.running)) {
          slot.want = want;
          slot.epoch = owner.epoch;
          if (!want) slot.reason = active ? `placement moved it to ${owner.node ?? 'nobody'}` : status;
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

  /** Whether this node holds the shard right now (Coordinator.holds). */
  holds(ref: PartitionRef): boolean {
    const slot = this.slots.get(slotId(ref));
    return this.ctx.status() === 'active' && !!slot?.running && slot.want && this.deps.lease.valid;
  }

  /** The shard's writer was fenced by another node (Coordinator.fenced): stop it here. */
  fenced(ref: PartitionRef): void {
    const slot = this.slots.get(slotId(ref));
    if (!slot?.running) return;
    this.ctx.warn(`shard ${slot.id}: another node opened its writer; stopping it here`);
    // Stop it now; while placement and our claim still say it is ours, take it back after a pause.
    const want = slot.want;
    slot.want = false;
    slot.reason = 'writer fenced';
    this.drive(slot);
    if (want) {
      this.ctx.clock.setTimeout(() => {
        if (this.ctx.status() === 'active') this.reconcile();
      }, this.ctx.leaseTtlS * 1000);
    }
  }

  /** A claim was deleted in etcd: a slot waiting for it may claim the shard now. */
  claimDeleted(kv: IKeyValue): void {
    const ref = parseOwnerKey(this.ctx.keys, text(kv.key));
    if (!ref) return;
    const slot = this.slots.get(slotId(ref));
    if (slot?.want && !slot.running && !slot.claim) this.drive(slot);
  }

  /** The shards running here, with the epoch each was acquired at. */
  running(): ClusterView['running'] {
    return [...this.slots.values()].filter((s) => s.running).map((s) => ({ ...s.ref, epoch: s.epoch }));
  }

  /** The lease is gone, and our claims with it (rejoining with a new lease). */
  forgetClaims(): void {
    for (const slot of this.slots.values()) slot.claim = undefined;
  }

  /** Stops every shard (each commits its batch in flight, then its claim is deleted); resolves when done. */
  async releaseAll(reason: string): Promise<void> {
    for (const slot of this.slots.values()) {
      slot.want = false;
      slot.reason = reason;
      if (slot.retry) this.ctx.clock.clearTimeout(slot.retry);
      slot.retry = undefined;
      this.drive(slot);
    }
    await Promise.allSettled([...this.slots.values()].map((s) => s.driving));
  }

  /** Cancels every pending retry (shutting down). */
  clearRetries(): void {
    for (const slot of this.slots.values()) if (slot.retry) this.ctx.clock.clearTimeout(slot.retry);
  }

  private slot(ref: PartitionRef): Slot {
    const id = slotId(ref);
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
      this.ctx.clock.clearTimeout(slot.retry);
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
            this.ctx.warn(`shard ${slot.id}: ${describeError(e).message}; trying again in ${delay} ms`);
            this.retryLater(slot, delay);
          }
        }
      } while (slot.again);
    })().finally(() => {
      slot.driving = undefined;
    });
  }

  private retryLater(slot: Slot, delay: number): void {
    if (slot.retry) this.ctx.clock.clearTimeout(slot.retry);
    slot.retry = this.ctx.clock.setTimeout(() => {
      slot.retry = undefined;
      if (this.ctx.status() !== 'stopped') this.drive(slot);
    }, delay);
  }

  private async startShard(slot: Slot): Promise<void> {
    if (!slot.claim) {
      const held = await this.claim(slot);
      if (!held) return; // another node still runs it: its claim's deletion drives this slot again
    }
    if (!slot.want) return;
    await this.deps.host().acquire(slot.ref, slot.epoch);
    slot.running = true;
    this.ctx.publish('shard-acquired', { ...slot.ref, epoch: slot.epoch });
    if (!slot.want) slot.again = true;
  }

  private async stopShard(slot: Slot): Promise<void> {
    if (slot.running) {
      await this.deps.host().release(slot.ref, slot.reason);
      slot.running = false;
      this.ctx.publish('shard-released', { ...slot.ref, epoch: slot.epoch, detail: slot.reason });
    }
    if (slot.claim && this.ctx.status() === 'active') await this.unclaim(slot);
    // Fenced or stopping: the claim goes with the lease (or is kept by it, if the lease survives).
    if (this.ctx.status() !== 'active') slot.claim = undefined;
  }

  /** Creates the shard's claim under our lease unless another node holds it. */
  private async claim(slot: Slot): Promise<boolean> {
    const { client, keys } = this.ctx;
    const key = keys.owner(slot.ref.kind, slot.ref.partition);
    const lease = this.deps.lease.leaseId;
    const self = this.ctx.self()!;
    const value = encodeClaim({ node: self.id, epoch: slot.epoch, lease });
    const result = await client
      .if(key, 'Create', '==', 0)
      .then(client.put(key).value(value).lease(lease))
      .else(client.get(key))
      .commit();
    if (result.succeeded) {
      slot.claim = value;
      return true;
    }
    const kv = result.responses[0]?.response_range?.kvs?.[0];
    if (kv) {
      try {
        const held = decodeClaim(key, text(kv.value));
        if (held.node === self.id && String(kv.lease) === lease) {
          slot.claim = text(kv.value); // ours from before a fence that the lease outlived
          return true;
        }
      } catch (e) {
        this.ctx.warn(`${describeError(e).message}; waiting for it to go`);
      }
    }
    // Held by another node (or our previous incarnation): wait for its deletion, and look again now
    // and then in case the deletion was missed while etcd was unreachable.
    this.retryLater(slot, this.ctx.leaseTtlS * 1000);
    return false;
  }

  private async unclaim(slot: Slot): Promise<void> {
    const key = this.ctx.keys.owner(slot.ref.kind, slot.ref.partition);
    await this.ctx.client
      .if(key, 'Value', '==', slot.claim!)
      .then(this.ctx.client.delete().key(key))
      .commit();
    slot.claim = undefined;
  }
}
