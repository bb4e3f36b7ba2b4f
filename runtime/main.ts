/**
 * `npm start`: one node in embedded mode (LMDB journal in ./data), the counter kind registered as a
 * demo, host metrics (by default a built-in SNMP agent on a loopback port serving this machine's
 * figures, polled as host `localhost`; push ingest on the same endpoint), an HTTP endpoint on
 * 127.0.0.1:7070 with the live event feed (WebSocket `/api/v1/events/stream`, `auth.tokens`) and the
 * self-metrics (`GET /metrics`, Prometheus format), and a clean stop on SIGINT/SIGTERM (feed clients
 * are closed with 1001, in-flight batches finish, their snapshots are written and committed, actors
 * stop, the journal closes).
 *
 * Configuration: a JSON file named by ARGUS_CONFIG (docs/CONFIGURATION.md); ARGUS_PORT and
 * ARGUS_DATA_DIR override the port and data folder.
 */
import { readFileSync } from 'node:fs';
import { counter } from '../actors/counter/counter.ts';
import { hostMetricsFromConfig } from '../actors/host/from-config.ts';
import { alertingFromConfig } from '../actors/rule/from-config.ts';
import { parseConfig } from './config.ts';
import { describeError } from './errors.ts';
import { eventFeed } from './feed/feed.ts';
import { startHttp } from './http.ts';
import { MemoryConfigSource } from './memory-config.ts';
import { selfMetrics } from './metrics.ts';
import { createRuntime } from './runtime.ts';

const fail = (message: string): never => {
  process.stderr.write(`argus: ${message}\n`);
  process.exit(1);
};

const loadConfig = (): Record<string, unknown> => {
  const file = process.env.ARGUS_CONFIG;
  let config: Record<string, unknown> = {};
  if (file) {
    try {
      config = JSON.parse(readFileSync(file, 'utf8'));
    } catch (e) {
      fail(`cannot read ARGUS_CONFIG ${file}: ${describeError(e).message}`);
    }
  }
  const http = typeof config.http === 'object' && config.http !== null ? config.http : {};
  const port = process.env.ARGUS_PORT;
  return {
    ...config,
    // npm start polls this machine by default; `"hosts": false` turns host metrics off.
    hosts: config.hosts ?? {},
    // …and evaluates alert rules; `"alerts": false` turns alerting off.
    alerts: config.alerts ?? {},
    ...(process.env.ARGUS_DATA_DIR ? { dataDir: process.env.ARGUS_DATA_DIR } : {}),
    http: config.http === false ? false : { ...http, ...(port !== undefined ? { port: Number(port) } : {}) },
  };
};

const main = async () => {
  let runtime: ReturnType<typeof createRuntime>;
  let hosts: ReturnType<typeof hostMetricsFromConfig>;
  try {
    const config = parseConfig(loadConfig());
    const alerts = alertingFromConfig(config);
    hosts = hostMetricsFromConfig(
      config,
      () => runtime,
      alerts ? { observer: alerts.extension.observer } : {},
    );
    // One node: the configuration's documents seed the in-memory config source (a cluster reads etcd).
    let configSource = hosts?.configSource;
    if (alerts && !config.cluster) {
      configSource ??= new MemoryConfigSource();
      for (const [section, docs] of Object.entries(alerts.seeds))
        for (const [key, text] of Object.entries(docs)) await configSource.put(section, key, text);
    }
    runtime = createRuntime(config, configSource ? { configSource } : {});
    // Alerting first: the host kind it observes is registered by host metrics after it.
    if (alerts) runtime.use(alerts.extension);
    if (hosts) runtime.use(hosts.extension);
    if (config.http) {
      runtime.use(eventFeed());
      // `GET /metrics`, with the host poller's latencies when host metrics run.
      runtime.use(selfMetrics(hosts ? { pollLatency: hosts.extension } : {}));
    }
  } catch (e) {
    return fail(describeError(e).message);
  }
  runtime.register(counter);
  await runtime.start();
  const http = runtime.config.http
    ? await startHttp(
        runtime,
        runtime.config.http.host,
        runtime.config.http.port,
        runtime.routes(),
        runtime.upgrades(),
      )
    : undefined;
  const local = hosts?.extension.localAgentHost;
  process.stdout.write(
    `argus ${runtime.nodeId}: running in ${runtime.config.mode} mode, data in ${runtime.config.dataDir}` +
      (http ? `, listening on ${http.url} (try ${http.url}/health)` : '') +
      (local
        ? `; polling this machine over SNMP as host '${local.id}'${http ? ` (${http.url}/api/v1/hosts/${local.id})` : ''}`
        : '') +
      '\n',
  );

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    process.stdout.write(`argus ${runtime.nodeId}: ${signal}, stopping\n`);
    // The runtime first: its extensions close what they serve (the feed's WebSockets, with 1001) while
    // the endpoint still answers (503 once stopping); then the endpoint.
    await runtime.stop();
    await http?.close();
    process.stdout.write(`argus ${runtime.nodeId}: stopped\n`);
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
};

main().catch((e) => fail(describeError(e).stack ?? describeError(e).message));
