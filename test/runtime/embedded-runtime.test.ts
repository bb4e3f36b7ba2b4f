import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { counter } from '../../actors/counter/counter.ts';
import { defineEntity } from '../../runtime/entity.ts';
import type { ArgusEvent } from '../../runtime/events.ts';
import { createRuntime, type Runtime } from '../../runtime/runtime.ts';
import { waitFor } from '../helpers/wait.ts';

let rt: Runtime | undefined;
let dir: string | undefined;
afterEach(async () => {
  await rt?.stop();
  rt = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const fresh = (extra: Record<string, unknown> = {}) => {
  dir ??= mkdtempSync(join(tmpdir(), 'argus-rt-'));
  return createRuntime({ mode: 'embedded', dataDir: dir, shards: 4, ...extra });
};

describe('embedded runtime', () => {
  it('applies sent messages to entities and keeps their state across a restart', async () => {
    rt = fresh();
    const counters = rt.register(counter);
    await rt.start();
    for (let i = 1; i <= 100; i++) await counters.send(`c-${i % 5}`, { type: 'inc', by: 1, seq: i });
    await waitFor('all applied', async () => (await counters.state('c-0')).state.count === 20);
    const s1 = await counters.state('c-1');
    expect(s1.state.count).toBe(20);
    expect(s1.state.applied).toEqual([1, 6, 11, 16, 21, 26, 31, 36, 41, 46, 51, 56, 61, 66, 71, 76, 81, 86, 91, 96]);
    expect(s1.active).toBe(true);
    await rt.stop();

    rt = fresh();
    const again = rt.register(counter);
    await rt.start();
    const after = await again.state('c-1');
    expect(after).toEqual({ state: s1.state, offset: s1.offset, active: false });
    await again.send('c-1', { type: 'inc', by: 5 });
    await waitFor('applied after restart', async () => (await again.state('c-1')).state.count === 25);
  });

  it('dead-letters a poison message after 3 attempts with its error and keeps processing', async () => {
    rt = fresh();
    const poison = defineEntity<{ seen: number[] }, { type: 'n'; n: number }>({
      kind: 'poison',
      initialState: () => ({ seen: [] }),
      receive: (s, m) => {
        if (m.n === 13) throw new Error('thirteen is unlucky');
        s.seen.push(m.n);
        return s;
      },
    });
    const events: ArgusEvent[] = [];
    rt.subscribe((e) => events.push(e));
    const p = rt.register(poison);
    await rt.start();
    for (let n = 10; n <= 16; n++) await p.send('k', { type: 'n', n });
    await waitFor('later messages', async () => (await p.state('k')).state.seen.length === 6);
    expect((await p.state('k')).state.seen).toEqual([10, 11, 12, 14, 15, 16]);
    const letters = await rt.deadLetters('poison');
    expect(letters).toHaveLength(1);
    expect(letters[0]).toMatchObject({ kind: 'poison', key: 'k', reason: 'crashed', error: 'thirteen is unlucky', attempts: 3 });
    const crashes = events.filter((e) => e.type === '@argus.lifecycle' && e.phase === 'crashed');
    expect(crashes).toHaveLength(3);
    const dl = events.filter((e) => e.type === '@argus.deadletter');
    expect(dl).toHaveLength(1);
  });
});
