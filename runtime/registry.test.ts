import { describe, expect, it } from 'vitest';
import type { LifecycleEvent } from './events.ts';
import { EntityRegistry, HISTORY } from './registry.ts';

const life = (
  phase: LifecycleEvent['phase'],
  path: string,
  at: number,
  extra: Partial<LifecycleEvent> = {},
) => ({ type: '@argus.lifecycle', phase, path, at, ...extra }) as LifecycleEvent;

describe('EntityRegistry', () => {
  it('follows the lifecycle of the entities of the shards it holds, by path', () => {
    const r = new EntityRegistry();
    r.open('host-kind', 3);
    const t = r.epochMs;
    r.lifecycle(life('started', 'node/shards/host-kind-3/web/01', t + 1_000));
    r.lifecycle(life('crashed', 'node/shards/host-kind-3/web/01', t + 2_000, { error: 'bad' }));
    r.lifecycle(life('restarted', 'node/shards/host-kind-3/web/01', t + 3_000, { restarts: 1 }));
    r.lifecycle(life('started', 'node/shards/other-1/x', 4)); // a shard not held: ignored
    r.lifecycle(life('escalated', 'node/shards/host-kind-3', 5)); // the shard supervisor itself: ignored
    const e = r.get('host-kind', 3, 'web/01')!;
    expect([e.status, e.restarts, e.lastError]).toEqual(['active', 1, { message: 'bad', at: t + 2_000 }]);
    // Activations are not stored, only the last one's second: historyOf puts it in its place.
    expect(e.history!.map((h) => h.phase)).toEqual(['crashed', 'restarted']);
    expect(
      r
        .shard('host-kind', 3)!
        .historyOf(e)
        .map((h) => [h.phase, h.at - t]),
    ).toEqual([
      ['started', 1_000],
      ['crashed', 2_000],
      ['restarted', 3_000],
    ]);
    expect(r.count()).toBe(1);
    r.lifecycle(life('passivated', 'node/shards/host-kind-3/web/01', 6));
    expect(e.status).toBe('passivated');
    r.lifecycle(life('stopped', 'node/shards/host-kind-3/web/01', 7, { reason: 'shutdown' }));
    expect(e.status).toBe('stopped');
  });

  it('keeps the last 20 history entries, and an admin restart’s crash is not the entity’s error', () => {
    const r = new EntityRegistry();
    const shard = r.open('k', 0);
    for (let i = 0; i < 30; i++) r.lifecycle(life('passivated', 'node/shards/k-0/a', i));
    const e = r.get('k', 0, 'a')!;
    expect(e.history).toHaveLength(HISTORY);
    expect(e.history![0]!.at).toBe(10);
    r.admin('k', 0, 'a', 'restart', 'ops', 40);
    shard.adminRestarts.add('a');
    r.lifecycle(life('crashed', 'node/shards/k-0/a', 41, { error: "restarted by 'ops' (inspector)" }));
    r.lifecycle(life('restarted', 'node/shards/k-0/a', 42));
    expect(e.lastError).toBe(undefined);
    expect(e.restarts).toBe(1);
    expect(e.history!.slice(-3).map((h) => [h.phase, h.by])).toEqual([
      ['admin', 'ops'],
      ['crashed', undefined],
      ['restarted', undefined],
    ]);
  });

  it('searches by case-insensitive substring, kind and status, sorted by kind then key, first N', () => {
    const r = new EntityRegistry();
    const a = r.open('b-kind', 0);
    const b = r.open('a-kind', 1);
    for (const k of ['Zeta', 'alpha', 'beta']) a.processed(k, 2);
    for (const k of ['gamma', 'ALPHA-2']) b.processed(k, 1);
    expect(r.search({ first: 10 }).items.map((e) => `${e.kind}/${e.key}`)).toEqual([
      'a-kind/ALPHA-2',
      'a-kind/gamma',
      'b-kind/Zeta',
      'b-kind/alpha',
      'b-kind/beta',
    ]);
    const q = r.search({ q: 'alp', first: 1 });
    expect([q.total, q.items.map((e) => e.key)]).toEqual([2, ['ALPHA-2']]);
    expect(r.search({ kind: 'b-kind', q: 'ETA', first: 10 }).items.map((e) => e.key)).toEqual([
      'Zeta',
      'beta',
    ]);
    expect(r.search({ status: 'passivated', first: 10 }).total).toBe(0);
    expect(r.search({ first: 0 })).toEqual({ total: 5, items: [] });
    expect(a.entities.get('alpha')).toMatchObject({ processed: 2 });
    expect(q.items[0]).toEqual({
      kind: 'a-kind',
      key: 'ALPHA-2',
      partition: 1,
      status: 'active',
      restarts: 0,
      processed: 1,
      lastError: null,
    });
    r.drop('b-kind', 0);
    expect(r.count()).toBe(2);
  });
});

describe('EntityRegistry search at scale', () => {
  it('selects the first page of many matches exactly as a full sort would', () => {
    const r = new EntityRegistry();
    const shards = [r.open('b', 0), r.open('a', 1), r.open('c', 2)];
    let seed = 7;
    const next = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed;
    };
    const all: string[] = [];
    for (let i = 0; i < 5_000; i++) {
      const shard = shards[next() % 3]!;
      const key = `k-${next().toString(36)}`;
      if (shard.entities.has(key)) continue;
      shard.processed(key, 1);
      all.push(`${shard.kind}/${key}`);
    }
    const sorted = [...all].sort((x, y) => {
      const [kx, ...rx] = x.split('/');
      const [ky, ...ry] = y.split('/');
      return kx! < ky! ? -1 : kx! > ky! ? 1 : rx.join('/') < ry.join('/') ? -1 : 1;
    });
    for (const first of [1, 7, 100, 1_249, 1_250, 5_000]) {
      const got = r.search({ first });
      expect(got.total).toBe(all.length);
      expect(got.items.map((i) => `${i.kind}/${i.key}`)).toEqual(sorted.slice(0, first));
    }
  });
});

describe('EntityRegistry search text', () => {
  it('matches the text literally, whatever regular-expression characters it holds', () => {
    const r = new EntityRegistry();
    const s = r.open('k', 0);
    for (const k of ['a.b', 'aXb', 'A(B)', 'x[1]', 'c\\d', 'C-01', 'p$q', 'z*']) s.processed(k, 1);
    const keys = (q: string) => r.search({ q, first: 10 }).items.map((i) => i.key);
    expect(keys('a.b')).toEqual(['a.b']);
    expect(keys('a(b')).toEqual(['A(B)']);
    expect(keys('[1')).toEqual(['x[1]']);
    expect(keys('\\')).toEqual(['c\\d']);
    expect(keys('c-0')).toEqual(['C-01']);
    expect(keys('$q')).toEqual(['p$q']);
    expect(keys('^a')).toEqual([]);
    expect(keys('*')).toEqual(['z*']);
  });
});
