/**
 * A shard's checkpoints, pipelined with its processing (what Kafka Streams does with its commit
 * interval, here driven by the writer's own pace).
 *
 * After each batch the shard hands over what it produced — the packed states of the entities it
 * touched, its dead letters, the offset past the batch — and goes on with the next batch at once. One
 * checkpoint is in flight at a time; whatever piles up meanwhile goes into the next one (group commit).
 * So a batch waits for its entities, not for a Kafka transaction, and one transaction covers many
 * batches under load.
 *
 * Nothing is lost by not waiting:
 * - an entity that crashes restarts from its latest *pending* state (`pendingState`), which includes
 *   the batches not checkpointed yet, not from its last durable snapshot;
 * - a failed write keeps everything pending and is tried again (after reopening the writer: a Kafka
 *   transaction whose outcome is unknown leaves the producer unusable), so the next checkpoint covers it;
 * - a node that dies loses only work that was never committed, and its shard's next owner redoes it
 *   from the last checkpoint (delivery is at-least-once; entities skip records by offset);
 * - a fenced write means the shard belongs to someone else now: everything pending is dropped, and the
 *   owner is told.
 * A handoff flushes (waits for the pipeline to drain) before the writer is closed.
 */
import type { Clock, DeadLetter, OutputRecord, ShardWriter, Snapshot, TimerHandle } from './boundaries.ts';
import { ArgusError, describeError, isArgusError } from './errors.ts';

export interface CheckpointerDeps {
  readonly clock: Clock;
  /** Opens a fresh writer after a failed write (fencing the old one) — only while the shard is still held. */
  readonly reopen: () => Promise<ShardWriter>;
  /** A checkpoint landed: its range, when its first batch started and when it was sent, its dead letters. */
  readonly landed: (c: Landed) => void;
  /** A write failed (the error is ARGUS_ERR_FENCED when another node has the shard now). */
  readonly failed: (error: unknown) => void;
  /** Pause before a failed checkpoint is tried again. */
  readonly retryMs: number;
  /** Pending records above which `add` waits for the checkpoint in flight (backpressure). */
  readonly maxPendingRecords: number;
}

export interface Landed {
  readonly firstOffset: number;
  readonly lastOffset: number;
  readonly records: number;
  readonly startedAt: number;
  readonly checkpointAt: number;
  readonly deadLetters: readonly DeadLetter[];
  readonly outputs: readonly OutputRecord[];
}

export interface BatchOutcome {
  readonly snapshots: readonly Snapshot[];
  readonly deadLetters: readonly DeadLetter[];
  /** Records emitted by the batch's entities, in order. */
  readonly outputs?: readonly OutputRecord[];
  readonly firstOffset: number;
  readonly nextOffset: number;
  readonly records: number;
  readonly startedAt: number;
}

export class ShardCheckpointer {
  private readonly pending = new Map<string, Snapshot>();
  /** The states of the checkpoint in flight: not pending any more, not in the durable view yet. */
  private sending = new Map<string, Snapshot>();
  private pendingDead: DeadLetter[] = [];
  private pendingOutputs: OutputRecord[] = [];
  private pendingFirst = -1;
  private pendingNext = -1;
  private pendingRecords = 0;
  private pendingStartedAt = 0;
  private inFlight: Promise<void> | undefined;
  private retryTimer: TimerHandle | undefined;
  private writerBroken = false;
  private fenced: unknown;
  /** The next offset after the last checkpoint that landed (-1 until the first). */
  committedOffset = -1;

  constructor(
    private writer: ShardWriter,
    private readonly deps: CheckpointerDeps,
  ) {}

  /** The latest state of an entity not checkpointed yet, if any. */
  pendingState(key: string): Snapshot | undefined {
    return this.pending.get(key) ?? this.sending.get(key);
  }

  /** Whether a write of this shard was fenced: nothing more will be written. */
  get isFenced(): boolean {
    return this.fenced !== undefined;
  }

  /** Takes a processed batch's outcome; starts a checkpoint unless one is in flight. */
  async add(outcome: BatchOutcome): Promise<void> {
    if (this.fenced !== undefined) throw this.fenced;
    for (const s of outcome.snapshots) this.pending.set(s.key, s);
    this.pendingDead.push(...outcome.deadLetters);
    if (outcome.outputs) for (const o of outcome.outputs) this.pendingOutputs.push(o);
    if (this.pendingFirst < 0) {
      this.pendingFirst = outcome.firstOffset;
      this.pendingStartedAt = outcome.startedAt;
    }
    this.pendingNext = Math.max(this.pendingNext, outcome.nextOffset);
    this.pendingRecords += outcome.records;
    this.kick();
    if (this.pendingRecords > this.deps.maxPendingRecords && this.inFlight) await this.inFlight;
  }

  /** Starts the next checkpoint if there is something to write and nothing in flight. */
  private kick(): void {
    if (this.inFlight || this.retryTimer || this.pendingNext < 0 || this.fenced !== undefined) return;
    const done = this.writeNext().finally(() => {
      this.inFlight = undefined;
      this.kick();
    });
    this.inFlight = done;
  }

  private async writeNext(): Promise<void> {
    const snapshots = [...this.pending.values()];
    this.sending = new Map(this.pending);
    const deadLetters = this.pendingDead;
    const outputs = this.pendingOutputs;
    const taken = {
      first: this.pendingFirst,
      next: this.pendingNext,
      records: this.pendingRecords,
      startedAt: this.pendingStartedAt,
    };
    this.pending.clear();
    this.pendingDead = [];
    this.pendingOutputs = [];
    this.pendingFirst = -1;
    this.pendingNext = -1;
    this.pendingRecords = 0;
    const checkpointAt = this.deps.clock.now();
    try {
      if (this.writerBroken) {
        const old = this.writer;
        this.writer = await this.deps.reopen();
        this.writerBroken = false;
        await old.close().catch(() => undefined);
      }
      await this.writer.write({ snapshots, deadLetters, outputs, nextOffset: taken.next });
    } catch (e) {
      if (isArgusError(e, 'ARGUS_ERR_FENCED')) {
        this.fenced = e;
        this.pending.clear();
        this.pendingDead = [];
        this.pendingOutputs = [];
        this.pendingNext = -1;
      } else {
        // Keep it for the next try; what was added meanwhile is newer and wins.
        for (const s of snapshots) if (!this.pending.has(s.key)) this.pending.set(s.key, s);
        this.pendingDead = [...deadLetters, ...this.pendingDead];
        this.pendingOutputs = [...outputs, ...this.pendingOutputs];
        this.pendingFirst = taken.first;
        this.pendingStartedAt = taken.startedAt;
        this.pendingNext = Math.max(this.pendingNext, taken.next);
        this.pendingRecords += taken.records;
        this.writerBroken = true;
        this.retryTimer = this.deps.clock.setTimeout(() => {
          this.retryTimer = undefined;
          this.kick();
        }, this.deps.retryMs);
      }
      this.sending = new Map();
      this.deps.failed(e);
      return;
    }
    // Landed: the snapshot store's view has them now.
    this.sending = new Map();
    this.committedOffset = taken.next;
    this.deps.landed({
      firstOffset: taken.first,
      lastOffset: taken.next - 1,
      records: taken.records,
      startedAt: taken.startedAt,
      checkpointAt,
      deadLetters,
      outputs,
    });
  }

  /**
   * Writes everything pending and waits for it to land (a handoff commits before it lets go). Gives up
   * after `timeoutMs`: what did not land is redone by the shard's next owner from the last checkpoint.
   */
  async flush(timeoutMs: number): Promise<void> {
    const deadline = this.deps.clock.monotonic() + timeoutMs;
    while (this.fenced === undefined && (this.inFlight || this.pendingNext >= 0)) {
      if (this.deps.clock.monotonic() >= deadline)
        throw new ArgusError('ARGUS_ERR_TIMEOUT', `the last checkpoint did not land within ${timeoutMs} ms`);
      if (this.retryTimer) {
        this.deps.clock.clearTimeout(this.retryTimer);
        this.retryTimer = undefined;
      }
      this.kick();
      await this.inFlight?.catch(() => undefined);
      if (this.retryTimer)
        await sleep(this.deps.clock, Math.min(this.deps.retryMs, deadline - this.deps.clock.monotonic()));
    }
  }

  /** Stops retrying and closes the writer (after `flush`, or to give up). */
  async close(): Promise<void> {
    if (this.retryTimer) this.deps.clock.clearTimeout(this.retryTimer);
    this.retryTimer = undefined;
    await this.inFlight?.catch(() => undefined);
    await this.writer.close().catch((e) => this.deps.failed(new Error(describeError(e).message)));
  }
}

const sleep = (clock: Clock, ms: number): Promise<void> =>
  new Promise((resolve) => {
    clock.setTimeout(resolve, Math.max(0, ms));
  });
