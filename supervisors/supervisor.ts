/**
 * A supervisor: a nact actor that starts children from specs, hears when they end, and restarts them
 * by its strategy, intensity and backoff (supervisors/spec.ts explains the semantics; the decisions are
 * the pure functions of restart.ts). Everything that changes its children goes through its nact
 * mailbox, so decisions never interleave. Children get messages directly, never through the
 * supervisor: with thousands of children every message to the supervisor copies nact's children Map.
 */
import nact from 'nact';
import { type ActorRef, spawnWorker, type WorkerParent } from '../runtime/actor.ts';
import type { Clock, TimerHandle } from '../runtime/boundaries.ts';
import { ArgusError, describeError } from '../runtime/errors.ts';
import type { EventBus, LifecyclePhase } from '../runtime/events.ts';
import { nactName } from '../runtime/names.ts';
import { addRestart, backoffDelay, planRestart } from './restart.ts';
import { type ChildSpec, type SupervisorSpec, validateChildSpec } from './spec.ts';

export interface SupervisorEnv {
  readonly clock: Clock;
  readonly random: () => number;
  readonly events: EventBus;
}

/** What a supervisor tells its own parent: how it ended. The root's parent is the runtime. */
export type ExitListener = (crashed: boolean, error: unknown) => void;

/** What a supervisor's owner can watch of its children (the shard runner uses it). */
export interface ChildObserver {
  started?(id: string, ref: ActorRef<unknown>, restart: boolean): void;
  /** `restarting`: whether the supervisor is bringing this child back (false when removed or giving up). */
  ended?(id: string, crashed: boolean, restarting: boolean): void;
}

export type ChildStatus = 'running' | 'restarting' | 'stopping';

export interface ChildInfo {
  readonly id: string;
  readonly type: 'worker' | 'supervisor';
  readonly restart: ChildSpec['restart'];
  readonly status: ChildStatus;
  readonly restarts: number;
  readonly children?: readonly ChildInfo[];
}

interface RunningChild {
  readonly ref: ActorRef<unknown>;
  readonly supervisor?: Supervisor;
  stop(timeoutMs: number): Promise<unknown>;
  kill(): void;
  describe?(): readonly ChildInfo[];
}

interface ChildRecord {
  readonly spec: ChildSpec;
  status: ChildStatus;
  /** Bumped at every start, so a late report from an old incarnation is recognised and ignored. */
  incarnation: number;
  running: RunningChild | undefined;
  /** Restart times inside the period, for this child's backoff (allocated at the first restart). */
  restarts: number[] | undefined;
  timer: TimerHandle | undefined;
  /** The backoff the pending restart waits, for the 'restarted' event. */
  delayMs: number;
}

class ChildEnded {
  constructor(
    readonly id: string,
    readonly incarnation: number,
    readonly crashed: boolean,
    readonly error: unknown,
  ) {}
}
class ChildHealthy {
  constructor(
    readonly id: string,
    readonly incarnation: number,
  ) {}
}
class RestartDue {
  constructor(
    readonly id: string,
    readonly ids: readonly string[],
  ) {}
}
class StartChild {
  constructor(
    readonly spec: ChildSpec,
    readonly reply: (result: ActorRef<unknown> | Error) => void,
  ) {}
}
class TerminateChild {
  constructor(
    readonly id: string,
    readonly reason: 'shutdown' | 'passivated',
    readonly reply: (found: boolean) => void,
  ) {}
}
class Shutdown {
  constructor(readonly reply: () => void) {}
}
type Control = ChildEnded | ChildHealthy | RestartDue | StartChild | TerminateChild | Shutdown;

const INTENSITY_ERROR = 'reached_max_restart_intensity';

/** What which_children says of one child, without its own children. */
const childInfo = (r: ChildRecord): Omit<ChildInfo, 'children'> => ({
  id: r.spec.id,
  type: r.spec.type,
  restart: r.spec.restart,
  status: r.status,
  restarts: r.restarts?.length ?? 0,
});

export class Supervisor implements WorkerParent {
  readonly ref: ActorRef<Control>;
  private readonly children = new Map<string, ChildRecord>();
  /** Restart times inside the period, over all children (OTP's intensity counts them together). */
  private history: number[] = [];
  private state: 'running' | 'stopping' | 'stopped' = 'running';

  constructor(
    readonly spec: SupervisorSpec,
    parent: nact.Ref<unknown>,
    readonly path: string,
    private readonly env: SupervisorEnv,
    private readonly onExit: ExitListener,
    private readonly observer: ChildObserver = {},
  ) {
    const receive = async (self: Supervisor, msg: Control) => {
      await self.handle(msg);
      return self;
    };
    this.ref = nact.spawn(
      parent,
      receive as nact.ActorFunc<Supervisor, Control, nact.Ref<unknown>>,
      spec.id,
      {
        initialState: this,
      },
    ) as ActorRef<Control>;
    for (const child of spec.children) this.add(child);
  }

  /** Starts a child after the initial ones (OTP start_child). Rejects if the id is taken. */
  startChild(spec: ChildSpec): Promise<ActorRef<unknown>> {
    return new Promise((resolve, reject) => {
      if (this.state !== 'running') {
        reject(this.stoppedError());
        return;
      }
      nact.dispatch(this.ref, new StartChild(spec, (r) => (r instanceof Error ? reject(r) : resolve(r))));
    });
  }

  /** Stops a child gracefully and forgets it (OTP terminate_child + delete_child). */
  terminateChild(id: string, reason: 'shutdown' | 'passivated' = 'shutdown'): Promise<boolean> {
    if (this.state !== 'running') return Promise.resolve(false);
    return new Promise((resolve) => nact.dispatch(this.ref, new TerminateChild(id, reason, resolve)));
  }

  /** Stops every child in reverse start order, then itself. */
  shutdown(): Promise<void> {
    if (this.state === 'stopped') return Promise.resolve();
    return new Promise((resolve) => nact.dispatch(this.ref, new Shutdown(resolve)));
  }

  /** A running child supervisor (the current incarnation), undefined while it restarts or if absent. */
  childSupervisor(id: string): Supervisor | undefined {
    const record = this.children.get(id);
    return record?.status === 'running' ? record.running?.supervisor : undefined;
  }

  /** The status of a child, undefined if there is none by that id. */
  childStatus(id: string): ChildStatus | undefined {
    return this.children.get(id)?.status;
  }

  /** The ref of a running child, undefined while it is restarting or absent. */
  childRef(id: string): ActorRef<unknown> | undefined {
    const record = this.children.get(id);
    return record?.status === 'running' ? record.running?.ref : undefined;
  }

  get size(): number {
    return this.children.size;
  }

  /**
   * One level of the subtree (which_children, not recursive): each child with its own child count, so a
   * shard of tens of thousands of entities is described without listing them.
   */
  level(): (Omit<ChildInfo, 'children'> & { readonly children: number })[] {
    return [...this.children.values()].map((r) => ({
      ...childInfo(r),
      children: r.status === 'running' ? (r.running?.supervisor?.size ?? 0) : 0,
    }));
  }

  /** The subtree, as data (which_children, recursively). */
  describe(): ChildInfo[] {
    const out: ChildInfo[] = [];
    for (const r of this.children.values()) {
      const nested = r.running?.describe?.();
      out.push({ ...childInfo(r), ...(nested ? { children: nested } : {}) });
    }
    return out;
  }

  private stoppedError(): ArgusError {
    return new ArgusError('ARGUS_ERR_SUPERVISOR_STOPPED', `supervisor ${this.path} is ${this.state}`, {
      path: this.path,
    });
  }

  private async handle(msg: Control): Promise<void> {
    if (this.state === 'stopped') {
      if (msg instanceof StartChild) msg.reply(this.stoppedError());
      else if (msg instanceof TerminateChild) msg.reply(false);
      else if (msg instanceof Shutdown) msg.reply();
      return;
    }
    if (msg instanceof ChildEnded) return this.onChildEnded(msg);
    if (msg instanceof ChildHealthy) {
      // Backoff measures crashes in a row: a restarted child that handled a message is healthy again.
      // Intensity still counts every restart inside the period (OTP semantics).
      const record = this.children.get(msg.id);
      if (record && record.incarnation === msg.incarnation) record.restarts = undefined;
      return;
    }
    if (msg instanceof RestartDue) return this.restartDue(msg);
    if (msg instanceof StartChild) {
      try {
        validateChildSpec(msg.spec);
        msg.reply(this.add(msg.spec));
      } catch (e) {
        msg.reply(e as Error);
      }
      return;
    }
    if (msg instanceof TerminateChild) {
      const record = this.children.get(msg.id);
      if (record) await this.stopChild(record, msg.reason, 'remove');
      msg.reply(record !== undefined);
      return;
    }
    if (msg instanceof Shutdown) {
      await this.stopAll('shutdown');
      msg.reply();
      return;
    }
    const never: never = msg;
    throw new Error(`unknown supervisor message ${String(never)}`);
  }

  private add(spec: ChildSpec): ActorRef<unknown> {
    if (this.children.has(spec.id)) {
      throw new ArgusError(
        'ARGUS_ERR_DUPLICATE_CHILD',
        `supervisor ${this.path} already has a child '${spec.id}'`,
        {
          path: this.path,
          id: spec.id,
        },
      );
    }
    const record: ChildRecord = {
      spec,
      status: 'running',
      incarnation: 0,
      running: undefined,
      restarts: undefined,
      timer: undefined,
      delayMs: 0,
    };
    this.children.set(spec.id, record);
    this.start(record, false);
    return record.running!.ref;
  }

  private start(record: ChildRecord, restart: boolean): void {
    const incarnation = ++record.incarnation;
    const { spec } = record;
    if (spec.type === 'worker') {
      record.running = spawnWorker(
        this.ref,
        nactName(spec.id),
        spec.id,
        this.path,
        spec.actor,
        this.env.clock,
        this,
        incarnation,
        restart,
      );
    } else {
      const report: ExitListener = (crashed, error) => this.childEnded(spec.id, incarnation, crashed, error);
      const sub = new Supervisor(spec, this.ref, `${this.path}/${spec.id}`, this.env, report, spec.observer);
      record.running = {
        ref: sub.ref,
        supervisor: sub,
        stop: () => sub.shutdown(),
        kill: () => sub.kill(),
        describe: () => sub.describe(),
      };
    }
    record.status = 'running';
    if (this.env.events.listening) {
      this.emit(
        restart ? 'restarted' : 'started',
        `${this.path}/${spec.id}`,
        restart ? { restarts: record.restarts?.length ?? 0, delayMs: record.delayMs } : {},
      );
    }
    this.observer.started?.(spec.id, record.running.ref, restart);
  }

  // WorkerParent: children report through the supervisor's mailbox, so decisions never interleave.
  childEnded(id: string, incarnation: number, crashed: boolean, error: unknown): void {
    nact.dispatch(this.ref, new ChildEnded(id, incarnation, crashed, error));
  }

  childHealthy(id: string, incarnation: number): void {
    nact.dispatch(this.ref, new ChildHealthy(id, incarnation));
  }

  /** Brutal stop of the whole subtree, used when this supervisor itself is being killed. */
  kill(): void {
    for (const record of [...this.children.values()].reverse()) {
      if (record.timer) this.env.clock.clearTimeout(record.timer);
      record.running?.kill();
      record.running = undefined;
    }
    this.children.clear();
    this.state = 'stopped';
    nact.stop(this.ref);
  }

  /**
   * Stops a child gracefully. `after`: 'keep' leaves its record for a restart, 'remove' forgets it; the
   * observer hears of the end only once the record is in its final shape.
   */
  private async stopChild(record: ChildRecord, reason: string, after: 'keep' | 'remove'): Promise<void> {
    if (record.timer) {
      this.env.clock.clearTimeout(record.timer);
      record.timer = undefined;
    }
    const running = record.running;
    record.running = undefined;
    record.incarnation++;
    if (running) {
      record.status = 'stopping';
      const how = await running.stop(record.spec.shutdownMs);
      const path = `${this.path}/${record.spec.id}`;
      if (reason === 'passivated' && how === 'normal') this.emit('passivated', path, {});
      else this.emit('stopped', path, { reason: how === 'killed' ? 'killed' : reason });
    }
    if (after === 'remove' && this.children.get(record.spec.id) === record)
      this.children.delete(record.spec.id);
    this.observer.ended?.(record.spec.id, false, after === 'keep');
  }

  private async stopAll(reason: string): Promise<void> {
    this.state = 'stopping';
    for (const record of [...this.children.values()].reverse())
      await this.stopChild(record, reason, 'remove');
    this.children.clear();
    this.state = 'stopped';
    nact.stop(this.ref);
  }

  private async onChildEnded(msg: ChildEnded): Promise<void> {
    const record = this.children.get(msg.id);
    if (!record || record.incarnation !== msg.incarnation || record.status !== 'running') return;
    const path = `${this.path}/${msg.id}`;
    // The incarnation is over: make sure nact forgets it before a new one takes the name.
    record.running?.kill();
    record.running = undefined;
    record.incarnation++;
    if (msg.crashed) this.emit('crashed', path, { error: describeError(msg.error).message });
    else this.emit('stopped', path, { reason: 'normal' });

    const plan = planRestart(
      this.spec.flags.strategy,
      [...this.children.values()].map((r) => ({ id: r.spec.id, restart: r.spec.restart })),
      msg.id,
      msg.crashed,
    );
    if (plan.start.length === 0) {
      this.children.delete(msg.id);
      this.observer.ended?.(msg.id, msg.crashed, false);
      return;
    }

    const now = this.env.clock.monotonic();
    const { intensity, periodMs } = this.spec.flags;
    const allowed = addRestart(this.history, now, intensity, periodMs);
    this.observer.ended?.(msg.id, msg.crashed, allowed.ok);
    if (!allowed.ok) return this.escalate(msg.error);
    this.history = allowed.history;

    for (const id of plan.stop) {
      const sibling = this.children.get(id);
      if (sibling) await this.stopChild(sibling, 'restart', plan.remove.includes(id) ? 'remove' : 'keep');
    }
    const recent = (record.restarts ?? []).filter((t) => now - t < periodMs);
    const delay = backoffDelay(recent.length, this.spec.flags.backoff, this.env.random);
    recent.push(now);
    record.restarts = recent;
    for (const id of plan.start) {
      const r = this.children.get(id);
      if (r) {
        r.status = 'restarting';
        r.delayMs = id === msg.id ? delay : 0;
      }
    }
    if (delay === 0) return this.restartDue(new RestartDue(msg.id, plan.start));
    record.timer = this.env.clock.setTimeout(
      () => nact.dispatch(this.ref, new RestartDue(msg.id, plan.start)),
      delay,
    );
  }

  private restartDue(msg: RestartDue): void {
    const trigger = this.children.get(msg.id);
    if (trigger) trigger.timer = undefined;
    for (const id of msg.ids) {
      const r = this.children.get(id);
      if (r && r.status === 'restarting') this.start(r, true);
    }
  }

  private async escalate(error: unknown): Promise<void> {
    const cause = describeError(error).message;
    this.emit('escalated', this.path, { error: `${INTENSITY_ERROR} (last: ${cause})` });
    await this.stopAll('shutdown');
    this.onExit(true, new Error(`${INTENSITY_ERROR}: ${this.path} (last: ${cause})`));
  }

  private emit(phase: LifecyclePhase, path: string, extra: Record<string, unknown>): void {
    const events = this.env.events;
    if (!events.listening) return;
    events.publish({ type: '@argus.lifecycle', phase, path, at: this.env.clock.now(), ...extra });
  }
}
