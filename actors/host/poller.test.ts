/**
 * The poll schedule and the poller, with a simulated clock and a scripted SNMP boundary: hosts poll at
 * their phase once per interval, only those of shards held here, one poll in flight per host, at most
 * `concurrency` at once, missed slots counted, removed hosts told so.
 */
import { describe, expect, it } from 'vitest';
import type { PartitionRef } from '../../runtime/boundaries.ts';
import { shardOf } from '../../runtime/envelope.ts';
import { SimulatedClock } from '../../test/helpers/clock.ts';
import type { HostMessage } from './messages.ts';
import { HostPoller } from './poller.ts';
import { PollSchedule } from './schedule.ts';
import type { PollResult, SnmpPoller } from './snmp.ts';
import type { InventoryHost, MetricSet } from './types.ts';

const SET: MetricSet = {
  scalars: [{ name: 'sys.uptime', oid: '1.3.6.1.2.1.1.3.0', type: 'gauge' }],
  tables: [],
  derived: [],
};

const hostOf = (id: string, intervalMs = 1_000): InventoryHost => ({
  id,
  address: '127.0.0.1',
  snmp: { version: '2c', community: 'public', port: 161, timeoutMs: 100, retries: 0 },
  service: 'web',
  labels: { team: 'infra' },
  intervalMs,
});

/** A scripted SNMP boundary: each poll resolves when the test says (or at once with `auto`). */
class ScriptedSnmp implements SnmpPoller {
  readonly started: { id: string; at: number }[] = [];
  private readonly waiting: ((r: PollResult) => void)[] = [];
  constructor(
    private readonly clock: SimulatedClock,
    private readonly auto: boolean,
  ) {}
  poll(target: { address: string }): Promise<PollResult> {
    this.started.push({ id: target.address, at: this.clock.monotonic() });
    const ok: PollResult = {
      ok: true,
      values: [{ metric: 'sys.uptime', tags: {}, type: 'gauge', value: 42 }],
      missing: [],
      reasons: {},
      latencyMs: 3,
      requests: 1,
    };
    if (this.auto) return Promise.resolve(ok);
    return new Promise((resolve) => this.waiting.push(() => resolve(ok)));
  }
  finishAll(): void {
    for (const w of this.waiting.splice(0)) w({} as PollResult);
  }
  get pending(): number {
    return this.waiting.length;
  }
  async close(): Promise<void> {}
}

const SHARDS = 4;
const flush = () => new Promise((r) => setImmediate(r));

const setup = (opts: { auto?: boolean; owned?: number[]; concurrency?: number } = {}) => {
  const clock = new SimulatedClock();
  const snmp = new ScriptedSnmp(clock, opts.auto ?? true);
  const sent: { key: string; message: HostMessage }[] = [];
  let observer: ((ref: PartitionRef, held: boolean) => void) | undefined;
  const poller = new HostPoller({
    runtime: {
      send: async (_kind, key, message) => {
        sent.push({ key, message });
      },
      runningShards: () => opts.owned ?? [0, 1, 2, 3],
      onShards: (o) => {
        observer = o;
        return () => undefined;
      },
      shardOf: (_kind, key) => shardOf(key, SHARDS),
    },
    snmp: {
      poll: (target) => snmp.poll({ address: (target as { address: string }).address }),
      close: async () => undefined,
    },
    metricSet: () => SET,
    clock,
    ...(opts.concurrency ? { concurrency: opts.concurrency } : {}),
    lateAfterMs: 100,
  });
  return { clock, snmp, sent, poller, shards: (ref: PartitionRef, held: boolean) => observer?.(ref, held) };
};

describe('PollSchedule', () => {
  it('gives every host one slot per interval at a phase that is stable and spread', () => {
    const s = new PollSchedule();
    const ids = Array.from({ length: 1_000 }, (_, i) => `h-${i}`);
    for (const id of ids) s.add(id, 60_000, 0);
    const taken: number[] = [];
    for (let t = 0; t <= 60_000; t += 100) {
      for (let d = s.take(t); d; d = s.take(t)) taken.push(d.due);
    }
    expect(taken).toHaveLength(1_000);
    // Spread: no 6 s tenth of the minute holds more than 15 % of the hosts.
    const buckets = Array.from(
      { length: 10 },
      (_, b) => taken.filter((d) => Math.floor(d / 6_000) === b).length,
    );
    expect(Math.max(...buckets)).toBeLessThan(150);
    // Stable: the same id gets the same phase in another schedule.
    const again = new PollSchedule();
    again.add('h-7', 60_000, 0);
    expect(again.slotAfter('h-7', 60_000, 0)).toBe(s.slotAfter('h-7', 60_000, 0));
  });

  it('counts whole intervals that passed as missed and runs the latest slot', () => {
    const s = new PollSchedule();
    s.add('a', 1_000, 0);
    const first = s.slotAfter('a', 1_000, 0);
    expect(s.take(first - 1)).toBeUndefined();
    expect(s.take(first + 3_500)).toEqual({ id: 'a', due: first + 3_000, missed: 3 });
    expect(s.peek()).toBe(first + 4_000);
  });

  it('drops removed hosts and reschedules a changed interval', () => {
    const s = new PollSchedule();
    s.add('a', 1_000, 0);
    s.add('b', 1_000, 0);
    s.remove('a');
    s.add('b', 5_000, 0);
    const due: string[] = [];
    for (let t = 0; t <= 5_000; t += 10) for (let d = s.take(t); d; d = s.take(t)) due.push(d.id);
    expect(due).toEqual(['b']);
    expect(s.size).toBe(1);
  });
});

describe('HostPoller', () => {
  it('polls each host once per interval and sends host.polled with the inventory facts', async () => {
    const { clock, sent, poller } = setup();
    poller.start();
    poller.setInventory([hostOf('a'), hostOf('b'), hostOf('c')]);
    for (let i = 0; i < 30; i++) {
      clock.advance(100);
      await flush();
    }
    // 3 s: each host had 3 slots (its phase lies in [0, 1 s)).
    expect(sent.filter((s) => s.message.type === 'host.polled')).toHaveLength(9);
    expect(sent.map((s) => s.key).sort()).toEqual(['a', 'a', 'a', 'b', 'b', 'b', 'c', 'c', 'c']);
    expect(sent[0]!.message).toMatchObject({
      type: 'host.polled',
      latencyMs: 3,
      missing: 0,
      service: 'web',
      labels: { team: 'infra' },
      values: [{ metric: 'sys.uptime', tags: {}, type: 'gauge', value: 42 }],
    });
    expect(poller.stats()).toMatchObject({
      scheduled: 3,
      started: 9,
      succeeded: 9,
      failed: 0,
      missed: 0,
      late: 0,
    });
    await poller.stop();
  });

  it('polls only hosts of shards held here, following acquire and release', async () => {
    const ids = Array.from({ length: 40 }, (_, i) => `h-${i}`);
    const mine = ids.filter((id) => shardOf(id, SHARDS) === 1);
    const { clock, sent, poller, shards } = setup({ owned: [1] });
    poller.start();
    poller.setInventory(ids.map((id) => hostOf(id)));
    clock.advance(1_000);
    await flush();
    expect([...new Set(sent.map((s) => s.key))].sort()).toEqual([...mine].sort());
    shards({ kind: 'host', partition: 1 }, false);
    shards({ kind: 'host', partition: 2 }, true);
    sent.length = 0;
    clock.advance(1_000);
    await flush();
    expect([...new Set(sent.map((s) => s.key))].sort()).toEqual(
      ids.filter((id) => shardOf(id, SHARDS) === 2).sort(),
    );
    await poller.stop();
  });

  it('keeps one poll in flight per host and at most `concurrency` in all, counting missed slots', async () => {
    const { clock, snmp, poller } = setup({ auto: false, concurrency: 2 });
    poller.start();
    poller.setInventory([hostOf('a'), hostOf('b'), hostOf('c')]);
    clock.advance(1_000);
    await flush();
    expect(snmp.pending).toBe(2);
    // Two more intervals pass with both polls stuck: their hosts' slots are missed, c's too (no room).
    clock.advance(2_000);
    await flush();
    expect(snmp.pending).toBe(2);
    expect(poller.stats().started).toBe(2);
    snmp.finishAll();
    await flush();
    await flush();
    // Room for two again: two of the three due hosts start, the third waits for a slot to free.
    expect(snmp.pending).toBe(2);
    const stats = poller.stats();
    expect(stats.started).toBe(4);
    expect(stats.inFlight).toBe(2);
    expect(stats.succeeded).toBe(2);
    expect(stats.missed).toBeGreaterThanOrEqual(3);
    const stopped = poller.stop();
    snmp.finishAll();
    await stopped;
  });

  it('tells a removed host host.removed and stops polling it', async () => {
    const { clock, sent, poller } = setup();
    poller.start();
    poller.setInventory([hostOf('a'), hostOf('b')]);
    clock.advance(1_000);
    await flush();
    const result = poller.setInventory([hostOf('a'), hostOf('d')]);
    expect(result).toEqual({ added: ['d'], removed: ['b'] });
    expect(sent.filter((s) => s.message.type === 'host.removed').map((s) => s.key)).toEqual(['b']);
    sent.length = 0;
    clock.advance(2_000);
    await flush();
    expect([...new Set(sent.map((s) => s.key))].sort()).toEqual(['a', 'd']);
    await poller.stop();
  });
});
