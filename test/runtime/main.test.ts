/**
 * `npm start`: one embedded node with an HTTP endpoint, stopped cleanly by SIGTERM/SIGINT, its data
 * kept for the next start; with no tokens configured, the admin token it makes on its first start (in
 * the data folder, mode 0600, printed with the inspector's URL) and reuses on the next.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { api, READ_TOKEN, testAuth } from '../helpers/api.ts';
import { type ChildNode, killIfRunning, startMainNode } from '../helpers/child.ts';
import { waitFor } from '../helpers/wait.ts';

const dir = mkdtempSync(join(tmpdir(), 'argus-main-'));
const tokenFile = join(dir, 'admin.token');
const started: ChildNode[] = [];
afterAll(async () => {
  for (const node of started) await killIfRunning(node);
  rmSync(dir, { recursive: true, force: true });
});

const startNode = async (env: Record<string, string> = { ARGUS_DATA_DIR: dir }) => {
  const { node, url, line } = await startMainNode(env, (n) => started.push(n));
  expect(line).toMatch(
    /^argus [^ ]+: running in embedded mode, data in .*, listening on http:\/\/127\.0\.0\.1:\d+ /,
  );
  return { node, url };
};

/** The line with the inspector's URL and the generated token, once it is printed. */
const tokenLine = (node: ChildNode) => node.waitLine('argus: inspector at ', 5_000);

describe('npm start', () => {
  it('serves health and messages, and stops cleanly on SIGTERM and SIGINT keeping its data', async () => {
    const first = await startNode();
    // No auth.tokens configured: an admin token is made in the data folder, readable by its owner only,
    // and printed once, in the URL's fragment.
    const token = readFileSync(tokenFile, 'utf8').trim();
    expect(token).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect((statSync(tokenFile).mode & 0o777).toString(8)).toBe('600');
    expect(await tokenLine(first.node)).toBe(
      `argus: inspector at ${first.url}/#token=${token} (admin token stored in ${tokenFile})`,
    );
    expect(first.node.lines.filter((l) => l.includes(token))).toHaveLength(1);
    const call = <T>(path: string, options: { method?: string; body?: string } = {}) =>
      api<T>(first.url, path, { ...options, token });

    const health = await fetch(`${first.url}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'running', mode: 'embedded' });
    expect((await api(first.url, '/cluster', { token: null })).status).toBe(401);

    const post = await call('/entities/counter/c1', { method: 'POST', body: '{"type":"inc","by":2}' });
    expect([post.status, post.body]).toEqual([202, { accepted: true }]);
    const bad = await call('/entities/counter/c1', { method: 'POST', body: '{"type":"inc"}' });
    expect([bad.status, bad.body]).toEqual([
      400,
      {
        error: "ARGUS_ERR_INVALID_MESSAGE: message for counter/c1: counter 'inc' needs a finite number 'by'",
      },
    ]);
    const notJson = await call('/entities/counter/c1', { method: 'POST', body: '{"type":' });
    expect(notJson.status).toBe(400);
    expect((await call('/entities/nope/c1')).status).toBe(404);
    await waitFor(
      'applied',
      async () => (await call<{ state: { count: number } }>('/entities/counter/c1')).body.state.count === 2,
    );

    const cluster = (
      await call<{
        coordinator: string;
        status: string;
        placement: { counter: { node: string; epoch: number }[] };
        running: { kind: string }[];
      }>('/cluster')
    ).body;
    expect(cluster).toMatchObject({ coordinator: 'local', status: 'active', epoch: 0 });
    const counterShards = cluster.running.filter((r) => r.kind === 'counter');
    expect(cluster.placement.counter).toHaveLength(counterShards.length);
    const lag = (
      await call<{ kind: string; partition: number; lag: number; end: number }[]>('/lag')
    ).body.filter((l) => l.kind === 'counter');
    expect(lag).toHaveLength(counterShards.length);
    expect(lag.reduce((n, l) => n + l.end, 0)).toBe(1);
    expect(lag.every((l) => l.lag === 0)).toBe(true);

    // Host metrics by default: the built-in agent serves this machine's figures, polled as 'localhost'.
    expect(
      first.node.lines.some((l) => l.includes("polling this machine over SNMP as host 'localhost'")),
    ).toBe(true);
    const local = await waitFor(
      'the first poll of localhost',
      async () => {
        const r = (
          await call<{
            summary: { status: string; polls: number };
            latest: { metric: string; value: number }[];
          }>('/api/v1/hosts/localhost')
        ).body;
        // The summary is the entity's state; `latest` fills in when the poll's checkpoint lands: wait for both.
        return r.summary.polls >= 1 && r.latest.some((s) => s.metric === 'mem.total') && r;
      },
      20_000,
      200,
    );
    expect(local.summary.status).toBe('reachable');
    expect(local.latest.find((s) => s.metric === 'mem.total')?.value).toBe(
      Math.floor(totalmem() / 1024) * 1024,
    );

    first.node.proc.kill('SIGTERM');
    expect(await first.node.exited).toEqual({ code: 0, signal: null });
    expect(first.node.lines.slice(-2).map((l) => l.replace(/^argus [^:]+: /, ''))).toEqual([
      'SIGTERM, stopping',
      'stopped',
    ]);

    // The next start reuses the token (and prints it again with the new URL).
    const second = await startNode();
    expect(readFileSync(tokenFile, 'utf8').trim()).toBe(token);
    expect(await tokenLine(second.node)).toBe(
      `argus: inspector at ${second.url}/#token=${token} (admin token stored in ${tokenFile})`,
    );
    const state = await api(second.url, '/entities/counter/c1', { token });
    expect(state.body).toEqual({ state: { count: 2, applied: [] }, offset: 0, active: false });
    second.node.proc.kill('SIGINT');
    expect(await second.node.exited).toEqual({ code: 0, signal: null });
  }, 120_000);

  it('makes no token and prints none when auth.tokens is configured', async () => {
    const data = join(dir, 'configured');
    const configFile = join(dir, 'configured.json');
    writeFileSync(configFile, JSON.stringify({ dataDir: data, hosts: false, auth: testAuth() }));
    const { node, url } = await startNode({ ARGUS_CONFIG: configFile });
    expect((await api(url, '/inspect', { token: READ_TOKEN })).status).toBe(200);
    expect((await api(url, '/inspect', { token: null })).status).toBe(401);
    expect(existsSync(join(data, 'admin.token'))).toBe(false);
    expect(node.lines.filter((l) => l.startsWith('argus: '))).toEqual([]);
    node.proc.kill('SIGTERM');
    expect(await node.exited).toEqual({ code: 0, signal: null });
  }, 60_000);
});
