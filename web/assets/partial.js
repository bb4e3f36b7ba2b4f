/**
 * The "partial answer" banner of cluster-wide answers: `partial`, with `missing` (members that did not
 * answer in time) and, for hosts and alerts, `unanswered` (shards no answering member holds, e.g. those
 * of a node that died and left before its shards moved).
 */
import { h } from './dom.js';

export const partialBanner = (answer) => {
  if (!answer?.partial) return null;
  const missing = answer.missing ?? [];
  const unanswered = answer.unanswered ?? [];
  const parts = [];
  if (missing.length > 0)
    parts.push(
      `${missing.length} member(s) did not answer in time — ${missing.map((m) => `${m.node}: ${m.error}`).join('; ')}`,
    );
  if (unanswered.length > 0)
    parts.push(`${unanswered.length} shard(s) held by no member that answered — ${unanswered.join(', ')}`);
  return h('div', { class: 'problem', testid: 'partial' }, `Partial answer: ${parts.join('; ')}`);
};
