/**
 * The in-process event bus: the one place lifecycle, dead-letter and (later) alert events go through.
 * Publishing costs one length check when nobody listens (XState's inspection, STYLE.md).
 */

export type LifecyclePhase = 'started' | 'crashed' | 'restarted' | 'escalated' | 'stopped' | 'passivated';

export interface LifecycleEvent {
  readonly type: '@argus.lifecycle';
  readonly phase: LifecyclePhase;
  /** The actor's path in the supervisor tree, e.g. `node/shards/counter-3/c-17`. */
  readonly path: string;
  readonly at: number;
  /** The error text, on crashed and escalated. */
  readonly error?: string;
  /** How many restarts this child had inside the intensity period, on restarted. */
  readonly restarts?: number;
  /** The backoff waited before the restart, on restarted. */
  readonly delayMs?: number;
  /** Why it stopped, on stopped: 'normal', 'shutdown', 'restart', 'killed', … */
  readonly reason?: string;
}

export interface DeadLetterEvent {
  readonly type: '@argus.deadletter';
  readonly kind: string;
  readonly key: string | undefined;
  readonly partition: number;
  readonly offset: number;
  readonly reason: string;
  readonly error: string;
  readonly attempts: number;
  readonly at: number;
}

/** Something the cluster coordinator did or saw (membership, leadership, placement, fencing). */
export interface ClusterEvent {
  readonly type: '@argus.cluster';
  readonly event:
    | 'joined'
    | 'member-joined'
    | 'member-left'
    | 'leader'
    | 'placement'
    | 'shard-acquired'
    | 'shard-released'
    | 'fenced'
    | 'rejoined'
    | 'etcd-unreachable'
    | 'etcd-reachable'
    | 'transport-unreachable'
    | 'transport-reachable';
  /** The node reporting it. */
  readonly node: string;
  readonly at: number;
  /** The member concerned (joined/left/leader). */
  readonly member?: string;
  readonly kind?: string;
  readonly partition?: number;
  /** The placement epoch (etcd revision) it happened at. */
  readonly epoch?: number;
  /** Human-readable detail: why a shard was released, what failed. */
  readonly detail?: string;
}

/**
 * One checkpoint a shard made durable (covering one or more batches): which node, at which placement
 * epoch, which records, and when (wall-clock ms) processing of its first batch started, when it was
 * sent and when it was acknowledged. Tests use it to prove no shard was ever processed by two nodes at
 * once.
 */
export interface BatchEvent {
  readonly type: '@argus.batch';
  readonly node: string;
  readonly kind: string;
  readonly partition: number;
  readonly epoch: number;
  readonly firstOffset: number;
  readonly lastOffset: number;
  readonly records: number;
  /** When the shard started processing the batch. */
  readonly startedAt: number;
  /**
   * When the checkpoint write was sent. A checkpoint lands after this or not at all, and a new owner
   * fences the old writer before it starts: so [startedAt, checkpointAt] of committed batches of two
   * owners never overlap, even when the old owner was frozen after sending.
   */
  readonly checkpointAt: number;
  /** When the checkpoint was acknowledged (this process saw it; later than the landing if it was frozen). */
  readonly committedAt: number;
}

/** An administrator acted on an entity through the inspector (who: the token's name, never the token). */
export interface AdminEvent {
  readonly type: '@argus.admin';
  readonly action: 'restart' | 'stop' | 'message';
  readonly kind: string;
  readonly key: string;
  /** The node that carried it out (the entity's owner; for `message`, the node that appended it). */
  readonly node: string;
  readonly by: string;
  readonly at: number;
  /** On `message`: the message's type. */
  readonly messageType?: string;
}

export type ArgusEvent = LifecycleEvent | DeadLetterEvent | ClusterEvent | BatchEvent | AdminEvent;

export type EventObserver = (event: ArgusEvent) => void;

export class EventBus {
  private observers: EventObserver[] = [];

  /** Adds an observer; returns the function that removes it. */
  subscribe(observer: EventObserver): () => void {
    this.observers = [...this.observers, observer];
    return () => {
      this.observers = this.observers.filter((o) => o !== observer);
    };
  }

  get listening(): boolean {
    return this.observers.length > 0;
  }

  /** Delivers to every observer; an observer that throws is reported on stderr and never breaks others. */
  publish(event: ArgusEvent): void {
    const observers = this.observers;
    for (let i = 0; i < observers.length; i++) {
      try {
        observers[i]!(event);
      } catch (e) {
        process.emitWarning(`argus event observer threw: ${(e as Error)?.message ?? String(e)}`);
      }
    }
  }
}
