/**
 * A throwaway InfluxDB 1.x (Debian's `influxd`, 1.6) for the push-ingest benchmark: the reference a
 * line protocol parser is measured and checked against. Data, WAL, meta and config live in a fresh
 * temp folder; HTTP and the RPC (backup/restore) listener are bound to free loopback ports; everything
 * that would talk to the outside or fill the log is off (usage reporting, the `_internal` monitor
 * database, UDP/Graphite/collectd/OpenTSDB inputs, the HTTP access log, query logging). It is started
 * and stopped through scripts/services/process.ts, so it never outlives the process that started it.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { freePorts, spawnService, startRestartable } from './process.ts';

export interface InfluxdbOptions {
  /** How long to wait for `GET /ping` to answer 204 (default 30 s). */
  readonly startTimeoutMs?: number;
  /** Keep the temp folder (data, config and log) after stop. Default: env ARGUS_KEEP_SERVICE_FILES=1. */
  readonly keepFiles?: boolean;
}

export interface RunningInfluxdb {
  /** The HTTP API: `http://127.0.0.1:<port>` (`/ping`, `/write`, `/query`). */
  readonly url: string;
  readonly pid: number;
  readonly logFile: string;
  /** Ends influxd (SIGTERM, then SIGKILL) and removes the temp folder unless kept. Idempotent. */
  stop(): Promise<void>;
}

const configFor = (dir: string, httpPort: number, rpcPort: number): string => `
reporting-disabled = true
bind-address = "127.0.0.1:${rpcPort}"

[meta]
  dir = "${join(dir, 'meta')}"
  logging-enabled = false

[data]
  dir = "${join(dir, 'data')}"
  wal-dir = "${join(dir, 'wal')}"
  index-version = "inmem"
  query-log-enabled = false

[monitor]
  store-enabled = false

[subscriber]
  enabled = false

[continuous_queries]
  enabled = false
  log-enabled = false

[http]
  enabled = true
  bind-address = "127.0.0.1:${httpPort}"
  auth-enabled = false
  log-enabled = false
  suppress-write-log = true
  pprof-enabled = false
  unix-socket-enabled = false

[logging]
  level = "warn"
  suppress-logo = true

[[graphite]]
  enabled = false

[[collectd]]
  enabled = false

[[opentsdb]]
  enabled = false

[[udp]]
  enabled = false
`;

export const startInfluxdb = async (options: InfluxdbOptions = {}): Promise<RunningInfluxdb> => {
  const keepFiles = options.keepFiles ?? process.env.ARGUS_KEEP_SERVICE_FILES === '1';
  const dir = mkdtempSync(join(tmpdir(), 'argus-influxdb-'));
  const logFile = join(dir, 'influxd.log');
  const configFile = join(dir, 'influxdb.conf');
  const [httpPort, rpcPort] = (await freePorts(2)) as [number, number];
  writeFileSync(configFile, configFor(dir, httpPort, rpcPort));
  const url = `http://127.0.0.1:${httpPort}`;
  // INFLUXDB_* variables override the config file: none from our environment may leak in.
  const env = Object.fromEntries(
    Object.entries(process.env).filter(([name]) => !name.startsWith('INFLUXDB_')),
  );
  // startRestartable for its retry when a port was taken between freePorts() and the bind.
  const service = await startRestartable({
    spawn: () =>
      spawnService({
        name: 'influxd',
        command: 'influxd',
        args: ['run', '-config', configFile],
        logFile,
        tempDir: dir,
        keepTempDir: keepFiles,
        env,
      }),
    probe: () => ping(url),
    startTimeoutMs: options.startTimeoutMs ?? 30_000,
    logFile,
    tempDir: dir,
    keepTempDir: keepFiles,
    haltGraceMs: 0,
  });
  return { url, pid: service.process.pid, logFile, stop: () => service.stop() };
};

const ping = async (url: string): Promise<void> => {
  const response = await fetch(`${url}/ping`, { signal: AbortSignal.timeout(2_000) });
  await response.arrayBuffer();
  if (response.status !== 204) throw new Error(`GET /ping answered ${response.status}, not 204`);
};
