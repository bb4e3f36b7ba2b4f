/**
 * A throwaway single-member etcd for tests (Debian's etcd-server), data in a temp folder, client and
 * peer URLs on free loopback ports. `halt()`/`resume()` take it down and bring it back on the same
 * ports with the same data, for "etcd is down" tests.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Etcd3 } from 'etcd3';
import { freePorts, spawnService, startRestartable } from './process.ts';

export interface EtcdOptions {
  /** How long to wait for etcd to answer (default 30 s). */
  readonly startTimeoutMs?: number;
  /** Keep the temp folder (data and log) after stop. Default: env ARGUS_KEEP_SERVICE_FILES=1. */
  readonly keepFiles?: boolean;
}

export interface RunningEtcd {
  readonly endpoints: string[];
  readonly logFile: string;
  /** The current etcd process (a new one after each resume). */
  readonly pid: number;
  /** Kills etcd (SIGKILL: like a crash; what it committed is on disk) and keeps its data and ports. */
  halt(): Promise<void>;
  /** Starts etcd again on the same ports with the same data; resolves once it serves a write. */
  resume(): Promise<void>;
  /** Final stop, also after halt(): ends etcd and removes the temp folder unless keepFiles. */
  stop(): Promise<void>;
}

export const startEtcd = async (options: EtcdOptions = {}): Promise<RunningEtcd> => {
  const keepFiles = options.keepFiles ?? process.env.ARGUS_KEEP_SERVICE_FILES === '1';
  const dir = mkdtempSync(join(tmpdir(), 'argus-etcd-'));
  const logFile = join(dir, 'etcd.log');
  const [clientPort, peerPort] = (await freePorts(2)) as [number, number];
  const clientUrl = `http://127.0.0.1:${clientPort}`;
  const peerUrl = `http://127.0.0.1:${peerPort}`;
  const dataDir = join(dir, 'data');
  // On a resume the data folder holds the member already: etcd then ignores the --initial-* flags
  // ("already initialized as member before") and rejoins its one-member cluster from the WAL.
  const spawnEtcd = () =>
    spawnService({
      name: 'etcd',
      command: 'etcd',
      args: [
        '--name=argus-test',
        `--data-dir=${dataDir}`,
        `--listen-client-urls=${clientUrl}`,
        `--advertise-client-urls=${clientUrl}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=argus-test=${peerUrl}`,
        '--initial-cluster-state=new',
        '--logger=zap',
        '--log-outputs=stderr',
      ],
      logFile,
      tempDir: dir,
      keepTempDir: keepFiles,
      // etcd 3.4 refuses to start on architectures other than amd64 unless told to (Node and Go agree on arm64).
      ...(process.arch === 'x64' ? {} : { env: { ...process.env, ETCD_UNSUPPORTED_ARCH: process.arch } }),
    });
  const endpoints = [clientUrl];
  const service = await startRestartable({
    spawn: spawnEtcd,
    probe: () => putAndGet(endpoints),
    startTimeoutMs: options.startTimeoutMs ?? 30_000,
    logFile,
    tempDir: dir,
    keepTempDir: keepFiles,
    haltGraceMs: 0,
  });
  return {
    endpoints,
    logFile,
    get pid() {
      return service.process.pid;
    },
    halt: () => service.halt(),
    resume: () => service.resume(),
    stop: () => service.stop(),
  };
};

/** Answers once a write is committed and readable: the member elected itself leader. */
const putAndGet = async (endpoints: string[]): Promise<void> => {
  // etcd3 1.1.2 ignores `dialTimeout`: a per-call deadline keeps a probe from hanging on a server that
  // accepts connections but does not answer yet. A local subchannel pool: closing the client closes
  // its connection, instead of leaving a stuck one in gRPC's global pool for the next probe.
  const client = new Etcd3({
    hosts: endpoints,
    defaultCallOptions: () => ({ deadline: Date.now() + 2_000 }),
    grpcOptions: { 'grpc.use_local_subchannel_pool': 1 },
  });
  try {
    const value = `ready-${process.pid}`;
    await client.put('/argus-services-probe').value(value);
    const read = await client.get('/argus-services-probe').string();
    if (read !== value)
      throw new Error(`etcd read back ${JSON.stringify(read)} instead of ${JSON.stringify(value)}`);
    await client.delete().key('/argus-services-probe');
  } finally {
    client.close();
  }
};
