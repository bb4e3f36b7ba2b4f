/**
 * Receivers against real HTTP servers: one that answers 500 for a while is retried with backoff and
 * gets the notification once it recovers (every attempt with the same idempotency key); one that is
 * down for good ends in the receiver's dead letters with the last error, visible through the API,
 * while another receiver of the same alert is delivered to as if nothing happened.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADMIN_TOKEN, api, READ_TOKEN } from '../helpers/api.ts';
import { waitFor } from '../helpers/wait.ts';
import { startWebhookServer, type WebhookServer } from '../helpers/webhook-server.ts';
import { type AlertingNode, doc, pushGauge, startAlertingNode } from './support.ts';

let flaky: WebhookServer;
let healthy: WebhookServer;
let node: AlertingNode;
const notifications: { receiver: string; status: string; attempt: number }[] = [];
const notifyEvents = () => notifications;

beforeAll(async () => {
  flaky = await startWebhookServer();
  healthy = await startWebhookServer();
  node = await startAlertingNode({
    rules: {
      'disk-full': doc({
        metric: 'disk.used_percent',
        condition: '>= 95',
        severity: 3,
        labels: { team: 'storage' },
      }),
    },
    receivers: {
      flaky: doc({ kind: 'webhook', url: `${flaky.url}/hook`, backoff: { initial: '100ms', max: '400ms' } }),
      healthy: doc({ kind: 'webhook', url: `${healthy.url}/hook` }),
      // Nothing listens on port 9 of loopback (discard): every attempt is refused.
      down: doc({
        kind: 'webhook',
        url: 'http://127.0.0.1:9/hook',
        max_attempts: 3,
        backoff: { initial: '50ms', max: '100ms' },
      }),
    },
    routes: {
      tree: doc({
        receivers: ['flaky', 'healthy', 'down'],
        group_by: ['...'],
        group_wait: '0s',
        group_interval: '100ms',
      }),
    },
  });
  node.rt.onOutput('events', (outputs) => {
    for (const o of outputs) {
      const e = o.value as { type: string; receiver: string; status: string; attempt: number };
      if (e.type === '@argus.notify') notifications.push(e);
    }
  });
}, 60_000);

afterAll(async () => {
  await node?.stop();
  await flaky?.close();
  await healthy?.close();
});

describe('receivers', () => {
  it('retries a receiver answering 500 with backoff and delivers once it recovers', async () => {
    flaky.failNext(3);
    await pushGauge(node.rt, 'db-1', 'disk.used_percent', 97);
    await waitFor('the flaky receiver to get it through', () => flaky.unique().length === 1, 20_000, 20);
    const attempts = flaky.all();
    expect(attempts.map((r) => r.status)).toEqual([500, 500, 500, 200]);
    expect(new Set(attempts.map((r) => r.idempotencyKey)).size).toBe(1);
    // The other receivers of the same alert were not held up by the failing one.
    expect(healthy.all().map((r) => r.status)).toEqual([200]);
    expect(healthy.all()[0]!.at).toBeLessThanOrEqual(attempts[1]!.at);
    // Each failure was reported on the events stream, then the delivery.
    await waitFor(
      'the delivered event',
      () => notifyEvents().some((e) => e.receiver === 'flaky' && e.status === 'delivered'),
      5_000,
      10,
    );
    expect(
      notifyEvents()
        .filter((e) => e.receiver === 'flaky')
        .map((e) => `${e.status} ${e.attempt}`),
    ).toEqual(['failed 1', 'failed 2', 'failed 3', 'delivered 4']);
    const summary = (await node.rt.ask('receiver', 'flaky', 'summary')) as {
      counters: Record<string, number>;
    };
    expect(summary.counters).toMatchObject({ delivered: 1, failed: 3, dead: 0 });
  }, 30_000);

  it('dead-letters a notification to a receiver that is down, with the last error, visible through the API', async () => {
    await waitFor(
      'the dead letter',
      async () => ((await node.rt.ask('receiver', 'down', 'deadletters')) as unknown[]).length === 1,
      20_000,
      20,
    );
    const res = await api<{ attempts: number; lastError: string; alerts: { status: string }[] }[]>(
      node.http.url,
      '/api/v1/receivers/down/deadletters',
      { token: READ_TOKEN },
    );
    expect(res.status).toBe(200);
    const letters = res.body;
    expect(letters).toHaveLength(1);
    expect(letters[0]!.attempts).toBe(3);
    expect(letters[0]!.lastError).toMatch(/ECONNREFUSED|refused/i);
    expect(letters[0]!.alerts.map((a) => a.status)).toEqual(['firing']);
    // Alert events only: the receivers' failures did not touch the rules.
    expect(node.events.map((e) => `${e.status} ${e.host}`)).toEqual(['firing db-1']);
  }, 30_000);

  it('does not notify an alert a silence covers, and notifies the others', async () => {
    const res = await api(node.http.url, '/api/v1/silences', {
      method: 'POST',
      token: ADMIN_TOKEN,
      body: {
        matchers: ['host="db-2"'],
        ends_at: Date.now() + 3_600_000,
        created_by: 'test',
        comment: 'maintenance',
      },
    });
    expect(res.status).toBe(201);
    const before = healthy.all().length;
    await pushGauge(node.rt, 'db-2', 'disk.used_percent', 99);
    await pushGauge(node.rt, 'db-3', 'disk.used_percent', 99);
    await waitFor('db-3 at the healthy receiver', () => healthy.all().length === before + 1, 10_000, 20);
    await new Promise((r) => setTimeout(r, 500));
    const hosts = healthy
      .all()
      .slice(before)
      .flatMap((r) =>
        (r.body as { alerts: { labels: Record<string, string> }[] }).alerts.map((a) => a.labels.host),
      );
    expect(hosts).toEqual(['db-3']);
    // The silenced alert fired all the same: it is on the events stream, only its notification is muted.
    expect(
      node.events
        .filter((e) => e.status === 'firing')
        .map((e) => e.host)
        .sort(),
    ).toEqual(['db-1', 'db-2', 'db-3']);
  }, 30_000);
});
