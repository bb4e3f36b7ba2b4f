/**
 * Host metrics in a cluster: two node processes (runtime/main.ts with Kafka, etcd and the `hosts`
 * section) read the inventory and the metric sets from etcd. Each host is polled by exactly the node
 * that owns its shard; a metric set written through one node's API reaches both; a SIGKILLed node's
 * hosts are polled by the survivor, whose first poll of each already has its counter rate (the host's
 * snapshot came through Kafka's state topic).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { unpack } from 'msgpackr';
import { afterAll, describe, expect, it } from 'vitest';
import type { MetricsRecord } from '../../actors/host/host.ts';
import { EtcdConfigSource } from '../../cluster/etcd-config.ts';
import { shardOf } from '../../runtime/envelope.ts';
import { api, READ_TOKEN } from '../helpers/api.ts';
import { killIfRunning, type MainNode, startClusterNode } from '../helpers/child.ts';
import { etcdEndpoints, kafkaBrokers, uniquePrefix } from '../helpers/services.ts';
import { type SimulatedAgents, startSimulatedAgents } from '../helpers/snmp-agents.ts';
import { sleep, waitFor } from '../helpers/wait.ts';

const HOSTS = 20;
const SHARDS = 8;
const RATE = 500;
const OID_OCTETS = '1.3.6.1.4.1.99999.1.0';
const OID_TEMP = '1.3.6.1.4.1.99999.3.0';

const dir = mkdtempSync(join(tmpdir(), 'argus-host-cluster-'));
const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

type Node = MainNode;

const startNode = (id: string, prefix: string): Promise<Node> =>
  startClusterNode(
    { id, prefix, shards: SHARDS, dir, brokers: kafkaBrokers(), etcd: etcdEndpoints() },
    (node) => cleanups.push(() => killIfRunning(node)),
  );

const get = async <T>(url: string): Promise<T> =>
  (await (await fetch(url, { headers: { authorization: `Bearer ${READ_TOKEN}` } })).json()) as T;

const polledBy = (node: Node) =>
  get<{ hosts: string[] }>(`${node.url}/api/v1/poller?hosts`).then((p) => p.hosts);

const hostShardsOf = async (node: Node): Promise<number[]> =>
  (await get<{ running: { kind: string; partition: number }[] }>(`${node.url}/cluster`)).running
    .filter((r) => r.kind === 'host')
    .map((r) => r.partition)
    .sort((a, b) => a - b);

/** Every metrics record in the stream topic so far (read_committed). */
const readRecords = async (
  prefix: string,
  atLeast: (r: MetricsRecord[]) => boolean,
): Promise<MetricsRecord[]> => {
  const kafka = new Kafka({ brokers: kafkaBrokers(), logLevel: logLevel.NOTHING });
  const consumer = kafka.consumer({ groupId: uniquePrefix('reader'), readUncommitted: false });
  const seen: MetricsRecord[] = [];
  await consumer.connect();
  await consumer.subscribe({ topic: `${prefix}.stream.metrics`, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ message }) => {
      seen.push(unpack(message.value!) as MetricsRecord);
    },
  });
  try {
    await waitFor('the metrics topic', () => atLeast(seen), 30_000, 100);
    await sleep(500);
  } finally {
    await consumer.disconnect();
  }
  return seen;
};

describe('host metrics in a cluster', () => {
  it('polls each host on its owner only, shares metric sets through etcd, and moves a dead node’s hosts', async () => {
    const prefix = uniquePrefix('hosts-cluster');
    const agents: SimulatedAgents = await startSimulatedAgents(
      Array.from({ length: HOSTS }, (_, i) => ({
        id: `h-${i}`,
        scalars: {
          [OID_OCTETS]: { type: 'Counter64', start: 9_000_000_000, perSecond: RATE },
          [OID_TEMP]: { type: 'Gauge32', value: 41 },
        },
      })),
    );
    cleanups.push(() => agents.close());
    const etcd = new EtcdConfigSource(etcdEndpoints(), prefix);
    cleanups.push(() => etcd.close());
    for (const a of agents.agents) {
      await etcd.put(
        'inventory',
        a.id,
        JSON.stringify({
          address: a.address,
          service: 'edge',
          interval: '500ms',
          snmp: { version: '2c', port: a.port, timeoutMs: 300, retries: 0 },
        }),
      );
    }

    const n1 = await startNode('n1', prefix);
    const n2 = await startNode('n2', prefix);
    // The metric set goes in through n1's API and is stored in etcd: both nodes poll by it.
    const put = await api(n1.url, '/api/v1/metricsets/edge', {
      method: 'PUT',
      body: `scalars:\n  - { name: test.octets, oid: ${OID_OCTETS}, type: counter }\n`,
    });
    expect(put.status).toBe(200);
    const bad = await api<{ error: string }>(n2.url, '/api/v1/metricsets/edge', {
      method: 'PUT',
      body: 'scalars:\n  - { name: test.octets, oid: not-an-oid, type: counter }\n',
    });
    expect(bad.status).toBe(400);
    expect(bad.body.error).toContain('scalars[0].oid');

    // Settled: every host polled by exactly the node owning its shard.
    const ids = agents.agents.map((a) => a.id).sort();
    const last = '';
    const owned = await waitFor(
      'the two nodes to split the hosts by shard',
      async () => {
        const [s1, s2, p1, p2] = await Promise.all([
          hostShardsOf(n1),
          hostShardsOf(n2),
          polledBy(n1),
          polledBy(n2),
        ]);
        if (s1.length + s2.length !== SHARDS || s1.length === 0 || s2.length === 0) return false;
        const expect1 = ids.filter((id) => s1.includes(shardOf(id, SHARDS)));
        const expect2 = ids.filter((id) => s2.includes(shardOf(id, SHARDS)));
        return p1.join() === expect1.join() && p2.join() === expect2.join() && { n1: p1, n2: p2 };
      },
      40_000,
      200,
    ).catch((e) => {
      throw new Error(`${(e as Error).message}: ${last}`);
    });
    expect([...owned.n1, ...owned.n2].sort()).toEqual(ids);
    expect(owned.n1.filter((id) => owned.n2.includes(id))).toEqual([]);

    // A new metric set through etcd directly: the next polls collect the new OID too, on both nodes.
    await etcd.put(
      'metricsets',
      'edge',
      `scalars:\n  - { name: test.octets, oid: ${OID_OCTETS}, type: counter }\n  - { name: test.temp, oid: ${OID_TEMP}, type: gauge }\n`,
    );
    await waitFor(
      'test.temp on every host',
      async () => {
        for (const id of ids) {
          const h = await get<{ latest: { metric: string; value: number }[] }>(
            `${(owned.n1.includes(id) ? n1 : n2).url}/api/v1/hosts/${id}`,
          );
          if (h.latest.find((s) => s.metric === 'test.temp')?.value !== 41) return false;
        }
        return true;
      },
      20_000,
      200,
    );

    // n2 dies: n1 takes its shards and polls every host.
    const moved = owned.n2;
    await n2.child.kill9();
    const killedAt = Date.now();
    await waitFor(
      'n1 to poll every host',
      async () => (await polledBy(n1)).join() === ids.join(),
      30_000,
      200,
    );
    await sleep(2_000);

    const records = await readRecords(prefix, (rs) =>
      moved.every((id) => rs.some((r) => r.host === id && r.samples[0]!.ts > killedAt + 1_000)),
    );
    for (const id of ids) {
      const mine = records.filter((r) => r.host === id).sort((a, b) => a.samples[0]!.ts - b.samples[0]!.ts);
      const times = mine.map((r) => r.samples[0]!.ts);
      expect(new Set(times).size, `${id}: no poll record twice`).toBe(times.length);
      const rates = mine.flatMap((r) => r.samples.filter((s) => s.metric === 'test.octets.rate'));
      expect(rates.length).toBeGreaterThanOrEqual(3);
      // Each rate is Δvalue / Δ(poll send time); the agent reads its counter when the request arrives,
      // so one rate can be off by the difference of two polls' delays. Their mean cannot, and no rate
      // may be wild (a lost or stale counter reading would show here).
      const values = rates.map((r) => r.value as number);
      for (const v of values) {
        expect(v).toBeGreaterThan(0);
        expect(v).toBeLessThan(RATE * 2);
      }
      const mean = values.reduce((a, b) => a + b, 0) / values.length;
      expect(mean).toBeGreaterThan(RATE * 0.93);
      expect(mean).toBeLessThan(RATE * 1.07);
    }
    // The moved hosts' first records after the kill carry a rate: their counters came with the snapshot.
    for (const id of moved) {
      const first = records
        .filter((r) => r.host === id && r.samples[0]!.ts > killedAt)
        .sort((a, b) => a.samples[0]!.ts - b.samples[0]!.ts)[0]!;
      expect(first.samples.map((s) => s.metric).sort(), id).toEqual(['test.octets.rate', 'test.temp']);
    }

    n1.child.proc.kill('SIGTERM');
    expect(await n1.child.exited).toEqual({ code: 0, signal: null });
  }, 180_000);
});
