/**
 * One node with the whole log path for tests: the logs extension (listeners on loopback port 0),
 * alerting (routes, receivers, firing index), push-only host metrics (the `log_rule.<id>` metrics land
 * there), the live feed and the HTTP API. The logs extension runs on a clock the test moves, so a
 * 1-minute window closes when the test says; records carry their own times.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type HostMetrics, hostMetrics } from '../../actors/host/host-metrics.ts';
import { type Logs, logs } from '../../actors/log/extension.ts';
import { type Alerting, alerting } from '../../actors/rule/alerting.ts';
import type { AlertEvent } from '../../actors/rule/types.ts';
import type { Clock } from '../../runtime/boundaries.ts';
import { realClock } from '../../runtime/clock.ts';
import { type ArgusConfigInput, parseConfig } from '../../runtime/config.ts';
import { eventFeed } from '../../runtime/feed/feed.ts';
import { type HttpServer, startHttp } from '../../runtime/http.ts';
import { MemoryConfigSource } from '../../runtime/memory-config.ts';
import { createRuntime, type Runtime } from '../../runtime/runtime.ts';
import { testAuth } from '../helpers/api.ts';

export { ADMIN_TOKEN, READ_TOKEN } from '../helpers/api.ts';

/** A clock whose `now` the test sets; everything else is the real clock. */
export class ManualClock implements Clock {
  constructor(public time: number) {}
  now(): number {
    return this.time;
  }
  monotonic(): number {
    return realClock.monotonic();
  }
  setTimeout(fn: () => void, ms: number) {
    return realClock.setTimeout(fn, ms);
  }
  clearTimeout(handle: ReturnType<Clock['setTimeout']>): void {
    realClock.clearTimeout(handle);
  }
}

export interface LogNode {
  readonly rt: Runtime;
  readonly logs: Logs;
  readonly alerts: Alerting;
  readonly hosts: HostMetrics;
  readonly http: HttpServer;
  readonly config: MemoryConfigSource;
  readonly clock: ManualClock;
  /** Every alert event the node's entities emitted (landed checkpoints), in order. */
  readonly events: AlertEvent[];
  stop(): Promise<void>;
}

export type Seeds = Record<string, Record<string, string>>;

export const startLogNode = async (
  seeds: Seeds,
  options: {
    start?: number;
    logs?: Record<string, unknown>;
    runtime?: Partial<ArgusConfigInput>;
    dataDir?: string;
  } = {},
): Promise<LogNode> => {
  const dataDir = options.dataDir ?? mkdtempSync(join(tmpdir(), 'argus-logs-'));
  const config = new MemoryConfigSource(seeds);
  const rt = createRuntime(
    { mode: 'embedded', dataDir, http: false, shards: 4, auth: testAuth(), ...options.runtime },
    { configSource: config },
  );
  const clock = new ManualClock(options.start ?? Date.now());
  const logsConfig = parseConfig({
    logs: {
      syslog: { udp: '127.0.0.1:0', tcp: '127.0.0.1:0' },
      forward: { address: '127.0.0.1:0' },
      tickMs: 20,
      ...options.logs,
    },
  }).logs;
  if (logsConfig === false) throw new Error('logs config');
  const alerts = alerting({ tickMs: 50 });
  const hosts = hostMetrics({ cycleMs: 500, observer: alerts.observer });
  const logExt = logs({ config: logsConfig, alerting: alerts, clock });
  rt.use(alerts)
    .use(hosts)
    .use(logExt)
    .use(eventFeed({ logTap: () => logExt.tap }));
  const events: AlertEvent[] = [];
  rt.onOutput('events', (outputs) => {
    for (const o of outputs)
      if ((o.value as { type: string }).type === '@argus.alert') events.push(o.value as AlertEvent);
  });
  try {
    await rt.start();
  } catch (e) {
    if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    throw e;
  }
  const http = await startHttp(rt, '127.0.0.1', 0);
  return {
    rt,
    logs: logExt,
    alerts,
    hosts,
    http,
    config,
    clock,
    events,
    stop: async () => {
      await http.close();
      await rt.stop();
      if (!options.dataDir) rmSync(dataDir, { recursive: true, force: true });
    },
  };
};

/** NDJSON body of records. */
export const ndjson = (records: readonly Record<string, unknown>[]): string =>
  records.map((r) => JSON.stringify(r)).join('\n');
