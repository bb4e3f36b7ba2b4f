/**
 * The live tail's sampling decisions, pure (tails.ts applies them). A tail client that falls behind is
 * never closed: while more than the bound waits to be sent to it, its records are thinned to 1 in
 * `every` — doubling per batch while still over, halving back per batch as it drains — and each stretch
 * of sampling of a stream ends in a marker counting what was left out, so the user sees the gap.
 */

/** The sparsest sampling: one record in 65,536 (a client that never drains costs almost nothing). */
export const MAX_SAMPLE_EVERY = 1 << 16;

/** Where the 1-in-`every` sampling of one client stands. */
export interface SampleState {
  /** Keep 1 record in this many (a power of two; 1: keep all). */
  readonly every: number;
  /** Records still to leave out before the next one kept (carried from batch to batch). */
  readonly skip: number;
}

export const NOT_SAMPLING: SampleState = { every: 1, skip: 0 };

/** The next rate for a batch: doubles while more than `bound` bytes wait, halves back otherwise. */
export const nextRate = (state: SampleState, waiting: number, bound: number): SampleState => {
  const every = waiting > bound ? Math.min(state.every * 2, MAX_SAMPLE_EVERY) : Math.max(1, state.every / 2);
  return { every, skip: Math.min(state.skip, every - 1) };
};

/** The records a batch keeps at the state's rate: one, then `every - 1` left out, and so on. */
export const pick = <T>(records: readonly T[], state: SampleState): { kept: T[]; state: SampleState } => {
  if (state.every === 1 && state.skip === 0) return { kept: [...records], state };
  const kept: T[] = [];
  let skip = state.skip;
  for (const record of records) {
    if (skip > 0) {
      skip--;
      continue;
    }
    kept.push(record);
    skip = state.every - 1;
  }
  return { kept, state: { every: state.every, skip } };
};

/** One stretch of sampling of one stream for one client (what a `sampled` marker reports). */
export interface Gap {
  /** When the stretch began (ms since the epoch). */
  readonly since: number;
  readonly dropped: number;
  readonly kept: number;
}

/**
 * Counts one batch (`passed` records through the filter, `kept` of them to be sent) into the stream's
 * stretch. A stretch opens at the first batch sampled (`every` > 1) or with a record left out; it ends
 * with a marker before the next log frame once something was left out, or silently when sampling is
 * over and nothing was. Returns the stretch still open and the marker to send first, if any.
 */
export const account = (
  gap: Gap | undefined,
  passed: number,
  kept: number,
  every: number,
  now: number,
): { gap: Gap | undefined; marker: Gap | undefined } => {
  if (gap === undefined && every === 1 && kept === passed) return { gap: undefined, marker: undefined };
  const open = gap ?? { since: now, dropped: 0, kept: 0 };
  const next = { since: open.since, dropped: open.dropped + passed - kept, kept: open.kept + kept };
  if (kept > 0 && next.dropped > 0) return { gap: undefined, marker: next };
  if (next.dropped === 0 && every === 1) return { gap: undefined, marker: undefined };
  return { gap: next, marker: undefined };
};
