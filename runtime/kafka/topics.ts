/**
 * Topic naming and validation (DESIGN.md, "Kafka layout"): a fixed, small set of topics per cluster
 * prefix, validated before anything is created.
 *
 * Kafka's own rules: a name is 1..249 characters of [a-zA-Z0-9._-] and is not "." or "..". And because
 * Kafka turns '.' into '_' in metric names, two topics whose names differ only by '.' vs '_' collide;
 * the broker refuses the second one, but only at creation time and with a terse error, so we refuse the
 * pair up front and name both.
 */
import { ArgusError } from '../errors.ts';

export const MAX_TOPIC_LENGTH = 249;
const LEGAL = /^[a-zA-Z0-9._-]+$/;

export const mailboxTopic = (prefix: string, kind: string): string => `${prefix}.mailbox.${kind}`;
export const stateTopic = (prefix: string, kind: string): string => `${prefix}.state.${kind}`;
export const deadLetterTopic = (prefix: string): string => `${prefix}.deadletter`;
/** Discard markers of dead letters (kafka/deadletters.ts): compacted, keyed by the letter's id. */
export const deadLetterDiscardTopic = (prefix: string): string => `${deadLetterTopic(prefix)}.discarded`;
export const eventsTopic = (prefix: string): string => `${prefix}.events`;
/** An output stream's topic (`argus.stream.metrics`): one per stream, never one per entity. */
export const streamTopic = (prefix: string, stream: string): string => `${prefix}.stream.${stream}`;

/** Every topic a node with these kinds (and output streams) uses. */
export const topicNames = (
  prefix: string,
  kinds: readonly string[],
  streams: readonly string[] = [],
): string[] => [
  ...kinds.flatMap((k) => [mailboxTopic(prefix, k), stateTopic(prefix, k)]),
  ...streams.map((s) => streamTopic(prefix, s)),
  deadLetterTopic(prefix),
  deadLetterDiscardTopic(prefix),
  eventsTopic(prefix),
];

export interface InvalidTopicName {
  readonly name: string;
  readonly reason: string;
}

/** Why a single name is not a legal Kafka topic name, or undefined when it is. */
export const topicNameProblem = (name: string): string | undefined => {
  if (name.length === 0) return 'is empty';
  if (name === '.' || name === '..') return 'is reserved';
  if (name.length > MAX_TOPIC_LENGTH)
    return `is ${name.length} characters long, the limit is ${MAX_TOPIC_LENGTH}`;
  if (!LEGAL.test(name)) {
    const bad = [...new Set([...name].filter((ch) => !LEGAL.test(ch)))].map((ch) => JSON.stringify(ch));
    return `contains ${bad.join(', ')}: only letters, digits, '.', '_' and '-' are allowed`;
  }
  return undefined;
};

/** Groups of distinct names that Kafka's metric names would confuse ('.' and '_' read the same). */
export const collidingTopicNames = (names: readonly string[]): string[][] => {
  const byMetricName = new Map<string, Set<string>>();
  for (const name of names) {
    const metricName = name.replaceAll('.', '_');
    const group = byMetricName.get(metricName) ?? new Set<string>();
    group.add(name);
    byMetricName.set(metricName, group);
  }
  return [...byMetricName.values()].filter((group) => group.size > 1).map((group) => [...group].sort());
};

/**
 * Throws ARGUS_ERR_INVALID_TOPIC naming every offending name: illegal names, and names that collide
 * with each other. Repeating the same name is not a collision.
 */
export const validateTopicNames = (names: readonly string[]): void => {
  const invalid: InvalidTopicName[] = [];
  for (const name of new Set(names)) {
    const reason = topicNameProblem(name);
    if (reason !== undefined) invalid.push({ name, reason });
  }
  const collisions = collidingTopicNames(names);
  if (invalid.length === 0 && collisions.length === 0) return;
  const parts = [
    ...invalid.map(({ name, reason }) => `topic name ${JSON.stringify(name)} ${reason}`),
    ...collisions.map(
      (group) =>
        `topic names ${group.map((n) => `'${n}'`).join(' and ')} collide: Kafka treats '.' and '_' alike in metric names`,
    ),
  ];
  throw new ArgusError('ARGUS_ERR_INVALID_TOPIC', parts.join('; '), { invalid, collisions });
};
