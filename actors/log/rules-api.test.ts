import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { MemoryConfigSource } from '../../runtime/memory-config.ts';
import { LOG_RULES_SECTION, LogRuleSet } from './rules.ts';
import { logRulesApi } from './rules-api.ts';

const SQL =
  'SELECT host, count(*) AS errors FROM nginx WHERE status >= 500 GROUP BY host, TUMBLE(1 minute) HAVING count(*) > 10';
const DOC = `sql: ${SQL}\nseverity: 4\nlabels: { team: web }\nannotations: { summary: '{{group.host}}' }`;
const NOT_SQL_ERROR = `syntax error at line 1, column 7: Expected "--", "/*", ":=", "=", "FOR", "TO", or [ \\t\\n\\r] but "w" found.`;

let source: MemoryConfigSource;
let rules: LogRuleSet | undefined;
let server: Server;
let base: string;

/** The route alone behind a real server on 127.0.0.1 (the node's auth gate is not under test here). */
beforeAll(async () => {
  const route = logRulesApi(() => rules);
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    void route(req, res, url).then((taken) => {
      if (!taken) {
        res.writeHead(404);
        res.end('not a log rules path');
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await new Promise((resolve) => server.close(resolve));
});
beforeEach(async () => {
  await rules?.stop();
  source = new MemoryConfigSource();
  rules = new LogRuleSet(source);
  await rules.start();
});

const call = async (
  method: string,
  path: string,
  body?: string,
  contentType = 'text/plain',
): Promise<{ status: number; body: unknown; allow: string | null }> => {
  const res = await fetch(`${base}${path}`, {
    method,
    ...(body === undefined ? {} : { body, headers: { 'content-type': contentType } }),
  });
  const text = await res.text();
  const json = (res.headers.get('content-type') ?? '').includes('json');
  return { status: res.status, body: json ? JSON.parse(text) : text, allow: res.headers.get('allow') };
};

const plan = {
  id: 'r1',
  stream: 'nginx',
  filter: {
    op: 'cmp',
    cmp: '>=',
    left: { kind: 'field', path: 'status' },
    right: { kind: 'literal', value: 500 },
  },
  groupBy: ['host'],
  window: { kind: 'tumble', sizeMs: 60_000, slideMs: 60_000 },
  aggregates: [{ fn: 'count', alias: 'errors' }],
  having: {
    op: 'cmp',
    cmp: '>',
    left: { kind: 'aggregate', alias: 'errors' },
    right: { kind: 'literal', value: 10 },
  },
  outputs: [
    { name: 'host', source: 'group', field: 'host' },
    { name: 'errors', source: 'aggregate', alias: 'errors' },
  ],
};

describe('PUT /api/v1/logrules/:id', () => {
  it('creates a rule from plain SQL with 201 and the parsed rule, replaces it with 200', async () => {
    const created = await call('PUT', '/api/v1/logrules/r1', SQL, 'application/sql');
    expect(created.status).toBe(201);
    const version = rules!.get('r1')!.version;
    expect(created.body).toEqual({
      id: 'r1',
      version,
      stream: 'nginx',
      sql: SQL,
      severity: 3,
      labels: {},
      annotations: {},
      description: null,
      window: { kind: 'tumble', sizeMs: 60_000, slideMs: 60_000 },
      text: SQL,
      plan,
    });
    const replaced = await call('PUT', '/api/v1/logrules/r1', DOC, 'application/yaml');
    expect(replaced.status).toBe(200);
    expect(replaced.body).toMatchObject({ id: 'r1', severity: 4, labels: { team: 'web' }, text: DOC });
    expect(await source.list(LOG_RULES_SECTION)).toEqual(new Map([['r1', DOC]]));
  });

  it('takes JSON documents, whatever the content type says', async () => {
    const json = JSON.stringify({ sql: SQL, severity: 5 });
    expect((await call('PUT', '/api/v1/logrules/j', json, 'application/json')).status).toBe(201);
    expect((await call('PUT', '/api/v1/logrules/k', SQL, 'application/json')).status).toBe(201);
    expect([rules!.get('j')?.severity, rules!.get('k')?.severity]).toEqual([5, 3]);
  });

  it('refuses a bad rule with 400, its problems and position, and writes nothing', async () => {
    const r = await call('PUT', '/api/v1/logrules/r1', 'SELECT median(x) FROM s GROUP BY TUMBLE(1 minute)');
    expect(r).toEqual({
      status: 400,
      allow: null,
      body: {
        error: "ARGUS_ERR_INVALID_LOG_RULE: log rule 'r1': unknown function 'median' at line 1, column 8",
        problems: [
          {
            path: '',
            message: "unknown function 'median' at line 1, column 8",
            position: { line: 1, column: 8 },
          },
        ],
        position: { line: 1, column: 8 },
      },
    });
    const bad = await call('PUT', '/api/v1/logrules/r1', `sql: ${SQL}\nseverity: 9`);
    expect(bad.body).toEqual({
      error: "ARGUS_ERR_INVALID_LOG_RULE: log rule 'r1': severity: must be an integer 1-5, got 9",
      problems: [{ path: 'severity', message: 'must be an integer 1-5, got 9' }],
    });
    expect((await call('PUT', '/api/v1/logrules/r1', 'hello world')).body).toMatchObject({
      error: `ARGUS_ERR_INVALID_LOG_RULE: log rule 'r1': ${NOT_SQL_ERROR}`,
      position: { line: 1, column: 7 },
    });
    expect((await call('PUT', '/api/v1/logrules/bad%20id', SQL)).status).toBe(400);
    expect(await call('PUT', '/api/v1/logrules/r1', '  ')).toEqual({
      status: 400,
      allow: null,
      body: { error: "body is empty: send log rule 'r1' as SQL, YAML or JSON" },
    });
    expect((await call('PUT', '/api/v1/logrules/r1', `sql: ${SQL}`, 'application/sql')).body).toEqual({
      error: 'content-type is application/sql but the body does not start with SELECT',
    });
    expect(await source.list(LOG_RULES_SECTION)).toEqual(new Map());
  });
});

describe('GET /api/v1/logrules', () => {
  it('lists the rules in force by id and the refused documents with why', async () => {
    await call('PUT', '/api/v1/logrules/b', DOC);
    await call('PUT', '/api/v1/logrules/a', SQL);
    await source.put(LOG_RULES_SECTION, 'a', 'hello world');
    await source.put(LOG_RULES_SECTION, 'z', 'SELECT median(x) FROM s GROUP BY TUMBLE(1 minute)');
    const r = await call('GET', '/api/v1/logrules');
    expect(r.status).toBe(200);
    const window = { kind: 'tumble', sizeMs: 60_000, slideMs: 60_000 };
    expect(r.body).toEqual({
      rules: [
        {
          id: 'a',
          version: rules!.get('a')!.version,
          stream: 'nginx',
          sql: SQL,
          severity: 3,
          labels: {},
          annotations: {},
          description: null,
          window,
        },
        {
          id: 'b',
          version: rules!.get('b')!.version,
          stream: 'nginx',
          sql: SQL,
          severity: 4,
          labels: { team: 'web' },
          annotations: { summary: '{{group.host}}' },
          description: null,
          window,
        },
      ],
      rejected: [
        { id: 'a', error: `log rule 'a': ${NOT_SQL_ERROR}` },
        { id: 'z', error: "log rule 'z': unknown function 'median' at line 1, column 8" },
      ],
    });
  });
});

describe('GET /api/v1/logrules/:id', () => {
  it('answers one rule with its plan, 404 for none, and says why a refused one is not in force', async () => {
    await call('PUT', '/api/v1/logrules/r1', SQL);
    const r = await call('GET', '/api/v1/logrules/r1');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ id: 'r1', text: SQL, plan });
    expect(await call('GET', '/api/v1/logrules/nope')).toEqual({
      status: 404,
      allow: null,
      body: { error: "no log rule 'nope'" },
    });
    await source.put(LOG_RULES_SECTION, 'bad', 'hello world');
    expect((await call('GET', '/api/v1/logrules/bad')).body).toEqual({
      error: `no log rule 'bad' in force: its document is refused: log rule 'bad': ${NOT_SQL_ERROR}`,
    });
  });
});

describe('DELETE /api/v1/logrules/:id', () => {
  it('answers 204 when the rule existed, 404 when not', async () => {
    await call('PUT', '/api/v1/logrules/r1', SQL);
    expect(await call('DELETE', '/api/v1/logrules/r1')).toEqual({ status: 204, allow: null, body: '' });
    expect(rules!.get('r1')).toBeUndefined();
    expect((await call('DELETE', '/api/v1/logrules/r1')).status).toBe(404);
    expect((await call('DELETE', '/api/v1/logrules/bad%20id')).status).toBe(404);
  });
});

describe('POST /api/v1/logrules/validate', () => {
  it('checks a rule without storing it', async () => {
    const ok = await call('POST', '/api/v1/logrules/validate?id=r1', SQL);
    expect(ok.status).toBe(200);
    expect(ok.body).toMatchObject({ ok: true, plan, rule: { id: 'r1', severity: 3 } });
    const bad = await call('POST', '/api/v1/logrules/validate', 'hello world');
    expect(bad).toEqual({
      status: 400,
      allow: null,
      body: {
        ok: false,
        error: `ARGUS_ERR_INVALID_LOG_RULE: log rule 'validate': ${NOT_SQL_ERROR}`,
        problems: [{ path: '', message: NOT_SQL_ERROR, position: { line: 1, column: 7 } }],
        position: { line: 1, column: 7 },
      },
    });
    expect(await source.list(LOG_RULES_SECTION)).toEqual(new Map());
    expect(rules!.all()).toEqual([]);
  });

  it('keeps validate usable as a rule id for the other methods', async () => {
    expect((await call('PUT', '/api/v1/logrules/validate', SQL)).status).toBe(201);
    expect((await call('GET', '/api/v1/logrules/validate')).status).toBe(200);
  });
});

describe('the route', () => {
  it('answers 405 with the allowed methods, 503 before the rules run, and leaves other paths', async () => {
    expect(await call('POST', '/api/v1/logrules/r1', SQL)).toEqual({
      status: 405,
      allow: 'GET, PUT, DELETE',
      body: { error: 'method POST is not allowed here (allowed: GET, PUT, DELETE)' },
    });
    expect((await call('DELETE', '/api/v1/logrules')).allow).toBe('GET');
    expect((await call('GET', '/api/v1/logrules/a/b')).body).toBe('not a log rules path');
    expect((await call('GET', '/api/v1/logrulesx')).body).toBe('not a log rules path');
    expect((await call('GET', '/api/v1/logrules/%E0%A4%A')).body).toEqual({
      error: "path '/api/v1/logrules/%E0%A4%A' is not valid percent-encoding",
    });
    const running = rules;
    rules = undefined;
    try {
      expect(await call('GET', '/api/v1/logrules')).toEqual({
        status: 503,
        allow: null,
        body: { error: 'log rules are not running yet (the logs extension has not started)' },
      });
    } finally {
      rules = running;
    }
  });
});
