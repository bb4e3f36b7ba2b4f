/**
 * Log streams in a cluster of two `runtime/main.ts` processes (Kafka mailboxes, etcd placement, the log
 * rule in etcd), with the stream split into 4 sub-streams so that records and window deltas cross
 * nodes: 6 matching records land, the node owning the stream entity is SIGKILLed mid-window, 5 more
 * land through the survivor, and the rule (`HAVING count(*) > 10` on a 30-second tumbling window)
 * fires exactly once, with 11 counted — nothing lost, nothing counted twice — to a real webhook. A live
 * tail on the survivor sees the records posted to the other node (the Kafka log tap).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { EtcdConfigSource } from '../../cluster/etcd-config.ts';
import { shardOf } from '../../runtime/envelope.ts';
import { api, READ_TOKEN } from '../helpers/api.ts';
import {
  killIfRunning,
  type MainNode,
  runningShards,
  startClusterNode,
  waitForSplit,
} from '../helpers/child.ts';
import { etcdEndpoints, kafkaBrokers, uniquePrefix } from '../helpers/services.ts';
import { sleep, waitFor } from '../helpers/wait.ts';
import { startWebhookServer } from '../helpers/webhook-server.ts';

const SHARDS = 8;
const WINDOW_MS = 30_000;
const STREAM = 'app.kill';

const dir = mkdtempSync(join(tmpdir(), 'argus-logs-cluster-'));
const cleanups: (() => Promise<unknown>)[] = [];
afterAll(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

const startNode = (id: string, prefix: string): Promise<MainNode> =>
  startClusterNode(
    {
      id,
      prefix,
      shards: SHARDS,
      dir,
      brokers: kafkaBrokers(),
      etcd: etcdEndpoints(),
      extra: {
        alerts: { tickMs: 100 },
        logs: { syslog: { udp: false, tcp: false }, forward: { address: false }, subStreams: 4, tickMs: 50 },
      },
    },
    (node) => cleanups.push(() => killIfRunning(node)),
  );

const post = async (node: MainNode, records: readonly Record<string, unknown>[]) => {
  const res = await fetch(`${node.url}/api/v1/logs/${STREAM}`, {
    method: 'POST',
    body: records.map((r) => JSON.stringify(r)).join('\n'),
  });
  return res.status;
};

const applied = async (node: MainNode): Promise<number> =>
  (await api<{ records: number }>(node.url, `/api/v1/logs/${STREAM}`, { token: READ_TOKEN })).body.records;

type Alert = { status: string; labels: Record<string, string>; annotations: Record<string, string> };

describe('log rules in a cluster', () => {
  it('count across a SIGKILL of the stream owner mid-window: fires once with exactly 11', async () => {
    const prefix = uniquePrefix('logs-cluster');
    const hook = await startWebhookServer();
    cleanups.push(() => hook.close());
    const etcd = new EtcdConfigSource(etcdEndpoints(), prefix);
    cleanups.push(() => etcd.close());
    await etcd.put(
      'logrules',
      'kill',
      JSON.stringify({
        sql: `SELECT count(*) AS n FROM "${STREAM}" WHERE level = 'error' GROUP BY TUMBLE(30 seconds) HAVING count(*) > 10`,
        severity: 4,
        annotations: { summary: '{{value}} errors in {{stream}}' },
      }),
    );
    await etcd.put(
      'receivers',
      'hook',
      JSON.stringify({ kind: 'webhook', url: `${hook.url}/am`, timeout: '1s' }),
    );
    await etcd.put(
      'routes',
      'tree',
      JSON.stringify({
        receiver: 'hook',
        group_by: ['alertname'],
        group_wait: '0s',
        group_interval: '200ms',
        repeat_interval: '1h',
      }),
    );
    const nodes = [await startNode('log-a', prefix), await startNode('log-b', prefix)];
    await waitForSplit(nodes, 'log', SHARDS);
    const partition = shardOf(STREAM, SHARDS);
    const owner = (await runningShards(nodes[0]!, 'log')).includes(partition) ? nodes[0]! : nodes[1]!;
    const survivor = owner === nodes[0] ? nodes[1]! : nodes[0]!;
    const batch = (n: number, from: number) =>
      Array.from({ length: n }, (_, i) => ({
        time: Date.now(),
        host: `h-${from + i}`,
        level: 'error',
        i: from + i,
      }));
    // A live tail on the survivor of records posted to the other node: they reach it through the log
    // mailbox topic (the Kafka log tap), filtered on the survivor.
    const tail = new WebSocket(`${survivor.url.replace('http', 'ws')}/api/v1/events/stream`, {
      headers: { authorization: `Bearer ${READ_TOKEN}` },
    });
    cleanups.push(async () => tail.close());
    const tailed: { type: string; records?: { fields: { i: number } }[] }[] = [];
    tail.on('message', (data) => tailed.push(JSON.parse(String(data))));
    await new Promise<void>((resolve, reject) => {
      tail.once('open', () => resolve());
      tail.once('error', reject);
    });
    tail.send(JSON.stringify({ type: 'tail', stream: STREAM, filter: "level = 'error'" }));
    await waitFor('the tail ack', () => tailed.some((f) => f.type === 'tailing'), 5_000);
    await sleep(1_000); // the tap's consumer joins its group and starts from the end
    // Start at the beginning of a window, so both batches and the failover fit in it.
    const now = Date.now();
    const windowStart = Math.ceil(now / WINDOW_MS) * WINDOW_MS;
    await sleep(windowStart - now + 200);
    // Posted to the node killed next; the info record is noise that must not count.
    expect(await post(owner, [...batch(6, 0), { time: Date.now(), host: 'h-x', level: 'info' }])).toBe(204);
    await waitFor('the first 7 records applied', async () => (await applied(survivor)) === 7, 10_000, 100);
    await waitFor(
      'the tail to see the 6 errors',
      () => tailed.flatMap((f) => (f.type === 'log' ? (f.records ?? []) : [])).length >= 6,
      10_000,
    );
    expect(
      tailed
        .flatMap((f) => (f.type === 'log' ? (f.records ?? []) : []))
        .map((r) => r.fields.i)
        .sort((a, b) => a - b),
    ).toEqual([0, 1, 2, 3, 4, 5]);
    await owner.child.kill9();
    await waitFor(
      'the survivor owns every log shard',
      async () => (await runningShards(survivor, 'log')).length === SHARDS,
      20_000,
      100,
    );
    expect(await post(survivor, batch(5, 6))).toBe(204);
    await waitFor('all 12 records applied', async () => (await applied(survivor)) === 12, 10_000, 100);
    expect(Date.now()).toBeLessThan(windowStart + WINDOW_MS);
    await waitFor('the firing notification', () => hook.unique().length >= 1, WINDOW_MS + 10_000, 100);
    await sleep(1_000);
    const alerts = hook.unique().flatMap((r) => (r.body as { alerts: Alert[] }).alerts);
    expect(
      alerts.map((a) => ({ status: a.status, labels: a.labels, summary: a.annotations.summary })),
    ).toEqual([
      {
        status: 'firing',
        labels: { alertname: 'kill', severity: '4', stream: STREAM },
        summary: `11 errors in ${STREAM}`,
      },
    ]);
    // The search reads the mailbox back: all 12 records, from the survivor.
    const page = await api<{ items: { fields: { i?: number; level: string } }[] }>(
      survivor.url,
      `/api/v1/logs/${STREAM}/records?q=${encodeURIComponent("level = 'error'")}`,
      { token: READ_TOKEN },
    );
    expect(page.body.items.map((r) => r.fields.i).sort((a, b) => a! - b!)).toEqual([
      0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10,
    ]);
  }, 150_000);
});
