/**
 * Simulated SNMP agents for tests and benchmarks: many small net-snmp agents, each on its own loopback
 * UDP port, serving scripted values that a test can predict exactly — constants, counters that advance
 * at a rate per second of (injected or real) time, a Counter32 about to wrap, Counter64 values past
 * 2^32, a counter that resets to 0 at a chosen moment, and tables with OctetString tag columns.
 *
 * Values are computed when a request arrives (a MIB handler per agent), from the value's script and
 * the time since the script was set, so a test that injects `now` knows every answer to the unit.
 * Access: SNMPv2c communities and SNMPv3 users (net-snmp's authorizer/USM does the crypto).
 * `stop(id)` keeps the port but drops every datagram (requests time out); `resume(id)` answers again.
 *
 * Specs are plain JSON, so the same agents can run in a child process (`startAgentProcess`, driving
 * test/fixtures/snmp-agents-process.ts over stdin/stdout) when a benchmark wants them on another
 * core; both variants have the same control API.
 */
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import snmp from 'net-snmp';
import {
  counter64Bytes,
  type LoopbackAgent,
  listenLoopbackAgent,
  LOCAL_AGENT_OIDS as O,
  type SnmpMibRequest,
} from '../../actors/host/local-agent.ts';
import type { SnmpSettings } from '../../actors/host/types.ts';

/** A scripted value. Counters (and TimeTicks) advance by `perSecond` from `start`, wrapping at 2^32/2^64. */
export type SimValue =
  | { readonly type: 'Integer' | 'Gauge32'; readonly value: number }
  | { readonly type: 'OctetString'; readonly value: string }
  | {
      readonly type: 'Counter32' | 'Counter64' | 'TimeTicks';
      /** Value when the script was set; a decimal string for Counter64 values past 2^53. */
      readonly start: number | string;
      readonly perSecond?: number;
      /** Ms after the script was set when the counter drops to 0 and counts on from there. */
      readonly resetAfterMs?: number;
    };

export interface SimTable {
  /** The table's entry OID (`1.3.6.1.2.1.31.1.1.1`); cells are `<oid>.<column>.<index>`. */
  readonly oid: string;
  /** Each row: its index and its cells by column number; every row has the same columns and types. */
  readonly rows: readonly { readonly index: number; readonly cells: Readonly<Record<number, SimValue>> }[];
}

export type SimUser = Pick<
  Extract<SnmpSettings, { version: '3' }>,
  'user' | 'level' | 'authProtocol' | 'authKey' | 'privProtocol' | 'privKey'
>;

export interface AgentSpec {
  readonly id: string;
  /** SNMPv2c communities (default `['public']`). */
  readonly communities?: readonly string[];
  readonly users?: readonly SimUser[];
  /** Scalars by instance OID (ending in `.0`). */
  readonly scalars?: Readonly<Record<string, SimValue>>;
  readonly tables?: readonly SimTable[];
}

export interface SimulatedAgentsOptions {
  /** Wall-clock ms that counters advance by (default `Date.now`). */
  readonly now?: () => number;
  /** Errors an agent reports (wrong community, failed authentication, …). */
  readonly onError?: (id: string, error: Error) => void;
}

export interface SimulatedAgents {
  readonly agents: readonly { readonly id: string; readonly port: number; readonly address: '127.0.0.1' }[];
  /** Replaces the script of an OID the agent serves (a counter restarts its timeline now). */
  set(id: string, oid: string, value: SimValue): Promise<void>;
  /** The agent keeps its port but answers nothing. */
  stop(id: string): Promise<void>;
  resume(id: string): Promise<void>;
  close(): Promise<void>;
}

const TYPE_CODES: Record<SimValue['type'], number> = {
  Integer: snmp.ObjectType.Integer,
  Gauge32: snmp.ObjectType.Gauge,
  OctetString: snmp.ObjectType.OctetString,
  Counter32: snmp.ObjectType.Counter,
  Counter64: snmp.ObjectType.Counter64,
  TimeTicks: snmp.ObjectType.TimeTicks,
};

/** The value of a script at `now`, as the agent's MIB holds it. */
export function simValueAt(v: SimValue, since: number, now: number): number | string | Buffer {
  switch (v.type) {
    case 'Integer':
    case 'Gauge32':
    case 'OctetString':
      return v.value;
    case 'Counter32':
    case 'Counter64':
    case 'TimeTicks': {
      const elapsed = Math.max(0, now - since);
      const reset = v.resetAfterMs !== undefined && elapsed >= v.resetAfterMs;
      const base = reset ? 0n : BigInt(v.start);
      const ms = reset ? elapsed - v.resetAfterMs! : elapsed;
      const n = base + BigInt(Math.floor(((v.perSecond ?? 0) * ms) / 1000));
      return v.type === 'Counter64' ? counter64Bytes(n) : Number(n % 2n ** 32n);
    }
    default: {
      const never: never = v;
      throw new Error(`unknown value type ${JSON.stringify(never)}`);
    }
  }
}

/** A Counter32 that wraps `secondsToWrap` after it is set, at `perSecond`. */
export const wrappingCounter32 = (perSecond: number, secondsToWrap: number): SimValue => ({
  type: 'Counter32',
  start: 2 ** 32 - Math.round(perSecond * secondsToWrap),
  perSecond,
});

/** A plausible Linux host (the objects the local agent serves), for benchmarks and poller tests. */
export function hostAgentSpec(
  id: string,
  opts: { interfaces?: number; disks?: number } & Pick<AgentSpec, 'communities' | 'users'> = {},
): AgentSpec {
  const int = (value: number): SimValue => ({ type: 'Integer', value });
  const str = (value: string): SimValue => ({ type: 'OctetString', value });
  const c32 = (start: number, perSecond = 0): SimValue => ({ type: 'Counter32', start, perSecond });
  const cpuRates = { user: 30, nice: 0, system: 10, idle: 150, wait: 4, interrupt: 0, softIrq: 6, steal: 0 };
  const ifs = Array.from({ length: opts.interfaces ?? 2 }, (_, i) => ({ index: i + 1, name: `eth${i}` }));
  const disks = Array.from({ length: opts.disks ?? 2 }, (_, i) => (i === 0 ? '/' : `/data${i}`));
  return {
    id,
    ...(opts.communities ? { communities: opts.communities } : {}),
    ...(opts.users ? { users: opts.users } : {}),
    scalars: {
      [`${O.sysDescr}.0`]: str(`Linux ${id} 6.1.0-sim x86_64`),
      [`${O.sysUpTime}.0`]: { type: 'TimeTicks', start: 360_000, perSecond: 100 },
      [`${O.sysName}.0`]: str(id),
      ...Object.fromEntries(
        Object.entries(cpuRates).map(([state, rate]) => [
          `${O.ssCpuRaw[state as keyof typeof cpuRates]}.0`,
          c32(1_000_000, rate),
        ]),
      ),
      [`${O.memTotalReal}.0`]: int(8_388_608),
      [`${O.memAvailReal}.0`]: int(4_194_304),
      [`${O.memBuffer}.0`]: int(102_400),
      [`${O.memCached}.0`]: int(1_048_576),
    },
    tables: [
      {
        oid: O.laEntry,
        rows: ['0.15', '0.10', '0.05'].map((load, i) => ({
          index: i + 1,
          cells: { 1: int(i + 1), 2: str(`Load-${[1, 5, 15][i]}`), 3: str(load) },
        })),
      },
      {
        oid: O.ifEntry,
        rows: ifs.map((f) => ({
          index: f.index,
          cells: { 1: int(f.index), 2: str(f.name), 13: c32(0), 14: c32(0), 19: c32(0), 20: c32(0) },
        })),
      },
      {
        oid: O.ifXEntry,
        rows: ifs.map((f) => ({
          index: f.index,
          cells: {
            1: str(f.name),
            6: { type: 'Counter64', start: 5_000_000_000_000, perSecond: 125_000 },
            10: { type: 'Counter64', start: 7_000_000_000_000, perSecond: 62_500 },
          },
        })),
      },
      {
        oid: O.hrStorageEntry,
        rows: disks.map((mount, i) => ({
          index: 31 + i,
          cells: { 1: int(31 + i), 3: str(mount), 4: int(4096), 5: int(2_621_440), 6: int(1_310_720) },
        })),
      },
    ],
  };
}

const v3User = (u: SimUser): snmp.User => ({
  name: u.user,
  level: snmp.SecurityLevel[u.level],
  ...(u.authProtocol ? { authProtocol: snmp.AuthProtocols[u.authProtocol], authKey: u.authKey } : {}),
  ...(u.privProtocol ? { privProtocol: snmp.PrivProtocols[u.privProtocol], privKey: u.privKey } : {}),
});

interface Script {
  value: SimValue;
  since: number;
}

/** One agent: its MIB built from the spec, a handler that computes values at request time. */
async function startAgent(spec: AgentSpec, options: SimulatedAgentsOptions) {
  const now = options.now ?? Date.now;
  const scripts = new Map<string, Script>();
  let answering = true;
  const agent: LoopbackAgent = await listenLoopbackAgent({
    host: '127.0.0.1',
    port: 0,
    onMessage: () => answering,
    onError: (e) => options.onError?.(spec.id, e),
  });
  const handler = (req: SnmpMibRequest) => {
    const script = scripts.get(req.instanceNode.oid);
    if (script) {
      req.instanceNode.valueType = TYPE_CODES[script.value.type];
      req.instanceNode.value = simValueAt(script.value, script.since, now());
    }
    req.done();
  };
  try {
    for (const c of spec.communities ?? ['public']) agent.authorizer.addCommunity(c);
    for (const u of spec.users ?? []) agent.authorizer.addUser(v3User(u));
    const t0 = now();
    for (const [oid, value] of Object.entries(spec.scalars ?? {})) {
      if (!oid.endsWith('.0')) throw new Error(`agent ${spec.id}: scalar OID ${oid} must end in .0`);
      const name = oid.slice(0, -2);
      agent.mib.registerProvider({
        name,
        type: snmp.MibProviderType.Scalar,
        oid: name,
        scalarType: TYPE_CODES[value.type],
        maxAccess: snmp.MaxAccess['read-only'],
        handler,
      });
      agent.mib.setScalarValue(name, simValueAt(value, t0, t0));
      scripts.set(oid, { value, since: t0 });
    }
    for (const table of spec.tables ?? []) {
      const first = table.rows[0];
      if (!first) continue;
      const columns = Object.entries(first.cells).map(([n, v]) => ({ number: Number(n), type: v.type }));
      // The index lives in a not-accessible column 0: it is part of each cell's OID, not a cell.
      agent.mib.registerProvider({
        name: table.oid,
        type: snmp.MibProviderType.Table,
        oid: table.oid,
        maxAccess: snmp.MaxAccess['not-accessible'],
        tableColumns: [
          {
            number: 0,
            name: 'index',
            type: snmp.ObjectType.Integer,
            maxAccess: snmp.MaxAccess['not-accessible'],
          },
          ...columns.map((c) => ({
            number: c.number,
            name: `c${c.number}`,
            type: TYPE_CODES[c.type],
            maxAccess: snmp.MaxAccess['read-only'],
          })),
        ],
        tableIndex: [{ columnName: 'index' }],
        handler,
      });
      for (const row of table.rows) {
        const cells = columns.map((c) => {
          const v = row.cells[c.number];
          if (v?.type !== c.type)
            throw new Error(
              `agent ${spec.id}: table ${table.oid} row ${row.index} column ${c.number} must be ${c.type}`,
            );
          scripts.set(`${table.oid}.${c.number}.${row.index}`, { value: v, since: t0 });
          return simValueAt(v, t0, t0);
        });
        agent.mib.addTableRow(table.oid, [row.index, ...cells]);
      }
    }
  } catch (e) {
    await agent.close();
    throw e;
  }
  return {
    id: spec.id,
    port: agent.port,
    set(oid: string, value: SimValue) {
      if (!scripts.has(oid)) throw new Error(`agent ${spec.id} serves no OID ${oid}`);
      scripts.set(oid, { value, since: now() });
    },
    setAnswering(on: boolean) {
      answering = on;
    },
    close: () => agent.close(),
  };
}

/** Starts every agent of `specs` in this process; resolves when all listen. */
export async function startSimulatedAgents(
  specs: readonly AgentSpec[],
  options: SimulatedAgentsOptions = {},
): Promise<SimulatedAgents> {
  const ids = new Set(specs.map((s) => s.id));
  if (ids.size !== specs.length) throw new Error('agent ids must be unique');
  const settled = await Promise.allSettled(specs.map((s) => startAgent(s, options)));
  const started = settled.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failed) {
    await Promise.all(started.map((a) => a.close()));
    throw failed.reason;
  }
  const byId = new Map(started.map((a) => [a.id, a]));
  const get = (id: string) => {
    const a = byId.get(id);
    if (!a) throw new Error(`no simulated agent '${id}'`);
    return a;
  };
  return {
    agents: started.map((a) => ({ id: a.id, port: a.port, address: '127.0.0.1' as const })),
    set: async (id, oid, value) => get(id).set(oid, value),
    stop: async (id) => get(id).setAnswering(false),
    resume: async (id) => get(id).setAnswering(true),
    close: async () => {
      await Promise.all(started.map((a) => a.close()));
    },
  };
}

/** A line the control process reads after the specs line; answered by `{ seq, ok }` or `{ seq, error }`. */
export type AgentCommand = { readonly seq: number } & AgentCommandBody;
export type AgentCommandBody =
  | { readonly op: 'set'; readonly id: string; readonly oid: string; readonly value: SimValue }
  | { readonly op: 'stop' | 'resume'; readonly id: string };

export interface AgentProcess extends SimulatedAgents {
  readonly pid: number;
  /** Exit code once the process has ended (it ends when its stdin closes). */
  readonly exited: Promise<number | null>;
}

const fixture = fileURLToPath(new URL('../fixtures/snmp-agents-process.ts', import.meta.url));
const root = fileURLToPath(new URL('../..', import.meta.url));

/** Starts the agents in a child process (another core); its stdin carries specs then commands. */
export async function startAgentProcess(
  specs: readonly AgentSpec[],
  options: {
    readonly startTimeoutMs?: number;
    /** Extra node flags, e.g. `--openssl-legacy-provider`: OpenSSL 3 has DES (SNMPv3 `des`) only there. */
    readonly execArgv?: readonly string[];
  } = {},
): Promise<AgentProcess> {
  const child = spawn(process.execPath, [...(options.execArgv ?? []), '--import', 'tsx', fixture], {
    cwd: root,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  let stderr = '';
  child.stderr.on('data', (d: Buffer) => {
    stderr = (stderr + d.toString()).slice(-4000);
  });
  const exited = new Promise<number | null>((resolve) => {
    child.once('exit', (code) => resolve(code));
    child.once('error', () => resolve(null)); // could not be spawned
  });
  const pending = new Map<number, { resolve: () => void; reject: (e: Error) => void }>();
  let ready: (agents: SimulatedAgents['agents']) => void = () => undefined;
  let failed: (e: Error) => void = () => undefined;
  const started = new Promise<SimulatedAgents['agents']>((resolve, reject) => {
    ready = resolve;
    failed = reject;
  });
  createInterface({ input: child.stdout }).on('line', (line) => {
    let msg: { agents?: SimulatedAgents['agents']; seq?: number; error?: string };
    try {
      msg = JSON.parse(line);
    } catch {
      return; // not ours (a stray print): the protocol is JSON lines only
    }
    if (msg.agents) ready(msg.agents);
    else if (msg.seq !== undefined) {
      const p = pending.get(msg.seq);
      pending.delete(msg.seq);
      if (msg.error !== undefined) p?.reject(new Error(msg.error));
      else p?.resolve();
    }
  });
  void exited.then((code) => {
    const e = new Error(`agent process exited (${code}): ${stderr}`);
    failed(e);
    for (const p of pending.values()) p.reject(e);
    pending.clear();
  });
  child.stdin.write(`${JSON.stringify(specs)}\n`);
  const timeoutMs = options.startTimeoutMs ?? 30_000;
  let timer: NodeJS.Timeout | undefined;
  const agents = await Promise.race([
    started,
    new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`agent process not ready in ${timeoutMs} ms: ${stderr}`)),
        timeoutMs,
      );
    }),
  ]).catch((e: unknown) => {
    child.kill('SIGKILL');
    throw e;
  });
  clearTimeout(timer);
  let seq = 0;
  const send = (cmd: AgentCommandBody) =>
    new Promise<void>((resolve, reject) => {
      const n = ++seq;
      pending.set(n, { resolve, reject });
      child.stdin.write(`${JSON.stringify({ ...cmd, seq: n })}\n`);
    });
  return {
    agents,
    pid: child.pid!,
    exited,
    set: (id, oid, value) => send({ op: 'set', id, oid, value }),
    stop: (id) => send({ op: 'stop', id }),
    resume: (id) => send({ op: 'resume', id }),
    close: async () => {
      child.stdin.end();
      const killer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      await exited;
      clearTimeout(killer);
    },
  };
}
