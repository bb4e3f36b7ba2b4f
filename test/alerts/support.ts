/**
 * Shared pieces of the alerting integration tests: an embedded node with host metrics (simulated SNMP
 * agents and/or pushes), the alerting extension (its host observer on the host kind), the live feed,
 * and a real HTTP server (tokens of test/helpers/api.ts: 'reader' and 'ops'); the configuration seeded into its in-memory config source, as etcd would
 * hold it in a cluster (`rules/<id>`, `receivers/<id>`, `routes/tree`).
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type HostMetrics, hostMetrics } from '../../actors/host/host-metrics.ts';
import type { HostPushed } from '../../actors/host/messages.ts';
import type { InventoryHost } from '../../actors/host/types.ts';
import { staticInventory } from '../../actors/inventory/sources.ts';
import { type Alerting, alerting } from '../../actors/rule/alerting.ts';
import type { AlertEvent } from '../../actors/rule/types.ts';
import { eventFeed } from '../../runtime/feed/feed.ts';
import { type HttpServer, startHttp } from '../../runtime/http.ts';
import { MemoryConfigSource } from '../../runtime/memory-config.ts';
import { createRuntime, type Runtime } from '../../runtime/runtime.ts';
import { testAuth } from '../helpers/api.ts';

export { ADMIN_TOKEN, READ_TOKEN } from '../helpers/api.ts';

export type Seeds = Record<string, Record<string, string>>;

/** A YAML/JSON document as the config source stores it. */
export const doc = (value: unknown): string => JSON.stringify(value);

export interface AlertingNode {
  readonly rt: Runtime;
  readonly alerts: Alerting;
  readonly hosts: HostMetrics;
  readonly http: HttpServer;
  readonly config: MemoryConfigSource;
  /** Every alert event the node's entities emitted (landed checkpoints), in order. */
  readonly events: AlertEvent[];
  stop(): Promise<void>;
}

export const startAlertingNode = async (
  seeds: Seeds,
  inventory: readonly InventoryHost[] = [],
  options: { cycleMs?: number; tickMs?: number } = {},
): Promise<AlertingNode> => {
  const dataDir = mkdtempSync(join(tmpdir(), 'argus-alerts-'));
  const config = new MemoryConfigSource(seeds);
  const rt = createRuntime(
    {
      mode: 'embedded',
      dataDir,
      http: false,
      shards: 4,
      auth: testAuth(),
    },
    { configSource: config },
  );
  const alerts = alerting({ tickMs: options.tickMs ?? 50 });
  const hosts = hostMetrics({
    ...(inventory.length > 0 ? { inventory: staticInventory(inventory) } : {}),
    cycleMs: options.cycleMs ?? 500,
    observer: alerts.observer,
  });
  rt.use(alerts).use(hosts).use(eventFeed());
  const events: AlertEvent[] = [];
  rt.onOutput('events', (outputs) => {
    for (const o of outputs)
      if ((o.value as { type: string }).type === '@argus.alert') events.push(o.value as AlertEvent);
  });
  try {
    await rt.start();
  } catch (e) {
    rmSync(dataDir, { recursive: true, force: true });
    throw e;
  }
  const http = await startHttp(rt, '127.0.0.1', 0);
  return {
    rt,
    alerts,
    hosts,
    http,
    config,
    events,
    stop: async () => {
      await http.close();
      await rt.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
};

/** A pushed gauge for `host` (straight into its mailbox, as the push API does). */
export const pushGauge = (rt: Runtime, host: string, metric: string, value: number, ts = Date.now()) => {
  const message: HostPushed = {
    type: 'host.pushed',
    points: [{ metric, tags: {}, ts, value, type: 'gauge' }],
  };
  return rt.send('host', host, message);
};
