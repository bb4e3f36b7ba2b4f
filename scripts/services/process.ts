/**
 * Running a test server as a child process so that it never outlives us:
 *
 * - `stop()` sends SIGTERM, then SIGKILL after a grace period, then removes the server's temp folder;
 * - on a normal exit of this process (`process.on('exit')`) every child still running gets SIGKILL;
 * - a watchdog (a tiny detached shell loop) polls our pid and, once we are gone — killed with SIGKILL,
 *   crashed, or a test runner that never ran its teardown — stops the child and removes its folder.
 *
 * The children run in their own process group (detached) so that a Ctrl-C on a terminal reaches us
 * first and we stop them in order, instead of racing them.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';

export interface ServiceProcess {
  readonly name: string;
  readonly pid: number;
  /** Where the server's stdout/stderr (and for Kafka, log4j) go. */
  readonly logFile: string;
  /** Resolves with the exit code once the process ended (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  isRunning(): boolean;
  /** SIGTERM, SIGKILL after `graceMs`, then removes the temp folder (unless kept). */
  stop(graceMs?: number): Promise<void>;
}

export interface SpawnServiceOptions {
  readonly name: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly logFile: string;
  /** Removed on stop (and by the watchdog); holds data and logs. */
  readonly tempDir: string;
  /** Keep tempDir after stop, for looking at logs (env ARGUS_KEEP_SERVICE_FILES=1). */
  readonly keepTempDir?: boolean;
  readonly env?: NodeJS.ProcessEnv;
}

/** Children still running, with the folder to remove when we exit ('' to keep it). */
const running = new Map<ChildProcess, string>();
let exitHookInstalled = false;

const installExitHook = (): void => {
  if (exitHookInstalled) return;
  exitHookInstalled = true;
  // 'exit' handlers must be synchronous: a plain SIGKILL is all we can do here.
  process.on('exit', () => {
    for (const [child, dir] of running) {
      try {
        child.kill('SIGKILL');
        if (dir) rmSync(dir, { recursive: true, force: true });
      } catch {
        // already gone; removing the folder is best effort
      }
    }
  });
};

// The watchdog exits on its own as soon as the child is gone, so it only ever signals our own child.
const WATCHDOG = `
parent="$1"; child="$2"; dir="$3"
while kill -0 "$parent" 2>/dev/null; do
  kill -0 "$child" 2>/dev/null || exit 0
  sleep 1
done
kill -TERM "$child" 2>/dev/null
for _ in 1 2 3 4 5 6 7 8 9 10; do kill -0 "$child" 2>/dev/null || break; sleep 0.5; done
kill -KILL "$child" 2>/dev/null
[ -n "$dir" ] && rm -rf "$dir"
exit 0
`;

const startWatchdog = (childPid: number, dir: string): void => {
  const watchdog = spawn(
    'bash',
    ['-c', WATCHDOG, 'argus-watchdog', String(process.pid), String(childPid), dir],
    {
      detached: true,
      stdio: 'ignore',
    },
  );
  watchdog.unref();
};

export const spawnService = (options: SpawnServiceOptions): ServiceProcess => {
  installExitHook();
  const log = openSync(options.logFile, 'a');
  const child = spawn(options.command, [...options.args], {
    detached: true,
    stdio: ['ignore', log, log],
    env: options.env ?? process.env,
  });
  closeSync(log);
  if (child.pid === undefined) {
    throw new Error(
      `${options.name}: could not start '${options.command}' (is it installed? see scripts/README.md)`,
    );
  }
  const pid = child.pid;
  running.set(child, options.keepTempDir ? '' : options.tempDir);
  let alive = true;
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => {
      alive = false;
      running.delete(child);
      resolve(code);
    });
    child.once('error', () => {
      alive = false;
      running.delete(child);
      resolve(null);
    });
  });
  startWatchdog(pid, options.keepTempDir ? '' : options.tempDir);

  let stopping: Promise<void> | undefined;
  const stop = (graceMs = 5_000): Promise<void> => {
    stopping ??= (async () => {
      if (alive) {
        child.kill('SIGTERM');
        const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
        await exited;
        clearTimeout(timer);
      }
      if (!options.keepTempDir) rmSync(options.tempDir, { recursive: true, force: true });
    })();
    return stopping;
  };

  return { name: options.name, pid, logFile: options.logFile, exited, isRunning: () => alive, stop };
};

/**
 * `count` distinct TCP ports on 127.0.0.1 that were free a moment ago (the OS picks them). All are
 * held open together so the OS cannot hand out the same port twice.
 */
export const freePorts = async (count: number): Promise<number[]> => {
  const servers = Array.from({ length: count }, () => createServer());
  try {
    return await Promise.all(
      servers.map(
        (server) =>
          new Promise<number>((resolve, reject) => {
            server.once('error', reject);
            server.listen(0, '127.0.0.1', () => {
              const address = server.address();
              if (typeof address === 'object' && address !== null) resolve(address.port);
              else reject(new Error('could not read the port of a listening socket'));
            });
          }),
      ),
    );
  } finally {
    await Promise.all(servers.map((server) => new Promise<void>((resolve) => server.close(() => resolve()))));
  }
};

/** The last `lines` lines of a log file, for error messages; '' if it cannot be read. */
export const tailFile = (file: string, lines = 40): string => {
  try {
    return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n');
  } catch {
    return '';
  }
};

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/**
 * Calls `probe` until it resolves, the process exits, or the timeout passes. The error names the
 * service, says why it gave up and carries the tail of its log: the first thing one needs to see.
 */
export const waitUntilReady = async (
  service: ServiceProcess,
  probe: () => Promise<void>,
  timeoutMs: number,
): Promise<void> => {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (!service.isRunning()) {
      const code = await service.exited;
      throw new Error(
        `${service.name} exited (code ${code}) before it answered. Last lines of ${service.logFile}:\n${tailFile(service.logFile)}`,
      );
    }
    try {
      await probe();
      return;
    } catch (e) {
      lastError = e;
      await sleep(200);
    }
  }
  const why = lastError instanceof Error ? lastError.message : String(lastError);
  throw new Error(
    `${service.name} did not answer within ${timeoutMs} ms (last probe error: ${why}). Last lines of ${service.logFile}:\n${tailFile(service.logFile)}`,
  );
};
