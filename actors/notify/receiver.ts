/**
 * The receiver entity `receiver/<id>`: one per configured receiver. Its snapshot holds its groups
 * (groups.ts), its delivery queue, the attempt in flight and its last 100 dead letters, so a crash or a
 * move to another node neither forgets a notification nor sends one the receiver already took (the
 * idempotency key lets a receiver drop the duplicates at-least-once delivery allows on the wire).
 *
 * Delivery is one notification at a time, in queue order. The entity never waits for HTTP: it
 * *starts* a delivery (`notifier().deliver(…)`, not awaited) and records it in flight; the outcome comes
 * back through its own mailbox as `receiver.result`, so a receiver that hangs holds up only its own
 * queue — never its shard, never another receiver. A result for anything but the attempt in flight is
 * stale and ignored.
 *
 * - `receiver.alert`: into its group; due groups flush (group_wait 0 flushes at once); start the
 *   queue's head if nothing is in flight and it is due.
 * - `receiver.result`: success pops the head; a retryable failure schedules the next attempt after a
 *   jittered exponential backoff (backoff.ts); a non-retryable one (4xx) or the last of max_attempts
 *   makes the notification a dead letter with the last error. Each outcome is an `@argus.notify` event
 *   on the `events` stream.
 * - `receiver.tick` (sent by the node owning the shard when `due` says so): flushes due groups; an
 *   attempt in flight for longer than 2 × timeout counts as failed (the node that started it died) and
 *   is started again; then the next due delivery starts.
 * - `receiver.replay` puts one dead letter (or all) back at the end of the queue with its attempts
 *   reset and the same id; `receiver.discard` drops one notification (dead or queued) or every dead
 *   letter.
 *
 * While the receiver has no configuration (deleted, or not yet written), nothing flushes or starts:
 * alerts keep grouping and notifications stay queued, and the summary says why.
 */

import { defineEntity, type EntityContext } from '../../runtime/entity.ts';
import { describeError } from '../../runtime/errors.ts';
import { isRetryable, type Jitter, retryDelay } from './backoff.ts';
import { addAlert, dueAt, EMPTY_GROUPS, type FlushOptions, flushDue, type GroupsState } from './groups.ts';
import { parseReceiverMessage } from './messages.ts';
import { RECEIVER_DEFAULTS } from './receivers.ts';
import type {
  DeadNotification,
  DeliveryOutcome,
  Notification,
  Notifier,
  ReceiverConfig,
  ReceiverMessage,
  Silence,
} from './types.ts';

export const RECEIVER_KIND = 'receiver';
export const EVENTS_STREAM = 'events';
export const DEAD_LETTER_LIMIT = 100;

export interface InFlight {
  readonly id: string;
  readonly attempt: number;
  readonly startedAt: number;
}

export interface ReceiverCounters {
  readonly delivered: number;
  /** Failed attempts (each retry counts). */
  readonly failed: number;
  readonly dead: number;
}

export interface ReceiverState {
  readonly groups: GroupsState;
  readonly queue: readonly Notification[];
  readonly inFlight?: InFlight;
  readonly deadLetters: readonly DeadNotification[];
  readonly counters: ReceiverCounters;
}

/** What users see of deliveries (the `events` stream). */
export interface NotifyEvent {
  readonly type: '@argus.notify';
  readonly receiver: string;
  readonly notification: string;
  readonly status: 'delivered' | 'failed' | 'dead-letter';
  readonly attempt: number;
  readonly error?: string;
  readonly at: number;
  readonly groupKey: string;
}

export interface ReceiverEntityOptions {
  /** The receiver's configuration in force; undefined when it has none. */
  readonly config: (id: string) => ReceiverConfig | undefined;
  readonly silences: () => readonly Silence[];
  /** The HTTP boundary. */
  readonly notifier: () => Notifier;
  /** Sends a message to `receiver/<id>`'s mailbox (runtime.send): how results come back. */
  readonly send: (id: string, message: ReceiverMessage) => Promise<void>;
  readonly externalURL?: string;
  /** Backoff jitter; default: derived from (notification id, attempt), so replays decide the same. */
  readonly jitter?: Jitter;
  /** A result that could not be sent back (the tick's stale check then restarts the attempt). */
  readonly report?: (message: string) => void;
}

export const initialReceiverState = (): ReceiverState => ({
  groups: EMPTY_GROUPS,
  queue: [],
  deadLetters: [],
  counters: { delivered: 0, failed: 0, dead: 0 },
});

/** No outcome for this long means the node that started the attempt is gone. */
const staleAfterMs = (cfg: ReceiverConfig) => 2 * cfg.timeoutMs;

const withoutInFlight = (s: ReceiverState): ReceiverState => {
  const { inFlight: _, ...rest } = s;
  return rest;
};

export const receiverEntity = (options: ReceiverEntityOptions) => {
  const flushOptions: FlushOptions = options.externalURL ? { externalURL: options.externalURL } : {};
  const report = options.report ?? (() => undefined);

  const event = (
    ctx: EntityContext,
    n: Notification,
    e: Omit<NotifyEvent, 'type' | 'receiver' | 'notification' | 'groupKey'>,
  ) => {
    const value: NotifyEvent = {
      type: '@argus.notify',
      receiver: ctx.key,
      notification: n.id,
      groupKey: n.groupKey,
      ...e,
    };
    ctx.emit(EVENTS_STREAM, value);
  };

  const flush = (s: ReceiverState, key: string, at: number): ReceiverState => {
    const cfg = options.config(key);
    if (!cfg) return s;
    const r = flushDue(s.groups, cfg, options.silences(), at, flushOptions);
    if (r.state === s.groups) return s;
    return { ...s, groups: r.state, queue: [...s.queue, ...r.notifications] };
  };

  /** Starts the head of the queue when nothing is in flight and it is due (not awaited). */
  const startNext = (s: ReceiverState, at: number, ctx: EntityContext): ReceiverState => {
    const cfg = options.config(ctx.key);
    const head = s.queue[0];
    if (s.inFlight || !cfg || !head || head.nextAttemptAt > at) return s;
    const attempt = head.attempts + 1;
    const { id } = head;
    let outcome: Promise<DeliveryOutcome>;
    try {
      outcome = options.notifier().deliver({ receiver: cfg, notificationId: id, body: head.body, attempt });
    } catch (e) {
      outcome = Promise.resolve({ ok: false, error: describeError(e).message });
    }
    const key = ctx.key;
    const clock = ctx.clock;
    void outcome
      .catch((e: unknown): DeliveryOutcome => ({ ok: false, error: describeError(e).message }))
      .then((o) =>
        options.send(key, {
          type: 'receiver.result',
          id,
          attempt,
          ok: o.ok,
          ...(o.status !== undefined ? { status: o.status } : {}),
          ...(o.error !== undefined ? { error: o.error } : {}),
          at: clock.now(),
        }),
      )
      .catch((e: unknown) =>
        report(
          `receiver/${key}: the result of ${id} attempt ${attempt} was not sent: ${describeError(e).message}`,
        ),
      );
    return { ...s, inFlight: { id, attempt, startedAt: at } };
  };

  /** The head failed its attempt `attempt`: retry later, or dead-letter it. */
  const failed = (
    s: ReceiverState,
    attempt: number,
    error: string,
    retryable: boolean,
    at: number,
    ctx: EntityContext,
    retryAt?: number,
  ): ReceiverState => {
    const head = s.queue[0]!;
    const cfg = options.config(ctx.key);
    const rest = withoutInFlight(s);
    const counters = { ...s.counters, failed: s.counters.failed + 1 };
    const maxAttempts = cfg?.maxAttempts ?? Number.POSITIVE_INFINITY;
    if (!retryable || attempt >= maxAttempts) {
      const lastError = retryable ? error : `${error} (not retryable)`;
      const dead: DeadNotification = { ...head, attempts: attempt, lastError, deadAt: at };
      event(ctx, head, { status: 'dead-letter', attempt, error: lastError, at });
      return {
        ...rest,
        queue: s.queue.slice(1),
        deadLetters: [...s.deadLetters, dead].slice(-DEAD_LETTER_LIMIT),
        counters: { ...counters, dead: counters.dead + 1 },
      };
    }
    const policy = {
      initialMs: cfg?.backoffInitialMs ?? RECEIVER_DEFAULTS.backoffInitialMs,
      maxMs: cfg?.backoffMaxMs ?? RECEIVER_DEFAULTS.backoffMaxMs,
    };
    const nextAttemptAt = retryAt ?? at + retryDelay(policy, head.id, attempt, options.jitter);
    event(ctx, head, { status: 'failed', attempt, error, at });
    const retried: Notification = { ...head, attempts: attempt, lastError: error, nextAttemptAt };
    return { ...rest, queue: [retried, ...s.queue.slice(1)], counters };
  };

  const applyResult = (
    s: ReceiverState,
    m: Extract<ReceiverMessage, { type: 'receiver.result' }>,
    ctx: EntityContext,
  ): ReceiverState => {
    const f = s.inFlight;
    if (!f || f.id !== m.id || f.attempt !== m.attempt) return s;
    const head = s.queue[0];
    if (!head || head.id !== m.id) return withoutInFlight(s);
    if (m.ok) {
      event(ctx, head, { status: 'delivered', attempt: m.attempt, at: m.at });
      return {
        ...withoutInFlight(s),
        queue: s.queue.slice(1),
        counters: { ...s.counters, delivered: s.counters.delivered + 1 },
      };
    }
    const error = m.error ?? (m.status !== undefined ? `HTTP ${m.status}` : 'delivery failed');
    return failed(s, m.attempt, error, isRetryable(m.status), m.at, ctx);
  };

  /** An attempt with no outcome for 2 × timeout: its node died. It counts, and starts again now. */
  const restartStale = (s: ReceiverState, at: number, ctx: EntityContext): ReceiverState => {
    const cfg = options.config(ctx.key);
    const f = s.inFlight;
    if (!f || !cfg || at - f.startedAt <= staleAfterMs(cfg)) return s;
    if (s.queue[0]?.id !== f.id) return withoutInFlight(s);
    const error = `no outcome within ${staleAfterMs(cfg)} ms of starting attempt ${f.attempt} (the node that started it may have stopped)`;
    return failed(s, f.attempt, error, true, at, ctx, at);
  };

  const replay = (s: ReceiverState, id: string | undefined, at: number): ReceiverState => {
    const chosen = s.deadLetters.filter((d) => id === undefined || d.id === id);
    if (chosen.length === 0) return s;
    const back = chosen.map(
      ({ deadAt: _, lastError: __, ...n }): Notification => ({ ...n, attempts: 0, nextAttemptAt: at }),
    );
    return {
      ...s,
      queue: [...s.queue, ...back],
      deadLetters: s.deadLetters.filter((d) => !chosen.includes(d)),
    };
  };

  const discard = (s: ReceiverState, id: string | undefined): ReceiverState => {
    if (id === undefined) return s.deadLetters.length === 0 ? s : { ...s, deadLetters: [] };
    if (s.deadLetters.some((d) => d.id === id))
      return { ...s, deadLetters: s.deadLetters.filter((d) => d.id !== id) };
    if (!s.queue.some((n) => n.id === id)) return s;
    const next = { ...s, queue: s.queue.filter((n) => n.id !== id) };
    return s.inFlight?.id === id ? withoutInFlight(next) : next;
  };

  const apply = (s: ReceiverState, m: ReceiverMessage, ctx: EntityContext): ReceiverState => {
    switch (m.type) {
      case 'receiver.alert':
        return startNext(flush({ ...s, groups: addAlert(s.groups, m, m.at) }, ctx.key, m.at), m.at, ctx);
      case 'receiver.tick':
        return startNext(restartStale(flush(s, ctx.key, m.at), m.at, ctx), m.at, ctx);
      case 'receiver.result':
        return startNext(applyResult(s, m, ctx), m.at, ctx);
      case 'receiver.replay':
        return startNext(replay(s, m.id, m.at), m.at, ctx);
      case 'receiver.discard':
        return startNext(discard(s, m.id), m.at, ctx);
      default: {
        const never: never = m;
        throw new Error(`unknown receiver message ${JSON.stringify(never)}`);
      }
    }
  };

  /** The earliest time a tick has something to do; null when nothing will (or no configuration). */
  const due = (s: ReceiverState, key: string): number | null => {
    const cfg = options.config(key);
    if (!cfg) return null;
    const times = [dueAt(s.groups)];
    if (s.inFlight) times.push(s.inFlight.startedAt + staleAfterMs(cfg) + 1);
    else if (s.queue[0]) times.push(s.queue[0].nextAttemptAt);
    const known = times.filter((t): t is number => t !== null);
    return known.length > 0 ? Math.min(...known) : null;
  };

  const summary = (s: ReceiverState, key: string) => {
    const configured = options.config(key) !== undefined;
    const head = s.queue[0];
    return {
      receiver: key,
      configured,
      ...(configured
        ? {}
        : {
            problem: `receiver '${key}' is not configured: ${s.queue.length} notification(s) wait in its queue`,
          }),
      queue: s.queue.length,
      head: head
        ? {
            id: head.id,
            groupKey: head.groupKey,
            attempts: head.attempts,
            lastError: head.lastError ?? null,
            nextAttemptAt: head.nextAttemptAt,
          }
        : null,
      inFlight: s.inFlight ?? null,
      deadLetters: s.deadLetters.length,
      groups: Object.keys(s.groups.groups).length,
      counters: s.counters,
      nextDueAt: due(s, key),
    };
  };

  return defineEntity<ReceiverState, ReceiverMessage>({
    kind: RECEIVER_KIND,
    streams: [EVENTS_STREAM],
    initialState: initialReceiverState,
    parse: parseReceiverMessage,
    receive: apply,
    query: (state, query, key) => {
      switch (query) {
        case 'summary':
          return summary(state, key);
        case 'due':
          return due(state, key);
        case 'deadletters':
          return state.deadLetters;
        default:
          return { state };
      }
    },
  });
};
