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
 *
 * `startRestartable` adds halt/resume on top (fault tests: "etcd is down", "Kafka is down"): the
 * process ends, its folder and ports stay, and a new process starts later on the same ones. While a
 * service is halted no child exists, so the folder is covered by the exit hook and by a folder-only
 * watchdog instead.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';

export interface ServiceProcess {
  readonly name: string;
  readonly pid: number;
  /** Where the server's stdout/stderr (and for Kafka, log4j) go. */
  readonly logFile: string;
  /** Resolves with the exit code once the process ended (null when killed by a signal). */
  readonly exited: Promise<number | null>;
  isRunning(): boolean;
  /**
   * Ends the process and KEEPS the temp folder: SIGTERM, SIGKILL after `graceMs` (0: SIGKILL at once).
   * Resolves once it exited.
   */
  kill(graceMs?: number): Promise<void>;
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
/** Folders of halted services (no child right now), removed when we exit. */
const haltedDirs = new Set<string>();
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
    for (const dir of haltedDirs) rmSync(dir, { recursive: true, force: true });
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

  const kill = async (graceMs = 5_000): Promise<void> => {
    if (!alive) return;
    if (graceMs <= 0) {
      child.kill('SIGKILL');
      await exited;
      return;
    }
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  };

  let stopping: Promise<void> | undefined;
  const stop = (graceMs = 5_000): Promise<void> => {
    stopping ??= (async () => {
      await kill(graceMs);
      if (!options.keepTempDir) rmSync(options.tempDir, { recursive: true, force: true });
    })();
    return stopping;
  };

  return { name: options.name, pid, logFile: options.logFile, exited, isRunning: () => alive, kill, stop };
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

export interface RestartableOptions {
  /** Starts the server process: the same command, ports and folder every time. */
  readonly spawn: () => ServiceProcess;
  /** Resolves once the server answers (see waitUntilReady). */
  readonly probe: () => Promise<void>;
  /** For each start and resume. */
  readonly startTimeoutMs: number;
  /** Where `spawn` sends the output: read to tell a lost port race from other failures. */
  readonly logFile: string;
  readonly tempDir: string;
  readonly keepTempDir: boolean;
  /** halt(): grace between SIGTERM and SIGKILL; 0 sends SIGKILL at once. */
  readonly haltGraceMs: number;
}

export interface RestartableService {
  /** The current process, or the last one while halted. */
  readonly process: ServiceProcess;
  /** Ends the process, keeps the folder (and so the ports in the server's config). No-op while halted. */
  halt(): Promise<void>;
  /** Starts a new process on the same folder and ports, resolves once it answers. No-op while running. */
  resume(): Promise<void>;
  /** Final: ends the process if any and removes the folder (unless kept). Idempotent. */
  stop(): Promise<void>;
}

const BIND_FAILURE = /address already in use/i;

const readFrom = (file: string, offset: number): string => {
  try {
    return readFileSync(file).subarray(offset).toString('utf8');
  } catch {
    return '';
  }
};

const sizeOf = (file: string): number => {
  try {
    return statSync(file).size;
  } catch {
    return 0;
  }
};

/**
 * Spawns and waits until the server answers. A server that exits because its port is taken is
 * started again until the deadline: right after a halt the port may still be held for a moment (by
 * the old process' sockets, or a client that got it as its ephemeral port).
 */
const launch = async (options: RestartableOptions): Promise<ServiceProcess> => {
  const deadline = Date.now() + options.startTimeoutMs;
  for (;;) {
    const logOffset = sizeOf(options.logFile);
    const service = options.spawn();
    try {
      await waitUntilReady(service, options.probe, Math.max(0, deadline - Date.now()));
      return service;
    } catch (e) {
      await service.kill(1_000);
      const lostPortRace = BIND_FAILURE.test(readFrom(options.logFile, logOffset));
      if (!lostPortRace || Date.now() + 250 >= deadline) throw e;
      await sleep(250);
    }
  }
};

// Like WATCHDOG, for a halted service: no child to watch, only the folder. It exits once resume() or
// stop() removed the marker, and removes the folder if we die while the marker is still there.
const FOLDER_WATCHDOG = `
parent="$1"; dir="$2"; marker="$3"
while kill -0 "$parent" 2>/dev/null; do
  [ -e "$marker" ] || exit 0
  sleep 1
done
[ -e "$marker" ] && rm -rf "$dir"
exit 0
`;

/**
 * Starts a server that can be halted and resumed (same folder, same ports). On a failed first start
 * the folder is removed, as with `spawnService().stop()`; on a failed resume the service stays halted
 * and `stop()` still cleans up.
 */
export const startRestartable = async (options: RestartableOptions): Promise<RestartableService> => {
  const marker = `${options.tempDir}/.argus-halted`;
  const holdFolder = (): void => {
    if (options.keepTempDir) return;
    installExitHook();
    haltedDirs.add(options.tempDir);
    writeFileSync(marker, `${process.pid}\n`);
    spawn(
      'bash',
      ['-c', FOLDER_WATCHDOG, 'argus-folder-watchdog', String(process.pid), options.tempDir, marker],
      {
        detached: true,
        stdio: 'ignore',
      },
    ).unref();
  };
  const releaseFolder = (): void => {
    haltedDirs.delete(options.tempDir);
    rmSync(marker, { force: true });
  };

  let current: ServiceProcess;
  try {
    current = await launch(options);
  } catch (e) {
    if (!options.keepTempDir) rmSync(options.tempDir, { recursive: true, force: true });
    throw e;
  }
  let halted = false;
  let stopped = false;
  // halt, resume and stop run one after the other, in call order.
  let queue: Promise<unknown> = Promise.resolve();
  const serial = (op: () => Promise<void>): Promise<void> => {
    const next = queue.then(op);
    queue = next.catch(() => undefined);
    return next;
  };
  const notStopped = (what: string): void => {
    if (stopped) throw new Error(`${current.name}: ${what} after stop()`);
  };

  return {
    get process() {
      return current;
    },
    halt: () =>
      serial(async () => {
        notStopped('halt()');
        if (halted) return;
        halted = true;
        holdFolder();
        await current.kill(options.haltGraceMs);
      }),
    resume: () =>
      serial(async () => {
        notStopped('resume()');
        if (!halted) return;
        releaseFolder();
        try {
          current = await launch(options);
        } catch (e) {
          holdFolder();
          throw e;
        }
        halted = false;
      }),
    stop: () =>
      serial(async () => {
        if (stopped) return;
        stopped = true;
        releaseFolder();
        // Ends the process if it still runs, then removes the folder (unless kept).
        await current.stop();
      }),
  };
};
