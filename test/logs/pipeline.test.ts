/**
 * The log path on one node with real parts: NDJSON over HTTP (and the real syslog listener) into
 * `log/<stream>` entities, SQL log rules from the config source, windows closed by ticks, results as
 * alerts through the route tree to a real webhook server and as `log_rule.<id>` metrics on host
 * entities, and the search API reading the mailbox back.
 *
 * The logs extension's clock is the test's: a 1-minute window closes when the test moves it past the
 * window end plus the grace (500 ms); records carry their own times.
 */
import { createSocket } from 'node:dgram';
import { connect } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { LOG_KIND } from '../../actors/log/entity.ts';
import type { AlertEvent } from '../../actors/rule/types.ts';
import { ForwardClient, packedForwardRequest } from '../helpers/forward-client.ts';
import { sleep, waitFor } from '../helpers/wait.ts';
import { startWebhookServer, type WebhookServer } from '../helpers/webhook-server.ts';
import { ADMIN_TOKEN, type LogNode, ndjson, READ_TOKEN, startLogNode } from './log-node.ts';

/**
 * Times as `10:MM:SS.mmm` on a base 50 minutes before now, whole minute: alert times stay within the
 * receivers' repeat interval (1 h) of the real clock they schedule notifications by.
 */
const BASE = Math.floor((Date.now() - 50 * 60_000) / 60_000) * 60_000;
const T = (hms: string) => {
  const [h, m, s] = hms.split(':').map(Number) as [number, number, number];
  return BASE + ((h - 10) * 3600 + m * 60 + s) * 1000;
};
const STREAM = 'payments.nginx-access';
const RULE_5XX = `SELECT host, count(*) AS errors FROM "payments.nginx-access" WHERE status >= 500 GROUP BY host, TUMBLE(1 minute) HAVING count(*) > 10`;

let node: LogNode;
let hook: WebhookServer;

const post = async (stream: string, body: string) => {
  const res = await fetch(`${node.http.url}/api/v1/logs/${stream}`, { method: 'POST', body });
  return { status: res.status, text: await res.text() };
};

const get = async (path: string) => {
  const res = await fetch(`${node.http.url}${path}`, { headers: { authorization: `Bearer ${READ_TOKEN}` } });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

const put = async (path: string, body: string) => {
  const res = await fetch(`${node.http.url}${path}`, {
    method: 'PUT',
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    body,
  });
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
};

/** The summary of a stream entity: records applied. */
const applied = async (key: string) =>
  ((await node.rt.ask(LOG_KIND, key, 'summary')) as { records: number }).records;

const eventsOf = (rule: string): AlertEvent[] => node.events.filter((e) => e.rule === rule);
const brief = (e: AlertEvent) => ({ status: e.status, labels: e.labels, value: e.value, at: e.at });

/** Moves the logs clock and waits for the tick after it to have been applied. */
const moveTo = async (t: number) => {
  node.clock.time = t;
  await sleep(250);
};

beforeAll(async () => {
  hook = await startWebhookServer({ format: 'alertmanager' });
  node = await startLogNode(
    {
      logrules: { 'nginx-5xx': RULE_5XX },
      // A metric rule on the log rule's metric: the two alerting paths are one.
      rules: {
        'log-errors-host': JSON.stringify({ metric: 'log_rule.nginx-5xx', condition: '> 10', severity: 2 }),
      },
      receivers: {
        ops: JSON.stringify({
          kind: 'webhook',
          url: `${hook.url}/am`,
          backoff: { initial: '100ms', max: '1s' },
        }),
      },
      routes: {
        tree: JSON.stringify({
          receiver: 'ops',
          group_by: ['alertname', 'host'],
          group_wait: '0s',
          group_interval: '100ms',
          repeat_interval: '1h',
        }),
      },
    },
    { start: T('10:00:30') },
  );
}, 60_000);

afterAll(async () => {
  await node?.stop();
  await hook?.close();
});

describe('a 1-minute tumbling window with HAVING count(*) > 10', () => {
  it('fires once for the host with 11 errors, not for the one with 10; the metric carries both counts', async () => {
    const lines: Record<string, unknown>[] = [];
    for (let i = 0; i < 11; i++)
      lines.push({
        time: T(`10:00:${String(10 + i).padStart(2, '0')}`),
        host: 'web-1',
        status: 500 + (i % 3),
        path: `/pay/${i}`,
      });
    for (let i = 0; i < 10; i++)
      lines.push({ time: T(`10:00:${String(20 + i)}`), host: 'web-2', status: 503 });
    for (let i = 0; i < 5; i++)
      lines.push({ time: T(`10:00:${String(40 + i)}`), host: 'web-2', status: 200 });
    expect(await post(STREAM, ndjson(lines))).toEqual({ status: 204, text: '' });
    await waitFor('step 1', async () => (await applied(STREAM)) === 26, 5_000);
    // Still inside the window's grace: nothing closes.
    await moveTo(T('10:01:00.400'));
    expect(eventsOf('nginx-5xx')).toEqual([]);
    await moveTo(T('10:01:00.600'));
    await waitFor('step 2', () => eventsOf('nginx-5xx').length >= 1, 5_000);
    await sleep(300);
    expect(eventsOf('nginx-5xx').map(brief)).toEqual([
      {
        status: 'firing',
        labels: { alertname: 'nginx-5xx', host: 'web-1', severity: '3', stream: STREAM },
        value: 11,
        at: T('10:01:00'),
      },
    ]);
    await waitFor('step 3', () => hook.unique().length >= 1, 5_000);
    await sleep(300);
    const notified = hook
      .unique()
      .flatMap((r) => (r.body as { alerts: { status: string; labels: Record<string, string> }[] }).alerts)
      .filter((a) => a.labels.alertname === 'nginx-5xx');
    expect(notified.map((a) => ({ status: a.status, host: a.labels.host }))).toEqual([
      { status: 'firing', host: 'web-1' },
    ]);
    expect(hook.problems()).toEqual([]);
    // The firing index lists log alerts beside metric ones.
    const listed = (await get('/api/v1/alerts?rule=nginx-5xx')).body as {
      items: { rule: string; labels: Record<string, string>; value: number }[];
    };
    expect(listed.items.map((a) => ({ rule: a.rule, host: a.labels.host, value: a.value }))).toEqual([
      { rule: 'nginx-5xx', host: 'web-1', value: 11 },
    ]);
    // log_rule.nginx-5xx on each host entity: 11 and 10.
    await waitFor('step 4', async () => (await get('/api/v1/hosts/web-2/history')).status === 200, 5_000);
    const history = async (host: string) => {
      const h = (await get(`/api/v1/hosts/${host}/history`)).body as {
        series: Record<string, [number, number][]>;
      };
      return Object.entries(h.series)
        .filter(([k]) => k.startsWith('log_rule.nginx-5xx'))
        .map(([k, points]) => [k, points.map((p) => p[1])]);
    };
    await waitFor('step 5', async () => (await history('web-2')).length === 1, 5_000);
    expect(await history('web-1')).toEqual([[`log_rule.nginx-5xx{stream=${STREAM}}`, [11]]]);
    expect(await history('web-2')).toEqual([[`log_rule.nginx-5xx{stream=${STREAM}}`, [10]]]);
    // …which the metric rule evaluates inside the host entities: web-1 (11 > 10) fires, web-2 does not.
    await waitFor(
      'the metric rule on the log metric',
      () => node.events.some((e) => e.rule === 'log-errors-host'),
      5_000,
    );
    await sleep(200);
    expect(
      eventsOf('log-errors-host').map((e) => ({ status: e.status, host: e.host, value: e.value })),
    ).toEqual([{ status: 'firing', host: 'web-1', value: 11 }]);
  });

  it('resolves at the end of the next window without 11 errors, with one notification', async () => {
    await moveTo(T('10:02:00.600'));
    await waitFor('step 6', () => eventsOf('nginx-5xx').length >= 2, 5_000);
    const [fired, resolved] = eventsOf('nginx-5xx');
    expect(brief(resolved!)).toEqual({
      status: 'resolved',
      labels: fired!.labels,
      value: 11,
      at: T('10:02:00'),
    });
    expect(resolved!.fingerprint).toBe(fired!.fingerprint);
    expect([fired!.seq, resolved!.seq]).toEqual([1, 2]);
    await waitFor('step 7', () => hook.unique().length >= 2, 5_000);
    const statuses = hook
      .unique()
      .flatMap((r) => (r.body as { alerts: { status: string; labels: Record<string, string> }[] }).alerts)
      .filter((a) => a.labels.alertname === 'nginx-5xx')
      .map((a) => a.status);
    expect(statuses).toEqual(['firing', 'resolved']);
  });
});

describe('sliding windows', () => {
  it('HOP(2 minutes, 1 minute) fires on the window holding 4 records and resolves on the next', async () => {
    expect(
      (
        await put(
          '/api/v1/logrules/slide',
          `SELECT count(*) AS n FROM "app.slide" GROUP BY HOP(2 minutes, 1 minute) HAVING count(*) > 3`,
        )
      ).status,
    ).toBeLessThan(300);
    await waitFor('step 8', () => node.logs.rules?.get('slide') !== undefined, 2_000);
    const lines = [T('10:03:10'), T('10:03:20'), T('10:04:10'), T('10:04:20')].map((time, i) => ({
      time,
      i,
    }));
    expect((await post('app.slide', ndjson(lines))).status).toBe(204);
    await waitFor('step 9', async () => (await applied('app.slide')) === 4, 5_000);
    await moveTo(T('10:04:00.600')); // [10:02, 10:04) holds 2
    await moveTo(T('10:05:00.600')); // [10:03, 10:05) holds 4: fires
    await moveTo(T('10:06:00.600')); // [10:04, 10:06) holds 2: resolves
    await waitFor('step 10', () => eventsOf('slide').length >= 2, 5_000);
    expect(eventsOf('slide').map(brief)).toEqual([
      {
        status: 'firing',
        labels: { alertname: 'slide', severity: '3', stream: 'app.slide' },
        value: 4,
        at: T('10:05:00'),
      },
      {
        status: 'resolved',
        labels: { alertname: 'slide', severity: '3', stream: 'app.slide' },
        value: 4,
        at: T('10:06:00'),
      },
    ]);
  });
});

describe('a rule changed while a window is open', () => {
  it('applies to the next window: the open one finishes with the old version', async () => {
    const before = `SELECT count(*) AS n FROM "app.change" GROUP BY TUMBLE(1 minute) HAVING count(*) > 10`;
    const after = `SELECT count(*) AS n FROM "app.change" GROUP BY TUMBLE(1 minute) HAVING count(*) > 5`;
    expect((await put('/api/v1/logrules/change', before)).status).toBeLessThan(300);
    await waitFor('step 11', () => node.logs.rules?.get('change') !== undefined, 2_000);
    const batch = (minute: string) =>
      ndjson(Array.from({ length: 8 }, (_, i) => ({ time: T(`10:${minute}:${String(10 + i)}`), i })));
    expect((await post('app.change', batch('10'))).status).toBe(204);
    await waitFor('step 12', async () => (await applied('app.change')) === 8, 5_000);
    expect((await put('/api/v1/logrules/change', after)).status).toBeLessThan(300);
    await waitFor('step 13', () => node.logs.rules?.get('change')?.sql === after, 2_000);
    expect((await post('app.change', batch('11'))).status).toBe(204);
    await waitFor('step 14', async () => (await applied('app.change')) === 16, 5_000);
    await moveTo(T('10:11:00.600')); // [10:10, 10:11): 8 records, old rule (> 10): nothing
    await moveTo(T('10:12:00.600')); // [10:11, 10:12): 8 records, new rule (> 5): fires
    await waitFor('step 15', () => eventsOf('change').length >= 1, 5_000);
    await sleep(200);
    expect(eventsOf('change').map(brief)).toEqual([
      {
        status: 'firing',
        labels: { alertname: 'change', severity: '3', stream: 'app.change' },
        value: 8,
        at: T('10:12:00'),
      },
    ]);
  });
});

describe('a crash mid-window', () => {
  it('does not double count: the entity restarts from its snapshot and replays only what it had not', async () => {
    expect(
      (
        await put(
          '/api/v1/logrules/crash',
          `SELECT count(*) AS n FROM "app.crash" GROUP BY TUMBLE(1 minute) HAVING count(*) > 10`,
        )
      ).status,
    ).toBeLessThan(300);
    await waitFor('step 16', () => node.logs.rules?.get('crash') !== undefined, 2_000);
    const lines = (from: number, n: number) =>
      ndjson(
        Array.from({ length: n }, (_, i) => ({
          time: T(`10:20:${String(from + i).padStart(2, '0')}`),
          i: from + i,
        })),
      );
    expect((await post('app.crash', lines(0, 6))).status).toBe(204);
    await waitFor('step 17', async () => (await applied('app.crash')) === 6, 5_000);
    const local = node.rt.localShard(LOG_KIND, 'app.crash');
    await local!.runner.restartEntity('app.crash', 'test');
    expect((await post('app.crash', lines(10, 5))).status).toBe(204);
    await waitFor('step 18', async () => (await applied('app.crash')) === 11, 5_000);
    await moveTo(T('10:21:00.600'));
    await waitFor('step 19', () => eventsOf('crash').length >= 1, 5_000);
    await sleep(200);
    expect(eventsOf('crash').map((e) => ({ status: e.status, value: e.value }))).toEqual([
      { status: 'firing', value: 11 },
    ]);
  });
});

describe('syslog into a stream', () => {
  it('a datagram lands in the stream named by its APP-NAME and is found by search', async () => {
    const udp = node.logs.addresses.syslogUdp!;
    const [host, port] = [udp.slice(0, udp.lastIndexOf(':')), Number(udp.slice(udp.lastIndexOf(':') + 1))];
    const socket = createSocket('udp4');
    const stamp = new Date(T('10:30:00.123')).toISOString();
    const line = `<165>1 ${stamp} db-7 billing 42 ID9 [meta seq="1"] payment refused`;
    await new Promise<void>((resolve, reject) =>
      socket.send(Buffer.from(line), port, host, (e) => (e ? reject(e) : resolve())),
    );
    socket.close();
    await waitFor('step 20', async () => (await applied('billing')) === 1, 5_000);
    const page = await get('/api/v1/logs/billing/records');
    expect(page.status).toBe(200);
    expect(page.body.items).toEqual([
      {
        time: stamp,
        timeMs: T('10:30:00.123'),
        fields: {
          facility: 20,
          severity: 5,
          host: 'db-7',
          app: 'billing',
          procid: '42',
          msgid: 'ID9',
          message: 'payment refused',
          structuredData: { meta: { seq: '1' } },
          format: '5424',
        },
      },
    ]);
  });
});

describe('search', () => {
  it('filters by expression and time range, newest first, paged to the end', async () => {
    const lines = Array.from({ length: 40 }, (_, i) => ({
      time: T('10:40:00') + i * 1000,
      host: `h-${i % 4}`,
      status: i % 5 === 0 ? 500 : 200,
      i,
    }));
    expect((await post('app.search', ndjson(lines))).status).toBe(204);
    await waitFor('step 21', async () => (await applied('app.search')) === 40, 5_000);
    const errors = await get(`/api/v1/logs/app.search/records?q=${encodeURIComponent('status >= 500')}`);
    expect((errors.body.items as { fields: { i: number } }[]).map((r) => r.fields.i)).toEqual([
      35, 30, 25, 20, 15, 10, 5, 0,
    ]);
    const ranged = await get(
      `/api/v1/logs/app.search/records?from=${T('10:40:10')}&to=${new Date(T('10:40:13')).toISOString()}`,
    );
    expect((ranged.body.items as { fields: { i: number } }[]).map((r) => r.fields.i)).toEqual([12, 11, 10]);
    const seen: number[] = [];
    let cursor: string | undefined;
    for (let page = 0; page < 5; page++) {
      const r = await get(`/api/v1/logs/app.search/records?limit=15${cursor ? `&cursor=${cursor}` : ''}`);
      seen.push(...(r.body.items as { fields: { i: number } }[]).map((x) => x.fields.i));
      cursor = r.body.next as string | undefined;
      if (!cursor) break;
    }
    expect(seen).toEqual(Array.from({ length: 40 }, (_, i) => 39 - i));
    expect((await get('/api/v1/logs/app.search/records?q=median(x)%20%3E%201')).body).toEqual({
      error: "q: filter: unknown function 'median' at line 1, column 1",
    });
  });
});

describe('live tail on the feed', () => {
  it('a tail with a filter sees exactly the matching records, within 500 ms of their POST', async () => {
    const ws = new WebSocket(`${node.http.url.replace('http', 'ws')}/api/v1/events/stream`, {
      headers: { authorization: `Bearer ${READ_TOKEN}` },
    });
    const frames: {
      type: string;
      stream?: string;
      records?: { time: number; fields: Record<string, unknown> }[];
    }[] = [];
    const arrived: number[] = [];
    ws.on('message', (data) => {
      frames.push(JSON.parse(String(data)));
      arrived.push(Date.now());
    });
    await new Promise<void>((resolve, reject) => {
      ws.once('open', () => resolve());
      ws.once('error', reject);
    });
    ws.send(JSON.stringify({ type: 'tail', stream: 'app.tail', filter: "level = 'error' AND code >= 500" }));
    await waitFor('the tail ack', () => frames.some((f) => f.type === 'tailing'), 5_000);
    const lines = [
      { time: T('10:50:01'), level: 'error', code: 503, n: 1 },
      { time: T('10:50:02'), level: 'info', code: 200, n: 2 },
      { time: T('10:50:03'), level: 'error', code: 404, n: 3 },
      { time: T('10:50:04'), level: 'error', code: 500, n: 4 },
    ];
    const sent = Date.now();
    expect((await post('app.tail', ndjson(lines))).status).toBe(204);
    await waitFor('the log frame', () => frames.some((f) => f.type === 'log'), 5_000);
    const i = frames.findIndex((f) => f.type === 'log');
    ws.close();
    expect(frames[i]).toEqual({
      type: 'log',
      stream: 'app.tail',
      records: [
        { time: T('10:50:01'), fields: lines[0] },
        { time: T('10:50:04'), fields: lines[3] },
      ],
    });
    expect(arrived[i]! - sent).toBeLessThan(500);
  });
});

describe('bad input at the node', () => {
  it('a msgpack bomb closes only its connection; the next forward client is acked and its records land', async () => {
    const address = node.logs.addresses.forward!;
    const bomb = await ForwardClient.connect(address);
    // ["bomb", <array32 of 4,294,967,295 entries>]: refused from the header, before any allocation.
    await bomb.send(
      Buffer.concat([
        Buffer.from([0x92, 0xa4]),
        Buffer.from('bomb'),
        Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff]),
      ]),
    );
    await bomb.closed;
    expect(bomb.acks).toEqual([]);
    const good = await ForwardClient.connect(address);
    const seconds = Math.floor(T('10:55:00') / 1000);
    await good.send(
      packedForwardRequest(
        'app.forward',
        [
          { seconds, nanos: 250_000_000, record: { msg: 'one', n: 1 } },
          { seconds: seconds + 1, nanos: 0, record: { msg: 'two', n: 2 } },
        ],
        { chunk: 'c-1' },
      ),
    );
    expect(await good.waitForAcks(1)).toEqual(['c-1']);
    good.socket.end();
    await waitFor('the forward records applied', async () => (await applied('app.forward')) === 2, 5_000);
    const page = await get('/api/v1/logs/app.forward/records');
    expect(
      (page.body.items as { timeMs: number; fields: unknown }[]).map((i) => [i.timeMs, i.fields]),
    ).toEqual([
      [(seconds + 1) * 1000, { msg: 'two', n: 2 }],
      [seconds * 1000 + 250, { msg: 'one', n: 1 }],
    ]);
  });

  it('a 100 MB syslog line over TCP is skipped with bounded memory; the next message on the connection lands', async () => {
    const tcp = node.logs.addresses.syslogTcp!;
    const socket = connect({ host: '127.0.0.1', port: Number(tcp.slice(tcp.lastIndexOf(':') + 1)) });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', () => resolve());
      socket.once('error', reject);
    });
    const heapBefore = process.memoryUsage().heapUsed;
    const chunk = Buffer.alloc(1 << 20, 0x61);
    const write = (b: Buffer) =>
      new Promise<void>((resolve, reject) => socket.write(b, (e) => (e ? reject(e) : resolve())));
    await write(Buffer.from('<14>1 - big huge - - - '));
    for (let i = 0; i < 100; i++) await write(chunk);
    const stamp = new Date(T('10:57:00')).toISOString();
    await write(Buffer.from(`\n<14>1 ${stamp} web-9 after.big - - - still here\n`));
    await waitFor(
      'the message after the 100 MB line',
      async () => (await applied('after.big')) === 1,
      20_000,
    );
    socket.end();
    expect(process.memoryUsage().heapUsed - heapBefore).toBeLessThan(64 << 20);
    expect(await applied('huge')).toBe(0);
    const page = await get('/api/v1/logs/after.big/records');
    expect(
      (page.body.items as { fields: { message: string; host: string } }[]).map((i) => [
        i.fields.host,
        i.fields.message,
      ]),
    ).toEqual([['web-9', 'still here']]);
    expect(node.logs.stats().syslog?.invalid).toBeGreaterThanOrEqual(1);
  });

  it('an NDJSON body with bad lines keeps the good ones and names the bad', async () => {
    const body = [
      JSON.stringify({ time: T('10:56:00'), ok: 1 }),
      'not json',
      '[1,2]',
      JSON.stringify({ time: T('10:56:01'), ok: 2 }),
    ].join('\n');
    const r = await post('app.mixed', body);
    expect(r.status).toBe(400);
    const answer = JSON.parse(r.text) as { accepted: number; errors: string[] };
    expect(answer.accepted).toBe(2);
    await waitFor('the good lines applied', async () => (await applied('app.mixed')) === 2, 5_000);
    expect(
      ((await get('/api/v1/logs/app.mixed/records')).body.items as { fields: unknown }[]).map(
        (i) => i.fields,
      ),
    ).toEqual([
      { time: T('10:56:01'), ok: 2 },
      { time: T('10:56:00'), ok: 1 },
    ]);
  });

  it('a rule that is not SQL, or calls an unknown function, is refused with where; nothing is stored', async () => {
    const notSql = await put('/api/v1/logrules/bad', 'hello world');
    expect(notSql.status).toBe(400);
    expect(String(notSql.body.error)).toBe(
      `ARGUS_ERR_INVALID_LOG_RULE: log rule 'bad': syntax error at line 1, column 7: Expected "--", "/*", ":=", "=", "FOR", "TO", or [ \\t\\n\\r] but "w" found.`,
    );
    const unknownFn = await put(
      '/api/v1/logrules/bad',
      'SELECT median(latency) FROM "app.x" GROUP BY TUMBLE(1 minute)',
    );
    expect(unknownFn.status).toBe(400);
    expect(String(unknownFn.body.error)).toBe(
      "ARGUS_ERR_INVALID_LOG_RULE: log rule 'bad': unknown function 'median' at line 1, column 8",
    );
    expect((await get('/api/v1/logrules/bad')).status).toBe(404);
    expect(node.rt.status).toBe('running');
  });
});
