/**
 * Supervisor and child specifications, as data (OTP's `supervisor` child specs).
 *
 * Principles, from Erlang/OTP:
 * - A supervisor starts its children in order, watches them, and restarts them by its strategy:
 *   `one_for_one` restarts only the child that died; `one_for_all` stops every other child and
 *   restarts them all; `rest_for_one` stops and restarts the children started after the dead one.
 * - A child's restart type says whether it comes back: `permanent` always, `transient` only when it
 *   crashed (not when it stopped normally), `temporary` never.
 * - Restart intensity bounds crash loops: more than `intensity` restarts within `periodMs` and the
 *   supervisor stops all its children and fails itself, so its own supervisor decides (escalation).
 * - Argus adds backoff: the n-th restart of a child within the period waits exponentially longer,
 *   with jitter and a cap. The first restart is immediate.
 */

import type { ActorDefinition } from '../runtime/actor.ts';
import { ArgusError } from '../runtime/errors.ts';
import type { ChildObserver } from './supervisor.ts';

export type Strategy = 'one_for_one' | 'one_for_all' | 'rest_for_one';
export type RestartType = 'permanent' | 'transient' | 'temporary';

export interface Backoff {
  /** Delay of the second restart within the period; each later one doubles it. */
  readonly minMs: number;
  /** Upper bound of any delay. */
  readonly maxMs: number;
  /** Fraction of random spread around the delay: 0.2 means ±20 %. */
  readonly jitter: number;
}

export interface SupervisorFlags {
  readonly strategy: Strategy;
  /** Max restarts within `periodMs`; one more and the supervisor escalates. */
  readonly intensity: number;
  readonly periodMs: number;
  readonly backoff: Backoff;
}

export const DEFAULT_BACKOFF: Backoff = { minMs: 10, maxMs: 10_000, jitter: 0.2 };

/** OTP's defaults: `#{strategy => one_for_one, intensity => 1, period => 5}`. */
export const DEFAULT_FLAGS: SupervisorFlags = {
  strategy: 'one_for_one',
  intensity: 1,
  periodMs: 5_000,
  backoff: DEFAULT_BACKOFF,
};

export interface WorkerSpec<S = unknown, M extends { type: string } = { type: string }> {
  readonly id: string;
  readonly type: 'worker';
  readonly restart: RestartType;
  /** How long a graceful stop may take before the child is killed. */
  readonly shutdownMs: number;
  readonly actor: ActorDefinition<S, M>;
}

export interface SupervisorSpec {
  readonly id: string;
  readonly type: 'supervisor';
  readonly restart: RestartType;
  readonly shutdownMs: number;
  readonly flags: SupervisorFlags;
  readonly children: readonly ChildSpec[];
  /** Told of every child start and end, in every incarnation of this supervisor (in-process owners). */
  readonly observer?: ChildObserver;
}

// biome-ignore lint/suspicious/noExplicitAny: a child list holds workers of any state and message type
export type ChildSpec = WorkerSpec<any, any> | SupervisorSpec;

export interface ChildOptions {
  readonly restart?: RestartType;
  readonly shutdownMs?: number;
}

export const worker = <S, M extends { type: string }>(
  id: string,
  actor: ActorDefinition<S, M>,
  options: ChildOptions = {},
): WorkerSpec<S, M> =>
  validateChildSpec({
    id,
    type: 'worker',
    restart: options.restart ?? 'permanent',
    shutdownMs: options.shutdownMs ?? 5_000,
    actor,
  }) as WorkerSpec<S, M>;

export const supervisor = (
  id: string,
  flags: Partial<Omit<SupervisorFlags, 'backoff'>> & { backoff?: Partial<Backoff> },
  children: readonly ChildSpec[],
  options: ChildOptions & { readonly observer?: ChildObserver } = {},
): SupervisorSpec =>
  validateChildSpec({
    id,
    type: 'supervisor',
    restart: options.restart ?? 'permanent',
    shutdownMs: options.shutdownMs ?? 30_000,
    flags: { ...DEFAULT_FLAGS, ...flags, backoff: { ...DEFAULT_BACKOFF, ...flags.backoff } },
    children,
    ...(options.observer ? { observer: options.observer } : {}),
  }) as SupervisorSpec;

// One tiny validator per field; each returns the complaint as data, or undefined when fine.
const STRATEGIES: readonly Strategy[] = ['one_for_one', 'one_for_all', 'rest_for_one'];
const RESTART_TYPES: readonly RestartType[] = ['permanent', 'transient', 'temporary'];

type Complaint = { field: string; value: unknown; problem: string };

const checkId = (v: unknown): Complaint | undefined =>
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what it refuses
  typeof v === 'string' && v.length > 0 && v.length <= 512 && !/[\u0000-\u001f]/.test(v)
    ? undefined
    : { field: 'id', value: v, problem: 'must be a string of 1-512 characters without control characters' };
const checkRestart = (v: unknown): Complaint | undefined =>
  RESTART_TYPES.includes(v as RestartType)
    ? undefined
    : { field: 'restart', value: v, problem: `must be one of ${RESTART_TYPES.join(', ')}` };
const checkStrategy = (v: unknown): Complaint | undefined =>
  STRATEGIES.includes(v as Strategy)
    ? undefined
    : { field: 'strategy', value: v, problem: `must be one of ${STRATEGIES.join(', ')}` };
const checkNonNegativeInt = (field: string, v: unknown): Complaint | undefined =>
  Number.isInteger(v) && (v as number) >= 0
    ? undefined
    : { field, value: v, problem: 'must be an integer >= 0' };
const checkPositiveInt = (field: string, v: unknown): Complaint | undefined =>
  Number.isInteger(v) && (v as number) > 0
    ? undefined
    : { field, value: v, problem: 'must be an integer > 0' };
const checkJitter = (v: unknown): Complaint | undefined =>
  typeof v === 'number' && v >= 0 && v <= 1
    ? undefined
    : { field: 'backoff.jitter', value: v, problem: 'must be in [0, 1]' };

export const specComplaints = (spec: ChildSpec): Complaint[] => {
  const found: (Complaint | undefined)[] = [
    checkId(spec.id),
    checkRestart(spec.restart),
    checkNonNegativeInt('shutdownMs', spec.shutdownMs),
  ];
  if (spec.type === 'supervisor') {
    const f = spec.flags;
    found.push(
      checkStrategy(f.strategy),
      checkNonNegativeInt('intensity', f.intensity),
      checkPositiveInt('periodMs', f.periodMs),
      checkNonNegativeInt('backoff.minMs', f.backoff.minMs),
      checkNonNegativeInt('backoff.maxMs', f.backoff.maxMs),
      checkJitter(f.backoff.jitter),
    );
    const seen = new Set<string>();
    for (const child of spec.children) {
      if (seen.has(child.id))
        found.push({ field: 'children', value: child.id, problem: 'duplicate child id' });
      seen.add(child.id);
    }
  } else if (spec.type === 'worker') {
    if (typeof spec.actor?.receive !== 'function')
      found.push({
        field: 'actor',
        value: spec.actor,
        problem: 'must be an actor definition with receive()',
      });
  } else {
    found.push({
      field: 'type',
      value: (spec as { type: unknown }).type,
      problem: "must be 'worker' or 'supervisor'",
    });
  }
  return found.filter((c): c is Complaint => c !== undefined);
};

export const validateChildSpec = <T extends ChildSpec>(spec: T): T => {
  const complaints = specComplaints(spec);
  if (complaints.length > 0) {
    const text = complaints.map((c) => `${c.field} ${JSON.stringify(c.value)} ${c.problem}`).join('; ');
    throw new ArgusError('ARGUS_ERR_INVALID_CHILD_SPEC', `child spec '${String(spec.id)}': ${text}`, {
      id: spec.id,
      complaints,
    });
  }
  return spec;
};
