import { type ChildProcess, spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { api, READ_TOKEN, testAuth } from './api.ts';
import { waitFor } from './wait.ts';

const root = fileURLToPath(new URL('../..', import.meta.url));

/** A TypeScript script run as a child process (node --import tsx), with its stdout lines collected. */
export class ChildNode {
  readonly lines: string[] = [];
  readonly proc: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  private stderr = '';

  constructor(script: string, args: string[] = [], env: Record<string, string> = {}) {
    this.proc = spawn(process.execPath, ['--import', 'tsx', script, ...args], {
      cwd: root,
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let buf = '';
    this.proc.stdout!.on('data', (d: Buffer) => {
      buf += d.toString();
      let i = buf.indexOf('\n');
      while (i >= 0) {
        this.lines.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
        i = buf.indexOf('\n');
      }
    });
    this.proc.stderr!.on('data', (d: Buffer) => {
      this.stderr = (this.stderr + d.toString()).slice(-8000);
    });
    this.exited = new Promise((resolve) => this.proc.on('exit', (code, signal) => resolve({ code, signal })));
  }

  /** The last 8 KB of stderr, for failure messages. */
  get errors(): string {
    return this.stderr;
  }

  last(prefix: string): string | undefined {
    for (let i = this.lines.length - 1; i >= 0; i--)
      if (this.lines[i]!.startsWith(prefix)) return this.lines[i];
    return undefined;
  }

  async waitLine(prefix: string, timeoutMs: number): Promise<string> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const l = this.last(prefix);
      if (l !== undefined) return l;
      if (this.proc.exitCode !== null)
        throw new Error(`child exited (${this.proc.exitCode}) before '${prefix}': ${this.errors}`);
      if (Date.now() > deadline)
        throw new Error(`timed out waiting for '${prefix}' from child: ${this.errors}`);
      await new Promise((r) => setTimeout(r, 10));
    }
  }

  kill9(): Promise<unknown> {
    this.proc.kill('SIGKILL');
    return this.exited;
  }
}

/**
 * `npm start`'s node (runtime/main.ts) as a child process, with `env` (ARGUS_CONFIG, ARGUS_DATA_DIR …)
 * and a free HTTP port; resolves with its first line and URL once it listens. `track` gets the node so
 * the caller can make sure it is gone at the end.
 */
export const startMainNode = async (
  env: Record<string, string>,
  track?: (node: ChildNode) => void,
): Promise<{ node: ChildNode; url: string; line: string }> => {
  const node = new ChildNode('runtime/main.ts', [], { ARGUS_PORT: '0', ...env });
  track?.(node);
  const line = await node.waitLine('argus ', 60_000);
  const url = /listening on (http:\/\/[0-9.:]+)/.exec(line)?.[1];
  if (!url) throw new Error(`no URL in '${line}'`);
  return { node, url, line };
};

/** Kills the node unless it has exited already. */
export const killIfRunning = async (node: ChildNode): Promise<void> => {
  if (node.proc.exitCode === null && node.proc.signalCode === null) await node.kill9();
};

/** A cluster node as the multi-process tests run it: its id, process and HTTP URL. */
export interface MainNode {
  readonly id: string;
  readonly child: ChildNode;
  readonly url: string;
}

/**
 * `runtime/main.ts` as one node of a test cluster: Kafka mailboxes under `prefix`, etcd placement with
 * fast failover (lease 2 s), host metrics from the etcd inventory, the test tokens (`testAuth()`: send
 * `READ_TOKEN` or `ADMIN_TOKEN` of ./api.ts), plus `extra` config; its config file
 * goes in `dir`, and `track` gets the node so the test can make sure it is gone at the end.
 */
export const startClusterNode = async (
  options: {
    readonly id: string;
    readonly prefix: string;
    readonly shards: number;
    readonly dir: string;
    readonly brokers: readonly string[];
    readonly etcd: readonly string[];
    readonly extra?: Readonly<Record<string, unknown>>;
  },
  track: (node: ChildNode) => void,
): Promise<MainNode> => {
  const file = join(options.dir, `${options.id}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      nodeId: options.id,
      mode: 'kafka',
      shards: options.shards,
      kafka: { brokers: options.brokers, topicPrefix: options.prefix },
      cluster: { etcd: { endpoints: options.etcd }, leaseTtlS: 2, fenceMarginMs: 500, settleMs: 100 },
      hosts: { inventory: { config: true }, cycleMs: 500 },
      auth: testAuth(),
      ...options.extra,
    }),
  );
  const { node: child, url } = await startMainNode({ ARGUS_CONFIG: file }, track);
  return { id: options.id, child, url };
};

/** The shards of `kind` a node runs now (its `/cluster` answer). */
export const runningShards = async (node: MainNode, kind: string): Promise<number[]> =>
  (
    await api<{ running: { kind: string; partition: number }[] }>(node.url, '/cluster', { token: READ_TOKEN })
  ).body.running
    .filter((r) => r.kind === kind)
    .map((r) => r.partition);

/** Waits until every node runs some of the `shards` shards of `kind` and together they run all. */
export const waitForSplit = (nodes: readonly MainNode[], kind: string, shards: number, timeoutMs = 40_000) =>
  waitFor(
    `the ${nodes.length} nodes to split the ${kind} shards`,
    async () => {
      const held = await Promise.all(nodes.map((n) => runningShards(n, kind)));
      return held.every((h) => h.length > 0) && held.reduce((n, h) => n + h.length, 0) === shards;
    },
    timeoutMs,
    200,
  );
