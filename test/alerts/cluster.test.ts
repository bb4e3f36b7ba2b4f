/**
 * Alerting in a cluster, end to end with real parts: two node processes (runtime/main.ts, Kafka
 * mailboxes, etcd placement and configuration), 50 simulated SNMP agents polled by the nodes owning
 * their host shards, the rule, receiver and route tree written into etcd, and a webhook server that
 * checks every body against the Alertmanager v4 field list and the HMAC signature, and dedupes by
 * idempotency key.
 *
 * Pushed samples of other hosts, through both nodes, stay below the threshold. A CPU spike on 3 of the
 * 50 polled hosts fires exactly 3 host alerts. The receiver's first delivery is held
 * unanswered and the node running `receiver/hook` is SIGKILLed while it waits: the survivor takes the
 * receiver over from its snapshot and delivers again with the same idempotency key. The rule is then
 * edited in etcd while firing (no new notification), and deleted (its alerts resolve). The server
 * sees exactly one firing and one resolved notification per alert; wire duplicates only with the same
 * key.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EtcdConfigSource } from '../../cluster/etcd-config.ts';
import { shardOf } from '../../runtime/envelope.ts';
import {
  killIfRunning,
  type MainNode,
  runningShards,
  startClusterNode,
  waitForSplit,
} from '../helpers/child.ts';
import { etcdEndpoints, kafkaBrokers, uniquePrefix } from '../helpers/services.ts';
import { type SimulatedAgents, startSimulatedAgents } from '../helpers/snmp-agents.ts';
import { sleep, waitFor } from '../helpers/wait.ts';
import { startWebhookServer, type WebhookServer } from '../helpers/webhook-server.ts';

const HOSTS = 50;
const SHARDS = 8;
const OID_CPU = '1.3.6.1.4.1.99999.7.0';
const SECRET = 'cluster-secret';

const dir = mkdtempSync(join(tmpdir(), 'argus-alerts-cluster-'));
const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

type Node = MainNode;

const startNode = (id: string, prefix: string): Promise<Node> =>
  startClusterNode(
    {
      id,
      prefix,
      shards: SHARDS,
      dir,
      brokers: kafkaBrokers(),
      etcd: etcdEndpoints(),
      extra: { alerts: { tickMs: 100 } },
    },
    (node) => cleanups.push(() => killIfRunning(node)),
  );

type Alert = { status: string; labels: Record<string, string>; fingerprint: string };
const alertsOf = (server: WebhookServer): Alert[] =>
  server.unique().flatMap((r) => (r.body as { alerts: Alert[] }).alerts);

describe('alerting in a cluster', () => {
  it('notifies exactly once per transition across a SIGKILL of the receiver’s node, an edit and a delete in etcd', async () => {
    const prefix = uniquePrefix('alerts-cluster');
    const agents: SimulatedAgents = await startSimulatedAgents(
      Array.from({ length: HOSTS }, (_, i) => ({
        id: `h-${String(i).padStart(2, '0')}`,
        scalars: { [OID_CPU]: { type: 'Gauge32', value: 20 } },
      })),
    );
    cleanups.push(() => agents.close());
    const hook = await startWebhookServer({ secret: SECRET });
    cleanups.push(() => hook.close());
    const etcd = new EtcdConfigSource(etcdEndpoints(), prefix);
    cleanups.push(() => etcd.close());
    for (const a of agents.agents)
      await etcd.put(
        'inventory',
        a.id,
        JSON.stringify({
          address: a.address,
          service: 'web',
          interval: '500ms',
          snmp: { version: '2c', port: a.port, timeoutMs: 300, retries: 0 },
        }),
      );
    await etcd.put('metricsets', 'web', `scalars:\n  - { name: cpu.busy, oid: ${OID_CPU}, type: gauge }\n`);
    await etcd.put(
      'rules',
      'cpu-high',
      JSON.stringify({ metric: 'cpu.busy', condition: '> 90', clear: 80, severity: 4 }),
    );
    await etcd.put(
      'receivers',
      'hook',
      JSON.stringify({
        kind: 'webhook',
        url: `${hook.url}/am`,
        secret: SECRET,
        timeout: '1s',
        backoff: { initial: '200ms', max: '1s' },
      }),
    );
    await etcd.put(
      'routes',
      'tree',
      JSON.stringify({
        receiver: 'hook',
        group_by: ['alertname', 'host'],
        group_wait: '0s',
        group_interval: '200ms',
        repeat_interval: '1h',
      }),
    );

    const nodes = [await startNode('a1', prefix), await startNode('a2', prefix)];
    await waitForSplit(nodes, 'host', SHARDS);
    // Pushed hosts beside the polled ones, through both nodes: below the threshold, they fire nothing.
    for (const [i, n] of nodes.entries()) {
      const res = await fetch(`${n.url}/write?precision=ms`, {
        method: 'POST',
        body: `cpu,host=p-${i} busy=50 ${Date.now()}\ncpu,host=p-${i + 2} busy=85 ${Date.now()}\n`,
      });
      expect(res.status).toBe(204);
    }
    await sleep(2_000);
    expect(hook.all()).toEqual([]);

    // The receiver's first delivery hangs; the node running receiver/hook dies while it waits.
    hook.hang();
    const spiking = ['h-07', 'h-21', 'h-42'];
    for (const id of spiking) await agents.set(id, OID_CPU, { type: 'Gauge32', value: 97 });
    await waitFor('the first delivery to reach the server', () => hook.all().length >= 1, 20_000, 20);
    const receiverShard = shardOf('hook', SHARDS);
    const owner = await waitFor(
      'the receiver’s owner',
      async () => {
        for (const n of nodes) if ((await runningShards(n, 'receiver')).includes(receiverShard)) return n;
        return false;
      },
      10_000,
      100,
    );
    await owner.child.kill9();
    // Whatever the dead node's requests get now goes nowhere: answer them as failures.
    hook.release(503);
    const survivor = nodes.find((n) => n !== owner)!;

    await waitFor(
      '3 firing notifications, once each',
      () => alertsOf(hook).filter((a) => a.status === 'firing').length === 3,
      40_000,
      50,
    );
    const firing = alertsOf(hook);
    expect(firing.map((a) => a.labels.host).sort()).toEqual(spiking);
    for (const a of firing)
      expect(a.labels).toMatchObject({ alertname: 'cpu-high', severity: '4', service: 'web' });

    // Edited in etcd while firing (same labels, a new threshold the values still meet): nothing new.
    await etcd.put(
      'rules',
      'cpu-high',
      JSON.stringify({ metric: 'cpu.busy', condition: '> 92', clear: 80, severity: 4 }),
    );
    await sleep(3_000);
    expect(alertsOf(hook).length).toBe(3);

    // Deleted in etcd: every alert of the rule resolves.
    await etcd.delete('rules', 'cpu-high');
    await waitFor(
      '3 resolved notifications',
      () => alertsOf(hook).filter((a) => a.status === 'resolved').length === 3,
      30_000,
      50,
    );
    await sleep(2_000);

    const all = alertsOf(hook);
    for (const host of spiking) {
      expect(all.filter((a) => a.labels.host === host).map((a) => a.status)).toEqual(['firing', 'resolved']);
    }
    expect(all.length).toBe(6);
    // Every request on the wire passed the v4 field check and the HMAC; duplicates carry a known key.
    expect(hook.problems()).toEqual([]);
    const keys = new Set(hook.unique().map((r) => r.idempotencyKey));
    for (const r of hook.all()) expect(keys.has(r.idempotencyKey)).toBe(true);
    expect(hook.all().length).toBeGreaterThan(hook.unique().length);
    expect((await fetch(`${survivor.url}/health`)).status).toBe(200);
  }, 180_000);
});
