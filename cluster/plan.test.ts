import { describe, expect, it } from 'vitest';
import type { MemberInfo } from '../runtime/boundaries.ts';
import type { KindPlacement } from './documents.ts';
import { placeKind } from './placement.ts';
import { planPlacement } from './plan.ts';

const member = (id: string, kinds: Record<string, number>, weight = 1): MemberInfo => ({
  id,
  address: undefined,
  version: '0.1.0',
  weight,
  kinds,
  joinedAt: 0,
});

const stored = (owners: (string | undefined)[], epoch: number): KindPlacement => ({
  revision: epoch,
  owners: owners.map((node) => ({ node, epoch })),
});

describe('planPlacement', () => {
  it('places every kind of every member on first write, all at this write (epoch 0)', () => {
    const members = [member('a', { host: 8, rule: 4 }), member('b', { host: 8, rule: 4 })];
    const { changed, conflicts } = planPlacement(members, new Map());
    expect(conflicts).toEqual([]);
    expect([...changed.keys()]).toEqual(['host', 'rule']);
    const candidates = [
      { id: 'a', weight: 1 },
      { id: 'b', weight: 1 },
    ];
    expect(changed.get('host')!.map((o) => o.node)).toEqual(placeKind('host', 8, candidates));
    expect(changed.get('rule')!.map((o) => o.node)).toEqual(placeKind('rule', 4, candidates));
    expect(changed.get('host')!.every((o) => o.epoch === 0)).toBe(true);
  });

  it('writes nothing when placement already is what the members give (a new leader continues)', () => {
    const members = [member('a', { host: 8 }), member('b', { host: 8 })];
    const owners = placeKind('host', 8, [
      { id: 'a', weight: 1 },
      { id: 'b', weight: 1 },
    ]);
    const { changed } = planPlacement(members, new Map([['host', stored(owners, 40)]]));
    expect(changed.size).toBe(0);
  });

  it('keeps the epoch of every shard whose owner stays, and marks the moved ones', () => {
    const two = [member('a', { host: 16 }), member('b', { host: 16 })];
    const before = planPlacement(two, new Map())
      .changed.get('host')!
      .map((o) => o.node);
    const three = [...two, member('c', { host: 16 })];
    const after = planPlacement(three, new Map([['host', stored(before, 40)]])).changed.get('host')!;
    after.forEach((o, shard) => {
      if (o.node === before[shard]) expect(o.epoch).toBe(40);
      else {
        expect(o.node).toBe('c');
        expect(o.epoch).toBe(0);
      }
    });
    expect(after.some((o) => o.node === 'c')).toBe(true);
  });

  it('keeps the shard count of a placed kind and leaves out members that disagree, saying so', () => {
    const members = [member('a', { host: 8 }), member('b', { host: 4 })];
    const { changed, conflicts } = planPlacement(
      members,
      new Map([
        [
          'host',
          stored(
            Array.from({ length: 8 }, () => 'b'),
            5,
          ),
        ],
      ]),
    );
    expect(conflicts).toEqual(["member 'b' has 4 shards of 'host', the cluster has 8"]);
    expect(changed.get('host')!.map((o) => o.node)).toEqual(Array.from({ length: 8 }, () => 'a'));
  });

  it('places a kind only on the members that run it; weight 0 members own nothing', () => {
    const members = [member('a', { host: 4 }), member('b', { host: 4, log: 2 }), member('c', { host: 4 }, 0)];
    const { changed } = planPlacement(members, new Map());
    expect(changed.get('log')!.map((o) => o.node)).toEqual(['b', 'b']);
    expect(changed.get('host')!.some((o) => o.node === 'c')).toBe(false);
  });

  it('leaves the shards of a kind nobody runs any more without an owner', () => {
    const { changed } = planPlacement([member('a', { host: 2 })], new Map([['log', stored(['x', 'x'], 9)]]));
    expect(changed.get('log')).toEqual([
      { node: undefined, epoch: 0 },
      { node: undefined, epoch: 0 },
    ]);
  });
});
