/**
 * The alerting HTTP API (actors/rule/api.ts, actors/notify/api.ts) and the `argus` CLI, against a real
 * embedded node with the alerting extension and a real HTTP server: every endpoint with its exact
 * answer; a bad write refused with the field named and nothing changed; a receiver's secret never
 * echoed; 404, 405 and 503 where they belong.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ReceiverMessage } from '../../actors/notify/types.ts';
import { alerting } from '../../actors/rule/alerting.ts';
import { type HttpServer, startHttp } from '../../runtime/http.ts';
import { MemoryConfigSource } from '../../runtime/memory-config.ts';
import { createRuntime, type Runtime } from '../../runtime/runtime.ts';
import { ADMIN_TOKEN, READ_TOKEN, testAuth } from '../helpers/api.ts';
import { waitFor } from '../helpers/wait.ts';

let dataDir: string;
let rt: Runtime;
let http: HttpServer;
let config: MemoryConfigSource;

beforeAll(async () => {
  dataDir = mkdtempSync(join(tmpdir(), 'argus-api-'));
  config = new MemoryConfigSource();
  rt = createRuntime(
    { mode: 'embedded', dataDir, http: false, shards: 2, auth: testAuth() },
    { configSource: config },
  );
  rt.use(alerting({ tickMs: 50 }));
  await rt.start();
  http = await startHttp(rt, '127.0.0.1', 0);
}, 60_000);

afterAll(async () => {
  await http?.close();
  await rt?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

interface Raw {
  readonly status: number;
  readonly body: unknown;
  readonly text: string;
  readonly allow: string | null;
}

/** One request with the admin token (the scopes themselves are test/inspector/auth.test.ts's). */
const request = async (method: string, path: string, body?: string | object): Promise<Raw> => {
  const res = await fetch(`${http.url}${path}`, {
    method,
    headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
    ...(body === undefined ? {} : { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  const text = await res.text();
  return { status: res.status, body: JSON.parse(text), text, allow: res.headers.get('allow') };
};

/** Status and parsed body: what the assertions compare, exactly. */
const call = async (method: string, path: string, body?: string | object) => {
  const { status, body: answer } = await request(method, path, body);
  return { status, body: answer };
};

/** A known path asked with a method it does not take: 405, the Allow header, the error naming both. */
const expectNotAllowed = async (method: string, path: string, allow: string) =>
  expect(await request(method, path)).toEqual({
    status: 405,
    allow,
    body: { error: `method ${method} is not allowed here (allowed: ${allow})` },
    text: expect.any(String),
  });

const CPU_RULE = {
  metric: 'cpu.busy_pct',
  condition: '> 90',
  for: '5m',
  severity: 3,
  labels: { team: 'infra' },
};
const CPU_ENTRY = {
  id: 'cpu-high',
  version: expect.stringMatching(/^[0-9a-f]{12}$/),
  document: {
    metric: 'cpu.busy_pct',
    scope: 'host',
    condition: '> 90',
    for: '5m',
    keep_firing_for: '0s',
    no_data: 'ignore',
    interval: '1m',
    severity: 3,
    labels: { team: 'infra' },
    annotations: {},
  },
  rule: {
    id: 'cpu-high',
    version: expect.stringMatching(/^[0-9a-f]{12}$/),
    metric: 'cpu.busy_pct',
    scope: 'host',
    aggregate: null,
    services: [],
    op: '>',
    threshold: 90,
    clear: 90,
    forMs: 300_000,
    keepFiringForMs: 0,
    noData: { policy: 'ignore' },
    intervalMs: 60_000,
    severity: 3,
    labels: { team: 'infra' },
    annotations: {},
  },
};

describe('rules API', () => {
  it('writes a rule with PUT and answers it with GET, one and all', async () => {
    expect(await call('PUT', '/api/v1/rules/cpu-high', CPU_RULE)).toEqual({ status: 200, body: CPU_ENTRY });
    expect(await call('GET', '/api/v1/rules/cpu-high')).toEqual({ status: 200, body: CPU_ENTRY });
    expect(await call('GET', '/api/v1/rules')).toEqual({
      status: 200,
      body: { rules: [CPU_ENTRY], rejected: [] },
    });
  });

  it('answers a document that PUT takes back unchanged, keeping the version', async () => {
    const before = (await call('GET', '/api/v1/rules/cpu-high')).body as {
      version: string;
      document: object;
    };
    const again = await call('PUT', '/api/v1/rules/cpu-high', before.document);
    expect(again.status).toBe(200);
    expect((again.body as { version: string }).version).toBe(before.version);
  });

  it.each([
    [
      'an unknown operator',
      { metric: 'cpu.busy_pct', condition: '~ 5', severity: 3 },
      "ARGUS_ERR_INVALID_RULE: rule 'cpu-high': condition: unknown operator '~' (use >, >=, <, <=, == or !=)",
      [{ path: 'condition', message: "unknown operator '~' (use >, >=, <, <=, == or !=)" }],
    ],
    [
      'a missing metric',
      { condition: '> 5', severity: 3 },
      "ARGUS_ERR_INVALID_RULE: rule 'cpu-high': metric: is required",
      [{ path: 'metric', message: 'is required' }],
    ],
    [
      'severity 9',
      { metric: 'cpu.busy_pct', condition: '> 5', severity: 9 },
      "ARGUS_ERR_INVALID_RULE: rule 'cpu-high': severity: must be an integer 1-5, got 9",
      [{ path: 'severity', message: 'must be an integer 1-5, got 9' }],
    ],
    [
      'unparsable YAML',
      'metric: cpu.busy_pct\ncondition: > 90\nseverity: 3\n',
      "ARGUS_ERR_INVALID_RULE: rule 'cpu-high': is not valid YAML or JSON: Not a YAML token: 90 at line 2, column 14 (quote the condition in YAML: condition: '> 90')",
      [
        {
          path: '',
          message:
            "is not valid YAML or JSON: Not a YAML token: 90 at line 2, column 14 (quote the condition in YAML: condition: '> 90')",
        },
      ],
    ],
  ])(
    'refuses %s with 400 naming the field, and leaves the rules in force untouched',
    async (_what, doc, error, problems) => {
      const before = await request('GET', '/api/v1/rules');
      expect(await call('PUT', '/api/v1/rules/cpu-high', doc)).toEqual({
        status: 400,
        body: { error, problems },
      });
      expect((await request('GET', '/api/v1/rules')).text).toBe(before.text);
    },
  );

  it('refuses an empty body', async () => {
    expect(await call('PUT', '/api/v1/rules/cpu-high', '')).toEqual({
      status: 400,
      body: { error: "body is empty: send rule 'cpu-high' as YAML or JSON" },
    });
  });

  it('applies a rules file whole with POST: every id written', async () => {
    const file = [
      'rules:',
      '  - id: disk-full',
      '    metric: disk.used_pct{mount="/"}',
      "    condition: '>= 95'",
      '    severity: 4',
      '  - id: svc-errors',
      '    metric: http.errors',
      '    scope: service',
      '    aggregate: sum',
      "    condition: '> 10'",
      '    severity: 2',
      '',
    ].join('\n');
    expect(await call('POST', '/api/v1/rules', file)).toEqual({
      status: 200,
      body: { written: ['disk-full', 'svc-errors'] },
    });
    const all = (await call('GET', '/api/v1/rules')).body as { rules: { id: string; rule: object }[] };
    expect(all.rules.map((r) => r.id)).toEqual(['cpu-high', 'disk-full', 'svc-errors']);
    expect(all.rules[1]!.rule).toMatchObject({ metric: 'disk.used_pct{mount="/"}', op: '>=', threshold: 95 });
    expect(all.rules[2]!.rule).toMatchObject({ scope: 'service', aggregate: 'sum' });
  });

  it('writes nothing of a rules file with one bad rule, and names it', async () => {
    const before = await request('GET', '/api/v1/rules');
    const file = {
      rules: [
        { id: 'fine', metric: 'mem.used_pct', condition: '> 80', severity: 2 },
        { id: 'broken', metric: 'mem.used_pct', condition: '~ 5', severity: 2 },
      ],
    };
    expect(await call('POST', '/api/v1/rules', file)).toEqual({
      status: 400,
      body: {
        error: "nothing was written: 1 invalid rule(s): 'broken'",
        errors: [
          {
            id: 'broken',
            message: "rule 'broken': condition: unknown operator '~' (use >, >=, <, <=, == or !=)",
          },
        ],
      },
    });
    expect((await request('GET', '/api/v1/rules')).text).toBe(before.text);
    expect(await call('GET', '/api/v1/rules/fine')).toEqual({
      status: 404,
      body: { error: "no rule 'fine'" },
    });
  });

  it('refuses a rules file that does not parse', async () => {
    expect(await call('POST', '/api/v1/rules', 'rules: {')).toEqual({
      status: 400,
      body: {
        error:
          'nothing was written: rules file is not valid YAML or JSON: Flow map in block collection must be sufficiently indented and end with a } at line 1, column 9',
        errors: [
          {
            id: '(file)',
            message:
              'rules file is not valid YAML or JSON: Flow map in block collection must be sufficiently indented and end with a } at line 1, column 9',
          },
        ],
      },
    });
  });

  it('lists a document written around the API as rejected, with why', async () => {
    await config.put(
      'rules',
      'sneaky',
      JSON.stringify({ metric: 'cpu.busy_pct', condition: '> 1', severity: 7 }),
    );
    try {
      const all = (await call('GET', '/api/v1/rules')).body as { rejected: unknown };
      expect(all.rejected).toEqual([
        { id: 'sneaky', error: "rule 'sneaky': severity: must be an integer 1-5, got 7" },
      ]);
      expect(await call('GET', '/api/v1/rules/sneaky')).toEqual({
        status: 404,
        body: {
          error:
            "no rule 'sneaky' in force: its document is refused: rule 'sneaky': severity: must be an integer 1-5, got 7",
        },
      });
    } finally {
      await config.delete('rules', 'sneaky');
    }
  });

  it('deletes a rule, and answers 404 for one that is not there', async () => {
    expect(await call('DELETE', '/api/v1/rules/disk-full')).toEqual({
      status: 200,
      body: { deleted: true },
    });
    expect(await call('GET', '/api/v1/rules/disk-full')).toEqual({
      status: 404,
      body: { error: "no rule 'disk-full'" },
    });
    expect(await call('DELETE', '/api/v1/rules/disk-full')).toEqual({
      status: 404,
      body: { error: "no rule 'disk-full'" },
    });
  });

  it('answers 405 with Allow for a wrong method on a known path', async () => {
    await expectNotAllowed('POST', '/api/v1/rules/cpu-high', 'GET, PUT, DELETE');
    await expectNotAllowed('DELETE', '/api/v1/rules', 'GET, POST');
  });
});

const TREE = [
  'receiver: ops',
  'group_by: [alertname]',
  'routes:',
  '  - severity: 4-5',
  '    matchers: [\'team="infra"\']',
  '    receiver: pager',
  '    group_wait: 0s',
  '',
].join('\n');

const TREE_VIEW = {
  id: 'root',
  receivers: ['ops'],
  matchers: [],
  minSeverity: 1,
  maxSeverity: 5,
  continue: false,
  groupBy: ['alertname'],
  groupWaitMs: 30_000,
  groupIntervalMs: 300_000,
  repeatIntervalMs: 14_400_000,
  routes: [
    {
      id: 'root.0',
      receivers: ['pager'],
      matchers: ['team="infra"'],
      minSeverity: 4,
      maxSeverity: 5,
      continue: false,
      groupBy: ['alertname'],
      groupWaitMs: 0,
      groupIntervalMs: 300_000,
      repeatIntervalMs: 14_400_000,
      routes: [],
    },
  ],
};

describe('routes API', () => {
  it('answers no tree before one is stored', async () => {
    expect(await call('GET', '/api/v1/routes')).toEqual({
      status: 200,
      body: { text: null, routes: null, rejected: null },
    });
  });

  it('stores a tree with PUT and answers the text as stored with the tree in force', async () => {
    expect(await call('PUT', '/api/v1/routes', TREE)).toEqual({
      status: 200,
      body: { routes: TREE_VIEW },
    });
    expect((await call('GET', '/api/v1/routes')).body).toEqual({
      text: TREE,
      routes: TREE_VIEW,
      rejected: null,
    });
  });

  it('refuses a bad tree with 400 naming the field, the tree in force untouched', async () => {
    expect(await call('PUT', '/api/v1/routes', { receiver: 'ops', group_wait: 30 })).toEqual({
      status: 400,
      body: {
        error:
          'ARGUS_ERR_INVALID_CONFIG: invalid route tree: group_wait: must be a duration like 30s, 5m or 1h30m, got 30',
        problems: ['group_wait: must be a duration like 30s, 5m or 1h30m, got 30'],
      },
    });
    expect(await call('PUT', '/api/v1/routes', '')).toEqual({
      status: 400,
      body: { error: 'body is empty: send the route tree as YAML or JSON' },
    });
    expect((await call('GET', '/api/v1/routes')).body).toEqual({
      text: TREE,
      routes: TREE_VIEW,
      rejected: null,
    });
  });

  it('deletes the tree, then answers 404 for a second delete', async () => {
    expect(await call('DELETE', '/api/v1/routes')).toEqual({ status: 200, body: { deleted: true } });
    expect((await call('GET', '/api/v1/routes')).body).toEqual({ text: null, routes: null, rejected: null });
    expect(await call('DELETE', '/api/v1/routes')).toEqual({
      status: 404,
      body: { error: 'no route tree is stored' },
    });
  });

  it('answers 405 for POST', async () => {
    await expectNotAllowed('POST', '/api/v1/routes', 'GET, PUT, DELETE');
  });
});

const SECRET = 'wh-s3cr3t-value';
const TOKEN = 'Bearer tok-123456';
const OPS_CONFIG = {
  id: 'ops',
  kind: 'webhook',
  url: 'http://127.0.0.1:9/hook',
  secret: '***',
  headers: { Authorization: '***', 'X-Team': 'infra' },
  sendResolved: true,
  maxAlerts: 0,
  timeoutMs: 10_000,
  maxAttempts: 3,
  backoffInitialMs: 1000,
  backoffMaxMs: 300_000,
};
const IDLE_SUMMARY = {
  receiver: 'ops',
  configured: true,
  queue: 0,
  head: null,
  inFlight: null,
  deadLetters: 0,
  groups: 0,
  counters: { delivered: 0, failed: 0, dead: 0 },
  nextDueAt: null,
};

describe('receivers API', () => {
  it('stores a receiver with PUT and never echoes its secret or credential headers', async () => {
    const put = await request('PUT', '/api/v1/receivers/ops', {
      kind: 'webhook',
      url: 'http://127.0.0.1:9/hook',
      secret: SECRET,
      headers: { Authorization: TOKEN, 'X-Team': 'infra' },
      max_attempts: 3,
    });
    expect(put.status).toBe(200);
    expect(put.body).toEqual({ receiver: OPS_CONFIG });
    const one = await request('GET', '/api/v1/receivers/ops');
    expect({ status: one.status, body: one.body }).toEqual({
      status: 200,
      body: { id: 'ops', config: OPS_CONFIG, summary: IDLE_SUMMARY },
    });
    const all = await request('GET', '/api/v1/receivers');
    expect({ status: all.status, body: all.body }).toEqual({
      status: 200,
      body: { receivers: [{ id: 'ops', config: OPS_CONFIG, summary: IDLE_SUMMARY }], rejected: [] },
    });
    for (const text of [put.text, one.text, all.text]) {
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain('tok-123456');
    }
  });

  it('refuses a bad receiver with 400 naming every field, nothing written', async () => {
    expect(
      await call('PUT', '/api/v1/receivers/ops', { kind: 'sms', url: 'ftp://x', max_attempts: 0 }),
    ).toEqual({
      status: 400,
      body: {
        error:
          "ARGUS_ERR_INVALID_CONFIG: invalid receiver 'ops': kind: must be 'webhook' or 'chat', got 'sms'; url: must be an http or https URL, got 'ftp://x'; max_attempts: must be 1 or more, got 0",
        problems: [
          "kind: must be 'webhook' or 'chat', got 'sms'",
          "url: must be an http or https URL, got 'ftp://x'",
          'max_attempts: must be 1 or more, got 0',
        ],
      },
    });
    expect((await call('GET', '/api/v1/receivers/ops')).body).toEqual({
      id: 'ops',
      config: OPS_CONFIG,
      summary: IDLE_SUMMARY,
    });
  });

  it('lists a receiver document written around the API as rejected', async () => {
    await config.put('receivers', 'broken', 'kind: sms\nurl: http://x.example/\n');
    try {
      expect((await call('GET', '/api/v1/receivers')).body).toEqual({
        receivers: [{ id: 'ops', config: OPS_CONFIG, summary: IDLE_SUMMARY }],
        rejected: [
          {
            id: 'broken',
            error:
              "ARGUS_ERR_INVALID_CONFIG: invalid receiver 'broken': kind: must be 'webhook' or 'chat', got 'sms'",
          },
        ],
      });
    } finally {
      await config.delete('receivers', 'broken');
    }
  });

  it('answers a receiver’s dead letters', async () => {
    expect(await call('GET', '/api/v1/receivers/ops/deadletters')).toEqual({ status: 200, body: [] });
  });

  it.each(['replay', 'discard'])('accepts %s of every dead letter, or of one, with 202', async (action) => {
    const path = `/api/v1/receivers/ops/deadletters/${action}`;
    expect(await call('POST', path)).toEqual({ status: 202, body: { accepted: true } });
    expect(await call('POST', path, { id: 'n-1' })).toEqual({ status: 202, body: { accepted: true } });
    expect(await call('POST', path, { id: 5 })).toEqual({
      status: 400,
      body: { error: 'id: must be a notification id (a non-empty string), got 5' },
    });
    expect(await call('POST', path, { id: 'n-1', all: true })).toEqual({
      status: 400,
      body: { error: "body: unknown field(s) 'all'" },
    });
    expect(await call('POST', path, '{nope')).toEqual({
      status: 400,
      body: { error: expect.stringMatching(/^body is not JSON: /) },
    });
    expect(await call('POST', `/api/v1/receivers/nobody/deadletters/${action}`)).toEqual({
      status: 404,
      body: { error: "no receiver 'nobody'" },
    });
    await expectNotAllowed('GET', path, 'POST');
  });

  it('answers 404 for an unknown receiver', async () => {
    for (const path of ['/api/v1/receivers/nobody', '/api/v1/receivers/nobody/deadletters'])
      expect(await call('GET', path)).toEqual({ status: 404, body: { error: "no receiver 'nobody'" } });
    expect(await call('DELETE', '/api/v1/receivers/nobody')).toEqual({
      status: 404,
      body: { error: "no receiver 'nobody'" },
    });
  });

  it('still answers a receiver that is not configured while its entity holds something', async () => {
    const now = Date.now();
    // An alert routed to 'leftover' before it was deleted: it waits in a group (nothing flushes unconfigured).
    const held: ReceiverMessage = {
      type: 'receiver.alert',
      alert: {
        type: '@argus.alert',
        fingerprint: 'f1',
        seq: 1,
        rule: 'cpu-high',
        status: 'firing',
        severity: 3,
        labels: { alertname: 'cpu-high' },
        annotations: {},
        value: 95,
        startsAt: now,
        at: now,
      },
      routeId: 'root',
      groupKey: 'root{}',
      groupLabels: {},
      timing: { groupBy: [], groupWaitMs: 0, groupIntervalMs: 60_000, repeatIntervalMs: 3_600_000 },
      at: now,
    };
    await rt.send('receiver', 'leftover', held);
    // Durable is not yet delivered: wait for the entity to have it.
    await waitFor(
      "the alert in leftover's group",
      async () => ((await rt.ask('receiver', 'leftover', 'summary')) as { groups: number }).groups === 1,
    );
    expect(await call('GET', '/api/v1/receivers/leftover')).toEqual({
      status: 200,
      body: {
        id: 'leftover',
        config: null,
        summary: {
          ...IDLE_SUMMARY,
          receiver: 'leftover',
          configured: false,
          problem: "receiver 'leftover' is not configured: 0 notification(s) wait in its queue",
          groups: 1,
        },
      },
    });
    expect(await call('GET', '/api/v1/receivers/leftover/deadletters')).toEqual({ status: 200, body: [] });
    expect(await call('POST', '/api/v1/receivers/leftover/deadletters/discard')).toEqual({
      status: 202,
      body: { accepted: true },
    });
    // Not configured, so not listed: the list is of configured receivers.
    expect((await call('GET', '/api/v1/receivers')).body).toMatchObject({ receivers: [{ id: 'ops' }] });
  });

  it('answers 405 for a wrong method', async () => {
    await expectNotAllowed('POST', '/api/v1/receivers', 'GET');
    await expectNotAllowed('POST', '/api/v1/receivers/ops', 'GET, PUT, DELETE');
    await expectNotAllowed('DELETE', '/api/v1/receivers/ops/deadletters', 'GET');
  });

  it('deletes a receiver', async () => {
    expect(await call('DELETE', '/api/v1/receivers/ops')).toEqual({
      status: 200,
      body: { deleted: true },
    });
    expect(await call('GET', '/api/v1/receivers/ops')).toEqual({
      status: 404,
      body: { error: "no receiver 'ops'" },
    });
    expect((await call('GET', '/api/v1/receivers')).body).toEqual({ receivers: [], rejected: [] });
  });
});

describe('silences API', () => {
  const HOUR = 3_600_000;
  const add = async (doc: object) => {
    const r = await call('POST', '/api/v1/silences', doc);
    expect(r).toEqual({ status: 201, body: { id: expect.stringMatching(/^[0-9a-f-]{36}$/) } });
    return (r.body as { id: string }).id;
  };
  const list = async () =>
    ((await call('GET', '/api/v1/silences')).body as { silences: Record<string, unknown>[] }).silences;
  const byId = async (id: string) => (await list()).find((s) => s.id === id);

  it('adds silences and lists them with their state: expired, active, pending', async () => {
    const now = Date.now();
    const expired = await add({
      matchers: ['host="old"'],
      starts_at: '2020-01-01T00:00:00Z',
      ends_at: '2020-01-02T00:00:00Z',
      created_by: 'alice',
      comment: 'long ago',
    });
    const active = await add({
      matchers: ['host="web-1"', 'env!="dev"'],
      ends_at: new Date(now + HOUR).toISOString(),
      created_by: 'bob',
      comment: 'rebooting web-1',
    });
    const pending = await add({
      matchers: '{service="pay"}',
      starts_at: new Date(now + 24 * HOUR).toISOString(),
      ends_at: new Date(now + 25 * HOUR).toISOString(),
      created_by: 'carol',
      comment: 'tomorrow',
    });
    const silences = await list();
    expect(silences.map((s) => [s.id, s.state])).toEqual([
      [expired, 'expired'],
      [active, 'active'],
      [pending, 'pending'],
    ]);
    expect(silences[0]).toEqual({
      id: expired,
      matchers: ['host="old"'],
      starts_at: '2020-01-01T00:00:00.000Z',
      ends_at: '2020-01-02T00:00:00.000Z',
      created_by: 'alice',
      comment: 'long ago',
      state: 'expired',
    });
    expect(silences[1]).toEqual({
      id: active,
      matchers: ['host="web-1"', 'env!="dev"'],
      starts_at: expect.any(String),
      ends_at: new Date(now + HOUR).toISOString(),
      created_by: 'bob',
      comment: 'rebooting web-1',
      state: 'active',
    });
    // starts_at left out: the node's now.
    expect(Date.parse(silences[1]!.starts_at as string)).toBeGreaterThanOrEqual(now - 1000);
    expect(silences[2]).toEqual({
      id: pending,
      matchers: ['service="pay"'],
      starts_at: new Date(now + 24 * HOUR).toISOString(),
      ends_at: new Date(now + 25 * HOUR).toISOString(),
      created_by: 'carol',
      comment: 'tomorrow',
      state: 'pending',
    });
  });

  it.each([
    [
      'a missing ends_at',
      { matchers: ['host="a"'], created_by: 'a', comment: 'c' },
      ['ends_at: is required'],
    ],
    [
      'a matcher that matches everything',
      { matchers: ['host=~".*"'], ends_at: '2099-01-01T00:00:00Z', created_by: 'a', comment: 'c' },
      [
        'matchers: must have at least one matcher that does not match the empty string (else it silences every alert)',
      ],
    ],
    [
      'an unknown field',
      { matchers: ['host="a"'], ends_at: '2099-01-01T00:00:00Z', created_by: 'a', comment: 'c', id: 'mine' },
      ["(root): unknown field(s) 'id'"],
    ],
  ])('refuses %s with 400 naming the field, nothing added', async (_what, doc, problems) => {
    const before = await list();
    const r = await call('POST', '/api/v1/silences', doc);
    expect(r).toEqual({
      status: 400,
      body: {
        error: expect.stringMatching(/^ARGUS_ERR_INVALID_CONFIG: invalid silence '[0-9a-f-]{36}': /),
        problems,
      },
    });
    expect((r.body as { error: string }).error.endsWith(problems.join('; '))).toBe(true);
    expect(await list()).toEqual(before);
  });

  it('expires an active silence now, removes a pending one, and answers 409 / 404 for the rest', async () => {
    const now = Date.now();
    const active = await add({
      matchers: ['host="db-1"'],
      ends_at: new Date(now + HOUR).toISOString(),
      created_by: 'a',
      comment: 'c',
    });
    const pending = await add({
      matchers: ['host="db-2"'],
      starts_at: new Date(now + HOUR).toISOString(),
      ends_at: new Date(now + 2 * HOUR).toISOString(),
      created_by: 'a',
      comment: 'c',
    });
    expect(await call('DELETE', `/api/v1/silences/${active}`)).toEqual({
      status: 200,
      body: { expired: true },
    });
    const ended = await byId(active);
    expect(ended).toMatchObject({ state: 'expired' });
    expect(Date.parse(ended!.ends_at as string)).toBeLessThanOrEqual(Date.now());
    expect(await call('DELETE', `/api/v1/silences/${pending}`)).toEqual({
      status: 200,
      body: { expired: true },
    });
    expect(await byId(pending)).toBeUndefined();
    expect(await call('DELETE', `/api/v1/silences/${active}`)).toEqual({
      status: 409,
      body: { error: `silence '${active}' already expired at ${ended!.ends_at as string}` },
    });
    expect(await call('DELETE', '/api/v1/silences/nope')).toEqual({
      status: 404,
      body: { error: "no silence 'nope'" },
    });
  });

  it('answers 405 for a wrong method', async () => {
    await expectNotAllowed('DELETE', '/api/v1/silences', 'GET, POST');
    await expectNotAllowed('GET', '/api/v1/silences/x', 'DELETE');
  });
});

describe('before the alerting extension has started', () => {
  it('answers 503 saying so (and still 405 for a wrong method)', async () => {
    const idleDir = mkdtempSync(join(tmpdir(), 'argus-api-idle-'));
    const idle = createRuntime(
      { mode: 'embedded', dataDir: idleDir, http: false, shards: 2, auth: testAuth() },
      { configSource: new MemoryConfigSource() },
    );
    idle.use(alerting({ tickMs: 50 }));
    const server = await startHttp(idle, '127.0.0.1', 0);
    try {
      const at = async (method: string, path: string) => {
        const res = await fetch(`${server.url}${path}`, {
          method,
          headers: { authorization: `Bearer ${ADMIN_TOKEN}` },
        });
        return { status: res.status, body: await res.json() };
      };
      const rules = { error: 'rules are not running yet (the alerting extension has not started)' };
      const notify = { error: 'notifications are not running yet (the alerting extension has not started)' };
      expect(await at('GET', '/api/v1/rules')).toEqual({ status: 503, body: rules });
      expect(await at('DELETE', '/api/v1/rules/x')).toEqual({ status: 503, body: rules });
      for (const path of [
        '/api/v1/routes',
        '/api/v1/receivers',
        '/api/v1/receivers/x/deadletters',
        '/api/v1/silences',
      ])
        expect(await at('GET', path)).toEqual({ status: 503, body: notify });
      expect(await at('POST', '/api/v1/receivers/x/deadletters/replay')).toEqual({
        status: 503,
        body: notify,
      });
      expect((await at('PATCH', '/api/v1/rules')).status).toBe(405);
    } finally {
      await server.close();
      rmSync(idleDir, { recursive: true, force: true });
    }
  });
});

describe('argus CLI', () => {
  /** The CLI as a user runs it; with the admin token in $ARGUS_TOKEN unless `env` says otherwise. */
  const runCli = (args: readonly string[], env: Record<string, string> = { ARGUS_TOKEN: ADMIN_TOKEN }) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
      const child = spawn(process.execPath, ['--import', 'tsx', 'scripts/argus.ts', ...args], {
        cwd: new URL('../..', import.meta.url),
        env: {
          ...Object.fromEntries(
            Object.entries(process.env).filter(([k]) => k !== 'ARGUS_URL' && k !== 'ARGUS_TOKEN'),
          ),
          ...env,
        },
      });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => {
        stdout += c.toString();
      });
      child.stderr.on('data', (c: Buffer) => {
        stderr += c.toString();
      });
      child.on('error', reject);
      child.on('close', (code) => resolve({ code, stdout, stderr }));
    });

  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'argus-cli-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('applies a rules file against the server and exits 0; the rules are in place', async () => {
    const file = join(dir, 'rules.yaml');
    writeFileSync(
      file,
      [
        'rules:',
        '  - id: cli-load',
        '    metric: load.1m',
        "    condition: '> 8'",
        '    for: 2m',
        '    severity: 2',
        '  - id: cli-swap',
        '    metric: mem.swap_pct',
        "    condition: '>= 50'",
        '    severity: 3',
        '',
      ].join('\n'),
    );
    const r = await runCli(['rules', 'apply', file, '--url', http.url]);
    expect(r).toEqual({
      code: 0,
      stdout: `applied 2 rule(s) from ${file}: cli-load, cli-swap\n`,
      stderr: '',
    });
    expect(await call('GET', '/api/v1/rules/cli-load')).toMatchObject({
      status: 200,
      body: { rule: { metric: 'load.1m', op: '>', threshold: 8, forMs: 120_000, severity: 2 } },
    });
    expect((await call('GET', '/api/v1/rules/cli-swap')).status).toBe(200);
  }, 30_000);

  it('lists the rules as a table and deletes one', async () => {
    const listed = await runCli(['rules', 'list', '--url', http.url]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(/^ID\s+SCOPE\s+METRIC\s+CONDITION\s+FOR\s+SEVERITY$/m);
    expect(listed.stdout).toMatch(/^cli-load\s+host\s+load\.1m\s+> 8\s+2m\s+2$/m);
    expect(listed.stdout).toMatch(/^cli-swap\s+host\s+mem\.swap_pct\s+>= 50\s+0s\s+3$/m);
    expect(await runCli(['rules', 'delete', 'cli-swap', '--url', http.url])).toEqual({
      code: 0,
      stdout: 'deleted rule cli-swap\n',
      stderr: '',
    });
    expect(await runCli(['rules', 'delete', 'cli-swap', '--url', http.url])).toEqual({
      code: 1,
      stdout: '',
      stderr: "argus: DELETE /api/v1/rules/cli-swap: HTTP 404: no rule 'cli-swap'\n",
    });
  }, 30_000);

  it('prints the refusal with each problem and exits 1 when the file has a bad rule', async () => {
    const file = join(dir, 'bad.yaml');
    writeFileSync(file, "- id: cli-bad\n  metric: load.1m\n  condition: '~ 5'\n  severity: 9\n");
    const r = await runCli(['rules', 'apply', file, '--url', http.url]);
    expect(r).toEqual({
      code: 1,
      stdout: '',
      stderr:
        "argus: POST /api/v1/rules: HTTP 400: nothing was written: 1 invalid rule(s): 'cli-bad'\n" +
        "  - rule 'cli-bad': condition: unknown operator '~' (use >, >=, <, <=, == or !=); severity: must be an integer 1-5, got 9\n",
    });
    expect(await call('GET', '/api/v1/rules/cli-bad')).toEqual({
      status: 404,
      body: { error: "no rule 'cli-bad'" },
    });
  }, 30_000);

  it('adds a silence for a duration and lists it, the node from ARGUS_URL', async () => {
    const env = { ARGUS_URL: http.url, ARGUS_TOKEN: ADMIN_TOKEN };
    const t0 = Date.now();
    const added = await runCli(
      [
        'silences',
        'add',
        '--matcher',
        'host="web-9"',
        '--matcher',
        'env="prod"',
        '--for',
        '2h',
        '--comment',
        'disk swap',
        '--by',
        'ci',
      ],
      env,
    );
    expect(added).toMatchObject({ code: 0, stderr: '' });
    const m = /^silence ([0-9a-f-]{36}) added for 2h \(until (\S+)\)\n$/.exec(added.stdout);
    expect(m).not.toBeNull();
    const [, id, until] = m!;
    expect(Date.parse(until!) - t0).toBeGreaterThanOrEqual(2 * 3_600_000);
    const listed = await runCli(['silences', 'list'], env);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(
      new RegExp(`^${id}\\s+active\\s+host="web-9",env="prod"\\s+\\S+\\s+${until}\\s+ci\\s+disk swap$`, 'm'),
    );
  }, 30_000);

  it('sends the token of --token, and says what is wrong on a 401 or 403 without printing the token', async () => {
    expect(await runCli(['rules', 'list', '--url', http.url, '--token', READ_TOKEN], {})).toMatchObject({
      code: 0,
      stderr: '',
    });
    const none = await runCli(['rules', 'list', '--url', http.url], {});
    expect(none).toEqual({
      code: 1,
      stdout: '',
      stderr: expect.stringMatching(
        /^argus: GET \/api\/v1\/rules: HTTP 401: a bearer token is required: .*\n {2}- no token was sent: set \$ARGUS_TOKEN or pass --token /,
      ),
    });
    const wrong = await runCli(['rules', 'list', '--url', http.url], { ARGUS_TOKEN: 'not-a-token' });
    expect(wrong).toEqual({
      code: 1,
      stdout: '',
      stderr:
        'argus: GET /api/v1/rules: HTTP 401: the bearer token is not valid\n' +
        '  - the node does not accept this token: check $ARGUS_TOKEN / --token against its auth.tokens\n',
    });
    const readOnly = await runCli(['rules', 'delete', 'x', '--url', http.url], { ARGUS_TOKEN: READ_TOKEN });
    expect(readOnly).toEqual({
      code: 1,
      stdout: '',
      stderr:
        "argus: DELETE /api/v1/rules/x: HTTP 403: token 'reader' does not have the 'admin' scope\n" +
        '  - the token is valid but lacks the scope this command needs (list: read; the rest: admin)\n',
    });
    for (const r of [none, wrong, readOnly]) expect(r.stderr).not.toContain(READ_TOKEN);
  }, 30_000);

  it('exits 2 with the usage for a command line that is wrong, without asking the node', async () => {
    const r = await runCli([
      'silences',
      'add',
      '--for',
      '2h',
      '--comment',
      'x',
      '--url',
      'http://127.0.0.1:1',
    ]);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(
      /^argus: silences add needs at least one --matcher 'name="value"'\n\nusage: argus <command>/,
    );
  }, 30_000);

  it('exits 1 saying so when the node cannot be reached', async () => {
    // A port that was free a moment ago: nothing listens there.
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, '127.0.0.1', r));
    const { port } = probe.address() as AddressInfo;
    await new Promise((r) => probe.close(r));
    const r = await runCli(['rules', 'list', '--url', `http://127.0.0.1:${port}`]);
    expect(r).toEqual({
      code: 1,
      stdout: '',
      stderr: `argus: cannot reach http://127.0.0.1:${port}: connect ECONNREFUSED 127.0.0.1:${port}\n`,
    });
  }, 30_000);
});
