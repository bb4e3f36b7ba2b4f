/** The "partial answer" banner of cluster-wide answers (`partial`, `missing`). */
import { h } from './dom.js';

export const partialBanner = (answer) => {
  if (!answer?.partial) return null;
  const missing = (answer.missing ?? []).map((m) => `${m.node}: ${m.error}`).join('; ');
  return h(
    'div',
    { class: 'problem', testid: 'partial' },
    `Partial answer: ${(answer.missing ?? []).length} member(s) did not answer in time — ${missing}`,
  );
};
