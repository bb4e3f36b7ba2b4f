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

export const tell = <M>(ref: ActorRef<M>, message: M): void => dispatch(ref, message);

export const tellBatch = <M>(ref: ActorRef<M>, messages: readonly M[]): void =>
  dispatch(ref, new Batch(messages));

/** How a worker reports its end to whoever supervises it. */
export type ExitReport = (crashed: boolean, error: unknown) => void;

/** Told once, when a restarted worker has handled a message without crashing (resets its backoff). */
export type HealthyReport = () => void;

/** The nact state of a worker: the user's state plus the wrapper's flags. One object per actor. */
interface Cell<S, M extends { readonly type: string }> {
  readonly definition: ActorDefinition<S, M>;
  readonly ctx: ActorContext<M>;
  readonly report: ExitReport;
  /** Set on a restarted incarnation until its first message went well. */
  healthy: HealthyReport | undefined;
  state: S;
  /** Set while an async init runs; messages wait for it. */
  starting: Promise<void> | undefined;
  /** Crashed or stopped: this incarnation takes no more messages. */
  done: boolean;
  stopAsked: boolean;
}

type AnyCell = Cell<unknown, { readonly type: string }>;

const crash = (cell: AnyCell, error: unknown): AnyCell => {
  if (!cell.done) {
    cell.done = true;
    cell.report(true, error);
  }
  return cell;
};

const afterMessage = (cell: AnyCell): AnyCell => {
  if (cell.healthy && !cell.done) {
    const healthy = cell.healthy;
    cell.healthy = undefined;
    healthy();
  }
  if (cell.stopAsked && !cell.done) {
    cell.done = true;
    cell.report(false, undefined);
  }
  return cell;
};

const isThenable = (v: unknown): v is Promise<unknown> =>
  typeof v === 'object' && v !== null && typeof (v as { then?: unknown }).then === 'function';

/** Runs messages from `from` on; switches to async only when a receive returns a promise. */
const runMessages = (
  cell: AnyCell,
  messages: readonly { readonly type: string }[],
  from: number,
): AnyCell | Promise<AnyCell> => {
  const { definition, ctx } = cell;
  for (let i = from; i < messages.length; i++) {
    if (cell.done) return cell;
    let next: unknown;
    try {
      next = definition.receive(cell.state, messages[i]!, ctx);
    } catch (e) {
      return crash(cell, e);
    }
    if (isThenable(next)) {
      return next.then(
        (s) => {
          cell.state = s;
          return runMessages(cell, messages, i + 1);
        },
        (e) => crash(cell, e),
      );
    }
    cell.state = next;
  }
  return afterMessage(cell);
};

const gracefulStop = async (cell: AnyCell, request: StopRequest): Promise<AnyCell> => {
  if (!cell.done) {
    cell.done = true;
    try {
      await cell.definition.stop?.(cell.state, cell.ctx);
    } catch (e) {
      process.emitWarning(`argus: stop() of ${cell.ctx.path} threw: ${(e as Error)?.message ?? String(e)}`);
    }
  }
  request.done();
  return cell;
};

/** The nact receive function shared by every worker; the cell carries everything per actor. */
const receiveFunction = (cell: AnyCell, message: unknown): AnyCell | Promise<AnyCell> => {
  if (cell.starting) return cell.starting.then(() => receiveFunction(cell, message));
  if (message instanceof StopRequest) return gracefulStop(cell, message);
  if (cell.done) {
    if (isUndeliverable(message)) message.undeliverable();
    return cell;
  }
  if (message instanceof Batch) return runMessages(cell, message.messages, 0);
  let next: unknown;
  try {
    next = cell.definition.receive(cell.state, message as { type: string }, cell.ctx);
  } catch (e) {
    return crash(cell, e);
  }
  if (isThenable(next)) {
    return next.then(
      (s) => {
        cell.state = s;
        return afterMessage(cell);
      },
      (e) => crash(cell, e),
    );
  }
  cell.state = next;
  return cell.stopAsked || cell.healthy ? afterMessage(cell) : cell;
};

export interface SpawnedWorker<M> {
  readonly ref: ActorRef<M>;
  /** Graceful stop (after queued messages, runs stop()), killed after `timeoutMs`. */
  stop(timeoutMs: number): Promise<'normal' | 'killed'>;
  /** Immediate stop: queued messages are dropped, stop() is not run. */
  kill(): void;
}

/**
 * Spawns a worker under a nact parent. `report` is called once when the incarnation ends by itself:
 * crashed (a throw, or a failed init) or stopped normally (stopSelf).
 */
export const spawnWorker = <S, M extends { readonly type: string }>(
  parent: nact.Ref<unknown>,
  name: string,
  id: string,
  path: string,
  definition: ActorDefinition<S, M>,
  clock: Clock,
  report: ExitReport,
  healthy?: HealthyReport,
): SpawnedWorker<M> => {
  let cell: Cell<S, M> | undefined;
  const ctx: ActorContext<M> = {
    get self() {
      return ref;
    },
    id,
    path,
    clock,
    stopSelf: () => {
      if (cell) cell.stopAsked = true;
    },
    reportHealthy: () => {
      const healthy = cell?.healthy;
      if (healthy && cell) {
        cell.healthy = undefined;
        healthy();
      }
    },
  };
  const start = (): Cell<S, M> => {
    const c: Cell<S, M> = {
      definition,
      ctx,
      report,
      healthy,
      state: undefined as S,
      starting: undefined,
      done: false,
      stopAsked: false,
    };
    cell = c;
    try {
      const first = definition.init(ctx);
      if (isThenable(first)) {
        c.starting = (first as Promise<S>).then(
          (s) => {
            c.state = s;
            c.starting = undefined;
          },
          (e) => {
            c.starting = undefined;
            crash(c as unknown as AnyCell, e);
          },
        );
      } else {
        c.state = first;
      }
    } catch (e) {
      // Reported after spawn returns, so the supervisor has the ref before it hears of the crash.
      c.done = true;
      queueMicrotask(() => report(true, e));
    }
    return c;
  };
  const ref = nact.spawn(
    parent,
    receiveFunction as unknown as nact.ActorFunc<AnyCell, unknown, nact.Ref<unknown>>,
    name,
    {
      initialStateFunc: () => start() as unknown as AnyCell,
    },
  ) as ActorRef<M>;

  return {
    ref,
    stop: (timeoutMs) =>
      new Promise((resolve) => {
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
      }),
    kill: () => {
      if (cell) cell.done = true;
      nact.stop(ref);
    },
  };
};
