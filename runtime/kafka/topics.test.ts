import { describe, expect, it } from 'vitest';
import { isArgusError } from '../errors.ts';
import {
  deadLetterTopic,
  eventsTopic,
  mailboxTopic,
  stateTopic,
  topicNames,
  validateTopicNames,
} from './topics.ts';

const rejection = (names: string[]): { message: string; detail: Readonly<Record<string, unknown>> } => {
  try {
    validateTopicNames(names);
  } catch (e) {
    if (isArgusError(e, 'ARGUS_ERR_INVALID_TOPIC')) return { message: e.message, detail: e.detail };
    throw e;
  }
  throw new Error(`expected ${JSON.stringify(names)} to be rejected`);
};

describe('topic names', () => {
  it('are built from the prefix and the kind', () => {
    expect(mailboxTopic('prod', 'host')).toBe('prod.mailbox.host');
    expect(stateTopic('prod', 'host')).toBe('prod.state.host');
    expect(deadLetterTopic('prod')).toBe('prod.deadletter');
    expect(eventsTopic('prod')).toBe('prod.events');
    expect(topicNames('prod', ['host', 'rule'])).toEqual([
      'prod.mailbox.host',
      'prod.state.host',
      'prod.mailbox.rule',
      'prod.state.rule',
      'prod.deadletter',
      'prod.deadletter.discarded',
      'prod.events',
    ]);
  });
});

describe('validateTopicNames', () => {
  it.each([
    { names: ['argus.mailbox.host'] },
    { names: ['a', 'A', 'a-b', 'a_b'] },
    { names: ['x'.repeat(249)] },
    { names: ['argus.mailbox.host', 'argus.mailbox.host'] },
    { names: ['...', '.a', 'a..b'] },
    { names: [] },
  ])('accepts $names', ({ names }) => {
    expect(() => validateTopicNames(names)).not.toThrow();
  });

  it.each([
    { names: [''], says: 'topic name "" is empty' },
    { names: ['.'], says: 'topic name "." is reserved' },
    { names: ['..'], says: 'topic name ".." is reserved' },
    { names: ['x'.repeat(250)], says: 'is 250 characters long, the limit is 249' },
    { names: ['argus.mailbox.ho st'], says: `topic name "argus.mailbox.ho st" contains " "` },
    { names: ['a/b:c/d'], says: `topic name "a/b:c/d" contains "/", ":": only letters` },
    { names: ['host✓'], says: `contains "✓"` },
  ])('rejects $names: $says', ({ names, says }) => {
    expect(rejection(names).message).toContain(says);
  });

  it('rejects names that differ only by "." and "_", naming both', () => {
    const { message, detail } = rejection(['p.mailbox.web_hosts', 'p.mailbox.web.hosts', 'p.events']);
    expect(message).toBe(
      "ARGUS_ERR_INVALID_TOPIC: topic names 'p.mailbox.web.hosts' and 'p.mailbox.web_hosts' collide: " +
        "Kafka treats '.' and '_' alike in metric names",
    );
    expect(detail.collisions).toEqual([['p.mailbox.web.hosts', 'p.mailbox.web_hosts']]);
  });

  it('names every offending name in one error', () => {
    const { message, detail } = rejection(['ok', '', 'bad name', 'a.b', 'a_b']);
    expect(message).toBe(
      'ARGUS_ERR_INVALID_TOPIC: topic name "" is empty; ' +
        `topic name "bad name" contains " ": only letters, digits, '.', '_' and '-' are allowed; ` +
        "topic names 'a.b' and 'a_b' collide: Kafka treats '.' and '_' alike in metric names",
    );
    expect(detail.invalid).toEqual([
      { name: '', reason: 'is empty' },
      { name: 'bad name', reason: `contains " ": only letters, digits, '.', '_' and '-' are allowed` },
    ]);
  });
});
