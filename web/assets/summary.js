/** One line of text for an event of the live feed (docs/API.md, "Live event feed"); pure. */
import { labels, metric } from './format.js';

const entityOf = (path) => (typeof path === 'string' ? path : '?');

const alert = (e) => {
  const host = e.host ?? e.labels?.host;
  const parts = [`${e.status} ${e.rule}`, `severity ${e.severity}`];
  if (host) parts.push(`host ${host}`);
  if (e.service) parts.push(`service ${e.service}`);
  if (e.value !== null && e.value !== undefined) parts.push(`value ${metric(e.value)}`);
  return parts.join(' · ');
};

const lifecycle = (e) => {
  let text = `${e.phase} ${entityOf(e.path)}`;
  if (e.error) text += `: ${e.error}`;
  if (e.reason) text += ` (${e.reason})`;
  if (e.phase === 'restarted' && typeof e.restarts === 'number') text += ` (restart ${e.restarts})`;
  return text;
};

const admin = (e) => {
  let text = `${e.action} ${e.kind}/${e.key} by ${e.by} on ${e.node}`;
  if (e.messageType) text += ` (message '${e.messageType}')`;
  return text;
};

const deadLetter = (e) =>
  `${e.reason} ${e.kind}/${e.key ?? '?'} at ${e.partition}:${e.offset} after ${e.attempts} attempt(s): ${e.error}`;

const cluster = (e) => {
  const parts = [e.event];
  if (e.member) parts.push(e.member);
  if (e.kind !== undefined) parts.push(`${e.kind}${e.partition === undefined ? '' : `-${e.partition}`}`);
  if (e.epoch !== undefined) parts.push(`epoch ${e.epoch}`);
  let text = `${parts.join(' ')} on ${e.node}`;
  if (e.detail) text += `: ${e.detail}`;
  return text;
};

const notify = (e) => {
  let text = `${e.status} ${e.notification} to ${e.receiver} (attempt ${e.attempt})`;
  if (e.error) text += `: ${e.error}`;
  return text;
};

export const summarize = (e) => {
  switch (e.type) {
    case '@argus.alert':
      return alert(e);
    case '@argus.lifecycle':
      return lifecycle(e);
    case '@argus.admin':
      return admin(e);
    case '@argus.deadletter':
      return deadLetter(e);
    case '@argus.cluster':
      return cluster(e);
    case '@argus.notify':
      return notify(e);
    default: {
      const { type: _type, at: _at, ...rest } = e;
      return labels(rest);
    }
  }
};

/** The event's severity class for colouring: sev-1 … sev-5, or an empty string. */
export const severityClass = (e) =>
  typeof e.severity === 'number' ? `sev-${e.severity}` : e.type === '@argus.deadletter' ? 'sev-4' : '';
