/**
 * A shard runner: the message loop of one (kind, partition) this node owns.
 *
 * For each batch the transport hands it: decode the records (what cannot be decoded or parsed is
 * dead-lettered with a reason), group them by entity key, deliver each group to its entity (activated
 * under the shard's supervisor from its snapshot), then hand the new snapshots, the dead letters and the
 * offset past the batch to the shard's checkpointer (checkpointer.ts), which writes them — grouped with
 * later batches while a write is in flight — as one checkpoint through the shard's fenced writer
 * (DESIGN.md, contracts 1 and 4): all durable together, and refused if another node has opened the
 * shard's writer since.
 *
 * A record that crashes its entity is retried on the restarted entity (which starts again from its
 * snapshot, so the whole group is delivered again; records it already applied are skipped by offset).
 * After `maxAttempts` crashes in a row on the same record it is dead-lettered and skipped. Anything
 * else that goes wrong (an entity that does not answer, the shard supervisor giving up) rejects the
 * batch: the transport delivers it again from the committed offset.
 */
import { pack, unpack } from 'msgpackr';
import { type SupervisorFlags, supervisor, worker } from '../supervisors/spec.ts';
import type { ChildObserver, Supervisor } from '../supervisors/supervisor.ts';
import { type ActorRef, tell } from './actor.ts';
import type {
  Clock,
  DeadLetter,
  MailboxBatch,
  OutputRecord,
  ShardSnapshots,
  ShardWriter,
  Snapshot,
  SnapshotStore,
  TimerHandle,
} from './boundaries.ts';
import { ShardCheckpointer } from './checkpointer.ts';
import {
  AdminRestart,
  type AnyEntityDefinition,
  Deliver,
  type DeliverResult,
  defaultParse,
  type EntityCell,
  type EntityItem,
  entityActor,
  ReadState,
} from './entity.ts';
import {
  decodeEnvelope,
  encodeEnvelope,
  isEntityKey,
  MAX_KEY_LENGTH,
  newMessageId,
  shardOf,
} from './envelope.ts';
import { ArgusError, describeError } from './errors.ts';
import type { EventBus } from './events.ts';
import type { ShardEntities } from './registry.ts';

export interface ShardSettings {
  /** Crashes in a row on one record before it is dead-lettered. */
  readonly maxAttempts: number;
  /** How long an entity may take over one delivery before the batch is failed and retried. */
  readonly deliveryTimeoutMs: number;
  /** Idle time before an entity is passivated; 0 keeps entities active. */
  readonly idleMs: number;
  /** Restart policy of the shard's supervisor over its entities. */
  readonly supervision: Pick<SupervisorFlags, 'intensity' | 'periodMs' | 'backoff'>;
  /** Pause before a failed checkpoint is tried again. */
  readonly checkpointRetryMs: number;
  /** Records processed and not checkpointed yet above which a batch waits for the checkpoint in flight. */
  readonly maxPendingRecords: number;
}

export interface ShardDeps {
  /** Where the shard's snapshots are loaded from. */
  readonly snapshots: SnapshotStore;
  /** The shard's fenced writer: snapshots, dead letters and the offset, durable together. */
  readonly writer: ShardWriter;
  /** Opens a fresh writer after a failed write (only while the shard is still held here). */
  readonly reopenWriter: () => Promise<ShardWriter>;
  /** A checkpoint landed (`ok`), or failed with `error` (ARGUS_ERR_FENCED: the shard is someone else's). */
  readonly checkpointed: (ok: boolean, error?: unknown) => void;
  /** What the inspector knows of this shard's entities (registry.ts); fed with each applied delivery. */
  readonly entities?: ShardEntities;
  /** This node, and the placement epoch the shard was acquired at (on batch events). */
  readonly nodeId: string;
  readonly epoch: number;
  readonly events: EventBus;
  readonly clock: Clock;
  /** The node's `shards` supervisor (its current incarnation): each shard supervisor is its child. */
  readonly shards: () => Supervisor;
  /** Output records that just became durable (in emission order), for the runtime's output observers. */
  readonly outputsLanded?: (records: readonly OutputRecord[]) => void;
  /** The kinds entities here may `ctx.send` to (the runtime's registry), with their shard counts. */
  readonly targets?: ReadonlyMap<
    string,
    { readonly definition: AnyEntityDefinition; readonly shards: number }
  >;
}

type DeliverOutputs = Extract<DeliverResult, { ok: true }>['outputs'];

interface Group {
  readonly key: string;
  items: EntityItem[];
  /** Highest offset of this key in the batch, dead-lettered records included. */
  last: number;
}

interface Waiter {
  resolve(): void;
  reject(error: Error): void;
}

export class ShardRunner implements ChildObserver {
  readonly id: string;
  private view: ShardSnapshots | undefined;
  private readonly actor;
  /** Crashes so far per record offset, for the records of the batch in flight. */
  private readonly attempts = new Map<number, number>();
  /** Entities waiting to be (re)started, by key. */
  private readonly waiters = new Map<string, Waiter[]>();
  private readonly lastActive = new Map<string, number>();
  private readonly busy = new Set<string>();
  /** Fails the delivery in flight to an entity when it is stopped under it. */
  private readonly inflight = new Map<string, () => void>();
  private sweepTimer: TimerHandle | undefined;
  private closed = false;
  private readonly checkpointer: ShardCheckpointer;

  constructor(
    readonly definition: AnyEntityDefinition,
    readonly partition: number,
    readonly partitions: number,
    private readonly settings: ShardSettings,
    private readonly deps: ShardDeps,
  ) {
    this.id = `${definition.kind}-${partition}`;
    this.actor = entityActor(
      definition,
      (key) => this.startState(key),
      deps.clock,
      (kind, key, message) => this.checkSend(kind, key, message),
    );
    this.checkpointer = new ShardCheckpointer(deps.writer, {
      clock: deps.clock,
      reopen: deps.reopenWriter,
      retryMs: settings.checkpointRetryMs,
      maxPendingRecords: settings.maxPendingRecords,
      landed: (c) => {
        for (const d of c.deadLetters) this.publishDeadLetter(d);
        if (c.outputs.length > 0) this.deps.outputsLanded?.(c.outputs);
        this.deps.checkpointed(true);
        if (!this.deps.events.listening) return;
        this.deps.events.publish({
          type: '@argus.batch',
          node: this.deps.nodeId,
          kind: this.definition.kind,
          partition: this.partition,
          epoch: this.deps.epoch,
          firstOffset: c.firstOffset,
          lastOffset: c.lastOffset,
          records: c.records,
          startedAt: c.startedAt,
          checkpointAt: c.checkpointAt,
          committedAt: this.deps.clock.now(),
        });
      },
      failed: (e) => this.deps.checkpointed(false, e),
    });
  }

  /** The next offset after the last checkpoint that landed (-1 until the first). */
  get committedOffset(): number {
    return this.checkpointer.committedOffset;
  }

  set committedOffset(offset: number) {
    this.checkpointer.committedOffset = offset;
  }

  async open(): Promise<void> {
    this.view = await this.deps.snapshots.openShard(this.definition.kind, this.partition);
    await this.ensureSupervisor();
    this.scheduleSweep();
  }

  /**
   * Starts the shard's supervisor under `shards` if it is not there: at open, and again after `shards`
   * itself was restarted (its children are then gone). While it restarts with backoff, this throws and
   * the batch is retried.
   */
  private async ensureSupervisor(): Promise<Supervisor> {
    const shards = this.deps.shards();
    const current = shards.childSupervisor(this.id);
    if (current) return current;
    if (shards.childStatus(this.id) !== undefined)
      throw new ArgusError('ARGUS_ERR_SUPERVISOR_STOPPED', `shard ${this.id} is restarting`);
    const flags = { strategy: 'one_for_one' as const, ...this.settings.supervision };
    await shards.startChild(supervisor(this.id, flags, [], { observer: this, restart: 'transient' }));
    return shards.childSupervisor(this.id)!;
  }

  /**
   * Hands the shard off: writes what is not checkpointed yet (waiting at most `flushTimeoutMs`; what does
   * not land is redone by the next owner), stops every entity gracefully, closes the writer.
   */
  async close(flushTimeoutMs = this.settings.deliveryTimeoutMs): Promise<void> {
    this.closed = true;
    if (this.sweepTimer) this.deps.clock.clearTimeout(this.sweepTimer);
    await this.checkpointer.flush(flushTimeoutMs).catch((e) => this.deps.checkpointed(false, e));
    await this.deps
      .shards()
      .terminateChild(this.id)
      .catch(() => false);
    for (const [key, list] of this.waiters) {
      this.waiters.delete(key);
      for (const w of list) w.reject(new Error(`shard ${this.id} closed`));
    }
    await this.checkpointer.close();
  }

  /** Entities currently active in this shard. */
  get activeCount(): number {
    try {
      return this.deps.shards().childSupervisor(this.id)?.size ?? 0;
    } catch {
      return 0;
    }
  }

  async process(batch: MailboxBatch): Promise<void> {
    const { records } = batch;
    if (records.length === 0) return;
    if (this.closed) throw new ArgusError('ARGUS_ERR_SUPERVISOR_STOPPED', `shard ${this.id} is closed`);
    if (this.checkpointer.isFenced)
      throw new ArgusError('ARGUS_ERR_FENCED', `shard ${this.id} was fenced: another node writes it now`);
    await this.ensureSupervisor();
    const now = this.deps.clock.now();
    const startedAt = now;
    const dead: DeadLetter[] = [];
    const groups = new Map<string, Group>();
    const parse = this.definition.parse ?? defaultParse;
    for (const record of records) {
      const decoded = decodeEnvelope(record.value);
      let reason: string | undefined;
      let error = '';
      let key = record.key;
      let item: EntityItem | undefined;
      if (!decoded.ok) {
        reason = decoded.reason;
        error = decoded.error;
      } else {
        const e = decoded.envelope;
        key = e.key;
        if (e.kind !== this.definition.kind) {
          reason = 'wrong-kind';
          error = `envelope kind '${e.kind}' read from the mailbox of kind '${this.definition.kind}'`;
        } else if (!isEntityKey(e.key)) {
          reason = 'invalid-key';
          error = `key ${JSON.stringify(e.key.slice(0, 80))} cannot name an entity: 1-${MAX_KEY_LENGTH} characters without control characters`;
        } else if (shardOf(e.key, this.partitions) !== this.partition) {
          reason = 'wrong-shard';
          error = `key '${e.key}' belongs to shard ${shardOf(e.key, this.partitions)}, read from shard ${this.partition}`;
        } else {
          try {
            item = { offset: record.offset, id: e.id, message: parse(e.payload) };
          } catch (err) {
            reason = 'invalid-message';
            error = describeError(err).message;
          }
        }
      }
      if (item && key !== undefined) {
        let g = groups.get(key);
        if (!g) {
          g = { key, items: [], last: record.offset };
          groups.set(key, g);
        }
        g.items.push(item);
        g.last = record.offset;
      } else {
        dead.push(this.letter(record.offset, key, reason ?? 'malformed', error, 0, record.value, now));
      }
    }

    const results = await Promise.all([...groups.values()].map((g) => this.deliverGroup(g, records, dead)));
    const snapshots: Snapshot[] = [];
    const outputs: OutputRecord[] = [];
    for (const r of results) {
      if (!r) continue;
      snapshots.push({ key: r.key, partition: this.partition, offset: r.offset, state: pack(r.state) });
      for (const o of r.outputs)
        outputs.push(
          o.mailbox
            ? {
                stream: o.stream,
                partition: o.partition ?? 0,
                key: o.key,
                value: this.envelopeOf(o, now),
                mailbox: true,
              }
            : {
                stream: o.stream,
                partition: this.partition,
                key: o.key,
                value: pack(o.value),
                decoded: o.value,
              },
        );
    }
    for (const r of records) this.attempts.delete(r.offset);
    // The checkpoint goes on in the background (checkpointer.ts); the next batch need not wait for it.
    await this.checkpointer.add({
      snapshots,
      deadLetters: dead,
      outputs,
      firstOffset: records[0]!.offset,
      nextOffset: records[records.length - 1]!.offset + 1,
      records: records.length,
      startedAt,
    });
  }

  /** Delivers one key's records until they are all applied or dead-lettered. */
  private async deliverGroup(
    group: Group,
    records: MailboxBatch['records'],
    dead: DeadLetter[],
  ): Promise<{ key: string; state: unknown; offset: number; outputs: DeliverOutputs } | undefined> {
    const { key } = group;
    this.busy.add(key);
    try {
      for (;;) {
        if (group.items.length === 0) return undefined;
        const ref = await this.activate(key);
        const result = await this.deliver(key, ref, group.items);
        this.lastActive.set(key, this.deps.clock.monotonic());
        if (result.ok) {
          this.deps.entities?.processed(key, group.items.length);
          return {
            key,
            state: result.state,
            offset: Math.max(result.offset, group.last),
            outputs: result.outputs,
          };
        }
        if (result.index < 0) continue;
        const failed = group.items[result.index]!;
        const attempts = (this.attempts.get(failed.offset) ?? 0) + 1;
        this.attempts.set(failed.offset, attempts);
        if (attempts >= this.settings.maxAttempts) {
          const raw = records.find((r) => r.offset === failed.offset)!.value;
          dead.push(
            this.letter(
              failed.offset,
              key,
              'crashed',
              describeError(result.error).message,
              attempts,
              raw,
              this.deps.clock.now(),
            ),
          );
          group.items = group.items.filter((i) => i !== failed);
        }
      }
    } finally {
      this.busy.delete(key);
    }
  }

  /**
   * Sends a Deliver and waits for the reply. On a crash the entity replies before its supervisor hears
   * of it, so the wait for the restart is registered here, synchronously, before any restart can happen.
   * An entity stopped under the delivery (passivation racing a new batch) answers `index: -1`: deliver
   * again to a fresh activation, without counting an attempt.
   */
  private deliver(key: string, ref: ActorRef<unknown>, items: readonly EntityItem[]): Promise<DeliverResult> {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.inflight.delete(key);
        reject(
          new ArgusError(
            'ARGUS_ERR_TIMEOUT',
            `entity ${this.definition.kind}/${key} did not answer within ${this.settings.deliveryTimeoutMs} ms`,
          ),
        );
      }, this.settings.deliveryTimeoutMs);
      this.inflight.set(key, () => {
        clearTimeout(timer);
        resolve({ ok: false, index: -1, error: new Error('stopped during delivery') });
      });
      tell(
        ref,
        new Deliver(items, (result) => {
          clearTimeout(timer);
          this.inflight.delete(key);
          if (result.ok) resolve(result);
          else this.nextChange(key).then(() => resolve(result), reject);
        }),
      );
    });
  }

  /** The ref of the entity: started if absent, waited for while it restarts or stops. */
  private async activate(key: string): Promise<ActorRef<unknown>> {
    for (;;) {
      const sup = this.supervisor();
      const ref = sup.childRef(key);
      if (ref) return ref;
      if (sup.childStatus(key) === undefined) {
        return sup.startChild(
          worker(key, this.actor, { restart: 'transient', shutdownMs: this.settings.deliveryTimeoutMs }),
        );
      }
      await this.nextChange(key);
    }
  }

  private supervisor(): Supervisor {
    const sup = this.deps.shards().childSupervisor(this.id);
    if (!sup || this.closed)
      throw new ArgusError('ARGUS_ERR_SUPERVISOR_STOPPED', `shard ${this.id} is not running`);
    return sup;
  }

  /** Resolves at the next start or end of the entity (callers then look at its status again). */
  private nextChange(key: string): Promise<void> {
    return new Promise((resolve, reject) => {
      const list = this.waiters.get(key) ?? [];
      list.push({ resolve, reject });
      this.waiters.set(key, list);
    });
  }

  private wake(key: string): void {
    const list = this.waiters.get(key);
    if (!list) return;
    this.waiters.delete(key);
    for (const w of list) w.resolve();
  }

  // ChildObserver: the shard supervisor tells of its entities' starts and ends.
  started(id: string): void {
    this.wake(id);
  }

  ended(id: string, crashed: boolean, restarting: boolean): void {
    if (!restarting) {
      this.lastActive.delete(id);
      if (!crashed) this.inflight.get(id)?.();
      this.inflight.delete(id);
    }
    this.wake(id);
  }

  /** Validates a `ctx.send` like `runtime.send` does, and answers the target's shard. */
  private checkSend(kind: string, key: string, message: { readonly type: string }): number {
    const target = this.deps.targets?.get(kind);
    if (!target)
      throw new ArgusError('ARGUS_ERR_UNKNOWN_KIND', `no entity kind '${kind}' is registered to send to`, {
        kind,
      });
    if (!isEntityKey(key))
      throw new ArgusError(
        'ARGUS_ERR_INVALID_KEY',
        `entity key must be a string of 1-${MAX_KEY_LENGTH} characters without control characters`,
        { kind, key },
      );
    try {
      (target.definition.parse ?? defaultParse)(message);
    } catch (e) {
      throw new ArgusError(
        'ARGUS_ERR_INVALID_MESSAGE',
        `message for ${kind}/${key}: ${describeError(e).message}`,
        {
          kind,
          key,
        },
      );
    }
    return shardOf(key, target.shards);
  }

  private envelopeOf(o: { stream: string; key: string; value: unknown }, now: number): Uint8Array {
    const message = o.value as { type: string };
    return encodeEnvelope({
      id: newMessageId(now),
      kind: o.stream,
      key: o.key,
      type: message.type,
      timestamp: now,
      payload: message,
    });
  }

  /** The state an entity starts from: its snapshot, or the definition's initial state. */
  private startState(key: string): EntityCell {
    const snap = this.checkpointer.pendingState(key) ?? this.view?.get(key);
    if (!snap) return { state: this.definition.initialState(key), offset: -1 };
    return { state: unpack(snap.state), offset: snap.offset };
  }

  /**
   * Restarts an active entity as a crash would (the inspector's admin action) and resolves once it runs
   * again. ARGUS_ERR_NOT_ACTIVE when it is not active here.
   */
  async restartEntity(key: string, by: string, timeoutMs = this.settings.deliveryTimeoutMs): Promise<void> {
    const ref = this.supervisor().childRef(key);
    if (!ref)
      throw new ArgusError('ARGUS_ERR_NOT_ACTIVE', `entity ${this.definition.kind}/${key} is not active`, {
        kind: this.definition.kind,
        key,
      });
    const deadline = this.deps.clock.monotonic() + timeoutMs;
    const ended = this.nextChange(key);
    tell(ref, new AdminRestart(by));
    await ended;
    // It crashed: wait for its supervisor to start it again (after the backoff).
    while (this.supervisor().childRef(key) === undefined) {
      if (this.supervisor().childStatus(key) === undefined) return;
      if (this.deps.clock.monotonic() > deadline)
        throw new ArgusError(
          'ARGUS_ERR_TIMEOUT',
          `entity ${this.definition.kind}/${key} did not restart within ${timeoutMs} ms`,
        );
      await Promise.race([this.nextChange(key), new Promise((r) => setTimeout(r, 50))]);
    }
  }

  /** Passivates an active entity (the inspector's stop); its next message activates it again. */
  async stopEntity(key: string): Promise<void> {
    const sup = this.supervisor();
    if (!sup.childRef(key))
      throw new ArgusError('ARGUS_ERR_NOT_ACTIVE', `entity ${this.definition.kind}/${key} is not active`, {
        kind: this.definition.kind,
        key,
      });
    this.lastActive.delete(key);
    await sup.terminateChild(key, 'passivated');
  }

  /** Whether the entity is active (running) right now. */
  isActive(key: string): boolean {
    try {
      return this.supervisor().childRef(key) !== undefined;
    } catch {
      return false;
    }
  }

  /**
   * Current state of an entity: asked of it when active, else (or when it is between incarnations,
   * or does not answer within `timeoutMs`) read from its snapshot.
   */
  async read(key: string, timeoutMs = 5_000): Promise<{ state: unknown; offset: number; active: boolean }> {
    const ref = this.deps.shards().childSupervisor(this.id)?.childRef(key);
    if (ref) {
      const live = await new Promise<{ state: unknown; offset: number } | undefined>((resolve) => {
        const timer = setTimeout(() => resolve(undefined), timeoutMs);
        const done = (v: { state: unknown; offset: number } | undefined) => {
          clearTimeout(timer);
          resolve(v);
        };
        tell(
          ref,
          new ReadState(
            (state, offset) => done({ state, offset }),
            () => done(undefined),
          ),
        );
      });
      if (live) return { ...live, active: true };
    }
    const snap =
      this.checkpointer.pendingState(key) ??
      (await this.deps.snapshots.openShard(this.definition.kind, this.partition)).get(key);
    if (!snap) return { state: this.definition.initialState(key), offset: -1, active: false };
    return { state: unpack(snap.state), offset: snap.offset, active: false };
  }

  private scheduleSweep(): void {
    const idle = this.definition.passivateAfterMs ?? this.settings.idleMs;
    if (idle <= 0 || this.closed) return;
    this.sweepTimer = this.deps.clock.setTimeout(
      () => {
        void this.passivateIdle(idle).finally(() => this.scheduleSweep());
      },
      Math.max(50, Math.floor(idle / 2)),
    );
  }

  private async passivateIdle(idleMs: number): Promise<void> {
    const sup = this.deps.shards().childSupervisor(this.id);
    if (!sup) return;
    const now = this.deps.clock.monotonic();
    const idle: string[] = [];
    for (const [key, at] of this.lastActive) if (now - at >= idleMs && !this.busy.has(key)) idle.push(key);
    for (const key of idle) {
      this.lastActive.delete(key);
      await sup.terminateChild(key, 'passivated');
    }
  }

  private letter(
    offset: number,
    key: string | undefined,
    reason: string,
    error: string,
    attempts: number,
    value: Uint8Array,
    at: number,
  ): DeadLetter {
    return {
      kind: this.definition.kind,
      partition: this.partition,
      offset,
      key,
      reason,
      error,
      attempts,
      at,
      value,
    };
  }

  private publishDeadLetter(d: DeadLetter): void {
    if (!this.deps.events.listening) return;
    const { kind, key, partition, offset, reason, error, attempts, at } = d;
    this.deps.events.publish({
      type: '@argus.deadletter',
      kind,
      key,
      partition,
      offset,
      reason,
      error,
      attempts,
      at,
    });
  }
}
