/**
 * The counter: the smallest useful entity, used by the docs, the crash tests and the benchmarks.
 * It adds numbers and remembers which numbered increments it applied, so a test can prove that every
 * message changed the state exactly once.
 */
import { defineEntity } from '../../runtime/entity.ts';

export interface CounterState {
  count: number;
  /** Sequence numbers of applied increments, in order of application (when `track` was set). */
  applied: number[];
}

export type CounterMessage =
  | { readonly type: 'inc'; readonly by: number; readonly seq?: number }
  | { readonly type: 'reset' };

export const parseCounterMessage = (payload: unknown): CounterMessage => {
  const p = payload as Partial<{ type: unknown; by: unknown; seq: unknown }>;
  if (typeof p !== 'object' || p === null) throw new Error('counter message must be an object');
  if (p.type === 'reset') return { type: 'reset' };
  if (p.type !== 'inc')
    throw new Error(`counter message type must be 'inc' or 'reset', got ${JSON.stringify(p.type)}`);
  if (typeof p.by !== 'number' || !Number.isFinite(p.by))
    throw new Error("counter 'inc' needs a finite number 'by'");
  if (p.seq !== undefined && !Number.isInteger(p.seq)) throw new Error("counter 'seq' must be an integer");
  return p.seq === undefined ? { type: 'inc', by: p.by } : { type: 'inc', by: p.by, seq: p.seq as number };
};

export const applyCounter = (state: CounterState, m: CounterMessage): CounterState => {
  switch (m.type) {
    case 'inc':
      state.count += m.by;
      if (m.seq !== undefined) state.applied.push(m.seq);
      return state;
    case 'reset':
      return { count: 0, applied: [] };
    default: {
      const never: never = m;
      throw new Error(`unknown counter message ${JSON.stringify(never)}`);
    }
  }
};

export const counter = defineEntity<CounterState, CounterMessage>({
  kind: 'counter',
  initialState: () => ({ count: 0, applied: [] }),
  parse: parseCounterMessage,
  receive: (state, m) => applyCounter(state, m),
  summary: (state) => ({ count: state.count, applied: state.applied.length }),
});
