/**
 * Push ingest end to end, over real HTTP on loopback: a body in the exact form Telegraf's influx
 * serializer sends (gzip, as Telegraf does by default) → runtime/ingest/http.ts → the host entities'
 * mailboxes → the `metrics` stream, read back from where it is stored (the embedded journal, or the
 * Kafka topic through the node's output observer). Every assertion is on exact outcomes: the multiset
 * of (host, metric, tags, ts, value) read back equals what was sent, rejected lines are named by number
 * and reason, and no body — oversized, a gzip bomb, or one of ~300 fuzzed ones — gets a 5xx or takes
 * the node down (DESIGN.md contract 6).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { type IncomingHttpHeaders, request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { type HostMetricsOptions, hostMetrics, type MetricsRecord } from '../../actors/host/host-metrics.ts';
import { startHttp } from '../../runtime/http.ts';
import { createRuntime, type Runtime } from '../../runtime/runtime.ts';
import { kafkaBrokers, uniquePrefix } from '../helpers/services.ts';
import { sleep, waitFor } from '../helpers/wait.ts';

interface Node {
  readonly rt: Runtime;
  readonly url: string;
  readonly shards: number;
  /** Samples seen by the node's output observer (what the Kafka case reads back). */
  readonly observed: string[];
}

const dirs: string[] = [];
let stops: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const stop of stops.reverse()) await stop();
  stops = [];
});
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const startNode = async (options: HostMetricsOptions = {}, config?: object): Promise<Node> => {
  let base = config;
  if (!base) {
    const dataDir = mkdtempSync(join(tmpdir(), 'argus-ingest-'));
    dirs.push(dataDir);
    base = { mode: 'embedded', dataDir, shards: 8 };
  }
  const rt = createRuntime({ http: false, ...base });
  rt.use(hostMetrics(options));
  const observed: string[] = [];
  rt.onOutput('metrics', (outputs) => {
    for (const o of outputs) observed.push(...recordSamples(o.value as MetricsRecord));
  });
  await rt.start();
  stops.push(() => rt.stop());
  const http = await startHttp(rt, '127.0.0.1', 0);
  stops.push(() => http.close());
  return { rt, url: http.url, shards: rt.config.shards, observed };
};

interface Answer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
}

/** One request; `chunks` are written one by one (no content-length: chunked) when given as an array. */
const call = (
  url: string,
  method: string,
  body: Buffer | string | readonly Buffer[] = '',
  headers: Record<string, string> = {},
): Promise<Answer> =>
  new Promise((resolve, reject) => {
    const chunked = Array.isArray(body);
    const bytes = chunked ? undefined : Buffer.from(body as Buffer | string);
    const req = request(url, {
      method,
      headers: bytes ? { 'content-length': String(bytes.length), ...headers } : headers,
    });
    req.on('response', (res) => {
      const parts: Buffer[] = [];
      res.on('data', (c: Buffer) => parts.push(c));
      res.on('end', () =>
        resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(parts).toString() }),
      );
      res.on('error', reject);
    });
    req.on('error', reject);
    if (chunked) for (const c of body as readonly Buffer[]) req.write(c);
    req.end(bytes);
  });

const post = (url: string, body: Buffer | string | readonly Buffer[], headers: Record<string, string> = {}) =>
  call(url, 'POST', body, headers);
const gzipped = { 'content-encoding': 'gzip' };

/** A sample as a comparable string: host, metric, tags (sorted), ts, value. */
const sampleKey = (host: string, metric: string, tags: object, ts: number, value: unknown): string =>
  JSON.stringify([host, metric, Object.entries(tags).sort(([a], [b]) => (a < b ? -1 : 1)), ts, value]);

const recordSamples = (r: MetricsRecord): string[] =>
  r.samples.map((s) => sampleKey(r.host, s.metric, s.tags, s.ts, s.value));

/** Every sample of the node's metrics stream, read from the embedded journal, sorted. */
const storedSamples = async (node: Node): Promise<string[]> => {
  const all: string[] = [];
  for (let p = 0; p < node.shards; p++) {
    for (let from = 0; ; ) {
      const page = await node.rt.readStream('metrics', p, from, 1_000);
      for (const o of page) all.push(...recordSamples(o.value as MetricsRecord));
      if (page.length < 1_000) break;
      from += page.length;
    }
  }
  return all.sort();
};

/** Waits for `expected` samples to be stored (and a little longer, so an extra one would show). */
const settledSamples = async (node: Node, expected: number, read = storedSamples): Promise<string[]> => {
  await waitFor(`${expected} samples stored`, async () => (await read(node)).length >= expected, 20_000, 50);
  await sleep(300);
  return read(node);
};

const pushesOf = async (node: Node, host: string): Promise<number> =>
  ((await node.rt.ask('host', host, 'summary')) as { pushes: number }).pushes;

// --- Telegraf's influx serializer (plugins/serializers/influx): sorted tags, escapes, i/u suffixes. ---

type FieldValue = number | string | boolean | { readonly int: number } | { readonly uint: number };
interface TelegrafPoint {
  readonly name: string;
  readonly tags: Readonly<Record<string, string>>;
  readonly fields: Readonly<Record<string, FieldValue>>;
}
const escapeName = (s: string) => s.replace(/[, ]/g, '\\$&');
const escapeKey = (s: string) => s.replace(/[,= ]/g, '\\$&');
const fieldText = (v: FieldValue): string => {
  if (typeof v === 'string') return `"${v.replace(/["\\]/g, '\\$&')}"`;
  if (typeof v !== 'object') return String(v);
  return 'int' in v ? `${v.int}i` : `${v.uint}u`;
};
const fieldValue = (v: FieldValue): number | string =>
  typeof v === 'boolean' ? (v ? 1 : 0) : typeof v === 'object' ? ('int' in v ? v.int : v.uint) : v;
const serialize = (p: TelegrafPoint, ts: string): string => {
  const tags = Object.entries(p.tags)
    .sort(([a], [b]) => (a < b ? -1 : 1))
    .map(([k, v]) => `,${escapeKey(k)}=${escapeKey(v)}`)
    .join('');
  const fields = Object.entries(p.fields).map(([k, v]) => `${escapeKey(k)}=${fieldText(v)}`);
  return `${escapeName(p.name)}${tags} ${fields.join(',')} ${ts}`;
};

const i = (int: number) => ({ int });
const u = (uint: number) => ({ uint });
const telegrafPoints = (host: string, n: number): TelegrafPoint[] => [
  {
    name: 'cpu',
    tags: { cpu: 'cpu-total', host },
    fields: { usage_guest: 0, usage_idle: 97.5 - n, usage_system: 1.0050251256281406, usage_user: 1.25 + n },
  },
  {
    name: 'mem',
    tags: { host },
    fields: { active: i(1_234_567_890 + n), available_percent: 61.23, total: i(16_777_216_000) },
  },
  {
    name: 'disk',
    tags: { device: 'sda1', fstype: 'ext4', host, mode: 'rw', path: '/mnt/my disk' },
    fields: { free: i(123_456_789 * (n + 1)), inodes_free: i(1_000_000), used_percent: 12.5 },
  },
  { name: 'disk', tags: { device: 'sdb1', host, path: '/srv/a,b=c' }, fields: { free: i(-1) } },
  {
    name: 'net',
    tags: { host, interface: 'eth0' },
    fields: { bytes_recv: u(18_446_744_073_709), bytes_sent: u(456 + n), drop_in: u(0) },
  },
  { name: 'system', tags: { host }, fields: { load1: 0.5, n_cpus: i(2), uptime_format: '3 days,  4:05' } },
  {
    name: 'exec',
    tags: { host, 'my tag': 'x=y' },
    fields: { message: 'say "hi" from C:\\tmp', ok: true, failed: false },
  },
];

/** The timestamp text of a whole-second ms time in each precision, with sub-unit digits to floor away. */
const TS_TEXT: Record<string, (ms: number) => string> = {
  ns: (ms) => `${BigInt(ms) * 1_000_000n + 123_456n}`,
  us: (ms) => `${ms * 1_000 + 789}`,
  ms: (ms) => `${ms}`,
  s: (ms) => `${ms / 1_000}`,
};

/** A Telegraf batch for `hosts` at `ms`, and the samples it must become. */
const telegrafBatch = (hosts: readonly string[], ms: number, precision: string, n: number) => {
  const lines: string[] = [];
  const expected: string[] = [];
  for (const host of hosts) {
    for (const p of telegrafPoints(host, n)) {
      lines.push(serialize(p, TS_TEXT[precision]!(ms)));
      const { host: _, ...tags } = p.tags;
      for (const [k, v] of Object.entries(p.fields))
        expected.push(sampleKey(host, `${p.name}.${k}`, tags, ms, fieldValue(v)));
    }
  }
  return { body: `${lines.join('\n')}\n`, expected };
};

const HOSTS = ['web-1', 'web-2', 'db-1'];
const T0 = 1_700_000_000_000;
const WRITES = ['ns', 'us', 'ms', 's'].flatMap((precision) => [
  `/write?db=telegraf&precision=${precision}`,
  `/api/v2/write?org=o&bucket=b&precision=${precision}`,
]);

describe('line protocol push (embedded)', () => {
  it('takes gzip Telegraf batches on /write and /api/v2/write in every precision, every point at its host', async () => {
    const node = await startNode();
    const expected: string[] = [];
    for (const [n, path] of WRITES.entries()) {
      const batch = telegrafBatch(HOSTS, T0 + n * 10_000, path.slice(path.lastIndexOf('=') + 1), n);
      expect(batch.body).toContain('disk,device=sda1,fstype=ext4,host=web-1,mode=rw,path=/mnt/my\\ disk ');
      const answer = await post(`${node.url}${path}`, gzipSync(batch.body), gzipped);
      expect([answer.status, answer.text]).toEqual([204, '']);
      expected.push(...batch.expected);
    }
    for (const host of HOSTS)
      await waitFor(
        `${host} applied ${WRITES.length} pushes`,
        async () => (await pushesOf(node, host)) === 8,
      );
    expect(await settledSamples(node, expected.length)).toEqual(expected.sort());
    expect(expected).toHaveLength(3 * 8 * 20);
    expect(expected).toContain(sampleKey('web-1', 'system.uptime_format', {}, T0, '3 days,  4:05'));
    expect(expected).toContain(
      sampleKey('db-1', 'disk.free', { device: 'sdb1', path: '/srv/a,b=c' }, T0, -1),
    );
  });
});

describe('line protocol push (Kafka mailbox)', () => {
  it('delivers a gzip Telegraf batch to the host entities through Kafka', async () => {
    const kafka = { brokers: kafkaBrokers(), topicPrefix: uniquePrefix('ingest') };
    const node = await startNode({}, { mode: 'kafka', shards: 4, kafka });
    const v1 = telegrafBatch(['k-1', 'k-2'], T0, 'ns', 0);
    const v2 = telegrafBatch(['k-1', 'k-2'], T0 + 1_000, 's', 1);
    expect((await post(`${node.url}${WRITES[0]}`, gzipSync(v1.body), gzipped)).status).toBe(204);
    expect((await post(`${node.url}${WRITES[7]}`, gzipSync(v2.body), gzipped)).status).toBe(204);
    const expected = [...v1.expected, ...v2.expected].sort();
    const observed = await settledSamples(node, expected.length, async (n) => [...n.observed].sort());
    expect(observed).toEqual(expected);
    expect([await pushesOf(node, 'k-1'), await pushesOf(node, 'k-2')]).toEqual([2, 2]);
  }, 90_000);
});

/** Lines 2, 4, 6, 8, 9, 12 are bad; 5 is empty and 7 a comment (skipped, but counted). */
const mixedBatch = (a: string, b: string) =>
  [
    `cpu,host=${a},cpu=cpu0 usage_user=1.5 1700000000`,
    `cpu,host=${a},cpu=cpu1 usage_user=12x 1700000000`,
    `mem,host=${a} used=5i,free=7u 1700000000`,
    `mem,host=${a}`,
    '',
    `disk,host=${a} free=1i,free=2i 1700000000`,
    '# a comment',
    'net bytes=1u 1700000000',
    `net,host=${b} bytes=1u 1700000000abc`,
    `system,host=${b} load1=0.25,up="2 days" 1700000000`,
    `system,host=${b} ok=true 1700000000`,
    `x,host=${b} s="never closed 1700000000`,
  ].join('\n');
const MIXED_ERRORS =
  "line 2: field 'usage_user': invalid number '12x'; line 4: missing fields: the line ends in tag 'host'; " +
  "line 6: duplicate field 'free'; line 8: no 'host' tag: cannot tell which host the point belongs to; " +
  "line 9: invalid timestamp '1700000000abc': must be an integer; line 12: field 's': unterminated string";
const mixedExpected = (a: string, b: string) =>
  [
    sampleKey(a, 'cpu.usage_user', { cpu: 'cpu0' }, T0, 1.5),
    sampleKey(a, 'mem.used', {}, T0, 5),
    sampleKey(a, 'mem.free', {}, T0, 7),
    sampleKey(b, 'system.load1', {}, T0, 0.25),
    sampleKey(b, 'system.up', {}, T0, '2 days'),
    sampleKey(b, 'system.ok', {}, T0, 1),
  ].sort();

describe('partial writes', () => {
  it('answers 400 naming each rejected line, in the v1 and v2 shapes, and keeps the valid lines', async () => {
    const node = await startNode();
    const v1 = await post(`${node.url}/write?db=telegraf&precision=s`, mixedBatch('p-1', 'p-2'));
    expect(v1.status).toBe(400);
    expect(JSON.parse(v1.text)).toEqual({ error: `partial write: ${MIXED_ERRORS} dropped=6`, accepted: 6 });
    const v2 = await post(
      `${node.url}/api/v2/write?org=o&bucket=b&precision=s`,
      gzipSync(mixedBatch('p-3', 'p-4')),
      gzipped,
    );
    expect(v2.status).toBe(400);
    expect(JSON.parse(v2.text)).toEqual({
      code: 'invalid',
      message: `partial write: ${MIXED_ERRORS} dropped=6`,
      line: 2,
      accepted: 6,
    });
    const expected = [...mixedExpected('p-1', 'p-2'), ...mixedExpected('p-3', 'p-4')].sort();
    expect(await settledSamples(node, expected.length)).toEqual(expected);
    expect(await Promise.all(['p-1', 'p-2', 'p-3', 'p-4'].map((h) => pushesOf(node, h)))).toEqual([
      1, 1, 1, 1,
    ]);
  });

  it('rejects a host name that cannot be an entity key as a line, keeping the rest', async () => {
    const node = await startNode();
    const body = [
      `cpu,host=${'h'.repeat(600)} v=1 1700000000`,
      'cpu,host=a\tb v=1 1700000000',
      'cpu,host=ok-1 v=2 1700000000',
    ];
    const answer = await post(`${node.url}/write?precision=s`, body.join('\n'));
    expect(answer.status).toBe(400);
    expect(JSON.parse(answer.text)).toEqual({
      error:
        "partial write: line 1: tag 'host': longer than 512 characters (a host name is an entity key); " +
        "line 2: tag 'host': control characters are not allowed in a host name dropped=2",
      accepted: 1,
    });
    expect(await settledSamples(node, 1)).toEqual([sampleKey('ok-1', 'cpu.v', {}, T0, 2)]);
  });
});

describe('oversized bodies', () => {
  const linesOf = (host: string, bytes: number) => {
    const line = `cpu,host=${host},cpu=cpu0 usage_user=1.5,usage_idle=98.5 1700000000\n`;
    return line.repeat(Math.ceil(bytes / line.length));
  };

  it('answers 413 to a body, chunked body or gzip bomb over maxBodyBytes, and stores nothing of it', async () => {
    const node = await startNode({ maxBodyBytes: 10_000 });
    const big = linesOf('big-1', 20_000);
    const declared = await post(`${node.url}/write?precision=s`, big);
    expect([declared.status, JSON.parse(declared.text)]).toEqual([
      413,
      { error: `body of ${big.length} bytes is over the limit of 10000` },
    ]);
    const v2 = await post(`${node.url}/api/v2/write?bucket=b&precision=s`, big);
    expect([v2.status, JSON.parse(v2.text).code]).toEqual([413, 'request too large']);
    const chunks = Array.from({ length: 10 }, () => Buffer.from(linesOf('big-1', 2_000)));
    const chunked = await post(`${node.url}/write?precision=s`, chunks);
    expect([chunked.status, JSON.parse(chunked.text)]).toEqual([
      413,
      { error: 'body is over the limit of 10000 bytes' },
    ]);
    const bomb = gzipSync(linesOf('bomb-1', 2_000_000), { level: 9 });
    expect(bomb.length).toBeLessThan(10_000);
    const bombed = await post(`${node.url}/write?precision=s`, bomb, gzipped);
    expect([bombed.status, JSON.parse(bombed.text)]).toEqual([
      413,
      { error: 'decompressed body is over the limit of 10000 bytes' },
    ]);
    // A marker after them, to the same hosts: mailboxes are ordered, so anything stored would come first.
    const marker = 'cpu,host=big-1 v=1 1700000000\ncpu,host=bomb-1 v=2 1700000000\n';
    expect((await post(`${node.url}/write?precision=s`, marker)).status).toBe(204);
    await waitFor('the marker', async () => (await pushesOf(node, 'bomb-1')) === 1);
    expect(await pushesOf(node, 'big-1')).toBe(1);
    expect(await settledSamples(node, 2)).toEqual(
      [sampleKey('big-1', 'cpu.v', {}, T0, 1), sampleKey('bomb-1', 'cpu.v', {}, T0, 2)].sort(),
    );
  });
});

describe('JSON push (/api/v1/push)', () => {
  it('takes an object and an array, turns counters into exact rates, and names bad fields', async () => {
    const node = await startNode();
    const push = (doc: unknown) => post(`${node.url}/api/v1/push`, JSON.stringify(doc));
    const item = (ts: number, done: number) => ({
      ts,
      resource: 'app-1',
      metrics: { 'queue.depth': 17, healthy: true, 'jobs.done': done, version: 'v1.2' },
      tags: { queue: 'orders' },
      counters: ['jobs.done'],
    });
    const first = await push(item(T0, 100));
    expect([first.status, JSON.parse(first.text)]).toEqual([202, { accepted: 4 }]);
    const second = await push([
      item(T0 + 10_000, 150),
      { resource: 'app-2', metrics: { cpu: null, mem: 1 } },
      { resource: 'app-2', metrics: { ok: 1 }, tags: { zone: 3 }, timestamp: 5 },
      { resource: 'app-3', ts: '2023-11-14T22:13:20Z', metrics: { up: false } },
    ]);
    expect(second.status).toBe(400);
    expect(JSON.parse(second.text)).toEqual({
      error:
        '[1].metrics.cpu: must be a finite number, boolean or string, got null; ' +
        '[2].timestamp: unknown field (expected ts, resource, metrics, tags, counters); ' +
        '[2].tags.zone: must be a string, got a number',
      errors: [
        { index: 1, error: '[1].metrics.cpu: must be a finite number, boolean or string, got null' },
        { index: 2, error: '[2].timestamp: unknown field (expected ts, resource, metrics, tags, counters)' },
        { index: 2, error: '[2].tags.zone: must be a string, got a number' },
      ],
      accepted: 5,
    });
    expect(JSON.parse((await post(`${node.url}/api/v1/push`, '{"resource":')).text).error).toMatch(
      /^body is not JSON: /,
    );
    const tags = { queue: 'orders' };
    const expected = [
      ...[T0, T0 + 10_000].flatMap((ts) => [
        sampleKey('app-1', 'queue.depth', tags, ts, 17),
        sampleKey('app-1', 'healthy', tags, ts, 1),
        sampleKey('app-1', 'version', tags, ts, 'v1.2'),
      ]),
      sampleKey('app-1', 'jobs.done.rate', tags, T0 + 10_000, 5),
      sampleKey('app-3', 'up', {}, T0, 0),
    ].sort();
    expect(await settledSamples(node, expected.length)).toEqual(expected);
    expect([await pushesOf(node, 'app-1'), await pushesOf(node, 'app-2')]).toEqual([2, 0]);
  });
});

describe("Telegraf's other calls", () => {
  it('answers /ping with 204 and CREATE DATABASE with 200', async () => {
    const node = await startNode();
    for (const method of ['GET', 'HEAD']) {
      const ping = await call(`${node.url}/ping`, method);
      expect([ping.status, ping.text, ping.headers['x-influxdb-version']]).toEqual([204, '', '1.8.10-argus']);
    }
    const form = new URLSearchParams({ q: 'CREATE DATABASE "telegraf"' }).toString();
    const query = await post(`${node.url}/query`, form, {
      'content-type': 'application/x-www-form-urlencoded',
    });
    expect([query.status, JSON.parse(query.text)]).toEqual([200, { results: [{ statement_id: 0 }] }]);
  });
});

/** mulberry32: a seeded generator, so a failing fuzz body can be made again. */
const seeded = (seed: number) => () => {
  seed = (seed + 0x6d2b79f5) | 0;
  let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};

describe('fuzzed bodies', () => {
  it('answers ~300 random and mutated bodies with 2xx or 4xx, and the node stays healthy', async () => {
    const node = await startNode({ maxBodyBytes: 64_000 });
    const random = seeded(4242);
    const pick = <T>(list: readonly T[]): T => list[Math.floor(random() * list.length)]!;
    const valid = telegrafBatch(['f-1', 'f-2'], T0, 'ns', 0).body;
    const alphabet = 'ab,= "\\\n\t\r0123456789.-+eEiutfTF#h=ost\u00e9\u0000';
    const randomText = (n: number) => Array.from({ length: n }, () => pick([...alphabet])).join('');
    const mutate = (text: string) => {
      const chars = [...text];
      for (let k = Math.floor(random() * 20); k >= 0; k--)
        chars.splice(Math.floor(random() * chars.length), Math.floor(random() * 3), randomText(1));
      return chars.join('');
    };
    const bodies: (() => { body: Buffer; encoding?: string })[] = [
      () => ({
        body: Buffer.from(Array.from({ length: Math.floor(random() * 3_000) }, () => random() * 256)),
      }),
      () => ({
        body: Buffer.concat([Buffer.from([0x1f, 0x8b, 8, 0]), Buffer.from(randomText(200))]),
        encoding: 'gzip',
      }),
      () => {
        const full = gzipSync(valid);
        return { body: full.subarray(0, Math.floor(random() * full.length)), encoding: 'gzip' };
      },
      () => ({ body: Buffer.from(`cpu,host=${randomText(5)} ${randomText(Math.floor(random() * 400))}`) }),
      () => ({ body: Buffer.from(mutate(valid)) }),
      () => ({ body: gzipSync(mutate(valid)), encoding: 'gzip' }),
      () => ({ body: Buffer.from(mutate(valid)), encoding: pick(['br', 'deflate', 'GZIP', 'x']) }),
    ];
    const paths = [
      '/write?precision=ns',
      '/write?precision=xx',
      '/api/v2/write?bucket=b',
      '/api/v2/write',
      '/write',
    ];
    const statuses = new Map<number, number>();
    const fired = Array.from({ length: 300 }, () => ({ ...pick(bodies)(), path: pick(paths) }));
    for (let at = 0; at < fired.length; at += 4) {
      const answers = await Promise.all(
        fired
          .slice(at, at + 4)
          .map((f) =>
            post(`${node.url}${f.path}`, f.body, f.encoding ? { 'content-encoding': f.encoding } : {}),
          ),
      );
      for (const a of answers) {
        expect(a.status >= 200 && a.status < 500, `${a.status} ${a.text}`).toBe(true);
        statuses.set(a.status, (statuses.get(a.status) ?? 0) + 1);
      }
    }
    expect([...statuses.values()].reduce((a, b) => a + b)).toBe(300);
    expect(statuses.get(400)).toBeGreaterThan(100);
    expect(statuses.get(204)).toBeGreaterThan(0);
    const health = await call(`${node.url}/health`, 'GET');
    expect([health.status, JSON.parse(health.text).status]).toEqual([200, 'running']);
    // Every shard still applies what it is sent: no fuzzed message is stuck at the head of one.
    const markers = Array.from({ length: 40 }, (_, i) => `after-fuzz-${i}`);
    expect(new Set(markers.map((h) => node.rt.shardOf('host', h))).size).toBe(node.shards);
    const body = markers.map((h) => `cpu,host=${h} v=1 1700000000`).join('\n');
    expect((await post(`${node.url}/write?precision=s`, body)).status).toBe(204);
    // Durable, not just applied in memory: the shards' checkpoints landed and nothing is left behind.
    const landed = async () => {
      const stored = new Set(await storedSamples(node));
      return markers.every((h) => stored.has(sampleKey(h, 'cpu.v', {}, T0, 1)));
    };
    await waitFor('every marker stored', landed, 15_000, 50);
    await waitFor('no lag on any shard', async () => (await node.rt.lag()).every((l) => l.lag === 0));
  }, 60_000);
});
