/**
 * Entity-to-entity messages (`ctx.send`), against both mailboxes: a message an entity sends is
 * appended to the target's mailbox in the same checkpoint as the sender's state change — the shard's
 * Kafka transaction, or the journal's write — so a delivery that crashes after sending sends nothing,
 * and the target applies each sent message exactly once.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { defineEntity } from '../../runtime/entity.ts';
import { createRuntime, type Runtime } from '../../runtime/runtime.ts';
import { kafkaBrokers, uniquePrefix } from '../helpers/services.ts';
import { waitFor } from '../helpers/wait.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});
let running: Runtime[] = [];
afterEach(async () => {
  for (const r of running) await r.stop();
  running = [];
});

type AddMessage = { type: 'add'; n: number };

/** Forwards each number to `sink/<n mod 3>`; crashes once, after sending, on every multiple of 7. */
const crashedOnce = new Set<number>();
const relay = defineEntity<{ forwarded: number }, { type: 'relay'; n: number; to?: string }>({
  kind: 'relay',
  initialState: () => ({ forwarded: 0 }),
  receive: (s, m, ctx) => {
    const add: AddMessage = { type: 'add', n: m.n };
    ctx.send(m.to ?? 'sink', `s-${m.n % 3}`, add);
    if (m.n % 7 === 0 && !crashedOnce.has(m.n)) {
      crashedOnce.add(m.n);
      throw new Error(`crash after sending ${m.n}`);
    }
    return { forwarded: s.forwarded + 1 };
  },
});

const sink = defineEntity<{ total: number; count: number }, { type: 'add'; n: number }>({
  kind: 'sink',
  initialState: () => ({ total: 0, count: 0 }),
  parse: (p) => {
    const m = p as { type?: unknown; n?: unknown };
    if (m.type !== 'add' || typeof m.n !== 'number') throw new Error("sink takes { type: 'add', n: number }");
    return m as { type: 'add'; n: number };
  },
  receive: (s, m) => ({ total: s.total + m.n, count: s.count + 1 }),
});

const modes = {
  embedded: () => {
    const dir = mkdtempSync(join(tmpdir(), 'argus-sends-'));
    dirs.push(dir);
    return { mode: 'embedded', dataDir: dir, shards: 2 };
  },
  kafka: () => ({
    mode: 'kafka',
    shards: 2,
    kafka: { brokers: kafkaBrokers(), topicPrefix: uniquePrefix('sends') },
  }),
};

describe.each(Object.keys(modes) as (keyof typeof modes)[])('ctx.send (%s mailbox)', (name) => {
  it('delivers every sent message exactly once, crashes after sending included', async () => {
    crashedOnce.clear();
    const rt = createRuntime(modes[name]());
    const relays = rt.register(relay);
    rt.register(sink);
    running.push(rt);
    await rt.start();
    const N = 60;
    for (let n = 1; n <= N; n++) await relays.send(`r-${n % 4}`, { type: 'relay', n });
    const expected = [0, 1, 2].map((k) => {
      const ns = Array.from({ length: N }, (_, i) => i + 1).filter((n) => n % 3 === k);
      return { total: ns.reduce((a, b) => a + b, 0), count: ns.length };
    });
    await waitFor(
      'the sinks to apply every message',
      async () => {
        const states = await Promise.all([0, 1, 2].map((k) => rt.entityState('sink', `s-${k}`)));
        return states.every((s, k) => (s.state as { count: number }).count >= expected[k]!.count);
      },
      30_000,
      50,
    );
    // A little longer, so that a duplicate would have arrived.
    await new Promise((r) => setTimeout(r, 300));
    for (const k of [0, 1, 2]) expect((await rt.entityState('sink', `s-${k}`)).state).toEqual(expected[k]);
    const forwarded = await Promise.all([0, 1, 2, 3].map((k) => relays.state(`r-${k}`)));
    expect(forwarded.reduce((n, r) => n + r.state.forwarded, 0)).toBe(N);
    expect(crashedOnce.size).toBe(8);
  }, 60_000);

  it('treats a send to an unknown kind or with a bad message as a crash of the sender', async () => {
    const rt = createRuntime({ ...modes[name](), deadLetter: { maxAttempts: 2 } });
    const relays = rt.register(relay);
    const sinks = rt.register(sink);
    running.push(rt);
    await rt.start();
    await relays.send('bad', { type: 'relay', n: 1, to: 'nowhere' });
    await relays.send('bad', { type: 'relay', n: 2 });
    await waitFor(
      'the bad send to be dead-lettered',
      async () => (await rt.deadLetters('relay')).length === 1,
      30_000,
      50,
    );
    const [letter] = await rt.deadLetters('relay');
    expect(letter!.reason).toBe('crashed');
    expect(letter!.error).toContain("no entity kind 'nowhere' is registered to send to");
    await waitFor(
      'the good send after it',
      async () => (await sinks.state('s-2')).state.count === 1,
      30_000,
      50,
    );
    expect((await rt.entityState('sink', 's-2')).state).toEqual({ total: 2, count: 1 });
  }, 60_000);
});
