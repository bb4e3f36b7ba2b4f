import { afterEach, describe, expect, it } from 'vitest';
import type { DeadLetter } from '../../runtime/boundaries.ts';
import { KafkaDeadLetterStore } from '../../runtime/kafka/deadletters.ts';
import { kafkaBrokers, uniquePrefix } from '../helpers/services.ts';
import { bytes } from './support.ts';

const open: KafkaDeadLetterStore[] = [];
const store = (topicPrefix: string): KafkaDeadLetterStore => {
  const s = new KafkaDeadLetterStore({ brokers: kafkaBrokers(), clientId: 'deadletters-test', topicPrefix });
  open.push(s);
  return s;
};

afterEach(async () => {
  await Promise.all(open.splice(0).map((s) => s.close()));
});

const letters: DeadLetter[] = [
  {
    kind: 'host',
    partition: 3,
    offset: 17,
    key: 'web-12',
    reason: 'crashed',
    error: 'TypeError: cannot read properties of undefined',
    attempts: 3,
    at: 1_767_225_600_000,
    value: bytes('{"type":"host.poll"}'),
  },
  {
    kind: 'rule',
    partition: 0,
    offset: 2,
    key: undefined,
    reason: 'undecodable',
    error: 'not msgpack',
    attempts: 1,
    at: 1_767_225_601_500,
    value: new Uint8Array([0xc1, 0x00, 0xff]),
  },
  {
    kind: 'host',
    partition: 1,
    offset: 9_007_199_254_740,
    key: 'db-1',
    reason: 'unknown-version',
    error: 'envelope version 9',
    attempts: 1,
    at: 1_767_225_602_250,
    value: new Uint8Array(0),
  },
];

describe('KafkaDeadLetterStore', () => {
  it('gives back every dead letter exactly, oldest first, also to a fresh store', async () => {
    const prefix = uniquePrefix('deadletters');
    const s = store(prefix);
    await s.ensure();
    expect(await s.list()).toEqual([]);
    await s.put(letters.slice(0, 2));
    await s.put(letters.slice(2));
    expect(await s.list()).toEqual(letters);

    const fresh = store(prefix);
    await fresh.ensure();
    expect(await fresh.list()).toEqual(letters);
    expect(await fresh.list('host')).toEqual([letters[0], letters[2]]);
    expect(await fresh.list('log')).toEqual([]);
  });

  it('refuses to work once closed', async () => {
    const s = store(uniquePrefix('deadletters-closed'));
    await s.ensure();
    await s.close();
    await expect(s.list()).rejects.toThrow('ARGUS_ERR_STORE_CLOSED');
  });
});
