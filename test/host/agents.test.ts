/**
 * Host metrics end to end against simulated net-snmp agents on loopback UDP, in an embedded runtime:
 * a fleet of 200 agents polled every second through a file inventory and a custom metric set, with an
 * agent that stops answering and comes back and SNMPv3 hosts with good and bad credentials; scripted
 * counters (a Counter32 wrap, a Counter64 past 2^32, a reset) whose rates must come out exact; the
 * inventory file edited under a running node; metric sets changed in the real etcd.
 *
 * The fleet's 198 plain agents run in a child process, so their answers do not load this event loop.
 * Exact rates come from a step clock shared by the poller and the agents (support.ts), in a runtime of
 * their own: under that clock every host of the poller fires as the second begins.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type HostMetrics, hostMetrics } from '../../actors/host/host-metrics.ts';
import { createNetSnmpPoller } from '../../actors/host/snmp.ts';
import { fileInventory, staticInventory } from '../../actors/inventory/sources.ts';
import { EtcdConfigSource } from '../../cluster/etcd-config.ts';
import { etcdEndpoints, uniquePrefix } from '../helpers/services.ts';
import {
  type AgentProcess,
  type SimulatedAgents,
  startAgentProcess,
  startSimulatedAgents,
} from '../helpers/snmp-agents.ts';
import { waitFor } from '../helpers/wait.ts';
import {
  type Embedded,
  type FileHost,
  idWithPhase,
  local,
  OID,
  PollGate,
  SERVICE,
  seededSets,
  simAgentSpec,
  startEmbedded,
  staticHosts,
  steppedClock,
  summaryOf,
  V3_USER,
  v3,
  writeInventory,
} from './support.ts';

describe('a fleet of 200 simulated agents polled every second', () => {
  const PLAIN = Array.from({ length: 198 }, (_, i) => `sim-${i}`);
  const [FLAP, V3_OK, V3_BAD, V3_NOUSER] = ['flap', 'v3-ok', 'v3-wrong-password', 'v3-unknown-user'];
  const GOOD = [...PLAIN, FLAP, V3_OK];
  let plain: AgentProcess;
  let scripted: SimulatedAgents;
  let hm: HostMetrics;
  let node: Embedded;
  let dir: string;
  const portOf = (id: string) =>
    [...plain.agents, ...scripted.agents].find((a) => a.id === id)?.port ?? Number.NaN;

  beforeAll(async () => {
    plain = await startAgentProcess(PLAIN.map((id, i) => simAgentSpec(id, i)));
    scripted = await startSimulatedAgents([simAgentSpec(FLAP, 1), simAgentSpec(V3_OK, 2, {}, [V3_USER])]);
    dir = mkdtempSync(join(tmpdir(), 'argus-inventory-'));
    const hosts: FileHost[] = [
      ...[...PLAIN, FLAP].map((id) => ({ id, ...local(portOf(id)) })),
      // The two bad hosts ask the good v3 host's agent, which must go on answering its right user.
      { id: V3_OK, address: '127.0.0.1', snmp: v3(portOf(V3_OK), V3_USER) },
      { id: V3_BAD, address: '127.0.0.1', snmp: v3(portOf(V3_OK), { ...V3_USER, authKey: 'not-the-pass' }) },
      { id: V3_NOUSER, address: '127.0.0.1', snmp: v3(portOf(V3_OK), { ...V3_USER, user: 'nobody' }) },
    ].map((h) => ({ ...h, service: SERVICE, interval: '1s' }));
    writeInventory(join(dir, 'hosts.json'), hosts);
    hm = hostMetrics({ inventory: fileInventory(join(dir, 'hosts.json')), cycleMs: 500, lateAfterMs: 500 });
    node = await startEmbedded(hm, seededSets());
  });

  afterAll(async () => {
    await node?.stop();
    await scripted?.close();
    await plain?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('gets samples from every one of the 200 hosts, and keeps every slot in a steady window', async () => {
    expect(hm.inventory()).toMatchObject({ hosts: 202, errors: [], failure: undefined });
    await waitFor(
      'samples from all 200 hosts',
      () => GOOD.every((id) => node.seen.sampled.has(id)),
      10_000,
      50,
    );
    const before = hm.pollerStats()!;
    expect(before.scheduled).toBe(202);
    const after = await waitFor(
      'three rounds of polls',
      () => {
        const s = hm.pollerStats()!;
        return s.started >= before.started + 3 * 202 && s;
      },
      8_000,
      50,
    );
    const window = {
      started: after.started - before.started,
      late: after.late - before.late,
      missed: after.missed - before.missed,
      sendErrors: after.sendErrors - before.sendErrors,
      latencyP50Ms: Math.round(after.latencyP50Ms * 10) / 10,
      latencyP99Ms: Math.round(after.latencyP99Ms * 10) / 10,
    };
    console.log(`[agents] steady window of the fleet: ${JSON.stringify(window)}`);
    expect(window).toMatchObject({ late: 0, missed: 0, sendErrors: 0 });
  });

  it('an agent that stops answering makes one host.unreachable, then one host.reachable', async () => {
    await scripted.stop(FLAP);
    const down = await waitFor(
      'flap unreachable',
      () => node.seen.eventsOf(FLAP, 'host.unreachable')[0],
      5_000,
    );
    expect(down).toMatchObject({ host: FLAP, code: 'timeout' });
    expect(down.error).toBe(
      `snmp v2c GET of 7 OIDs to 127.0.0.1:${portOf(FLAP)} timed out: no answer in 1 try of 300 ms`,
    );
    const stillDown = await waitFor(
      'two failed polls in a row',
      async () => {
        const s = await summaryOf(node.rt, FLAP);
        return s.consecutiveFailures >= 2 && s;
      },
      5_000,
      50,
    );
    expect(stillDown).toMatchObject({
      status: 'unreachable',
      lastError: { code: 'timeout', message: down.error },
    });
    await scripted.resume(FLAP);
    await waitFor('flap reachable', () => node.seen.eventsOf(FLAP, 'host.reachable')[0], 5_000);
    const mark = node.seen.last;
    await waitFor(
      'two polls after coming back',
      () => node.seen.recordsOf(FLAP, mark).length >= 2,
      5_000,
      50,
    );
    expect(node.seen.eventsOf(FLAP).map((e) => e.type)).toEqual(['host.unreachable', 'host.reachable']);
    expect(await summaryOf(node.rt, FLAP)).toMatchObject({
      status: 'reachable',
      consecutiveFailures: 0,
      lastError: null,
    });
  });

  it('polls an SNMPv3 authPriv host; bad v3 credentials make a host unreachable with a clear error', async () => {
    const failures = async (id: string) => (await summaryOf(node.rt, id)).failures;
    await waitFor(
      'bad v3 hosts polled on',
      async () => (await failures(V3_BAD)) >= 3 && (await failures(V3_NOUSER)) >= 3,
      8_000,
      50,
    );
    expect(node.seen.values(V3_OK, 'sim.load').length).toBeGreaterThan(3);
    expect(node.seen.eventsOf(V3_OK)).toEqual([]);
    expect(await summaryOf(node.rt, V3_OK)).toMatchObject({ status: 'reachable', failures: 0 });

    const at = `127.0.0.1:${portOf(V3_OK)}`;
    // net-snmp's agent drops a message with a wrong digest unanswered (snmpd reports it): a timeout.
    expect(node.seen.eventsOf(V3_BAD)).toEqual([
      {
        type: 'host.unreachable',
        host: V3_BAD,
        at: expect.any(Number),
        code: 'timeout',
        error: `snmp v3 GET of 7 OIDs to ${at} timed out: no answer in 1 try of 300 ms`,
      },
    ]);
    expect(await summaryOf(node.rt, V3_BAD)).toMatchObject({
      status: 'unreachable',
      lastError: { code: 'timeout', message: node.seen.eventsOf(V3_BAD)[0]!.error },
    });
    const nouser = `snmp v3 authentication failed for user 'nobody' at ${at}: unknown user name`;
    expect(node.seen.eventsOf(V3_NOUSER)).toEqual([
      { type: 'host.unreachable', host: V3_NOUSER, at: expect.any(Number), code: 'auth', error: nouser },
    ]);
    expect(await summaryOf(node.rt, V3_NOUSER)).toMatchObject({
      status: 'unreachable',
      lastError: { code: 'auth', message: nouser },
    });
    expect(node.seen.sampled.has(V3_BAD) || node.seen.sampled.has(V3_NOUSER)).toBe(false);
    expect(node.rt.status).toBe('running');
    expect(node.seen.crashes).toEqual([]);
  });
});

describe('scripted counters under a step clock', () => {
  // Polled 100-300 ms into each second (see idWithPhase), answered within the same second.
  const [WRAP, BIG, RESET] = ['wrap', 'big', 'reset'].map((p) => idWithPhase(p, 1_000, 100, 300));
  let agents: SimulatedAgents;
  let node: Embedded;

  beforeAll(async () => {
    const clock = steppedClock(1_000);
    agents = await startSimulatedAgents(
      [
        simAgentSpec(WRAP!, 1, { c32: { type: 'Counter32', start: 2 ** 32 - 600, perSecond: 100 } }),
        simAgentSpec(BIG!, 2, { c64: { type: 'Counter64', start: 2 ** 50, perSecond: 1_000_000 } }),
        simAgentSpec(RESET!, 3, {
          resets: { type: 'Counter32', start: 1_000_000, perSecond: 50, resetAfterMs: 6_000 },
        }),
      ],
      { now: () => clock.now() },
    );

    const inventory = staticInventory(staticHosts(agents, SERVICE, 1_000));
    node = await startEmbedded(hostMetrics({ inventory, clock }), seededSets());
  });

  afterAll(async () => {
    await node?.stop();
    await agents?.close();
  });

  it('a Counter32 wrapping past 2^32 keeps exactly the scripted rate across the wrap', async () => {
    const { drop } = await node.seen.afterDrop(WRAP!, 'sim.c32_raw');
    const values = node.seen.values(WRAP!, 'sim.c32_raw');
    expect(values[drop - 1]).toBeGreaterThan(2 ** 32 - 600);
    expect(values[drop]).toBeLessThan(600);
    const rates = node.seen.values(WRAP!, 'sim.c32.rate');
    // Every poll after the first gives a rate, the one over the wrap too.
    expect(rates).toEqual(values.slice(1).map(() => 100));
  });

  it('a Counter64 above 2^32 gives exactly the scripted rate', async () => {
    await waitFor(
      'five polls of the Counter64',
      () => node.seen.values(BIG!, 'sim.c64_raw').length >= 5,
      10_000,
      50,
    );
    const raws = node.seen.values(BIG!, 'sim.c64_raw');
    expect(raws.every((v) => v > 2 ** 50)).toBe(true);
    expect(node.seen.values(BIG!, 'sim.c64.rate')).toEqual(raws.slice(1).map(() => 1_000_000));
  });

  it('a counter that resets gives no rate for the poll that saw it, and exact rates after', async () => {
    const { values, drop } = await node.seen.afterDrop(RESET!, 'sim.resets_raw');
    expect(values[drop]).toBeLessThan(values[drop - 1]! - 100_000);
    const polls = node.seen
      .recordsOf(RESET!)
      .filter((r) => r.samples.some((s) => s.metric === 'sim.resets_raw'));
    const rates = polls.map((r) => r.samples.find((s) => s.metric === 'sim.resets.rate')?.value);
    // Nothing to compare the first reading with; the reset gives none; every other poll 50/s.
    expect(rates).toEqual(polls.map((_, i) => (i === 0 || i === drop ? undefined : 50)));
  });
});

describe('the inventory file edited while the node runs', () => {
  const CYCLE_MS = 500;
  const gate = new PollGate();
  let agents: SimulatedAgents;
  let hm: HostMetrics;
  let node: Embedded;
  let dir: string;
  let file: string;
  const portOf = (id: string) => agents.agents.find((a) => a.id === id)!.port;
  const entry = (id: string): FileHost => ({ id, ...local(portOf(id)), service: SERVICE, interval: '1s' });

  beforeAll(async () => {
    agents = await startSimulatedAgents(['keep', 'gone', 'held', 'late'].map((id, i) => simAgentSpec(id, i)));
    dir = mkdtempSync(join(tmpdir(), 'argus-inventory-'));
    file = join(dir, 'hosts.yaml');
    writeInventory(file, ['keep', 'gone', 'held'].map(entry));
    hm = hostMetrics({
      inventory: fileInventory(file),
      cycleMs: CYCLE_MS,
      snmp: () => gate.wrap(createNetSnmpPoller()),
    });
    node = await startEmbedded(hm, seededSets());
    await waitFor('first samples', () => ['keep', 'gone', 'held'].every((id) => node.seen.sampled.has(id)));
  });

  afterAll(async () => {
    gate.release();
    await node?.stop();
    await agents?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('polls a host added to the file in the next cycle', async () => {
    expect(hm.pollerStats()!.scheduled).toBe(3);
    writeInventory(file, ['keep', 'gone', 'held', 'late'].map(entry));
    const written = performance.now();
    await waitFor('first samples of the added host', () => node.seen.sampled.has('late'), 5_000);
    const tookMs = performance.now() - written;
    console.log(`[agents] added host: first samples ${Math.round(tookMs)} ms after the file was written`);
    // The next read (≤ one cycle), then its first slot (≤ one interval), plus slack for a loaded machine.
    expect(tookMs).toBeLessThan(CYCLE_MS + 1_000 + 1_000);
    expect(hm.pollerStats()!.scheduled).toBe(4);
    expect(await summaryOf(node.rt, 'late')).toMatchObject({ status: 'reachable', lastError: null });
  });

  it('tells a host removed from the file host.removed, and polls it no more', async () => {
    // 'held' leaves the inventory while a poll of it is in flight (its answer held back).
    await gate.hold(portOf('held'));
    writeInventory(file, ['keep', 'late'].map(entry));
    const removed = await waitFor(
      'host.removed of both',
      () => {
        const gone = node.seen.eventSeq('gone', 'host.removed');
        const held = node.seen.eventSeq('held', 'host.removed');
        return gone !== undefined && held !== undefined && { gone, held };
      },
      5_000,
    );
    expect(hm.pollerStats()!.scheduled).toBe(2);
    gate.release();
    // Long enough for both to have been polled three times over, had they been.
    const mark = node.seen.last;
    await waitFor('three more polls of keep', () => node.seen.recordsOf('keep', mark).length >= 3, 6_000, 50);
    expect(node.seen.recordsOf('gone', removed.gone)).toEqual([]);
    // The answer that was in flight when it left the inventory must not bring it back.
    expect(node.seen.recordsOf('held', removed.held)).toEqual([]);
    for (const id of ['gone', 'held']) {
      expect(node.seen.eventsOf(id).map((e) => e.type)).toEqual(['host.removed']);
      expect(await summaryOf(node.rt, id), id).toMatchObject({
        status: 'removed',
        polls: 0,
        lastError: null,
      });
    }
    expect(hm.inventory()).toMatchObject({ hosts: 2, errors: [], failure: undefined });
  });
});

describe('metric sets changed in etcd while the node runs', () => {
  const SVC = 'etc';
  const prefix = uniquePrefix('ms');
  const scalar = (name: string, oid: string) => `  - { name: ${name}, oid: ${oid}, type: gauge }\n`;
  const V1 = `scalars:\n${scalar('sim.load', OID.load)}`;
  const V2 = V1 + scalar('sim.extra', OID.extra);
  const V3 = V2 + scalar('sim.extra2', OID.extra2);
  let agents: SimulatedAgents;
  let source: EtcdConfigSource;
  let etcd: Etcd3;
  let hm: HostMetrics;
  let node: Embedded;
  const ids = ['e-1', 'e-2'];

  beforeAll(async () => {
    agents = await startSimulatedAgents(ids.map((id, i) => simAgentSpec(id, i)));
    source = new EtcdConfigSource(etcdEndpoints(), prefix);
    etcd = new Etcd3({ hosts: etcdEndpoints() });

    hm = hostMetrics({ inventory: staticInventory(staticHosts(agents, SVC, 500)), warn: () => undefined });
    node = await startEmbedded(hm, source);
  });

  afterAll(async () => {
    await node?.stop();
    await source?.close();
    await etcd
      ?.delete()
      .prefix(`/${prefix}/`)
      .catch(() => undefined);
    etcd?.close();
    await agents?.close();
  });

  const names = () =>
    hm
      .metricSets()
      .forService(SVC)
      .scalars.map((s) => s.name);

  /** Waits for the watch to apply a set with `metric`, then for each host's next poll: it has it. */
  const collectedNext = async (metric: string) => {
    await waitFor(`the set with ${metric} applied`, () => names().includes(metric), 5_000);
    const appliedAt = Date.now();
    for (const id of ids) {
      const next = await waitFor(
        `the next poll of ${id}`,
        () => node.seen.recordsOf(id).find((r) => r.samples[0]!.ts > appliedAt),
        5_000,
      );
      expect(next.samples.map((s) => s.metric)).toContain(metric);
    }
  };

  it('collects a new OID from the next poll on, put through the API or written to etcd directly', async () => {
    await hm.metricSets().put(SVC, V1);
    await collectedNext('sim.load');
    await hm.metricSets().put(SVC, V2);
    await collectedNext('sim.extra');
    // Around the API, as etcdctl would: only the watch can bring it.
    await etcd.put(`/${prefix}/metricsets/${SVC}`).value(V3);
    await collectedNext('sim.extra2');
    expect(hm.metricSets().rejected.size).toBe(0);
    expect(node.rt.status).toBe('running');
  });

  it('refuses an invalid set put through the API, naming the field', async () => {
    const bad = `scalars:\n  - { name: sim.load, oid: ${OID.load}, type: count }\n`;
    const field = "scalars[0].type: must be 'gauge' or 'counter', got 'count'";
    await expect(hm.metricSets().put(SVC, bad)).rejects.toMatchObject({
      code: 'ARGUS_ERR_INVALID_CONFIG',
      message: `ARGUS_ERR_INVALID_CONFIG: metric set '${SVC}': invalid metric set: ${field}`,
      detail: { service: SVC, problems: [field] },
    });
    expect((await etcd.get(`/${prefix}/metricsets/${SVC}`).string())?.trim()).toBe(V3.trim());
  });

  it('ignores an invalid set written to etcd directly: the last good one stays, and why is known', async () => {
    await etcd.put(`/${prefix}/metricsets/${SVC}`).value(`scalars:\n${scalar('sim.load', 'not-an-oid')}`);
    const why = await waitFor('the set rejected', () => hm.metricSets().rejected.get(SVC), 5_000);
    expect(why).toBe(
      'ARGUS_ERR_INVALID_CONFIG: invalid metric set: scalars[0].oid: must be a numeric OID like 1.3.6.1.2.1.1.3.0',
    );
    expect(names()).toEqual(['sim.load', 'sim.extra', 'sim.extra2']);
    const mark = node.seen.last;
    for (const id of ids) {
      const later = await waitFor(`two more polls of ${id}`, () => {
        const r = node.seen.recordsOf(id, mark);
        return r.length >= 2 && r;
      });
      for (const r of later)
        expect(r.samples.map((s) => s.metric)).toEqual(['sim.load', 'sim.extra', 'sim.extra2']);
    }
  });
});
