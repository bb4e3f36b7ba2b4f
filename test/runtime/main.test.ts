/**
 * `npm start`: one embedded node with an HTTP endpoint, stopped cleanly by SIGTERM/SIGINT, its data
 * kept for the next start.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startMainNode } from '../helpers/child.ts';
import { waitFor } from '../helpers/wait.ts';

const dir = mkdtempSync(join(tmpdir(), 'argus-main-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const startNode = async () => {
  const { node, url, line } = await startMainNode({ ARGUS_DATA_DIR: dir });
  expect(line).toMatch(
    /^argus [^ ]+: running in embedded mode, data in .*, listening on http:\/\/127\.0\.0\.1:\d+ /,
  );
  return { node, url };
};

describe('npm start', () => {
  it('serves health and messages, and stops cleanly on SIGTERM and SIGINT keeping its data', async () => {
    const first = await startNode();
    const health = await fetch(`${first.url}/health`);
    expect(health.status).toBe(200);
    expect(await health.json()).toMatchObject({ status: 'running', mode: 'embedded' });

    const post = await fetch(`${first.url}/entities/counter/c1`, {
      method: 'POST',
      body: '{"type":"inc","by":2}',
    });
    expect([post.status, await post.json()]).toEqual([202, { accepted: true }]);
    const bad = await fetch(`${first.url}/entities/counter/c1`, { method: 'POST', body: '{"type":"inc"}' });
    expect([bad.status, await bad.json()]).toEqual([
      400,
      {
        error: "ARGUS_ERR_INVALID_MESSAGE: message for counter/c1: counter 'inc' needs a finite number 'by'",
      },
    ]);
    const notJson = await fetch(`${first.url}/entities/counter/c1`, { method: 'POST', body: '{"type":' });
    expect(notJson.status).toBe(400);
    expect((await fetch(`${first.url}/entities/nope/c1`)).status).toBe(404);
    await waitFor('applied', async () => {
      const r = await fetch(`${first.url}/entities/counter/c1`);
      return ((await r.json()) as { state: { count: number } }).state.count === 2;
    });

    const cluster = (await (await fetch(`${first.url}/cluster`)).json()) as {
      coordinator: string;
      status: string;
      placement: { counter: { node: string; epoch: number }[] };
      running: { kind: string }[];
    };
    expect(cluster).toMatchObject({ coordinator: 'local', status: 'active', epoch: 0 });
    const counterShards = cluster.running.filter((r) => r.kind === 'counter');
    expect(cluster.placement.counter).toHaveLength(counterShards.length);
    const lag = (
      (await (await fetch(`${first.url}/lag`)).json()) as {
        kind: string;
        partition: number;
        lag: number;
        end: number;
      }[]
    ).filter((l) => l.kind === 'counter');
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
        const r = (await (await fetch(`${first.url}/api/v1/hosts/localhost`)).json()) as {
          summary: { status: string; polls: number };
          latest: { metric: string; value: number }[];
        };
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

    const second = await startNode();
    const state = await (await fetch(`${second.url}/entities/counter/c1`)).json();
    expect(state).toEqual({ state: { count: 2, applied: [] }, offset: 0, active: false });
    second.node.proc.kill('SIGINT');
    expect(await second.node.exited).toEqual({ code: 0, signal: null });
  }, 120_000);
});
