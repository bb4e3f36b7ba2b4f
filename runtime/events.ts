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

export type ArgusEvent = LifecycleEvent | DeadLetterEvent;

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
