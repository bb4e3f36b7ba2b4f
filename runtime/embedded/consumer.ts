/**
 * Consumption of the embedded mailbox: the node owns every partition (unless `owns` says otherwise), and
 * each owned partition runs its own loop — read a run of records after its position, hand it to
 * `onBatch`, wait for it, move on — so a partition's batches are strictly one at a time and partitions
 * run concurrently.
 *
 * A partition with nothing to read parks until it is woken:
 * - by an append in this process, at once (the mailbox calls `appended` after the commit);
 * - by an append in another process, which only the data shows: one poll timer per consumption (not one
 *   per partition) reads each kind's change counter every `pollMs`, and reads the log ends of that kind's
 *   parked partitions only when the counter moved. An idle node with hundreds of partitions thus does one
 *   small read per kind per tick.
 *
 * A rejected `onBatch` (or a failed read) never skips: the partition pauses `retryMs`, then starts again
 * from its committed offset, which re-delivers whatever was not committed (at-least-once).
 */
import type {
  Clock,
  ConsumeOptions,
  Consumption,
  MailboxRecord,
  PartitionRef,
  TimerHandle,
} from '../boundaries.ts';

/** What a consumption reads; implemented by the mailbox over the journal's databases. */
export interface PartitionSource {
  /** Up to `max` consecutive records from offset `from`, never past the log end, read in one snapshot. */
  read(kind: string, partition: number, from: number, max: number): MailboxRecord[];
  /** The log end of a partition, in the current read snapshot. */
  end(kind: string, partition: number): number;
  /** The committed next offset, as of now (any process). */
  committedNow(kind: string, partition: number): number;
  /** The kind's change counter, in the current read snapshot. */
  changes(kind: string): number;
  /** Moves reads to the latest commit of any process. */
  fresh(): void;
}

export interface ConsumerSettings {
  readonly pollMs: number;
  readonly retryMs: number;
  readonly maxBatch: number;
  readonly clock: Clock;
}

interface PartitionLoop {
  readonly ref: PartitionRef;
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
  private readonly pauses = new Map<TimerHandle, () => void>();
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

  /** Starts one loop per owned partition of the given kinds and their partition counts. */
  start(partitionCounts: ReadonlyMap<string, number>): void {
    for (const [kind, count] of partitionCounts) {
      for (let partition = 0; partition < count; partition++) {
        const ref: PartitionRef = { kind, partition };
        if (this.options.owns && !this.options.owns(ref)) continue;
        const loop: PartitionLoop = {
          ref,
          position: 0,
          wake: undefined,
          unchecked: false,
          done: Promise.resolve(),
        };
        this.loops.set(loopKey(kind, partition), loop);
        loop.done = this.run(loop);
        // stop() collects the outcome; until then a rejection must not count as unhandled.
        loop.done.catch(() => {});
      }
    }
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
    for (const [timer, resume] of this.pauses) {
      this.settings.clock.clearTimeout(timer);
      resume();
    }
    this.pauses.clear();
    const results = await Promise.allSettled([...this.loops.values()].map((loop) => loop.done));
    this.onStopped(this);
    const failed = results.find((r): r is PromiseRejectedResult => r.status === 'rejected');
    if (failed) throw failed.reason;
  }

  private async run(loop: PartitionLoop): Promise<void> {
    if (!(await this.assign(loop))) return;
    const { kind, partition } = loop.ref;
    const maxBatch = this.options.maxBatch ?? this.settings.maxBatch;
    try {
      while (!this.stopping) {
        try {
          const records = this.source.read(kind, partition, loop.position, maxBatch);
          if (records.length === 0) {
            await this.park(loop);
            continue;
          }
          await this.options.onBatch({ kind, partition, records });
          loop.position += records.length;
        } catch {
          // The batch's owner reports its own failure; here it only means "not done": go back to the
          // last commit after a pause, so a failing handler is retried, not spun on.
          await this.pause();
          if (this.stopping) break;
          loop.position = this.committedOr(loop);
        }
      }
    } finally {
      await this.options.onRevoked(loop.ref);
    }
  }

  /** Calls onAssigned until it succeeds (pausing between tries); false if stopped first. */
  private async assign(loop: PartitionLoop): Promise<boolean> {
    while (!this.stopping) {
      try {
        loop.position = this.source.committedNow(loop.ref.kind, loop.ref.partition);
        await this.options.onAssigned(loop.ref, loop.position);
        return true;
      } catch {
        await this.pause();
      }
    }
    return false;
  }

  private committedOr(loop: PartitionLoop): number {
    try {
      return this.source.committedNow(loop.ref.kind, loop.ref.partition);
    } catch {
      return loop.position; // still the failed batch's start: it is delivered again, nothing skipped
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

  private pause(): Promise<void> {
    return new Promise((resolve) => {
      const timer = this.settings.clock.setTimeout(() => {
        this.pauses.delete(timer);
        resolve();
      }, this.settings.retryMs);
      this.pauses.set(timer, resolve);
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
