/**
 * A throwaway Prometheus server (Debian's `prometheus`, 2.x) that scrapes one target every second: the
 * check that a node's `/metrics` is what a real Prometheus accepts. Its config and TSDB live in a fresh
 * temp folder, its web/API endpoint on a free loopback port; the system Prometheus the package
 * installs is never used. It is started and stopped through scripts/services/process.ts, so it never
 * outlives the process that started it. A node's `/metrics` needs a token with `read` scope: pass it as
 * `bearerToken`, and the scrape sends `Authorization: Bearer <token>` (Prometheus 2.26+ `authorization`).
 */
import { existsSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { freePorts, spawnService, startRestartable } from './process.ts';

export interface PrometheusOptions {
  /** What to scrape: `http://127.0.0.1:<port>` (path `/metrics`) or a URL with its own path. */
  readonly target: string;
  /**
   * The bearer token it scrapes with (`read` scope; written into its temp config, mode 0600). None: no
   * `Authorization` header, and a node's `/metrics` answers 401.
   */
  readonly bearerToken?: string;
  /** The job label of what it scrapes (default `argus`). */
  readonly job?: string;
  /** How long to wait for `GET /-/ready` to answer 200 (default 30 s). */
  readonly startTimeoutMs?: number;
  /** Keep the temp folder (TSDB, config and log) after stop. Default: env ARGUS_KEEP_SERVICE_FILES=1. */
  readonly keepFiles?: boolean;
}

export interface RunningPrometheus {
  /** The web and HTTP API endpoint: `http://127.0.0.1:<port>` (`/api/v1/query`, `/-/ready`). */
  readonly url: string;
  readonly pid: number;
  readonly logFile: string;
  /** Ends prometheus (SIGTERM, then SIGKILL) and removes the temp folder unless kept. Idempotent. */
  stop(): Promise<void>;
}

const COMMAND = 'prometheus';

const onPath = (command: string): boolean =>
  (process.env.PATH ?? '').split(delimiter).some((dir) => dir !== '' && existsSync(join(dir, command)));

const configFor = (job: string, target: URL, bearerToken?: string): string => `global:
  scrape_interval: 1s
  scrape_timeout: 1s
  evaluation_interval: 1s
scrape_configs:
  - job_name: ${JSON.stringify(job)}
    scheme: ${target.protocol.replace(':', '')}
    metrics_path: ${JSON.stringify(target.pathname === '/' ? '/metrics' : target.pathname)}
${bearerToken === undefined ? '' : `    authorization:\n      type: Bearer\n      credentials: ${JSON.stringify(bearerToken)}\n`}    static_configs:
      - targets: [${JSON.stringify(target.host)}]
`;

export const startPrometheus = async (options: PrometheusOptions): Promise<RunningPrometheus> => {
  if (!onPath(COMMAND))
    throw new Error(
      `prometheus: '${COMMAND}' is not on PATH. Install Debian's prometheus package: bash scripts/install-test-deps.sh`,
    );
  const target = new URL(options.target);
  const keepFiles = options.keepFiles ?? process.env.ARGUS_KEEP_SERVICE_FILES === '1';
  const dir = mkdtempSync(join(tmpdir(), 'argus-prometheus-'));
  const logFile = join(dir, 'prometheus.log');
  const configFile = join(dir, 'prometheus.yml');
  const [port] = (await freePorts(1)) as [number];
  writeFileSync(configFile, configFor(options.job ?? 'argus', target, options.bearerToken), { mode: 0o600 });
  const url = `http://127.0.0.1:${port}`;
  // startRestartable for its retry when the port was taken between freePorts() and the bind.
  const service = await startRestartable({
    spawn: () =>
      spawnService({
        name: 'prometheus',
        command: COMMAND,
        args: [
          `--config.file=${configFile}`,
          `--storage.tsdb.path=${join(dir, 'data')}`,
          `--web.listen-address=127.0.0.1:${port}`,
          '--log.level=warn',
        ],
        logFile,
        tempDir: dir,
        keepTempDir: keepFiles,
      }),
    probe: () => ready(url),
    startTimeoutMs: options.startTimeoutMs ?? 30_000,
    logFile,
    tempDir: dir,
    keepTempDir: keepFiles,
    haltGraceMs: 0,
  });
  return { url, pid: service.process.pid, logFile, stop: () => service.stop() };
};

const ready = async (url: string): Promise<void> => {
  const response = await fetch(`${url}/-/ready`, { signal: AbortSignal.timeout(2_000) });
  await response.arrayBuffer();
  if (response.status !== 200) throw new Error(`GET /-/ready answered ${response.status}, not 200`);
};
