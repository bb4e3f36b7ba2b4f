/**
 * Typed actors on top of nact.
 *
 * An actor is data (`defineActor({ init, receive, stop })`) with a state type and a discriminated union
 * of messages. nact runs it: one message at a time, in order. Argus wraps nact's receive function so
 * that a throw never reaches nact's own fault handling: the actor is marked failed, drops whatever
 * else reaches this incarnation, and tells its supervisor (supervisors/supervisor.ts), which restarts
 * it by its strategy. A batch (`tellBatch`) is one nact message carrying many: nact's per-message cost
 * (a setImmediate, a context with a copy of the children Map) is paid once per batch.
 */
import nact from 'nact';
import type { Clock } from './boundaries.ts';

const { dispatch } = nact;

declare const messageBrand: unique symbol;

/** A nact actor reference that only accepts messages of type M. */
export type ActorRef<M> = nact.Ref<unknown> & { readonly [messageBrand]?: M };

export interface ActorContext<M> {
  readonly self: ActorRef<M>;
  /** The child id under its supervisor. */
  readonly id: string;
  /** Slash-separated path from the root supervisor. */
  readonly path: string;
  readonly clock: Clock;
  /** Ends this actor normally after the current message: a transient child is then not restarted. */
  stopSelf(): void;
  /**
   * Says this incarnation made progress, which resets its restart backoff. Called for you after each
   * message that did not crash; an actor applying many items per message calls it when some went well.
   */
  reportHealthy(): void;
}

export interface ActorDefinition<S, M extends { readonly type: string }> {
  /** The first state. Runs at every (re)start. A throw or rejection is a crash. */
  init(ctx: ActorContext<M>): S | Promise<S>;
  /** The next state. A throw or rejection is a crash: the state is discarded with the incarnation. */
  receive(state: S, message: M, ctx: ActorContext<M>): S | Promise<S>;
  /** Called on a graceful stop (shutdown, passivation, sibling restart), not after a crash. */
  stop?(state: S, ctx: ActorContext<M>): void | Promise<void>;
}

export const defineActor = <S, M extends { readonly type: string }>(
  definition: ActorDefinition<S, M>,
): ActorDefinition<S, M> => definition;

/** Several messages delivered as one nact message, processed in order. */
export class Batch<M> {
  constructor(readonly messages: readonly M[]) {}
}

/** Graceful stop: processed after every message queued before it. */
export class StopRequest {
  constructor(readonly done: () => void) {}
}

/**
 * A message that wants to know when it reached an incarnation that already ended (crashed or stopped),
 * instead of being dropped silently: requests with a reply use it to answer "try again".
 */
export interface Undeliverable {
  undeliverable(): void;
}

const isUndeliverable = (m: unknown): m is Undeliverable =>
  typeof m === 'object' &&
  m !== null &&
  typeof (m as { undeliverable?: unknown }).undeliverable === 'function';

/**
 * The sender passed with every message. nact's dispatch otherwise allocates a fresh `Nobody` (three
 * objects) per message; Argus actors never read the sender (requests carry their reply target).
 */
const NOBODY = new nact.Nobody();
// nact's dispatch takes the sender as a third argument; its typings leave it out.
const dispatchFrom = dispatch as <T>(actor: nact.Ref<T>, message: T, sender: nact.Ref<unknown>) => void;

export const tell = <M>(ref: ActorRef<M>, message: M): void => dispatchFrom(ref, message, NOBODY);

export const tellBatch = <M>(ref: ActorRef<M>, messages: readonly M[]): void =>
  dispatchFrom(ref as nact.Ref<unknown>, new Batch(messages), NOBODY);

/**
 * Whoever supervises a worker. Told once when an incarnation ends by itself (crashed: a throw or a
 * failed init; or stopped normally: stopSelf), and once when a restarted incarnation made progress
 * (which resets its backoff). Methods, not callbacks: an entity costs no closure of its own.
 */
export interface WorkerParent {
  childEnded(id: string, incarnation: number, crashed: boolean, error: unknown): void;
  childHealthy(id: string, incarnation: number): void;
}

export interface SpawnedWorker<M> {
  readonly ref: ActorRef<M>;
  /** Graceful stop (after queued messages, runs stop()), killed after `timeoutMs`. */
  stop(timeoutMs: number): Promise<'normal' | 'killed'>;
  /** Immediate stop: queued messages are dropped, stop() is not run. */
  kill(): void;
}

const isThenable = (v: unknown): v is Promise<unknown> =>
  typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';

/**
 * One incarnation of a worker: nact's state for it, its context, and its handle, in one object whose
 * behaviour lives on the prototype. With 100,000 entities per node, per-instance closures and a
 * context object with a getter (dictionary mode) cost more than nact's actor itself.
 */
class Worker<S, M extends { readonly type: string }> implements ActorContext<M>, SpawnedWorker<M> {
  state: S = undefined as S;
  /** Set while an async init runs; messages wait for it. */
  starting: Promise<void> | undefined = undefined;
  /** Crashed or stopped: this incarnation takes no more messages. */
  done = false;
  stopAsked = false;
  /** A restarted incarnation that has not yet made progress. */
  healthPending: boolean;
  ref: ActorRef<M> = undefined as unknown as ActorRef<M>;

  constructor(
    readonly definition: ActorDefinition<S, M>,
    readonly id: string,
    private readonly parentPath: string,
    readonly clock: Clock,
    private readonly parent: WorkerParent,
    private readonly incarnation: number,
    restarted: boolean,
  ) {
    this.healthPending = restarted;
  }

  get self(): ActorRef<M> {
    return this.ref;
  }

  get path(): string {
    return `${this.parentPath}/${this.id}`;
  }

  stopSelf(): void {
    this.stopAsked = true;
  }

  reportHealthy(): void {
    if (!this.healthPending || this.done) return;
    this.healthPending = false;
    this.parent.childHealthy(this.id, this.incarnation);
  }

  /** Runs init; a failure is reported after spawn returned, so the supervisor knows the ref first. */
  begin(): void {
    try {
      const first = this.definition.init(this);
      if (isThenable(first)) {
        this.starting = (first as Promise<S>).then(
          (s) => {
            this.state = s;
            this.starting = undefined;
          },
          (e) => {
            this.starting = undefined;
            this.crash(e);
          },
        );
      } else {
        this.state = first;
      }
    } catch (e) {
      this.done = true;
      queueMicrotask(() => this.parent.childEnded(this.id, this.incarnation, true, e));
    }
  }

  crash(error: unknown): this {
    if (!this.done) {
      this.done = true;
      this.parent.childEnded(this.id, this.incarnation, true, error);
    }
    return this;
  }

  afterMessage(): this {
    if (this.healthPending) this.reportHealthy();
    if (this.stopAsked && !this.done) {
      this.done = true;
      this.parent.childEnded(this.id, this.incarnation, false, undefined);
    }
    return this;
  }

  /** Runs messages from `from` on; switches to async only when a receive returns a promise. */
  runMessages(messages: readonly M[], from: number): this | Promise<this> {
    for (let i = from; i < messages.length; i++) {
      if (this.done) return this;
      let next: unknown;
      try {
        next = this.definition.receive(this.state, messages[i]!, this);
      } catch (e) {
        return this.crash(e);
      }
      if (isThenable(next)) {
        return next.then(
          (s) => {
            this.state = s as S;
            return this.runMessages(messages, i + 1);
          },
          (e) => this.crash(e),
        );
      }
      this.state = next as S;
    }
    return this.afterMessage();
  }

  async gracefulStop(request: StopRequest): Promise<this> {
    if (!this.done) {
      this.done = true;
      try {
        await this.definition.stop?.(this.state, this);
      } catch (e) {
        process.emitWarning(`argus: stop() of ${this.path} threw: ${(e as Error)?.message ?? String(e)}`);
      }
    }
    request.done();
    return this;
  }

  stop(timeoutMs: number): Promise<'normal' | 'killed'> {
    const ref = this.ref;
    return new Promise((resolve) => {
      let settled = false;
      const timer = setTimeout(() => {
        if (settled) return;
        settled = true;
        nact.stop(ref);
        resolve('killed');
      }, timeoutMs);
      dispatch(
        ref,
        new StopRequest(() => {
          if (settled) return;
          settled = true;
          clearTimeout(timer);
          nact.stop(ref);
          resolve('normal');
        }),
      );
    });
  }

  kill(): void {
    this.done = true;
    nact.stop(this.ref);
  }
}

// biome-ignore lint/suspicious/noExplicitAny: nact's state slot holds workers of every type
type AnyWorker = Worker<any, { readonly type: string }>;

/** The nact receive function shared by every worker; the worker object carries everything. */
const receiveFunction = (w: AnyWorker, message: unknown): AnyWorker | Promise<AnyWorker> => {
  if (w.starting) return w.starting.then(() => receiveFunction(w, message));
  if (message instanceof StopRequest) return w.gracefulStop(message);
  if (w.done) {
    if (isUndeliverable(message)) message.undeliverable();
    return w;
  }
  if (message instanceof Batch) return w.runMessages(message.messages, 0);
  let next: unknown;
  try {
    next = w.definition.receive(w.state, message as { type: string }, w);
  } catch (e) {
    return w.crash(e);
  }
  if (isThenable(next)) {
    return next.then(
      (s) => {
        w.state = s;
        return w.afterMessage();
      },
      (e) => w.crash(e),
    );
  }
  w.state = next;
  return w.stopAsked || w.healthPending ? w.afterMessage() : w;
};

/** Spawns incarnation `incarnation` of a worker under a nact parent (named `name`, nact-safe). */
export const spawnWorker = <S, M extends { readonly type: string }>(
  parentRef: nact.Ref<unknown>,
  name: string,
  id: string,
  parentPath: string,
  definition: ActorDefinition<S, M>,
  clock: Clock,
  parent: WorkerParent,
  incarnation: number,
  restarted: boolean,
): SpawnedWorker<M> => {
  const w = new Worker(definition, id, parentPath, clock, parent, incarnation, restarted);
  w.ref = nact.spawn(
    parentRef,
    receiveFunction as unknown as nact.ActorFunc<AnyWorker, unknown, nact.Ref<unknown>>,
    name,
    { initialState: w as AnyWorker },
  ) as ActorRef<M>;
  // nact runs messages on a later turn, so init always runs before the first message.
  w.begin();
  return w;
};
