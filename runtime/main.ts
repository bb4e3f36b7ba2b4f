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
 *
 * Every endpoint but health, the web page's files and push ingest needs a bearer token (http.ts). With
 * no `auth.tokens` configured, an embedded node makes one admin token on its first start, keeps it in
 * `<dataDir>/admin.token` (mode 0600; reused by later starts) and prints the inspector's URL with it in
 * the fragment (`#token=…`, which browsers never send, so it stays out of access logs). Configured
 * tokens mean none is made and none is printed.
 */
import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { counter } from '../actors/counter/counter.ts';
import { hostMetricsFromConfig } from '../actors/host/from-config.ts';
import { logsFromConfig } from '../actors/log/from-config.ts';
import { alertingFromConfig } from '../actors/rule/from-config.ts';
import { hashToken } from './auth.ts';
import { type ArgusConfig, parseConfig } from './config.ts';
import { describeError } from './errors.ts';
import { eventFeed } from './feed/feed.ts';
import { startHttp } from './http.ts';
import { inspector } from './inspector/index.ts';
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
    // …and takes logs on loopback (syslog 5514, forward 24224) on one node; a cluster says so itself.
    logs: config.logs ?? (config.cluster ? false : {}),
    ...(process.env.ARGUS_DATA_DIR ? { dataDir: process.env.ARGUS_DATA_DIR } : {}),
    http: config.http === false ? false : { ...http, ...(port !== undefined ? { port: Number(port) } : {}) },
  };
};

/** The file an embedded node keeps its generated admin token in. */
export const ADMIN_TOKEN_FILE = 'admin.token';

/** Reads the admin token kept in `file`, or makes one there (folder created, file mode 0600). */
const adminToken = (file: string): string => {
  let text: string | undefined;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
  }
  if (text === undefined) {
    const token = randomBytes(32).toString('base64url');
    mkdirSync(resolve(file, '..'), { recursive: true, mode: 0o700 });
    try {
      // 'wx': a node starting at the same moment that made it first wins, and this one reads it.
      writeFileSync(file, `${token}\n`, { mode: 0o600, flag: 'wx' });
      return token;
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      text = readFileSync(file, 'utf8');
    }
  }
  const token = text.trim();
  if (token === '') return fail(`${file} is empty: delete it and start again to have a new token made`);
  const mode = statSync(file).mode & 0o777;
  if ((mode & 0o077) !== 0)
    process.stderr.write(
      `argus: warning: ${file} can be read by others (mode 0${mode.toString(8)}): chmod 600 it\n`,
    );
  return token;
};

/**
 * The configuration with the admin token of an embedded node that has none configured, and that token
 * (with the file it is kept in); the configuration as it is otherwise.
 */
const withAdminToken = (
  config: ArgusConfig,
): { config: ArgusConfig; generated?: { token: string; file: string } } => {
  if (config.auth.tokens.length > 0) return { config };
  if (config.mode !== 'embedded') {
    process.stderr.write(
      'argus: warning: no auth.tokens configured: every endpoint but /health, the web page and push ingest answers 401\n',
    );
    return { config };
  }
  const file = resolve(join(config.dataDir, ADMIN_TOKEN_FILE));
  const token = adminToken(file);
  return {
    config: { ...config, auth: { tokens: [{ name: 'admin', sha256: hashToken(token), scopes: ['admin'] }] } },
    generated: { token, file },
  };
};

const listenerList = (a: { syslogUdp?: string; syslogTcp?: string; forward?: string }): string =>
  [
    a.syslogUdp ? `syslog udp ${a.syslogUdp}` : '',
    a.syslogTcp ? `syslog tcp ${a.syslogTcp}` : '',
    a.forward ? `forward ${a.forward}` : '',
  ]
    .filter((s) => s !== '')
    .join(', ') || 'HTTP only';

const main = async () => {
  let runtime: ReturnType<typeof createRuntime>;
  let hosts: ReturnType<typeof hostMetricsFromConfig>;
  let logs: ReturnType<typeof logsFromConfig>;
  let generated: { token: string; file: string } | undefined;
  try {
    const made = withAdminToken(parseConfig(loadConfig()));
    const config = made.config;
    generated = made.generated;
    const alerts = alertingFromConfig(config);
    hosts = hostMetricsFromConfig(
      config,
      () => runtime,
      alerts ? { observer: alerts.extension.observer } : {},
    );
    // One node: the configuration's documents seed the in-memory config source (a cluster reads etcd).
    logs = logsFromConfig(config, alerts ? { alerting: alerts.extension } : {});
    let configSource = hosts?.configSource;
    if ((alerts || logs) && !config.cluster) {
      configSource ??= new MemoryConfigSource();
      for (const seeds of [alerts?.seeds ?? {}, logs?.seeds ?? {}])
        for (const [section, docs] of Object.entries(seeds))
          for (const [key, text] of Object.entries(docs)) await configSource.put(section, key, text);
    }
    runtime = createRuntime(config, configSource ? { configSource } : {});
    // Alerting first: the host kind it observes is registered by host metrics after it.
    if (alerts) runtime.use(alerts.extension);
    if (hosts) runtime.use(hosts.extension);
    // After both: log rule results are alerts (alerting) and metrics (host entities).
    if (logs) runtime.use(logs.extension);
    if (config.http) {
      // The live feed; with logs running it also serves live tails of log streams.
      runtime.use(eventFeed(logs ? { logTap: () => logs?.extension.tap } : {}));
      // `GET /metrics`, with the host poller's latencies when host metrics run.
      runtime.use(selfMetrics(hosts ? { pollLatency: hosts.extension } : {}));
      // The inspector: its JSON API and the web page at `/`.
      runtime.use(inspector());
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
      (logs ? `; logs: ${listenerList(logs.extension.addresses)}` : '') +
      '\n',
  );
  // The one place a token is written out: the operator's own terminal, on purpose.
  if (generated)
    process.stdout.write(
      http
        ? `argus: inspector at ${http.url}/#token=${generated.token} (admin token stored in ${generated.file})\n`
        : `argus: admin token stored in ${generated.file}\n`,
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
