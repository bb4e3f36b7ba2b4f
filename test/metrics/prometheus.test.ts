/**
 * Self-metrics end to end: an embedded node with `selfMetrics()` on its HTTP endpoint processes N
 * messages, `/metrics` says exactly N, and a real Prometheus (Debian's, scripts/services/prometheus.ts)
 * scraping it every second, with a read token, answers a query for the processed-messages counter with
 * exactly N.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EVENTS_STREAM } from '../../actors/notify/receiver.ts';
import { defineEntity } from '../../runtime/entity.ts';
import { type HttpServer, startHttp } from '../../runtime/http.ts';
import { NOTIFY_STREAM, selfMetrics } from '../../runtime/metrics.ts';
import { createRuntime, type EntityClient, type Runtime } from '../../runtime/runtime.ts';
import { type RunningPrometheus, startPrometheus } from '../../scripts/services/prometheus.ts';
import { READ_TOKEN, testAuth } from '../helpers/api.ts';
import { waitFor } from '../helpers/wait.ts';

const KIND = 'tally';
const N = 40;
const KEYS = 8;

const tally = defineEntity<{ total: number }, { type: 'add'; n: number }>({
  kind: KIND,
  shards: 2,
  initialState: () => ({ total: 0 }),
  receive: (s, m) => ({ total: s.total + m.n }),
});

const dir = mkdtempSync(join(tmpdir(), 'argus-metrics-'));
let runtime: Runtime;
let client: EntityClient<{ total: number }, { type: 'add'; n: number }>;
let http: HttpServer;
let prometheus: RunningPrometheus | undefined;

beforeAll(async () => {
  runtime = createRuntime({ mode: 'embedded', dataDir: dir, auth: testAuth() });
  client = runtime.register(tally);
  runtime.use(selfMetrics());
  await runtime.start();
  http = await startHttp(runtime, '127.0.0.1', 0);
});

afterAll(async () => {
  await prometheus?.stop();
  await runtime?.stop();
  await http?.close();
  rmSync(dir, { recursive: true, force: true });
});

const scrape = async (): Promise<{ status: number; type: string | null; text: string }> => {
  const r = await fetch(`${http.url}/metrics`, { headers: { authorization: `Bearer ${READ_TOKEN}` } });
  return { status: r.status, type: r.headers.get('content-type'), text: await r.text() };
};

const processedLine = (text: string): string | undefined =>
  text.split('\n').find((l) => l.startsWith(`argus_messages_processed_total{kind="${KIND}"} `));

interface VectorResult {
  readonly metric: Record<string, string>;
  readonly value: [number, string];
}

const query = async (promql: string): Promise<VectorResult[]> => {
  const r = await fetch(`${prometheus!.url}/api/v1/query?query=${encodeURIComponent(promql)}`);
  const body = (await r.json()) as { status: string; data?: { resultType: string; result: VectorResult[] } };
  expect([r.status, body.status, body.data?.resultType]).toEqual([200, 'success', 'vector']);
  return body.data!.result;
};

describe('self-metrics scraped by Prometheus', () => {
  it('counts the messages processed, exactly, at /metrics', async () => {
    for (let i = 0; i < N; i++) await client.send(`k-${i % KEYS}`, { type: 'add', n: 1 });
    await waitFor(
      `${N} messages processed`,
      async () =>
        processedLine((await scrape()).text) === `argus_messages_processed_total{kind="${KIND}"} ${N}`,
      15_000,
      50,
    );
    const { status, type, text } = await scrape();
    expect([status, type]).toEqual([200, 'text/plain; version=0.0.4; charset=utf-8']);
    expect(processedLine(text)).toBe(`argus_messages_processed_total{kind="${KIND}"} ${N}`);
    const lag = text.split('\n').filter((l) => l.startsWith('argus_mailbox_lag{'));
    expect(lag).toEqual([
      `argus_mailbox_lag{kind="${KIND}",partition="0"} 0`,
      `argus_mailbox_lag{kind="${KIND}",partition="1"} 0`,
    ]);
    expect(text).toContain(`argus_node_info{node="${runtime.nodeId}",mode="embedded",version="0.1.0"} 1\n`);
    expect(text).toContain('argus_nodejs_heap_size_used_bytes ');
    // Receivers emit their delivery outcomes on the stream self-metrics watches.
    expect(NOTIFY_STREAM).toBe(EVENTS_STREAM);
  });

  it('refuses a scrape without a token', async () => {
    const r = await fetch(`${http.url}/metrics`);
    expect([r.status, r.headers.get('www-authenticate')]).toEqual([401, 'Bearer realm="argus"']);
  });

  it('is scraped by a real Prometheus, whose query answers exactly N for the kind', async () => {
    prometheus = await startPrometheus({ target: http.url, bearerToken: READ_TOKEN });
    expect(prometheus.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const result = await waitFor(
      'Prometheus to have scraped argus_messages_processed_total',
      async () => {
        const r = await query('argus_messages_processed_total');
        const mine = r.find((s) => s.metric.kind === KIND);
        return mine && Number(mine.value[1]) > 0 ? mine : undefined;
      },
      30_000,
      250,
    );
    expect(result.metric).toEqual({
      __name__: 'argus_messages_processed_total',
      instance: new URL(http.url).host,
      job: 'argus',
      kind: KIND,
    });
    expect(result.value[1]).toBe(String(N));
    const up = await query('up');
    expect(up.map((s) => [s.metric.job, s.value[1]])).toEqual([['argus', '1']]);
  }, 60_000);
});
