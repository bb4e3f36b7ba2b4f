/**
 * The real Notifier against the real webhook test server (test/helpers/webhook-server.ts): a 500
 * then a 200 for the same notification (same idempotency key, deduped by the server), the body valid
 * Alertmanager v4 and the HMAC signature verified; a hanging receiver is cut at the timeout; a refused
 * connection is an outcome, never a throw.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startWebhookServer, type WebhookServer } from '../../test/helpers/webhook-server.ts';
import type { AlertEvent } from '../rule/types.ts';
import { alertmanagerBody } from './alertmanager.ts';
import { createHttpNotifier, type HttpNotifier } from './http-notifier.ts';
import { parseReceiver } from './receivers.ts';

const T = Date.now();
const firing: AlertEvent = {
  type: '@argus.alert',
  fingerprint: 'f1',
  seq: 2,
  rule: 'cpu-high',
  status: 'firing',
  severity: 5,
  labels: { alertname: 'cpu-high', host: 'web-1', service: 'web' },
  annotations: { summary: 'CPU <busy>' },
  value: 99,
  startsAt: T,
  at: T,
};
const body = alertmanagerBody({
  receiver: 'infra',
  groupKey: 'root{service="web"}',
  groupLabels: { service: 'web' },
  alerts: [firing],
  maxAlerts: 0,
});

let server: WebhookServer | undefined;
let notifier: HttpNotifier | undefined;
afterEach(async () => {
  notifier?.close();
  await server?.close();
  server = undefined;
  notifier = undefined;
});

describe('http notifier', () => {
  it('gets a 500, then delivers the same notification, signed, to a receiver that dedupes it', async () => {
    server = await startWebhookServer({ secret: 's3cret', failFirst: 1 });
    notifier = createHttpNotifier({ clock: { now: () => Date.now() } });
    const receiver = parseReceiver('infra', {
      kind: 'webhook',
      url: server.url,
      secret: 's3cret',
      headers: { 'X-Team': 'infra' },
    });
    const request = { receiver, notificationId: 'n-1', body, attempt: 1 };
    expect(await notifier.deliver(request)).toEqual({
      ok: false,
      status: 500,
      error: 'HTTP 500 Internal Server Error: scripted failure',
    });
    expect(await notifier.deliver({ ...request, attempt: 2 })).toEqual({ ok: true, status: 200 });
    // A duplicate on the wire (say, after a crash) carries the same key and is dropped by the receiver.
    expect(await notifier.deliver({ ...request, attempt: 3 })).toEqual({ ok: true, status: 200 });
    expect(server.problems()).toEqual([]);
    expect(server.all().map((r) => [r.status, r.idempotencyKey])).toEqual([
      [500, 'n-1'],
      [200, 'n-1'],
      [200, 'n-1'],
    ]);
    const [delivered] = server.unique();
    expect(server.unique()).toHaveLength(1);
    expect(delivered!.raw).toBe(body);
    expect(delivered!.headers).toMatchObject({
      'content-type': 'application/json',
      'idempotency-key': 'n-1',
      'x-team': 'infra',
      'x-argus-signature': expect.stringMatching(/^v1=[0-9a-f]{64}$/),
      'x-argus-timestamp': expect.stringMatching(/^\d+$/),
    });
  });

  it('the server refuses a wrong signature (so the check is real)', async () => {
    server = await startWebhookServer({ secret: 'expected' });
    notifier = createHttpNotifier();
    const receiver = parseReceiver('infra', { kind: 'webhook', url: server.url, secret: 'other' });
    const outcome = await notifier.deliver({ receiver, notificationId: 'n-2', body, attempt: 1 });
    expect(outcome).toEqual({
      ok: false,
      status: 400,
      error: 'HTTP 400 Bad Request: signature: signature does not match the body and timestamp',
    });
  });

  it('cuts a hanging receiver at the timeout', async () => {
    server = await startWebhookServer();
    server.hang();
    notifier = createHttpNotifier();
    const receiver = parseReceiver('infra', { kind: 'webhook', url: server.url, timeout: '200ms' });
    const started = performance.now();
    const outcome = await notifier.deliver({ receiver, notificationId: 'n-3', body, attempt: 1 });
    expect(outcome).toEqual({ ok: false, error: `no answer from 127.0.0.1:${server.port} within 200 ms` });
    expect(performance.now() - started).toBeLessThan(2000);
  });

  it('turns a refused connection into an outcome', async () => {
    server = await startWebhookServer();
    const url = server.url;
    await server.close();
    server = undefined;
    notifier = createHttpNotifier();
    const receiver = parseReceiver('infra', { kind: 'webhook', url });
    const outcome = await notifier.deliver({ receiver, notificationId: 'n-4', body, attempt: 1 });
    expect(outcome.ok).toBe(false);
    expect(outcome.status).toBeUndefined();
    expect(outcome.error).toMatch(/ECONNREFUSED/);
  });
});

describe('the webhook test server', () => {
  it('checks the exact v4 field list, types and times', async () => {
    const { alertmanagerV4Problems } = await import('../../test/helpers/webhook-server.ts');
    const good = JSON.parse(body);
    expect(alertmanagerV4Problems(good)).toEqual([]);
    const { externalURL: _, ...missing } = good;
    expect(alertmanagerV4Problems({ ...missing, extra: 1 })).toEqual([
      'body: missing externalURL',
      'body: unexpected extra',
      'externalURL: must be a string, got undefined',
    ]);
    const badAlert = { ...good, alerts: [{ ...good.alerts[0], startsAt: '2026-05-01 10:00', status: 'ok' }] };
    expect(alertmanagerV4Problems(badAlert)).toEqual([
      "alerts[0].status: must be 'firing' or 'resolved', got \"ok\"",
      'alerts[0].startsAt: must be an RFC 3339 time, got "2026-05-01 10:00"',
      "status: must be 'resolved' (no alert fires)",
    ]);
  });
});
