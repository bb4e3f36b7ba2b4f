/**
 * The inspector's hosts and firing-alerts endpoints (docs/API.md, "Inspector" → "Hosts", "Alerts").
 *
 * Embedded: 10 pushed hosts, 3 of which fire (two rules, two severities); `/api/v1/alerts` lists exactly
 * those, most severe then oldest first, its filters narrow them, a resolved one and a deleted rule's
 * disappear; `/api/v1/hosts` lists the 10 with their latest values, paged and searched; a host's
 * history has the pushed points in order.
 *
 * Cluster (two runtime/main.ts processes, Kafka and etcd): the same alerts from either node; a SIGKILLed
 * node is in `missing` of an immediate gather (within the gather timeout); once its shards have moved,
 * the survivor lists the alerts still firing on the moved hosts and index buckets — no new transition
 * was emitted, the index came with its shards.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hostMetrics } from '../../actors/host/host-metrics.ts';
import { alerting } from '../../actors/rule/alerting.ts';
import { FIRING_KIND, firingBucket } from '../../actors/rule/firing.ts';
import { EtcdConfigSource } from '../../cluster/etcd-config.ts';
import { shardOf } from '../../runtime/envelope.ts';
import { type HttpServer, startHttp } from '../../runtime/http.ts';
import { MemoryConfigSource } from '../../runtime/memory-config.ts';
import { createRuntime, type Runtime } from '../../runtime/runtime.ts';
import { pushGauge } from '../alerts/support.ts';
import { api, READ_TOKEN, testAuth } from '../helpers/api.ts';
import { killIfRunning, type MainNode, runningShards, startClusterNode } from '../helpers/child.ts';
import { etcdEndpoints, kafkaBrokers, uniquePrefix } from '../helpers/services.ts';
import { waitFor } from '../helpers/wait.ts';

interface Listed {
  partial: boolean;
  missing: { node: string; error: string }[];
  unanswered: string[];
  total: number;
  items: Record<string, unknown>[];
}

const read = <T = Listed>(base: string, path: string) => api<T>(base, path, { token: READ_TOKEN });

const doc = (value: unknown) => JSON.stringify(value);

const RULES = {
  'cpu-high': doc({
    metric: 'cpu.busy',
    condition: '> 90',
    severity: 4,
    labels: { team: 'web' },
    annotations: { summary: 'cpu {{value}} on {{host}}' },
  }),
  'disk-full': doc({ metric: 'disk.used_pct', condition: '> 95', severity: 5 }),
};

describe('hosts and firing alerts, embedded', () => {
  let dataDir: string;
  let rt: Runtime;
  let http: HttpServer;
  let config: MemoryConfigSource;
  const base = Date.now() - 60_000;

  beforeAll(async () => {
    dataDir = mkdtempSync(join(tmpdir(), 'argus-inspector-'));
    config = new MemoryConfigSource({ rules: RULES });
    rt = createRuntime(
      { mode: 'embedded', dataDir, http: false, shards: 4, auth: testAuth() },
      { configSource: config },
    );
    const alerts = alerting({ tickMs: 50 });
    rt.use(alerts).use(hostMetrics({ observer: alerts.observer }));
    await rt.start();
    http = await startHttp(rt, '127.0.0.1', 0);
  }, 60_000);

  afterAll(async () => {
    await http?.close();
    await rt?.stop();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  const hosts = Array.from({ length: 10 }, (_, i) => `h-0${i}`);
  /** cpu.busy of each host at base, base + 1 s, base + 2 s: h-07 fires at +1 s (95), h-02 at +2 s (99). */
  const cpu = (host: string): number[] =>
    host === 'h-07' ? [10, 95, 97] : host === 'h-02' ? [30, 40, 99] : [20, 21, Number(host.slice(-1))];

  it('lists exactly the firing alerts, most severe first, then oldest', async () => {
    for (const host of hosts)
      for (const [k, v] of cpu(host).entries()) await pushGauge(rt, host, 'cpu.busy', v, base + k * 1_000);
    await pushGauge(rt, 'h-05', 'disk.used_pct', 96, base + 2_500);
    const answer = await waitFor(
      '3 firing alerts',
      async () => {
        const r = await read(http.url, '/api/v1/alerts');
        return r.body.total === 3 ? r : false;
      },
      10_000,
      20,
    );
    expect(answer.status).toBe(200);
    const items = answer.body.items.map(({ fingerprint, ...rest }) => {
      expect(fingerprint).toMatch(/^[0-9a-f]{16}$/);
      return rest;
    });
    expect({ ...answer.body, items }).toEqual({
      partial: false,
      missing: [],
      unanswered: [],
      total: 3,
      items: [
        {
          rule: 'disk-full',
          severity: 5,
          labels: { alertname: 'disk-full', host: 'h-05', severity: '5' },
          annotations: {},
          value: 96,
          since: base + 2_500,
          seq: 1,
          host: 'h-05',
          service: '',
        },
        {
          rule: 'cpu-high',
          severity: 4,
          labels: { alertname: 'cpu-high', host: 'h-07', severity: '4', team: 'web' },
          annotations: { summary: 'cpu 95 on h-07' },
          value: 95,
          since: base + 1_000,
          seq: 1,
          host: 'h-07',
          service: '',
        },
        {
          rule: 'cpu-high',
          severity: 4,
          labels: { alertname: 'cpu-high', host: 'h-02', severity: '4', team: 'web' },
          annotations: { summary: 'cpu 99 on h-02' },
          value: 99,
          since: base + 2_000,
          seq: 1,
          host: 'h-02',
          service: '',
        },
      ],
    });
  });

  it('filters by severity, rule and host', async () => {
    const hostsOf = async (query: string) =>
      (await read(http.url, `/api/v1/alerts?${query}`)).body.items.map((a) => a.host);
    expect(await hostsOf('severity=4')).toEqual(['h-07', 'h-02']);
    expect(await hostsOf('severity=5')).toEqual(['h-05']);
    expect(await hostsOf('severity=1')).toEqual([]);
    expect(await hostsOf('rule=disk-full')).toEqual(['h-05']);
    expect(await hostsOf('host=h-02')).toEqual(['h-02']);
    expect(await hostsOf('rule=cpu-high&host=h-05')).toEqual([]);
    expect(await read(http.url, '/api/v1/alerts?severity=9')).toMatchObject({
      status: 400,
      body: { error: "severity: must be an integer 1-5, got '9'" },
    });
  });

  it('lists the hosts with their latest values, sorted, paged and searched', async () => {
    const all = await read(http.url, '/api/v1/hosts');
    expect(all.status).toBe(200);
    expect(all.body).toEqual({
      partial: false,
      missing: [],
      unanswered: [],
      total: 10,
      offset: 0,
      limit: 100,
      items: hosts.map((id) => ({
        id,
        node: rt.nodeId,
        latest: {
          'cpu.busy': { value: cpu(id)[2], at: base + 2_000 },
          ...(id === 'h-05' ? { 'disk.used_pct': { value: 96, at: base + 2_500 } } : {}),
        },
      })),
    });
    const ids = async (query: string) => {
      const r = await read(http.url, `/api/v1/hosts?${query}`);
      return { total: r.body.total, ids: r.body.items.map((h) => h.id) };
    };
    expect(await ids('offset=3&limit=4')).toEqual({ total: 10, ids: ['h-03', 'h-04', 'h-05', 'h-06'] });
    expect(await ids('offset=8&limit=4')).toEqual({ total: 10, ids: ['h-08', 'h-09'] });
    expect(await ids('offset=20')).toEqual({ total: 10, ids: [] });
    expect(await ids('q=H-0')).toEqual({ total: 10, ids: hosts });
    expect(await ids('q=7')).toEqual({ total: 1, ids: ['h-07'] });
    expect(await ids('q=nothing')).toEqual({ total: 0, ids: [] });
    expect(await read(http.url, '/api/v1/hosts?limit=2000')).toMatchObject({
      status: 400,
      body: { error: "limit: must be an integer 0-1000, got '2000'" },
    });
    expect(await read(http.url, '/api/v1/hosts?offset=-1')).toMatchObject({ status: 400 });
  });

  it('answers a host’s history with the pushed points in order', async () => {
    expect(await read(http.url, '/api/v1/hosts/h-02/history')).toMatchObject({
      status: 200,
      body: {
        id: 'h-02',
        series: {
          'cpu.busy': [
            [base, 30],
            [base + 1_000, 40],
            [base + 2_000, 99],
          ],
        },
      },
    });
    expect((await read(http.url, '/api/v1/hosts/h-05/history')).body).toEqual({
      id: 'h-05',
      series: {
        'cpu.busy': [
          [base, 20],
          [base + 1_000, 21],
          [base + 2_000, 5],
        ],
        'disk.used_pct': [[base + 2_500, 96]],
      },
    });
    expect((await read(http.url, '/api/v1/hosts/never-seen/history')).body).toEqual({
      id: 'never-seen',
      series: {},
    });
  });

  it('drops an alert once it resolves, and the alerts of a deleted rule at once', async () => {
    await pushGauge(rt, 'h-07', 'cpu.busy', 50, base + 3_000);
    await waitFor(
      'h-07 to resolve',
      async () => (await read(http.url, '/api/v1/alerts')).body.total === 2,
      10_000,
      20,
    );
    expect((await read(http.url, '/api/v1/alerts')).body.items.map((a) => a.host)).toEqual(['h-05', 'h-02']);
    await config.delete('rules', 'disk-full');
    await waitFor(
      'the rule deletion to apply',
      async () => (await read(http.url, '/api/v1/alerts')).body.total === 1,
      10_000,
      20,
    );
    expect((await read(http.url, '/api/v1/alerts')).body.items.map((a) => a.host)).toEqual(['h-02']);
  });

  it('needs a read token', async () => {
    expect((await api(http.url, '/api/v1/alerts', { token: null })).status).toBe(401);
    expect((await api(http.url, '/api/v1/hosts', { token: null })).status).toBe(401);
  });
});

describe('hosts and firing alerts, cluster', () => {
  const SHARDS = 8;
  const GATHER_TIMEOUT_MS = 1_500;
  const dir = mkdtempSync(join(tmpdir(), 'argus-inspector-cluster-'));
  const cleanups: (() => Promise<unknown>)[] = [];
  afterAll(async () => {
    for (const c of cleanups.reverse()) await c().catch(() => undefined);
    rmSync(dir, { recursive: true, force: true });
  });

  const startNode = (id: string, prefix: string): Promise<MainNode> =>
    startClusterNode(
      {
        id,
        prefix,
        shards: SHARDS,
        dir,
        brokers: kafkaBrokers(),
        etcd: etcdEndpoints(),
        extra: {
          alerts: { tickMs: 100 },
          auth: testAuth(),
          inspector: { gatherTimeoutMs: GATHER_TIMEOUT_MS },
          // A 5 s lease (the helper's is 2 s): a loaded machine (etcd shared with other suites) must not
          // fence a healthy node, and the killed node stays a member long enough to be asked at once.
          cluster: {
            etcd: { endpoints: etcdEndpoints() },
            leaseTtlS: 5,
            fenceMarginMs: 1_500,
            settleMs: 100,
          },
        },
      },
      (node) => cleanups.push(() => killIfRunning(node)),
    );

  const firingHosts = async (node: MainNode): Promise<Listed> =>
    (await read(node.url, '/api/v1/alerts')).body;

  it('lists the alerts from either node, marks a killed node missing, and lists the moved alerts from the survivor', async () => {
    const prefix = uniquePrefix('inspector');
    const etcd = new EtcdConfigSource(etcdEndpoints(), prefix);
    cleanups.push(() => etcd.close());
    await etcd.put('rules', 'cpu-high', RULES['cpu-high']);
    const nodes = [await startNode('i1', prefix), await startNode('i2', prefix)];
    const [survivor, victim] = nodes as [MainNode, MainNode];
    let seen: unknown;
    const placement = await waitFor(
      'the two nodes to split the host and firing shards',
      async () => {
        const [h1, h2, f1, f2] = await Promise.all([
          runningShards(survivor, 'host'),
          runningShards(victim, 'host'),
          runningShards(survivor, FIRING_KIND),
          runningShards(victim, FIRING_KIND),
        ]);
        seen = { h1, h2, f1, f2 };
        const split = (a: number[], b: number[]) =>
          a.length > 0 && b.length > 0 && a.length + b.length === SHARDS;
        return split(h1!, h2!) && split(f1!, f2!) ? { victimHosts: h2!, victimFiring: f2! } : false;
      },
      60_000,
      200,
    ).catch(async (e: Error) => {
      const view = await read(survivor.url, '/cluster').catch(() => undefined);
      throw new Error(
        `${e.message}; last seen ${JSON.stringify(seen)}; ${JSON.stringify(view?.body).slice(0, 3000)}; ${survivor.child.errors}; ${victim.child.errors}`,
      );
    });
    // Three hosts chosen so the kill moves something of each: a host and its index entry both on the
    // victim, a host on the victim indexed on the survivor, and one the other way round.
    const onVictim = (id: string) => placement.victimHosts.includes(shardOf(id, SHARDS));
    const indexedOnVictim = (id: string) =>
      placement.victimFiring.includes(shardOf(firingBucket('host', id), SHARDS));
    const pool = Array.from({ length: 200 }, (_, i) => `h-${String(i).padStart(3, '0')}`);
    const pick = (host: boolean, index: boolean) =>
      pool.find((id) => onVictim(id) === host && indexedOnVictim(id) === index)!;
    const spiking = [pick(true, true), pick(true, false), pick(false, true)].sort();
    const quiet = pool.filter((id) => !spiking.includes(id)).slice(0, 7);
    const now = Date.now();
    const lines = [
      ...spiking.map((id) => `cpu,host=${id} busy=97 ${now}`),
      ...quiet.map((id) => `cpu,host=${id} busy=20 ${now}`),
    ];
    // Half through each node: the push route forwards to the hosts' mailboxes wherever they run.
    for (const [i, node] of nodes.entries()) {
      const res = await fetch(`${node.url}/write?precision=ms`, {
        method: 'POST',
        body: `${lines.filter((_, k) => k % 2 === i).join('\n')}\n`,
      });
      expect(res.status).toBe(204);
    }
    const expected = spiking
      .map((id) => ({
        rule: 'cpu-high',
        severity: 4,
        labels: { alertname: 'cpu-high', host: id, severity: '4', team: 'web' },
        annotations: { summary: `cpu 97 on ${id}` },
        value: 97,
        since: now,
        seq: 1,
        host: id,
        service: '',
      }))
      .sort((a, b) => (a.host < b.host ? -1 : 1));
    const strip = (l: Listed) =>
      l.items
        .map(({ fingerprint: _, ...rest }) => rest)
        .sort((a, b) => (String(a.host) < String(b.host) ? -1 : 1));
    for (const node of nodes) {
      const listed = await waitFor(
        `3 alerts listed by ${node.id}`,
        async () => {
          const l = await firingHosts(node);
          return l.total === 3 ? l : false;
        },
        20_000,
        50,
      );
      expect({ partial: listed.partial, missing: listed.missing, items: strip(listed) }).toEqual({
        partial: false,
        missing: [],
        items: expected,
      });
    }
    // Every pushed host is listed once its push has landed on its owner (the quiet hosts' pushes may
    // land after the spiking ones' alerts).
    const hosts = await waitFor(
      'the 10 hosts listed by the survivor',
      async () => {
        const h = await read(survivor.url, '/api/v1/hosts');
        return (h.body as { total?: number }).total === 10 ? h : false;
      },
      20_000,
      50,
    );
    expect(hosts.body).toMatchObject({ partial: false, missing: [], total: 10 });
    expect(hosts.body.items.map((h) => h.id)).toEqual([...spiking, ...quiet].sort());

    await victim.child.kill9();
    const started = Date.now();
    const right = await read(survivor.url, '/api/v1/alerts');
    expect(Date.now() - started).toBeLessThan(GATHER_TIMEOUT_MS + 1_000);
    expect(right.body.partial).toBe(true);
    // Its membership lasts until its lease expires (2 s): asked at once, it is a member that does not answer.
    expect(right.body.missing.map((m) => m.node)).toEqual(['i2']);
    expect(right.body.items.length).toBeLessThan(3);
    const hostsNow = await read(survivor.url, '/api/v1/hosts');
    expect(hostsNow.body).toMatchObject({ partial: true });

    const after = await waitFor(
      'the survivor to hold every shard and list the 3 alerts',
      async () => {
        const l = await firingHosts(survivor);
        return !l.partial && l.total === 3 ? l : false;
      },
      40_000,
      200,
    );
    expect({ missing: after.missing, unanswered: after.unanswered, items: strip(after) }).toEqual({
      missing: [],
      unanswered: [],
      items: expected,
    });
  }, 150_000);
});
