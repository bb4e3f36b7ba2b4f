/**
 * Log rules on the real etcd config source: written through the API (`/api/v1/logrules`, the route
 * behind a real HTTP server), changed and broken with a raw etcd client as an operator with etcdctl
 * would, deleted — the LogRuleSet watching `/<prefix>/logrules/` sees each change within 2 s, and a
 * bad document written around the API is ignored while the last good version stays in force.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Etcd3 } from 'etcd3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LOG_RULES_SECTION, LogRuleSet } from '../../actors/log/rules.ts';
import { logRulesApi } from '../../actors/log/rules-api.ts';
import { EtcdConfigSource } from '../../cluster/etcd-config.ts';
import { etcdEndpoints, uniquePrefix } from '../helpers/services.ts';
import { sleep, waitFor } from '../helpers/wait.ts';

const SQL =
  'SELECT host, count(*) AS errors FROM nginx WHERE status >= 500 GROUP BY host, TUMBLE(1 minute) HAVING count(*) > 10';
const CHANGED = `sql: SELECT count(*) AS n FROM app GROUP BY TUMBLE(30 seconds)\nseverity: 5\nlabels: { team: app }`;

let prefix: string;
let source: EtcdConfigSource;
let rules: LogRuleSet;
let raw: Etcd3;
let server: Server;
let base: string;
const warnings: string[] = [];
const changes: number[] = [];

beforeAll(async () => {
  prefix = uniquePrefix('logrules-etcd');
  source = new EtcdConfigSource(etcdEndpoints(), prefix);
  rules = new LogRuleSet(source, (m) => warnings.push(m));
  rules.onChange((r) => changes.push(r.version));
  await rules.start();
  raw = new Etcd3({ hosts: etcdEndpoints() });
  const route = logRulesApi(() => rules);
  server = createServer((req, res) => {
    void route(req, res, new URL(req.url ?? '/', 'http://localhost')).then((taken) => {
      if (!taken) {
        res.writeHead(404);
        res.end();
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await new Promise((resolve) => server?.close(resolve));
  await rules?.stop();
  await raw?.delete().prefix(`/${prefix}/`);
  raw?.close();
  await source?.close();
});

const call = async (method: string, path: string, body?: string) => {
  const res = await fetch(`${base}${path}`, { method, ...(body === undefined ? {} : { body }) });
  const text = await res.text();
  return {
    status: res.status,
    body: text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>),
  };
};

describe('log rules on etcd', () => {
  it('puts through the API, follows raw etcd edits within 2 s, ignores a bad one, deletes', async () => {
    const key = `/${prefix}/${LOG_RULES_SECTION}/nginx-5xx`;

    const put = await call('PUT', '/api/v1/logrules/nginx-5xx', SQL);
    expect(put.status).toBe(201);
    expect(await raw.get(key).string()).toBe(SQL);
    await waitFor(
      'the put rule in force',
      () => rules.get('nginx-5xx')?.version === put.body?.version,
      2_000,
    );
    expect(rules.byStream('nginx').map((r) => r.id)).toEqual(['nginx-5xx']);
    const good = rules.get('nginx-5xx')!;

    const refused = await call('PUT', '/api/v1/logrules/nginx-5xx', 'hello world');
    expect(refused.status).toBe(400);
    expect(refused.body?.position).toEqual({ line: 1, column: 7 });
    expect(await raw.get(key).string()).toBe(SQL);

    // Around the API, as etcdctl would: ignored, the last good version stays in force.
    await raw.put(key).value('SELECT median(latency) FROM nginx GROUP BY TUMBLE(1 minute)');
    await waitFor('the bad document refused', () => rules.rejected.has('nginx-5xx'), 2_000);
    expect(rules.rejected.get('nginx-5xx')).toBe(
      "log rule 'nginx-5xx': unknown function 'median' at line 1, column 8",
    );
    expect(rules.get('nginx-5xx')).toBe(good);
    expect(warnings).toEqual([
      "log rule 'nginx-5xx' ignored (its last good version stays): log rule 'nginx-5xx': unknown function 'median' at line 1, column 8",
    ]);
    const listed = await call('GET', '/api/v1/logrules');
    expect(listed.body?.rejected).toEqual([
      { id: 'nginx-5xx', error: "log rule 'nginx-5xx': unknown function 'median' at line 1, column 8" },
    ]);
    const inForce = (listed.body?.rules ?? []) as { id: string; version: string }[];
    expect(inForce.map((r) => [r.id, r.version])).toEqual([['nginx-5xx', good.version]]);

    // A good change around the API is in force within 2 s.
    const before = Date.now();
    await raw.put(key).value(CHANGED);
    await waitFor('the changed rule in force', () => rules.get('nginx-5xx')?.text === CHANGED, 2_000);
    expect(Date.now() - before).toBeLessThan(2_000);
    expect(rules.rejected.size).toBe(0);
    const changed = rules.get('nginx-5xx')!;
    expect([changed.severity, changed.labels, changed.plan.stream]).toEqual([5, { team: 'app' }, 'app']);
    expect(rules.byStream('nginx')).toEqual([]);
    expect(rules.byStream('app').map((r) => r.id)).toEqual(['nginx-5xx']);
    expect((await call('GET', '/api/v1/logrules/nginx-5xx')).body).toMatchObject({
      id: 'nginx-5xx',
      version: changed.version,
      stream: 'app',
      severity: 5,
    });

    expect((await call('DELETE', '/api/v1/logrules/nginx-5xx')).status).toBe(204);
    expect(await raw.get(key).string()).toBeNull();
    await waitFor('the rule gone', () => rules.get('nginx-5xx') === undefined, 2_000);
    expect(rules.byStream('app')).toEqual([]);
    expect((await call('DELETE', '/api/v1/logrules/nginx-5xx')).status).toBe(404);
    await sleep(100);
    expect(changes).toEqual([1, 2, 3]);
  });
});
