/**
 * Consumption of the embedded mailbox: each assigned partition runs its own loop — read a run of records
 * after its position, hand it to `onBatch`, wait for it, move on — so a partition's batches are strictly
 * one at a time and partitions run concurrently. `revoke` ends a loop after its batch in flight.
 *
 * A partition with nothing to read parks until it is woken:
 * - by an append in this process, at once (the mailbox calls `appended` after the commit);
 * - by an append in another process, which only the data shows: one poll timer per consumption (not one
 *   per partition) reads each kind's change counter every `pollMs`, and reads the log ends of that kind's
 *   parked partitions only when the counter moved. An idle node with hundreds of partitions thus does one
 *   small read per kind per tick.
 *
 * A rejected `onBatch` (or a failed read) never skips: the partition pauses `retryMs`, then delivers the
 * same records again (at-least-once).
 */
import type {
  Clock,
  ConsumeOptions,
  Consumption,
  MailboxRecord,
  PartitionRef,
  TimerHandle,
} from '../boundaries.ts';
import { ArgusError } from '../errors.ts';

/** What a consumption reads; implemented by the mailbox over the journal's databases. */
export interface PartitionSource {
  /** Up to `max` consecutive records from offset `from`, never past the log end, read in one snapshot. */
  read(kind: string, partition: number, from: number, max: number): MailboxRecord[];
  /** The log end of a partition, in the current read snapshot. */
  end(kind: string, partition: number): number;
  /** The kind's change counter, in the current read snapshot. */
  changes(kind: string): number;
  /** Moves reads to the latest commit of any process. */
  fresh(): void;
  /** Throws a clear error unless the kind is known and has the partition. */
  checkPartition(kind: string, partition: number): void;
}

export interface ConsumerSettings {
  readonly pollMs: number;
  readonly retryMs: number;
  readonly maxBatch: number;
  readonly clock: Clock;
}

interface PartitionLoop {
  readonly ref: PartitionRef;
  /** Set by revoke: the loop ends after its batch in flight. */
  revoked: boolean;
  /** The offset of the next record to deliver. */
  position: number;
  /** Set while parked: resolves the park. */
  wake: (() => void) | undefined;
  /** Parked since the last poll: the next poll reads its log end even if the change counter did not move. */
  unchecked: boolean;
  done: Promise<void>;
}

export class EmbeddedConsumption implements Consumption {
  private readonly loops = new Map<string, PartitionLoop>();
  private readonly parked = new Set<PartitionLoop>();
  private readonly pauses = new Map<TimerHandle, { loop: PartitionLoop; resume: () => void }>();
  /** Each kind's change counter at the last poll. */
  private readonly seenChanges = new Map<string, number>();
  private pollTimer: TimerHandle | undefined;
  private stopping = false;
  private stopped: Promise<void> | undefined;

  constructor(
    private readonly source: PartitionSource,
    private readonly settings: ConsumerSettings,
    private readonly options: ConsumeOptions,
    private readonly onStopped: (consumption: EmbeddedConsumption) => void,
  ) {}

  assign(ref: PartitionRef, fromOffset: number): void {
    const key = loopKey(ref.kind, ref.partition);
    if (this.stopping) throw new ArgusError('ARGUS_ERR_STORE_CLOSED', 'the consumption is stopped');
    if (!this.options.kinds.includes(ref.kind))
      throw new ArgusError('ARGUS_ERR_UNKNOWN_KIND', `kind '${ref.kind}' is not consumed here`, { ...ref });
    this.source.checkPartition(ref.kind, ref.partition);
    if (this.loops.has(key))
      throw new ArgusError(
        'ARGUS_ERR_INVALID_CONFIG',
        `partition ${ref.kind}/${ref.partition} is already assigned`,
        { ...ref },
      );
    const loop: PartitionLoop = {
      ref: { kind: ref.kind, partition: ref.partition },
      revoked: false,
      position: fromOffset,
      wake: undefined,
      unchecked: false,
      done: Promise.resolve(),
    };
    this.loops.set(key, loop);
    loop.done = this.run(loop);
    // revoke()/stop() collect the outcome; until then a rejection must not count as unhandled.
    loop.done.catch(() => {});
  }

  async revoke(ref: PartitionRef): Promise<void> {
    const key = loopKey(ref.kind, ref.partition);
    const loop = this.loops.get(key);
    if (!loop) return;
    this.loops.delete(key);
    loop.revoked = true;
    this.unpark(loop);
    for (const [timer, p] of this.pauses) {
      if (p.loop !== loop) continue;
      this.settings.clock.clearTimeout(timer);
      this.pauses.delete(timer);
      p.resume();
    }
    await loop.done;
  }

  assigned(): PartitionRef[] {
    return [...this.loops.values()].map((l) => l.ref);
  }

  /** Records were committed to these partitions of `kind` by this process. */
  appended(kind: string, partitions: Iterable<number>): void {
    for (const partition of partitions) {
      const loop = this.loops.get(loopKey(kind, partition));
      if (loop) this.unpark(loop);
    }
  }

  stop(): Promise<void> {
    this.stopped ??= this.shutdown();
    return this.stopped;
  }

  private async shutdown(): Promise<void> {
    this.stopping = true;
    if (this.pollTimer) this.settings.clock.clearTimeout(this.pollTimer);
    this.pollTimer = undefined;
    for (const loop of this.parked) this.unpark(loop);
    for (const [timer, p] of this.pauses) {
      this.settings.clock.clearTimeout(timer);
      p.resume();
    }
    this.pauses.clear();
    const results = await Promise.allSettled([...this.loops.values()].map((loop) => loop.done));
    this.loops.clear();
    this.onStopped(this);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  private async run(loop: PartitionLoop): Promise<void> {
    const { kind, partition } = loop.ref;
    const maxBatch = this.options.maxBatch ?? this.settings.maxBatch;
    while (!this.stopping && !loop.revoked) {
      try {
        const records = this.source.read(kind, partition, loop.position, maxBatch);
        if (records.length === 0) {
          await this.park(loop);
          continue;
        }
        await this.options.onBatch({ kind, partition, records });
        loop.position += records.length;
      } catch {
        // The batch's owner reports its own failure; here it only means "not done": deliver the same
        // records again after a pause, so a failing handler is retried, not spun on.
        await this.pause(loop);
      }
    }
  }

  private park(loop: PartitionLoop): Promise<void> {
    return new Promise((resolve) => {
      loop.wake = resolve;
      loop.unchecked = true;
      this.parked.add(loop);
      this.schedulePoll();
    });
  }

  private unpark(loop: PartitionLoop): void {
    const wake = loop.wake;
    if (!wake) return;
    loop.wake = undefined;
    this.parked.delete(loop);
    wake();
  }

  private pause(loop: PartitionLoop): Promise<void> {
    return new Promise((resolve) => {
      const timer = this.settings.clock.setTimeout(() => {
        this.pauses.delete(timer);
        resolve();
      }, this.settings.retryMs);
      this.pauses.set(timer, { loop, resume: resolve });
    });
  }

  private schedulePoll(): void {
    if (this.pollTimer || this.stopping) return;
    this.pollTimer = this.settings.clock.setTimeout(() => this.poll(), this.settings.pollMs);
  }

  /** Wakes parked partitions whose log grew, by another process's appends or ours. */
  private poll(): void {
    this.pollTimer = undefined;
    if (this.stopping || this.parked.size === 0) return;
    try {
      // One fresh snapshot for the whole tick: a counter read here and an end read here agree, so an
      // append after this snapshot moves the counter past what we remember and is seen next tick.
      this.source.fresh();
      const moved = new Map<string, boolean>();
      for (const loop of this.parked) {
        const { kind, partition } = loop.ref;
        let kindMoved = moved.get(kind);
        if (kindMoved === undefined) {
          const changes = this.source.changes(kind);
          kindMoved = changes !== this.seenChanges.get(kind);
          this.seenChanges.set(kind, changes);
          moved.set(kind, kindMoved);
        }
        if (!kindMoved && !loop.unchecked) continue;
        loop.unchecked = false;
        if (this.source.end(kind, partition) > loop.position) this.unpark(loop);
      }
    } catch {
      // The journal is closing or a read failed: check every parked partition again next tick.
      for (const loop of this.parked) loop.unchecked = true;
    }
    if (this.parked.size > 0) this.schedulePoll();
  }
}

const loopKey = (kind: string, partition: number): string => `${kind}\0${partition}`;
