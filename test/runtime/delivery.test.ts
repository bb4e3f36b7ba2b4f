/**
 * Delivery contracts of the runtime, against both mailboxes (the embedded journal and a real Kafka
 * broker): state survives a restart, a poison message is dead-lettered after N attempts and later
 * messages still flow, and bytes that are not a valid envelope are dead-lettered with a reason.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pack } from 'msgpackr';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { counter } from '../../actors/counter/counter.ts';
import { defineEntity } from '../../runtime/entity.ts';
import { encodeEnvelope, shardOf } from '../../runtime/envelope.ts';
import { isArgusError } from '../../runtime/errors.ts';
import type { ArgusEvent } from '../../runtime/events.ts';
import { createRuntime, type Runtime } from '../../runtime/runtime.ts';
import { kafkaBrokers, uniquePrefix } from '../helpers/services.ts';
import { waitFor } from '../helpers/wait.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** A config per mailbox; calling it again for the same test gives the same data (dir or topic prefix). */
const modes = {
  embedded: () => {
    const dir = mkdtempSync(join(tmpdir(), 'argus-delivery-'));
    dirs.push(dir);
    return () => ({ mode: 'embedded', dataDir: dir, shards: 4 });
  },
  kafka: () => {
    const prefix = uniquePrefix('delivery');
    return () => ({ mode: 'kafka', shards: 4, kafka: { brokers: kafkaBrokers(), topicPrefix: prefix } });
  },
};

const poison = defineEntity<{ seen: number[] }, { type: 'n'; n: number }>({
  kind: 'poison',
  initialState: () => ({ seen: [] }),
  receive: (s, m) => {
    if (m.n === 13) throw new Error('thirteen is unlucky');
    s.seen.push(m.n);
    return s;
  },
});

let running: Runtime[] = [];
afterEach(async () => {
  for (const r of running) await r.stop();
  running = [];
});

const start = async <T>(config: object, register: (rt: Runtime) => T): Promise<[Runtime, T]> => {
  const rt = createRuntime(config);
  const client = register(rt);
  running.push(rt);
  await rt.start();
  return [rt, client];
};

describe.each(Object.keys(modes) as (keyof typeof modes)[])('delivery (%s mailbox)', (name) => {
  it('applies messages in order per entity and keeps state and offsets across a restart', async () => {
    const config = modes[name]();
    const [rt, counters] = await start(config(), (r) => r.register(counter));
    await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        counters.send(`c-${(i + 1) % 5}`, { type: 'inc', by: 1, seq: i + 1 }),
      ),
    );
    await waitFor('all applied', async () => {
      const states = await Promise.all([0, 1, 2, 3, 4].map((k) => counters.state(`c-${k}`)));
      return states.every((s) => s.state.count === 20);
    });
    const s1 = await counters.state('c-1');
    expect(s1.state.applied).toEqual([
      1, 6, 11, 16, 21, 26, 31, 36, 41, 46, 51, 56, 61, 66, 71, 76, 81, 86, 91, 96,
    ]);
    expect(s1.active).toBe(true);
    await rt.stop();

    const [, again] = await start(config(), (r) => r.register(counter));
    const after = await again.state('c-1');
    expect(after).toEqual({ state: s1.state, offset: s1.offset, active: false });
    await again.send('c-1', { type: 'inc', by: 5, seq: 101 });
    await waitFor('applied after restart', async () => (await again.state('c-1')).state.count === 25);
    expect((await again.state('c-1')).state.applied.slice(-2)).toEqual([96, 101]);
    // Keys are free-form: characters nact refuses in actor names are escaped, not rejected.
    const odd = 'payments/nginx@web-12:8080 $x';
    await again.send(odd, { type: 'inc', by: 3 });
    await waitFor('odd key applied', async () => (await again.state(odd)).state.count === 3);
  });

  it('dead-letters a poison message after 3 attempts with its error, and later messages still flow', async () => {
    const config = modes[name]();
    const events: ArgusEvent[] = [];
    const [rt, p] = await start(config(), (r) => {
      r.subscribe((e) => events.push(e));
      return r.register(poison);
    });
    for (let n = 10; n <= 16; n++) await p.send('k', { type: 'n', n });
    await waitFor('later messages', async () => (await p.state('k')).state.seen.length === 6, 30_000);
    expect((await p.state('k')).state.seen).toEqual([10, 11, 12, 14, 15, 16]);
    // The entity's state is visible before its batch's dead letters are durable: wait for them.
    const letters = await waitFor('the dead letter', async () => {
      const l = await rt.deadLetters('poison');
      return l.length > 0 && l;
    });
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({
      kind: 'poison',
      key: 'k',
      reason: 'crashed',
      error: 'thirteen is unlucky',
      attempts: 3,
      partition: shardOf('k', 4),
    });
    expect(letters[0]!.offset).toBe(3);
    const crashes = events.filter((e) => e.type === '@argus.lifecycle' && e.phase === 'crashed');
    expect(crashes.map((e) => (e.type === '@argus.lifecycle' ? [e.path, e.error] : []))).toEqual(
      Array.from({ length: 3 }, () => [`node/shards/poison-${shardOf('k', 4)}/k`, 'thirteen is unlucky']),
    );
    const dl = events.filter((e) => e.type === '@argus.deadletter');
    expect(dl).toHaveLength(1);
    expect(dl[0]).toMatchObject({ reason: 'crashed', key: 'k', attempts: 3 });
  });

  it('dead-letters garbage bytes, an unknown envelope version, an invalid payload and a key no entity can have, with reasons, and keeps going', async () => {
    const config = modes[name]();
    const [rt, counters] = await start(config(), (r) => r.register(counter));
    const key = 'bad-input';
    const partition = shardOf(key, 4);
    const mailbox = (
      rt as unknown as { boundaries: { mailbox: import('../../runtime/boundaries.ts').MailboxTransport } }
    ).boundaries.mailbox;
    const garbage = new Uint8Array([0xc1, 0xff, 0x00, 0x13, 0x37]);
    const v9 = pack([9, 'id-9', 'counter', key, 'inc', 1, { type: 'inc', by: 1 }]);
    const invalid = encodeEnvelope({
      id: 'id-x',
      kind: 'counter',
      key,
      type: 'inc',
      timestamp: 1,
      payload: { type: 'inc', by: 'lots' },
    });
    // A valid envelope whose key hashes to another shard than the partition it sits in.
    const other = [...Array(50).keys()]
      .map((i) => `elsewhere-${i}`)
      .find((k) => shardOf(k, 4) !== partition)!;
    const wrong = encodeEnvelope({
      id: 'id-w',
      kind: 'counter',
      key: other,
      type: 'inc',
      timestamp: 1,
      payload: { type: 'inc', by: 1 },
    });
    // A key no entity can have (a control character): written around send(), which refuses it.
    const tabbed = encodeEnvelope({
      id: 'id-t',
      kind: 'counter',
      key: 'tab\there',
      type: 'inc',
      timestamp: 1,
      payload: { type: 'inc', by: 1 },
    });
    await mailbox.append('counter', [
      { partition, key, value: garbage },
      { partition, key, value: v9 },
      { partition, key, value: invalid },
      { partition, key, value: wrong },
      { partition, key, value: tabbed },
    ]);
    await counters.send(key, { type: 'inc', by: 7 });
    await waitFor(
      'the valid message after the bad ones',
      async () => (await counters.state(key)).state.count === 7,
      30_000,
    );
    const letters = await waitFor('five dead letters', async () => {
      const l = await rt.deadLetters('counter');
      return l.length >= 5 && l;
    });
    expect(letters.map((l) => [l.offset, l.reason, l.key])).toEqual([
      [0, 'undecodable', key],
      [1, 'unknown-version', key],
      [2, 'invalid-message', key],
      [3, 'wrong-shard', other],
      [4, 'invalid-key', 'tab\there'],
    ]);
    expect(letters[4]!.error).toBe(
      'key "tab\\there" cannot name an entity: 1-512 characters without control characters',
    );
    expect(letters[1]!.error).toBe('unknown envelope version 9 (this node reads 1)');
    expect(letters[2]!.error).toBe("counter 'inc' needs a finite number 'by'");
    expect(letters[3]!.error).toBe(
      `key '${other}' belongs to shard ${shardOf(other, 4)}, read from shard ${partition}`,
    );
    expect(Buffer.from(letters[0]!.value).equals(Buffer.from(garbage))).toBe(true);
    expect(letters.every((l) => l.attempts === 0)).toBe(true);
  });

  it('passivates an idle entity and reactivates it from its snapshot on its next message', async () => {
    const config = modes[name]();
    const events: ArgusEvent[] = [];
    const [rt, counters] = await start({ ...config(), passivation: { idleMs: 200 } }, (r) => {
      r.subscribe((e) => events.push(e));
      return r.register(counter);
    });
    const path = `node/shards/counter-${shardOf('idle-1', 4)}/idle-1`;
    await counters.send('idle-1', { type: 'inc', by: 4 });
    await waitFor('applied', async () => (await counters.state('idle-1')).state.count === 4);
    await waitFor(
      'passivated',
      () => events.some((e) => e.type === '@argus.lifecycle' && e.phase === 'passivated'),
      5_000,
    );
    expect(await counters.state('idle-1')).toEqual({
      state: { count: 4, applied: [] },
      offset: 0,
      active: false,
    });
    expect(rt.inspect().shards.reduce((n, s) => n + s.active, 0)).toBe(0);
    await counters.send('idle-1', { type: 'inc', by: 1 });
    await waitFor('reactivated', async () => (await counters.state('idle-1')).state.count === 5);
    const phases = events.flatMap((e) => (e.type === '@argus.lifecycle' && e.path === path ? [e.phase] : []));
    expect(phases.slice(0, 3)).toEqual(['started', 'passivated', 'started']);
  });

  it('refuses an invalid message at send time with an error naming the problem', async () => {
    const config = modes[name]();
    const [, counters] = await start(config(), (r) => r.register(counter));
    const e = await counters.send('x', { type: 'inc', by: Number.NaN }).catch((err) => err);
    expect(isArgusError(e, 'ARGUS_ERR_INVALID_MESSAGE')).toBe(true);
    expect(e.message).toBe(
      "ARGUS_ERR_INVALID_MESSAGE: message for counter/x: counter 'inc' needs a finite number 'by'",
    );
    const k = await counters.send('', { type: 'reset' }).catch((err) => err);
    expect(isArgusError(k, 'ARGUS_ERR_INVALID_KEY')).toBe(true);
  });
});

describe('topic names', () => {
  it('refuses at start two kinds whose topics differ only by . and _, naming both', async () => {
    const rt = createRuntime(modes.embedded()());
    rt.register(defineEntity({ kind: 'web.hosts', initialState: () => ({}), receive: (s) => s }));
    rt.register(defineEntity({ kind: 'web_hosts', initialState: () => ({}), receive: (s) => s }));
    const e = await rt.start().catch((err) => err);
    expect(isArgusError(e, 'ARGUS_ERR_INVALID_TOPIC')).toBe(true);
    expect(e.message).toContain(
      "topic names 'argus.mailbox.web.hosts' and 'argus.mailbox.web_hosts' collide: " +
        "Kafka treats '.' and '_' alike in metric names",
    );
  });
});
