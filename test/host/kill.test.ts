/**
 * SIGKILL of a node while it polls and takes pushes (issue 4): `npm start`'s node (runtime/main.ts,
 * embedded journal) polls 10 simulated agents every 500 ms and takes a steady stream of uniquely
 * numbered JSON pushes; it is killed mid-stream and started again on the same data.
 *
 * Afterwards the metrics stream (read from the journal) must hold every push the node acknowledged,
 * each exactly once, and no poll's record twice; and every host's first poll after the restart must
 * already give a counter rate — the host entity's snapshot kept the last counter readings — with every
 * rate equal to the agents' scripted 1,000/s.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unpack } from 'msgpackr';
import { afterAll, describe, expect, it } from 'vitest';
import type { MetricsRecord } from '../../actors/host/host.ts';
import { openJournal } from '../../runtime/embedded/journal.ts';
import { killIfRunning, startMainNode } from '../helpers/child.ts';
import { type SimulatedAgents, startSimulatedAgents } from '../helpers/snmp-agents.ts';
import { sleep, waitFor } from '../helpers/wait.ts';

const OID_OCTETS = '1.3.6.1.4.1.99999.1.0';
const OID_GAUGE = '1.3.6.1.4.1.99999.2.0';
const HOSTS = 10;
const SHARDS = 8;
const RATE = 1_000;

const dir = mkdtempSync(join(tmpdir(), 'argus-host-kill-'));
const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

const startNode = (configFile: string) =>
  startMainNode({ ARGUS_CONFIG: configFile }, (node) => cleanups.push(() => killIfRunning(node)));

/** Pushes numbered points, 4 in flight, until stopped; remembers which ones were acknowledged. */
const pusher = (urlOf: () => string, from: number) => {
  const acked: number[] = [];
  let next = from;
  let running = true;
  const worker = async () => {
    while (running) {
      const seq = next++;
      const body = JSON.stringify({
        resource: `push-${seq % 5}`,
        ts: 1_800_000_000_000 + seq,
        metrics: { 'push.seq': seq },
      });
      try {
        const res = await fetch(`${urlOf()}/api/v1/push`, { method: 'POST', body });
        if (res.status === 202) acked.push(seq);
        else await res.text();
      } catch {
        await sleep(20); // the node is down: that push is lost to us, not acknowledged
      }
    }
  };
  const workers = [worker(), worker(), worker(), worker()];
  return {
    acked,
    get next() {
      return next;
    },
    stop: async () => {
      running = false;
      await Promise.all(workers);
    },
  };
};

describe('host metrics: SIGKILL while polling and pushing', () => {
  it('loses no acknowledged push, repeats nothing, and keeps counter rates right across the restart', async () => {
    const agents: SimulatedAgents = await startSimulatedAgents(
      Array.from({ length: HOSTS }, (_, i) => ({
        id: `poll-${i}`,
        scalars: {
          [OID_OCTETS]: { type: 'Counter64', start: 5_000_000_000, perSecond: RATE },
          [OID_GAUGE]: { type: 'Gauge32', value: 7 },
        },
      })),
    );
    cleanups.push(() => agents.close());
    const configFile = join(dir, 'argus.json');
    writeFileSync(
      configFile,
      JSON.stringify({
        nodeId: 'kill-node',
        dataDir: join(dir, 'data'),
        shards: SHARDS,
        hosts: {
          inventory: {
            hosts: agents.agents.map((a) => ({
              id: a.id,
              address: a.address,
              service: 'kill',
              interval: '500ms',
              snmp: { version: '2c', community: 'public', port: a.port, timeoutMs: 300, retries: 0 },
            })),
          },
          metricSets: {
            kill: {
              scalars: [
                { name: 'test.octets', oid: OID_OCTETS, type: 'counter' },
                { name: 'test.gauge', oid: OID_GAUGE, type: 'gauge' },
              ],
            },
          },
        },
      }),
    );

    let current = await startNode(configFile);
    const push = pusher(() => current.url, 1);
    await waitFor('acknowledged pushes', () => push.acked.length >= 200, 20_000, 20);
    await sleep(1_200); // a few polls too
    await current.node.kill9();
    const killedAt = Date.now();
    const ackedBeforeKill = push.acked.length;

    current = await startNode(configFile);
    const restartedAt = Date.now();
    await waitFor('pushes after the restart', () => push.acked.length >= ackedBeforeKill + 200, 20_000, 20);
    await sleep(1_500);
    await push.stop();
    current.node.proc.kill('SIGTERM');
    expect(await current.node.exited).toEqual({ code: 0, signal: null });

    // Everything the stream holds, read from the journal the node left.
    const journal = openJournal(join(dir, 'data'));
    cleanups.push(() => journal.close());
    const records: MetricsRecord[] = [];
    for (let p = 0; p < SHARDS; p++) {
      for (let from = 0; ; ) {
        const batch = await journal.mailbox.readStream!('metrics', p, from, 5_000);
        if (batch.length === 0) break;
        for (const r of batch) records.push(unpack(r.value) as MetricsRecord);
        from = batch[batch.length - 1]!.offset + 1;
      }
    }

    // Pushes: every acknowledged one exactly once, none of the others twice.
    const pushed = records
      .filter((r) => r.host.startsWith('push-'))
      .flatMap((r) =>
        r.samples
          .filter((s) => s.metric === 'push.seq')
          .map((s) => ({ host: r.host, seq: s.value as number })),
      );
    const counts = new Map<number, number>();
    for (const p of pushed) counts.set(p.seq, (counts.get(p.seq) ?? 0) + 1);
    expect([...counts.values()].filter((n) => n > 1)).toEqual([]);
    const missing = push.acked.filter((seq) => !counts.has(seq));
    expect(missing).toEqual([]);
    expect(pushed.every((p) => p.host === `push-${p.seq % 5}`)).toBe(true);
    expect(push.acked.length).toBeGreaterThanOrEqual(400);

    // Polls: no record twice, every rate the scripted one, and the first poll after the restart
    // already has its rate (the last reading survived in the snapshot).
    const polled = records.filter((r) => r.host.startsWith('poll-'));
    const keys = polled.map((r) => `${r.host}@${r.samples[0]!.ts}`);
    expect(new Set(keys).size).toBe(keys.length);
    for (const a of agents.agents) {
      const mine = polled.filter((r) => r.host === a.id).sort((x, y) => x.samples[0]!.ts - y.samples[0]!.ts);
      expect(mine.length).toBeGreaterThanOrEqual(4);
      const rates = mine.flatMap((r) => r.samples.filter((s) => s.metric === 'test.octets.rate'));
      // One rate can be off by the difference of two polls' delays (the agent reads its counter when
      // the request arrives); their mean cannot, and none may be wild.
      const values = rates.map((s) => s.value as number);
      for (const v of values) {
        expect(v).toBeGreaterThan(0);
        expect(v).toBeLessThan(RATE * 2);
      }
      const mean = values.reduce((a, b) => a + b, 0) / values.length;
      expect(mean).toBeGreaterThan(RATE * 0.93);
      expect(mean).toBeLessThan(RATE * 1.07);
      // Only the very first poll of all lacks a rate.
      expect(rates).toHaveLength(mine.length - 1);
      const afterRestart = mine.find((r) => r.samples[0]!.ts >= killedAt);
      expect(afterRestart, `${a.id} polled after the restart`).toBeDefined();
      expect(afterRestart!.samples.map((s) => s.metric).sort()).toEqual(['test.gauge', 'test.octets.rate']);
      expect(afterRestart!.samples[0]!.ts).toBeGreaterThanOrEqual(killedAt);
    }
    expect(restartedAt).toBeGreaterThan(killedAt);
  }, 120_000);
});
