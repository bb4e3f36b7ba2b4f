/**
 * The metrics-to-people path on one node, with real parts: simulated SNMP agents polled by the host
 * poller, host rules evaluated inside the host entities, a service rule aggregated by `rule/<id>`,
 * the route tree (severity 1-3 → infra; 4-5 → infra and the service's owners), receivers delivering
 * over HTTP to real webhook servers (Alertmanager v4 body with HMAC, and a chat body), and a live-feed
 * client over a real WebSocket.
 *
 * A CPU spike on 3 of 10 hosts fires exactly 3 host alerts (to infra and owners); values between the
 * clear level and the threshold do not flap; when the spike ends they resolve; a service-wide rise
 * fires the service rule (infra only) and resolves it. Every alert gets exactly one firing and one
 * resolved notification, and the feed client sees the severity-4 firing events it subscribed to.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { InventoryHost } from '../../actors/host/types.ts';
import { type SimulatedAgents, startSimulatedAgents } from '../helpers/snmp-agents.ts';
import { sleep, waitFor } from '../helpers/wait.ts';
import { startWebhookServer, type WebhookServer } from '../helpers/webhook-server.ts';
import { local, OID, SIM_SET_YAML, simAgentSpec } from '../host/support.ts';
import { type AlertingNode, doc, READ_TOKEN, startAlertingNode } from './support.ts';

const HOSTS = 10;
const INTERVAL_MS = 300;
const SECRET = 'infra-secret';

let agents: SimulatedAgents;
let infra: WebhookServer;
let owners: WebhookServer;
let node: AlertingNode;
const feed: { type: string; event?: Record<string, unknown>; receivedAt: number }[] = [];
let ws: WebSocket;

const ids = Array.from({ length: HOSTS }, (_, i) => `pay-${i}`);
const setLoad = (which: readonly string[], value: number) =>
  Promise.all(which.map((id) => agents.set(id, OID.load, { type: 'Gauge32', value })));

type Notified = { status: string; labels: Record<string, string> };
const notified = (server: WebhookServer, body: 'am' | 'chat'): Notified[] =>
  server.unique().flatMap((r) => {
    if (body === 'chat') return [{ status: 'chat', labels: {} }];
    const b = r.body as { alerts: { status: string; labels: Record<string, string> }[] };
    return b.alerts.map((a) => ({ status: a.status, labels: a.labels }));
  });
const count = (list: Notified[], status: string, alertname: string) =>
  list.filter((n) => n.status === status && n.labels.alertname === alertname).length;

beforeAll(async () => {
  agents = await startSimulatedAgents(
    ids.map((id, n) => simAgentSpec(id, n, { load: { type: 'Gauge32', value: 10 } })),
  );
  infra = await startWebhookServer({ secret: SECRET });
  owners = await startWebhookServer({ format: 'chat' });
  const inventory: InventoryHost[] = agents.agents.map((a) => ({
    id: a.id,
    ...local(a.port),
    service: 'pay',
    labels: { dc: 'test' },
    intervalMs: INTERVAL_MS,
  }));
  node = await startAlertingNode(
    {
      metricsets: { pay: SIM_SET_YAML },
      rules: {
        'cpu-high': doc({
          metric: 'sim.load',
          condition: '> 90',
          clear: 80,
          severity: 4,
          annotations: { summary: 'load {{value}} on {{host}}' },
        }),
        'pay-load': doc({
          metric: 'sim.load',
          scope: 'service',
          aggregate: 'avg',
          condition: '> 50',
          severity: 2,
          interval: '300ms',
        }),
      },
      receivers: {
        infra: doc({
          kind: 'webhook',
          url: `${infra.url}/am`,
          secret: SECRET,
          backoff: { initial: '100ms', max: '1s' },
        }),
        'pay-owners': doc({ kind: 'chat', url: `${owners.url}/chat` }),
      },
      routes: {
        tree: doc({
          receiver: 'infra',
          group_by: ['alertname', 'host', 'service'],
          group_wait: '0s',
          group_interval: '200ms',
          repeat_interval: '1h',
          routes: [
            { severity: '1-3', receiver: 'infra' },
            {
              severity: '4-5',
              receiver: 'infra',
              routes: [{ matchers: ['service="pay"'], receivers: ['infra', 'pay-owners'] }],
            },
          ],
        }),
      },
    },
    inventory,
  );
  ws = new WebSocket(`${node.http.url.replace('http', 'ws')}/api/v1/events/stream`, {
    headers: { authorization: `Bearer ${READ_TOKEN}` },
  });
  ws.on('message', (data) => feed.push({ ...JSON.parse(data.toString()), receivedAt: Date.now() }));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  ws.send(JSON.stringify({ type: 'subscribe', filter: { types: ['@argus.alert'], minSeverity: 4 } }));
  await waitFor('the subscription', () => feed.some((f) => f.type === 'subscribed'), 5_000, 10);
}, 60_000);

afterAll(async () => {
  ws?.close();
  await node?.stop();
  await agents?.close();
  await infra?.close();
  await owners?.close();
});

describe('alerting end to end (embedded, simulated SNMP agents, real webhooks)', () => {
  it('fires exactly 3 host alerts for a spike on 3 of 10 hosts, to infra and the owners', async () => {
    // Every host polled a few times at normal load: nothing fires.
    await waitFor(
      'every host polled',
      () => ids.every((id) => node.hosts.latest(id) !== undefined),
      15_000,
      20,
    );
    await sleep(4 * INTERVAL_MS);
    expect(node.events.filter((e) => e.status === 'firing')).toEqual([]);

    const spiking = ids.slice(0, 3);
    await setLoad(spiking, 95);
    await waitFor(
      '3 firing notifications at infra',
      () => count(notified(infra, 'am'), 'firing', 'cpu-high') === 3,
      15_000,
      20,
    );
    await waitFor('3 chat notifications at the owners', () => owners.unique().length === 3, 15_000, 20);
    const firing = notified(infra, 'am').filter((n) => n.labels.alertname === 'cpu-high');
    expect(firing.map((n) => n.labels.host).sort()).toEqual(spiking);
    for (const n of firing)
      expect(n.labels).toMatchObject({ alertname: 'cpu-high', severity: '4', service: 'pay', dc: 'test' });
    const am = infra.unique()[0]!.body as { version: string; commonAnnotations: Record<string, string> };
    expect(am.version).toBe('4');
    expect(am.commonAnnotations.summary).toMatch(/^load 95 on pay-[012]$/);
    expect(infra.problems()).toEqual([]);
    expect(owners.problems()).toEqual([]);

    // The feed client subscribed to severity >= 4 alerts: it saw the 3 firing events, nothing else.
    await waitFor(
      '3 firing events on the feed',
      () => feed.filter((f) => f.type === 'event').length >= 3,
      5_000,
      10,
    );
    const seen = feed.filter((f) => f.type === 'event').map((f) => f.event!);
    expect(seen.map((e) => `${e.status} ${e.host}`).sort()).toEqual(spiking.map((h) => `firing ${h}`));
    // Within the latency target, counted from the poll that carried the sample (its send time, `at`)
    // to the frame's arrival: the benchmark (alert-latency) measures the 50 ms embedded p99; on a
    // shared CI machine this allows the 500 ms of the Kafka target.
    for (const f of feed.filter((x) => x.type === 'event'))
      expect(f.receivedAt - (f.event!.at as number)).toBeLessThan(500);
  }, 60_000);

  it('does not flap while the value stays between the clear level and the threshold', async () => {
    await setLoad(ids.slice(0, 3), 85);
    await sleep(6 * INTERVAL_MS);
    expect(count(notified(infra, 'am'), 'resolved', 'cpu-high')).toBe(0);
    expect(node.events.filter((e) => e.rule === 'cpu-high').map((e) => e.status)).toEqual([
      'firing',
      'firing',
      'firing',
    ]);
  }, 30_000);

  it('resolves the host alerts and fires the service rule when the whole service rises', async () => {
    await setLoad(ids, 60);
    await waitFor(
      '3 resolved at infra',
      () => count(notified(infra, 'am'), 'resolved', 'cpu-high') === 3,
      15_000,
      20,
    );
    await waitFor(
      'the service alert at infra',
      () => count(notified(infra, 'am'), 'firing', 'pay-load') === 1,
      15_000,
      20,
    );
    const svc = notified(infra, 'am').find((n) => n.labels.alertname === 'pay-load')!;
    expect(svc.labels).toEqual({ alertname: 'pay-load', service: 'pay', severity: '2' });
    await setLoad(ids, 10);
    await waitFor(
      'the service alert resolved',
      () => count(notified(infra, 'am'), 'resolved', 'pay-load') === 1,
      15_000,
      20,
    );
    await sleep(4 * INTERVAL_MS);
    // Exactly one firing and one resolved notification per alert; owners only got severity 4.
    const all = notified(infra, 'am');
    expect(count(all, 'firing', 'cpu-high')).toBe(3);
    expect(count(all, 'resolved', 'cpu-high')).toBe(3);
    expect(count(all, 'firing', 'pay-load')).toBe(1);
    expect(count(all, 'resolved', 'pay-load')).toBe(1);
    expect(owners.unique().length).toBe(6);
    expect(infra.all().length).toBe(infra.unique().length);
    expect(infra.problems()).toEqual([]);
  }, 60_000);
});
