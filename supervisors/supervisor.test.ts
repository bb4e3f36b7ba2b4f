import { afterEach, describe, expect, it } from 'vitest';
import { type ActorRef, defineActor, tell } from '../runtime/actor.ts';
import { realClock } from '../runtime/clock.ts';
import { isArgusError } from '../runtime/errors.ts';
import { type ArgusEvent, EventBus } from '../runtime/events.ts';
import { SimulatedClock } from '../test/helpers/clock.ts';
import { waitFor } from '../test/helpers/wait.ts';
import { type RestartType, type Strategy, supervisor, worker } from './spec.ts';
import { type RunningTree, startTree } from './tree.ts';

type Msg = { type: 'crash' } | { type: 'exit' } | { type: 'inc' };

/** A worker that logs its starts and graceful stops, crashes on 'crash', ends normally on 'exit'. */
const probe = (name: string, log: string[]) =>
  defineActor<{ n: number }, Msg>({
    init: () => {
      log.push(`start:${name}`);
      return { n: 0 };
    },
    receive: (s, m, ctx) => {
      switch (m.type) {
        case 'crash':
          throw new Error(`boom ${name}`);
        case 'exit':
          ctx.stopSelf();
          return s;
        case 'inc':
          return { n: s.n + 1 };
        default: {
          const never: never = m;
          return never;
        }
      }
    },
    stop: () => {
      log.push(`stop:${name}`);
    },
  });

let tree: RunningTree | undefined;
afterEach(async () => {
  await tree?.stop();
  tree = undefined;
});

const setup = (strategy: Strategy, types: Record<string, RestartType>, flags = {}) => {
  const log: string[] = [];
  const events: ArgusEvent[] = [];
  const bus = new EventBus();
  bus.subscribe((e) => events.push(e));
  const failures: Error[] = [];
  const spec = supervisor(
    'root',
    { strategy, intensity: 10, periodMs: 1000, backoff: { maxMs: 0 }, ...flags },
    Object.entries(types).map(([id, restart]) => worker(id, probe(id, log), { restart })),
  );
  const clock = new SimulatedClock();
  tree = startTree(spec, { clock, random: () => 0.5, events: bus }, (e) => failures.push(e));
  const ref = (id: string) => tree!.root.childRef(id) as ActorRef<Msg>;
  return { log, events, failures, ref, clock, tree };
};

const settle = () => new Promise((r) => setTimeout(r, 20));

describe('a supervisor starts its children', () => {
  it('in order, and stops them in reverse order', async () => {
    const { log, tree: t } = setup('one_for_one', { a: 'permanent', b: 'permanent', c: 'permanent' });
    expect(log).toEqual(['start:a', 'start:b', 'start:c']);
    await t.stop();
    expect(log.slice(3)).toEqual(['stop:c', 'stop:b', 'stop:a']);
    tree = undefined;
  });
});

describe.each<[Strategy, string[]]>([
  ['one_for_one', ['start:b']],
  ['one_for_all', ['stop:c', 'stop:a', 'start:a', 'start:b', 'start:c']],
  ['rest_for_one', ['stop:c', 'start:b', 'start:c']],
])('%s', (strategy, afterCrash) => {
  it(`restarts ${afterCrash.filter((l) => l.startsWith('start')).join(' ')} when b crashes`, async () => {
    const { log, ref } = setup(strategy, { a: 'permanent', b: 'permanent', c: 'permanent' });
    tell(ref('b'), { type: 'crash' });
    await waitFor('restarts', () => log.length >= 3 + afterCrash.length);
    await settle();
    expect(log.slice(3)).toEqual(afterCrash);
  });

  it.each<[RestartType, boolean, boolean]>([
    ['permanent', true, true],
    ['permanent', false, true],
    ['transient', true, true],
    ['transient', false, false],
    ['temporary', true, false],
    ['temporary', false, false],
  ])('a %s child that ended (crashed=%s) comes back: %s', async (type, crashed, back) => {
    const { log, ref, tree: t, events } = setup(strategy, { a: 'permanent', b: type });
    tell(ref('b'), { type: crashed ? 'crash' : 'exit' });
    await waitFor('the end of b', () =>
      events.some((e) => e.type === '@argus.lifecycle' && e.path === 'root/b' && e.phase !== 'started'),
    );
    await settle();
    const starts = log.filter((l) => l === 'start:b').length;
    expect(starts).toBe(back ? 2 : 1);
    expect(t.root.childRef('b') !== undefined).toBe(back);
    expect(t.root.describe().map((c) => c.id)).toEqual(back ? ['a', 'b'] : ['a']);
    if (back && strategy === 'one_for_all') expect(log.filter((l) => l === 'start:a').length).toBe(2);
  });
});

describe('one_for_all with a temporary sibling', () => {
  it('stops the temporary sibling and does not bring it back', async () => {
    const { log, ref, tree: t } = setup('one_for_all', { a: 'permanent', t: 'temporary', b: 'transient' });
    tell(ref('a'), { type: 'crash' });
    await waitFor('restart', () => log.filter((l) => l === 'start:a').length === 2);
    await settle();
    expect(log.slice(3)).toEqual(['stop:b', 'stop:t', 'start:a', 'start:b']);
    expect(t.root.describe().map((c) => c.id)).toEqual(['a', 'b']);
  });
});

describe('restart intensity', () => {
  it('escalates when restarts pass the intensity within the period, stopping every child', async () => {
    const {
      log,
      ref,
      failures,
      events,
      tree: t,
    } = setup('one_for_one', { a: 'permanent', b: 'permanent' }, { intensity: 2, periodMs: 1000 });
    for (let i = 1; i <= 2; i++) {
      tell(ref('b'), { type: 'crash' });
      await waitFor(`restart ${i}`, () => log.filter((l) => l === 'start:b').length === i + 1);
    }
    tell(ref('b'), { type: 'crash' });
    await waitFor('escalation', () => failures.length === 1);
    expect(failures[0]!.message).toBe('reached_max_restart_intensity: root (last: boom b)');
    expect(log.slice(-1)).toEqual(['stop:a']);
    expect(log.filter((l) => l === 'start:b').length).toBe(3);
    const escalated = events.filter((e) => e.type === '@argus.lifecycle' && e.phase === 'escalated');
    expect(escalated).toHaveLength(1);
    expect(t.root.describe()).toEqual([]);
  });

  it('forgets restarts older than the period', async () => {
    const { log, ref, failures, clock } = setup(
      'one_for_one',
      { b: 'permanent' },
      { intensity: 1, periodMs: 1000 },
    );
    for (let i = 1; i <= 5; i++) {
      tell(ref('b'), { type: 'crash' });
      await waitFor(`restart ${i}`, () => log.filter((l) => l === 'start:b').length === i + 1);
      clock.advance(1000);
    }
    expect(failures).toEqual([]);
  });

  it('escalates to the parent supervisor, which restarts the whole subtree', async () => {
    const log: string[] = [];
    const bus = new EventBus();
    const phases: string[] = [];
    bus.subscribe((e) => e.type === '@argus.lifecycle' && phases.push(`${e.phase} ${e.path}`));
    const spec = supervisor('root', { intensity: 5, backoff: { maxMs: 0 } }, [
      worker('x', probe('x', log)),
      supervisor('sub', { intensity: 0, backoff: { maxMs: 0 } }, [worker('w', probe('w', log))]),
    ]);
    tree = startTree(spec, { clock: realClock, random: Math.random, events: bus });
    expect(
      tree
        .describe()
        .children!.find((c) => c.id === 'sub')!
        .children!.map((c) => c.status),
    ).toEqual(['running']);
    tell(subWorker(tree, 'sub', 'w') as ActorRef<Msg>, { type: 'crash' });
    await waitFor('subtree restart', () => log.filter((l) => l === 'start:w').length === 2);
    await settle();
    expect(log).toEqual(['start:x', 'start:w', 'start:w']);
    expect(phases).toEqual([
      'started root/x',
      'started root/sub/w',
      'started root/sub',
      'crashed root/sub/w',
      'escalated root/sub',
      'crashed root/sub',
      'started root/sub/w',
      'restarted root/sub',
    ]);
  });
});

/** The ref of a grandchild: nact resolves refs by path, so the child path of the sub-supervisor names it. */
const subWorker = (t: RunningTree, sub: string, id: string): ActorRef<unknown> => {
  const parent = t.root.childRef(sub) as unknown as { path: { createChildPath(n: string): unknown } };
  return { ...parent, name: id, path: parent.path.createChildPath(id) } as unknown as ActorRef<unknown>;
};

describe('backoff', () => {
  it('restarts immediately first, then waits minMs, then doubles (simulated clock)', async () => {
    const { log, ref, clock } = setup(
      'one_for_one',
      { b: 'permanent' },
      {
        intensity: 100,
        periodMs: 60_000,
        backoff: { minMs: 100, maxMs: 250, jitter: 0 },
      },
    );
    const starts = () => log.filter((l) => l === 'start:b').length;
    tell(ref('b'), { type: 'crash' });
    await waitFor('first restart', () => starts() === 2);
    expect(clock.pending()).toEqual([]);

    for (const expected of [100, 200, 250, 250]) {
      const before = starts();
      tell(ref('b'), { type: 'crash' });
      await waitFor('a pending restart', () => clock.pending().length === 1);
      expect(clock.pending()).toEqual([expected]);
      clock.advance(expected - 1);
      await settle();
      expect(starts()).toBe(before);
      clock.advance(1);
      await waitFor('restart after backoff', () => starts() === before + 1);
    }
  });
});

describe('lifecycle events', () => {
  it('reports start, crash with the error, restart and stop', async () => {
    const { ref, events, tree: t } = setup('one_for_one', { a: 'permanent' });
    tell(ref('a'), { type: 'crash' });
    await waitFor('restart', () =>
      events.some((e) => e.type === '@argus.lifecycle' && e.phase === 'restarted'),
    );
    await t.stop();
    tree = undefined;
    const seen = events.map((e) =>
      e.type === '@argus.lifecycle' ? [e.phase, e.path, e.error ?? e.reason ?? null] : [],
    );
    expect(seen).toEqual([
      ['started', 'root/a', null],
      ['crashed', 'root/a', 'boom a'],
      ['restarted', 'root/a', null],
      ['stopped', 'root/a', 'shutdown'],
    ]);
  });
});

describe('dynamic children', () => {
  it('starts, rejects a duplicate id with a coded error, and terminates a child for good', async () => {
    const { log, tree: t } = setup('one_for_one', {});
    await t.root.startChild(worker('d1', probe('d1', log), { restart: 'transient' }));
    const dup = await t.root.startChild(worker('d1', probe('d1', log))).catch((e) => e);
    expect(isArgusError(dup, 'ARGUS_ERR_DUPLICATE_CHILD')).toBe(true);
    expect(await t.root.terminateChild('d1')).toBe(true);
    expect(await t.root.terminateChild('d1')).toBe(false);
    expect(log).toEqual(['start:d1', 'stop:d1']);
    expect(t.root.size).toBe(0);
  });

  it('rejects an invalid child spec naming the field', () => {
    expect(() => worker('', probe('x', []))).toThrow(
      /ARGUS_ERR_INVALID_CHILD_SPEC: child spec '': id "" must be/,
    );
    expect(() => worker('ok', probe('x', []), { restart: 'sometimes' as RestartType })).toThrow(
      /restart "sometimes" must be one of permanent, transient, temporary/,
    );
    expect(() => supervisor('s', { strategy: 'all_for_none' as Strategy }, [])).toThrow(
      /strategy "all_for_none"/,
    );
  });
});

describe('backoff after recovery', () => {
  it('starts from an immediate restart again once the restarted child handled a message', async () => {
    const { log, ref, clock } = setup(
      'one_for_one',
      { b: 'permanent' },
      {
        intensity: 100,
        periodMs: 60_000,
        backoff: { minMs: 100, maxMs: 1000, jitter: 0 },
      },
    );
    const starts = () => log.filter((l) => l === 'start:b').length;
    for (let i = 1; i <= 5; i++) {
      tell(ref('b'), { type: 'crash' });
      await waitFor(`restart ${i}`, () => starts() === i + 1);
      expect(clock.pending()).toEqual([]);
      tell(ref('b'), { type: 'inc' });
      await settle();
    }
  });
});
