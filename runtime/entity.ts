/**
 * Entities: addressable actors with a kind and a key (`counter/c-1`, `host/web-12`). A kind is defined
 * once (`defineEntity`); the runtime activates an entity on its first message, under the supervisor of
 * its shard, with the state of its last snapshot, and passivates it after an idle time.
 *
 * The entity actor applies mailbox records in offset order and remembers the offset of the last one it
 * applied, so a record delivered again (at-least-once delivery) never changes state twice.
 */
import { defineActor } from './actor.ts';
import type { Clock } from './boundaries.ts';
import { ArgusError } from './errors.ts';

export interface EntityContext {
  readonly kind: string;
  readonly key: string;
  /** Offset of the mailbox record being applied. */
  readonly offset: number;
  /** Id of the message being applied (unique per send). */
  readonly messageId: string;
  readonly clock: Clock;
  /**
   * Emits a record to one of the definition's output `streams` (runtime.onOutput, and the stream's
   * topic or journal log). Emitted records become durable with the state change that produced them, in
   * the same checkpoint; a delivery that crashes emits nothing.
   */
  emit(stream: string, value: unknown): void;
  /**
   * Sends a message to another entity's mailbox as part of this delivery's checkpoint: the message
   * is appended exactly when the state change that sent it becomes durable (in the shard's Kafka
   * transaction, or the journal's write), and never if the delivery crashes. So an entity's effects on
   * other entities happen once per applied record, like its state change. The target kind must be
   * registered; key and message are checked here (a bad one throws, which is a crash).
   */
  send(kind: string, key: string, message: { readonly type: string }): void;
}

/**
 * A record emitted by an entity during one delivery, before encoding: to an output stream, or (with
 * `mailbox`) a message for the entity `stream`/`key` — `stream` is then the target kind and
 * `partition` its shard.
 */
export interface Emitted {
  readonly stream: string;
  readonly key: string;
  readonly value: unknown;
  readonly mailbox?: true;
  readonly partition?: number;
}

/** Checks a `ctx.send` and answers the target's shard; throws a coded error when it cannot be sent. */
export type SendCheck = (kind: string, key: string, message: { readonly type: string }) => number;

const noTargets: SendCheck = (kind) => {
  throw new ArgusError('ARGUS_ERR_UNKNOWN_KIND', `no entity kind '${kind}' to send to here`, { kind });
};

export interface EntityDefinition<S, M extends { readonly type: string }> {
  readonly kind: string;
  /** Shard (partition) count; fixed once the kind's mailbox exists. Defaults to the runtime's. */
  readonly shards?: number;
  /** The state of an entity that has no snapshot yet. */
  initialState(key: string): S;
  /** Applies one message. A throw is a crash: the state reverts to the last snapshot and the message is retried. */
  receive(state: S, message: M, ctx: EntityContext): S | Promise<S>;
  /**
   * Checks a payload read from the mailbox and returns it as a message. A throw dead-letters the record
   * with reason 'invalid-message' and the error's text. Default: any object with a string `type`.
   */
  parse?(payload: unknown): M;
  /** Output streams the entities may `ctx.emit` to (created at start, like mailboxes). */
  readonly streams?: readonly string[];
  /**
   * Embedded journal: mailbox records each shard keeps once applied, for readers of the mailbox
   * (`runtime.readMailbox`, the log search); older ones are trimmed. Default: all are kept.
   */
  readonly retainRecords?: number;
  /** Idle time before passivation; defaults to the runtime's `passivation.idleMs`. */
  readonly passivateAfterMs?: number;
  /**
   * Answers `runtime.ask(kind, key, query)` from the entity's current state, on the node that owns it.
   * Pure and quick; the answer crosses nodes as msgpack. Default: `{ state, offset }`.
   */
  query?(state: S, query: unknown, key: string): unknown;
  /**
   * A compact, JSON-safe summary of the state for the inspector (a few fields, not the whole state).
   * Default: the state itself, cut to 4 KB of JSON.
   */
  summary?(state: S, key: string): unknown;
}

// biome-ignore lint/suspicious/noExplicitAny: a registry of kinds holds any state and message type
export type AnyEntityDefinition = EntityDefinition<any, any>;

export const defineEntity = <S, M extends { readonly type: string }>(
  definition: EntityDefinition<S, M>,
): EntityDefinition<S, M> => definition;

export const defaultParse = (payload: unknown): { type: string } => {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload))
    throw new Error(
      `message payload must be an object with a string 'type', got ${payload === null ? 'null' : Array.isArray(payload) ? 'array' : typeof payload}`,
    );
  const type = (payload as { type?: unknown }).type;
  if (typeof type !== 'string' || type === '')
    throw new Error("message payload must have a non-empty string 'type'");
  return payload as { type: string };
};

/** One mailbox record ready for an entity. */
export interface EntityItem {
  readonly offset: number;
  readonly id: string;
  readonly message: { readonly type: string };
}

export type DeliverResult =
  | {
      readonly ok: true;
      readonly state: unknown;
      readonly offset: number;
      /** What the entity emitted while applying the items (empty when nothing). */
      readonly outputs: readonly Emitted[];
    }
  | { readonly ok: false; readonly index: number; readonly error: unknown };

/** Hands a run of records to an entity; `reply` is called once with the outcome. */
export class Deliver {
  readonly type = 'argus.deliver';
  /** Records emitted during this delivery; dropped with it if it crashes. */
  readonly outputs: Emitted[] = [];
  constructor(
    readonly items: readonly EntityItem[],
    readonly reply: (result: DeliverResult) => void,
  ) {}

  /** Reached an incarnation that already ended: index -1 means "deliver again", not a crash. */
  undeliverable(): void {
    this.reply({ ok: false, index: -1, error: new Error('the entity had stopped') });
  }
}

/** Asks an active entity for its state (inspection, tests). */
export class ReadState {
  readonly type = 'argus.read-state';
  constructor(
    readonly reply: (state: unknown, offset: number) => void,
    readonly undeliverable: () => void,
  ) {}
}

/**
 * An administrator's restart (the inspector): the entity throws on it, so its supervisor restarts it as
 * it would after a crash — from its last snapshot and what is being checkpointed.
 */
export class AdminRestart {
  readonly type = 'argus.admin-restart';
  constructor(readonly by: string) {}
}

export type EntityMessage = Deliver | ReadState | AdminRestart;

export interface EntityCell {
  state: unknown;
  /** Offset of the last record applied; -1 before any. */
  offset: number;
}

/**
 * The actor behind the entities of one shard (one definition shared by all of them: the entity key is
 * the child id). `start` gives the state and offset to begin from (the snapshot). On a throw it
 * replies with the failing index and rethrows, so its supervisor restarts it.
 */
export const entityActor = (
  definition: AnyEntityDefinition,
  start: (key: string) => EntityCell,
  clock: Clock,
  check: SendCheck = noTargets,
) =>
  defineActor<EntityCell, EntityMessage>({
    init: (ctx) => start(ctx.id),
    receive: (cell, msg, ctx) => {
      if (msg instanceof ReadState) {
        msg.reply(cell.state, cell.offset);
        return cell;
      }
      if (msg instanceof AdminRestart) throw new Error(`restarted by '${msg.by}' (inspector)`);
      return applyItems(definition, ctx.id, cell, msg, 0, clock, ctx, check);
    },
  });

const applyItems = (
  definition: AnyEntityDefinition,
  key: string,
  cell: EntityCell,
  msg: Deliver,
  from: number,
  clock: Clock,
  actor: { reportHealthy(): void },
  check: SendCheck,
): EntityCell | Promise<EntityCell> => {
  const items = msg.items;
  const start = from;
  for (let i = from; i < items.length; i++) {
    const item = items[i]!;
    if (item.offset <= cell.offset) continue;
    const ctx = new ItemContext(definition, key, item, clock, msg.outputs, check);
    let next: unknown;
    try {
      next = definition.receive(cell.state, item.message, ctx);
    } catch (error) {
      // Records applied before this one are progress: the restart that follows is not a crash loop.
      if (i > start) actor.reportHealthy();
      msg.reply({ ok: false, index: i, error });
      throw error;
    }
    if (next instanceof Promise) {
      return next.then(
        (state) => {
          cell.state = state;
          cell.offset = item.offset;
          actor.reportHealthy();
          return applyItems(definition, key, cell, msg, i + 1, clock, actor, check);
        },
        (error) => {
          if (i > start) actor.reportHealthy();
          msg.reply({ ok: false, index: i, error });
          throw error;
        },
      );
    }
    cell.state = next;
    cell.offset = item.offset;
  }
  msg.reply({ ok: true, state: cell.state, offset: cell.offset, outputs: msg.outputs });
  return cell;
};

/** The context of one item: a class, so that `emit` is shared and not a closure per record. */
class ItemContext implements EntityContext {
  readonly kind: string;
  readonly offset: number;
  readonly messageId: string;
  constructor(
    private readonly definition: AnyEntityDefinition,
    readonly key: string,
    item: EntityItem,
    readonly clock: Clock,
    private readonly outputs: Emitted[],
    private readonly check: SendCheck,
  ) {
    this.kind = definition.kind;
    this.offset = item.offset;
    this.messageId = item.id;
  }

  emit(stream: string, value: unknown): void {
    if (!this.definition.streams?.includes(stream))
      throw new ArgusError(
        'ARGUS_ERR_UNKNOWN_STREAM',
        `entity kind '${this.kind}' emitted to stream '${stream}', which is not one of its streams (${(this.definition.streams ?? []).join(', ') || 'none'})`,
        { kind: this.kind, stream },
      );
    this.outputs.push({ stream, key: this.key, value });
  }

  send(kind: string, key: string, message: { readonly type: string }): void {
    const partition = this.check(kind, key, message);
    this.outputs.push({ stream: kind, key, value: message, mailbox: true, partition });
  }
}
