/**
 * Bearer tokens on every HTTP endpoint of a node: a real embedded runtime with everything `npm start`
 * serves (the inspector, alerting, host metrics with push ingest, self-metrics, the live feed) behind a real HTTP
 * server, asked over every endpoint with no token, a wrong one, the read token ('reader') and the admin
 * token ('ops') of test/helpers/api.ts. The gate runs before any route, so endpoints whose routes are
 * not there yet (or are someone else's) are held to the same contract: the table is the contract.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { request, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { counter } from '../../actors/counter/counter.ts';
import { hostMetrics } from '../../actors/host/host-metrics.ts';
import { alerting } from '../../actors/rule/alerting.ts';
import { principalOf } from '../../runtime/auth.ts';
import type { ArgusEvent } from '../../runtime/events.ts';
import { eventFeed } from '../../runtime/feed/feed.ts';
import { type HttpServer, startHttp } from '../../runtime/http.ts';
import { inspector } from '../../runtime/inspector/index.ts';
import { MemoryConfigSource } from '../../runtime/memory-config.ts';
import { selfMetrics } from '../../runtime/metrics.ts';
import { createRuntime, type Runtime, type RuntimeExtension } from '../../runtime/runtime.ts';
import { ADMIN_TOKEN, type ApiAnswer, api, READ_TOKEN, testAuth } from '../helpers/api.ts';

const TOKEN_REQUIRED =
  'a bearer token is required: Authorization: Bearer <token>, a Sec-WebSocket-Protocol entry bearer.<token>, or ?access_token=<token>';
const NOT_VALID = 'the bearer token is not valid';
const NONE_CONFIGURED = 'no tokens are configured (auth.tokens): every client is refused until one is';
const CHALLENGE = 'Bearer realm="argus"';

/** Endpoints that look: `GET` (or `HEAD`), scope `read`. */
const READS: readonly string[] = [
  // runtime/http.ts
  '/inspect',
  '/cluster',
  '/lag',
  '/deadletters',
  '/deadletters?kind=counter',
  '/entities/counter/x',
  // self-metrics
  '/metrics',
  // alerting
  '/api/v1/rules',
  '/api/v1/rules/x',
  '/api/v1/routes',
  '/api/v1/receivers',
  '/api/v1/receivers/x',
  '/api/v1/receivers/x/deadletters',
  '/api/v1/silences',
  // host metrics
  '/api/v1/hosts',
  '/api/v1/hosts/h1',
  '/api/v1/hosts/h1/history',
  '/api/v1/inventory',
  '/api/v1/poller',
  '/api/v1/metricsets/svc',
  // the inspector (docs/API.md "Inspector")
  '/api/v1/cluster',
  '/api/v1/placement',
  '/api/v1/nodes/self/tree',
  '/api/v1/nodes/self/tree?path=node',
  '/api/v1/entities',
  '/api/v1/entities?q=x&limit=10',
  '/api/v1/entities/counter/x',
  '/api/v1/deadletters',
  '/api/v1/deadletters/counter:0:0',
  '/api/v1/alerts',
  // the feed, asked without an upgrade; and a route nobody has written yet
  '/api/v1/events/stream',
  '/api/v1/not-written-yet',
];

interface Call {
  readonly method: string;
  readonly path: string;
  readonly body?: unknown;
}

/** Every protected call: the reads as `GET`, and the writes. */
const protectedCalls = (): readonly Call[] => [...READS.map((path) => ({ method: 'GET', path })), ...WRITES];

/** Endpoints that change something: any other method, scope `admin`; each with a harmless body. */
const WRITES: readonly Call[] = [
  { method: 'POST', path: '/entities/counter/x', body: { type: 'inc', by: 1 } },
  { method: 'POST', path: '/api/v1/rules', body: 'rules: []' },
  { method: 'PUT', path: '/api/v1/rules/x', body: 'not: a rule' },
  { method: 'DELETE', path: '/api/v1/rules/x' },
  { method: 'PUT', path: '/api/v1/routes', body: 'not: a tree' },
  { method: 'DELETE', path: '/api/v1/routes' },
  { method: 'PUT', path: '/api/v1/receivers/x', body: 'kind: sms' },
  { method: 'DELETE', path: '/api/v1/receivers/x' },
  { method: 'POST', path: '/api/v1/receivers/x/deadletters/replay' },
  { method: 'POST', path: '/api/v1/receivers/x/deadletters/discard' },
  { method: 'POST', path: '/api/v1/silences', body: { matchers: [] } },
  { method: 'DELETE', path: '/api/v1/silences/x' },
  { method: 'PUT', path: '/api/v1/metricsets/svc', body: 'scalars: 1' },
  { method: 'DELETE', path: '/api/v1/metricsets/nope' },
  { method: 'POST', path: '/api/v1/entities/counter/x/restart' },
  { method: 'POST', path: '/api/v1/entities/counter/x/stop' },
  { method: 'POST', path: '/api/v1/entities/counter/x/messages', body: { type: 'inc', by: 1 } },
  { method: 'POST', path: '/api/v1/deadletters/counter:0:0/replay' },
  { method: 'POST', path: '/api/v1/deadletters/replay?kind=counter' },
  { method: 'DELETE', path: '/api/v1/deadletters/counter:0:0' },
  { method: 'PATCH', path: '/inspect' },
  { method: 'POST', path: '/health' },
  { method: 'PUT', path: '/api/v1/push' },
];

/** Open endpoints: no token; each with what it takes. */
const OPEN: readonly Call[] = [
  { method: 'GET', path: '/health' },
  { method: 'HEAD', path: '/health' },
  { method: 'GET', path: '/' },
  { method: 'GET', path: '/index.html' },
  { method: 'HEAD', path: '/index.html' },
  { method: 'GET', path: '/assets/app.js' },
  { method: 'GET', path: '/favicon.ico' },
  { method: 'POST', path: '/write?db=argus&precision=ms', body: 'cpu,host=h1 busy=1 1764633600000' },
  {
    method: 'POST',
    path: '/api/v2/write?bucket=argus&precision=ms',
    body: 'cpu,host=h1 busy=2 1764633600001',
  },
  {
    method: 'POST',
    path: '/api/v1/push',
    body: { resource: 'h1', ts: 1764633600002, metrics: { 'cpu.busy': 3 } },
  },
  { method: 'GET', path: '/ping' },
  { method: 'POST', path: '/query', body: 'q=CREATE+DATABASE+argus' },
];

/** A route that tells who asked, and what URL it was given (so a token in the query would show). */
const whoami: RuntimeExtension = {
  name: 'whoami',
  start: async () => undefined,
  stop: async () => undefined,
  routes: [
    async (req, res: ServerResponse, url) => {
      if (url.pathname !== '/test/whoami') return false;
      const text = JSON.stringify({ by: principalOf(req) ?? null, search: url.search });
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(text);
      return true;
    },
  ],
};

interface Node {
  readonly rt: Runtime;
  readonly http: HttpServer;
  readonly dir: string;
}

const startNode = async (auth: ReturnType<typeof testAuth>): Promise<Node> => {
  const dir = mkdtempSync(join(tmpdir(), 'argus-auth-'));
  const rt = createRuntime(
    { mode: 'embedded', dataDir: dir, http: false, shards: 2, auth },
    { configSource: new MemoryConfigSource() },
  );
  const alerts = alerting({ tickMs: 50 });
  rt.use(inspector())
    .use(alerts)
    .use(hostMetrics({ cycleMs: 500, observer: alerts.observer }))
    .use(selfMetrics())
    .use(eventFeed())
    .use(whoami);
  rt.register(counter);
  await rt.start();
  return { rt, http: await startHttp(rt, '127.0.0.1', 0), dir };
};

const stopNode = async (node: Node | undefined): Promise<void> => {
  if (!node) return;
  await node.http.close();
  await node.rt.stop();
  rmSync(node.dir, { recursive: true, force: true });
};

let node: Node;
let unconfigured: Node;
/** Every answer of the suite, to look for a token in. */
const answers: ApiAnswer[] = [];

beforeAll(async () => {
  node = await startNode(testAuth());
  unconfigured = await startNode({ tokens: [] });
}, 60_000);

afterAll(async () => {
  await stopNode(node);
  await stopNode(unconfigured);
});

const ask = async (
  on: Node,
  method: string,
  path: string,
  token: string | null,
  body?: unknown,
): Promise<ApiAnswer> => {
  const a = await api(on.http.url, path, { method, token, ...(body === undefined ? {} : { body }) });
  answers.push(a);
  return a;
};

const refusal = (a: ApiAnswer) => ({
  status: a.status,
  body: a.body,
  challenge: a.headers.get('www-authenticate'),
});

describe('without a token', () => {
  it.each(READS)('GET %s is 401 asking for one', async (path) => {
    expect(refusal(await ask(node, 'GET', path, null))).toEqual({
      status: 401,
      body: { error: TOKEN_REQUIRED },
      challenge: CHALLENGE,
    });
  });

  it.each(WRITES)('$method $path is 401 asking for one', async ({ method, path, body }) => {
    expect(refusal(await ask(node, method, path, null, body))).toEqual({
      status: 401,
      body: { error: TOKEN_REQUIRED },
      challenge: CHALLENGE,
    });
  });

  it('HEAD of a protected endpoint is 401 too', async () => {
    const a = await ask(node, 'HEAD', '/metrics', null);
    expect([a.status, a.headers.get('www-authenticate')]).toEqual([401, CHALLENGE]);
  });
});

describe('with a token no one configured', () => {
  it.each(protectedCalls())('$method $path is 401', async ({ method, path }) => {
    expect(refusal(await ask(node, method, path, 'not-a-configured-token'))).toEqual({
      status: 401,
      body: { error: NOT_VALID },
      challenge: CHALLENGE,
    });
  });
});

describe("with the read token ('reader')", () => {
  it.each(READS)('GET %s is let through', async (path) => {
    expect([401, 403]).not.toContain((await ask(node, 'GET', path, READ_TOKEN)).status);
  });

  it('HEAD is a read', async () => {
    expect((await ask(node, 'HEAD', '/metrics', READ_TOKEN)).status).toBe(200);
    expect((await ask(node, 'HEAD', '/inspect', READ_TOKEN)).status).toBe(200);
  });

  it.each(WRITES)("$method $path is 403: 'reader' lacks admin", async ({ method, path, body }) => {
    const a = await ask(node, method, path, READ_TOKEN, body);
    expect([a.status, a.body]).toEqual([403, { error: "token 'reader' does not have the 'admin' scope" }]);
    expect(a.headers.get('www-authenticate')).toBe(
      'Bearer realm="argus", error="insufficient_scope", scope="admin"',
    );
  });
});

describe("with the admin token ('ops')", () => {
  it.each(READS)('GET %s is let through', async (path) => {
    expect([401, 403]).not.toContain((await ask(node, 'GET', path, ADMIN_TOKEN)).status);
  });

  it.each(WRITES)('$method $path is let through', async ({ method, path, body }) => {
    expect([401, 403]).not.toContain((await ask(node, method, path, ADMIN_TOKEN, body)).status);
  });

  it('reaches the routes themselves: a message is accepted, a bad rule refused by the rules API', async () => {
    expect(await ask(node, 'POST', '/entities/counter/y', ADMIN_TOKEN, { type: 'inc', by: 2 })).toMatchObject(
      {
        status: 202,
        body: { accepted: true },
      },
    );
    expect((await ask(node, 'PUT', '/api/v1/rules/x', ADMIN_TOKEN, 'metric: [')).status).toBe(400);
    expect((await ask(node, 'GET', '/api/v1/not-written-yet', ADMIN_TOKEN)).status).toBe(404);
  });
});

describe('open endpoints', () => {
  it.each(OPEN)('$method $path answers without a token', async ({ method, path, body }) => {
    const a = await ask(node, method, path, null, body);
    expect([401, 403]).not.toContain(a.status);
  });

  it('health, push ingest and the InfluxDB handshake answer as they do with a token', async () => {
    expect((await ask(node, 'GET', '/health', null)).status).toBe(200);
    expect((await ask(node, 'HEAD', '/health', null)).status).toBe(200);
    expect(
      (await ask(node, 'POST', '/write?precision=ms', null, 'cpu,host=h2 busy=1 1764633600000')).status,
    ).toBe(204);
    expect(
      (
        await ask(node, 'POST', '/api/v1/push', null, {
          resource: 'h2',
          ts: 1764633600001,
          metrics: { x: 1 },
        })
      ).status,
    ).toBe(202);
    expect((await ask(node, 'GET', '/ping', null)).status).toBe(204);
  });

  it('stay open when no tokens are configured', async () => {
    expect((await ask(unconfigured, 'GET', '/health', null)).status).toBe(200);
    expect(
      (
        await ask(unconfigured, 'POST', '/api/v1/push', null, {
          resource: 'h3',
          ts: 1764633600000,
          metrics: { x: 1 },
        })
      ).status,
    ).toBe(202);
  });

  it('do not open what is under them: dot segments are resolved before the gate', async () => {
    // Sent as written (fetch would resolve them itself), so the server's parsing is what is tested.
    const raw = (path: string) =>
      new Promise<number>((resolve, reject) => {
        const req = request(`${node.http.url}${path}`, { method: 'GET', path }, (res) => {
          res.resume();
          res.on('end', () => resolve(res.statusCode ?? 0));
        });
        req.on('error', reject);
        req.end();
      });
    for (const path of ['/assets/../api/v1/rules', '/assets/%2e%2e/inspect', '/health/../metrics'])
      expect([path, await raw(path)]).toEqual([path, 401]);
  });
});

describe('no tokens configured', () => {
  it.each(protectedCalls())(
    '$method $path is 401 saying none is, whatever is presented',
    async ({ method, path }) => {
      for (const token of [null, ADMIN_TOKEN])
        expect(refusal(await ask(unconfigured, method, path, token))).toEqual({
          status: 401,
          body: { error: NONE_CONFIGURED },
          challenge: CHALLENGE,
        });
    },
  );
});

describe('the principal', () => {
  it("is the token's name, for the header and for ?access_token alike", async () => {
    expect((await ask(node, 'GET', '/test/whoami', READ_TOKEN)).body).toEqual({ by: 'reader', search: '' });
    expect((await ask(node, 'POST', '/test/whoami', ADMIN_TOKEN)).body).toEqual({ by: 'ops', search: '' });
    // The query's token is taken out of the URL the routes see, so none can echo it.
    expect((await ask(node, 'GET', `/test/whoami?a=1&access_token=${READ_TOKEN}`, null)).body).toEqual({
      by: 'reader',
      search: '?a=1',
    });
  });
});

describe('who did it', () => {
  it("an admin action's event names the token that asked, never the token", async () => {
    const events: ArgusEvent[] = [];
    const unsubscribe = node.rt.subscribe((e) => {
      events.push(e);
    });
    try {
      const a = await ask(node, 'POST', '/api/v1/entities/counter/z/messages', ADMIN_TOKEN, {
        type: 'inc',
        by: 1,
      });
      expect(a.status).toBe(202);
      const admin = events.filter((e) => e.type === '@argus.admin');
      expect(admin).toMatchObject([{ action: 'message', kind: 'counter', key: 'z', by: 'ops' }]);
      expect(JSON.stringify(admin)).not.toContain(ADMIN_TOKEN);
    } finally {
      unsubscribe();
    }
  });
});

describe('the token itself', () => {
  it('never appears in an answer, body or header', async () => {
    // Last: `answers` holds every answer of the suite by now (vitest runs a file's tests in order).
    expect(answers.length).toBeGreaterThan(200);
    for (const a of answers) {
      const text = `${JSON.stringify(a.body)} ${JSON.stringify([...a.headers.entries()])}`;
      expect(text).not.toContain(READ_TOKEN);
      expect(text).not.toContain(ADMIN_TOKEN);
    }
  });
});
