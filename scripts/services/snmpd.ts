/**
 * A throwaway Net-SNMP agent for tests (Debian's `snmpd`): an independent SNMP implementation to check
 * the poller against, serving the real MIBs of this machine (UCD CPU ticks and memory, IF-MIB,
 * HOST-RESOURCES) on a free loopback UDP port, from a temp folder, never outliving us.
 *
 * - `-C -c <conf>`: only our generated configuration is read, never /etc/snmp/snmpd.conf.
 * - `SNMP_PERSISTENT_DIR` points into the temp folder: snmpd writes its engine boots and the
 *   localized v3 keys there, not into /var/lib/snmp. v3 users are `createUser` lines in the main
 *   configuration, which snmpd (5.9) accepts and turns into `usmUser` lines of the persistent file.
 * - The endpoint is `agentaddress` in the configuration and NOT repeated on the command line: given
 *   both, snmpd opens the same socket twice and exits with "Error opening specified endpoint".
 * - `-m ''` loads no MIB files (everything is numeric, and the Debian package ships only a few of
 *   them: loading them prints hundreds of warnings). `-I -smux` leaves out SMUX, which would try to
 *   bind TCP port 199 (taken by any other snmpd on the machine).
 * - The UDP port is one the OS just handed out; if snmpd still cannot open it (a race with another
 *   process), a new port is tried.
 *
 * `toolEnv` is the environment to run Net-SNMP's command line tools (snmpget, snmpbulkwalk) with:
 * their own persistent folder inside the temp folder, so they never touch the user's ~/.snmp.
 */
import { createSocket } from 'node:dgram';
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import snmp from 'net-snmp';
import { spawnService, tailFile, waitUntilReady } from './process.ts';

export type SnmpdAuthProtocol = 'MD5' | 'SHA' | 'SHA-224' | 'SHA-256' | 'SHA-384' | 'SHA-512';

export interface SnmpdV3User {
  readonly user: string;
  readonly authProtocol: SnmpdAuthProtocol;
  /** At least 8 characters (RFC 3414; snmpd ignores shorter passphrases). */
  readonly authKey: string;
  readonly privProtocol?: 'AES' | 'DES';
  readonly privKey?: string;
}

export interface SnmpdOptions {
  /** Read-only community, restricted to 127.0.0.1 (default 'public'). */
  readonly community?: string;
  /** v3 users, read-only on the whole tree at their security level (authPriv when privProtocol is set). */
  readonly v3Users?: readonly SnmpdV3User[];
  /** How long to wait for snmpd to answer (default 15 s). */
  readonly startTimeoutMs?: number;
  /** Keep the temp folder after stop. Default: env ARGUS_KEEP_SERVICE_FILES=1. */
  readonly keepFiles?: boolean;
}

export interface RunningSnmpd {
  readonly address: '127.0.0.1';
  readonly port: number;
  readonly pid: number;
  readonly community: string;
  readonly logFile: string;
  /** SNMP_PERSISTENT_DIR of the agent. */
  readonly persistentDir: string;
  /** Environment for snmpget/snmpbulkwalk: a persistent folder of their own in the temp folder. */
  readonly toolEnv: NodeJS.ProcessEnv;
  /** Ends snmpd and removes the temp folder (unless kept). Idempotent. */
  stop(): Promise<void>;
}

const OPEN_FAILURE = /Error opening specified endpoint/;

/** A UDP port on 127.0.0.1 that was free a moment ago. */
const freeUdpPort = (): Promise<number> =>
  new Promise((resolve, reject) => {
    const socket = createSocket('udp4');
    socket.once('error', reject);
    socket.bind(0, '127.0.0.1', () => {
      const { port } = socket.address();
      socket.close(() => resolve(port));
    });
  });

const configuration = (port: number, community: string, users: readonly SnmpdV3User[]): string =>
  [
    `agentaddress udp:127.0.0.1:${port}`,
    'view all included .1',
    `rocommunity ${community} 127.0.0.1 -V all`,
    ...users.flatMap((u) => {
      if ((u.privProtocol === undefined) !== (u.privKey === undefined))
        throw new Error(`snmpd: v3 user '${u.user}' needs both privProtocol and privKey, or neither`);
      const priv = u.privProtocol !== undefined ? ` ${u.privProtocol} ${u.privKey}` : '';
      return [
        `createUser ${u.user} ${u.authProtocol} ${u.authKey}${priv}`,
        `rouser ${u.user} ${u.privProtocol !== undefined ? 'priv' : 'auth'} -V all`,
      ];
    }),
    'dontLogTCPWrappersConnects yes',
    '',
  ].join('\n');

/** Resolves once a v2c GET of sysUpTime.0 answers. */
const getSysUpTime = (port: number, community: string): Promise<void> =>
  new Promise((resolve, reject) => {
    const session = snmp.createSession('127.0.0.1', community, {
      port,
      version: snmp.Version2c,
      timeout: 500,
      retries: 0,
    });
    session.on('error', () => undefined);
    session.get(['1.3.6.1.2.1.1.3.0'], (error, varbinds) => {
      session.close();
      if (error) reject(error);
      else if (!varbinds?.[0] || snmp.isVarbindError(varbinds[0]))
        reject(new Error('sysUpTime.0 not answered'));
      else resolve();
    });
  });

export const startSnmpd = async (options: SnmpdOptions = {}): Promise<RunningSnmpd> => {
  const keepFiles = options.keepFiles ?? process.env.ARGUS_KEEP_SERVICE_FILES === '1';
  const community = options.community ?? 'public';
  const dir = mkdtempSync(join(tmpdir(), 'argus-snmpd-'));
  const persistentDir = join(dir, 'persist');
  const toolsDir = join(dir, 'tools');
  mkdirSync(persistentDir);
  mkdirSync(toolsDir);
  const logFile = join(dir, 'snmpd.log');
  const confFile = join(dir, 'snmpd.conf');
  const timeoutMs = options.startTimeoutMs ?? 15_000;
  const deadline = Date.now() + timeoutMs;
  for (let attempt = 1; ; attempt++) {
    const port = await freeUdpPort();
    writeFileSync(confFile, configuration(port, community, options.v3Users ?? []));
    const service = spawnService({
      name: 'snmpd',
      command: '/usr/sbin/snmpd',
      // -f: foreground (a child we can signal); -Lf: snmpd's own log into the file stdout/stderr go to.
      args: ['-f', '-C', '-c', confFile, '-m', '', '-I', '-smux', '-Lf', logFile],
      logFile,
      tempDir: dir,
      keepTempDir: keepFiles,
      env: { ...process.env, SNMP_PERSISTENT_DIR: persistentDir },
    });
    try {
      await waitUntilReady(service, () => getSysUpTime(port, community), Math.max(0, deadline - Date.now()));
    } catch (e) {
      await service.kill(1_000);
      if (attempt < 5 && OPEN_FAILURE.test(tailFile(logFile, 5)) && Date.now() < deadline) continue;
      await service.stop();
      throw e;
    }
    return {
      address: '127.0.0.1',
      port,
      pid: service.pid,
      community,
      logFile,
      persistentDir,
      toolEnv: { ...process.env, SNMP_PERSISTENT_DIR: toolsDir, MIBS: '' },
      stop: () => service.stop(),
    };
  }
};
