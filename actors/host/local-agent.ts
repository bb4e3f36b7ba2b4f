/**
 * The SNMP agent `npm start` runs by default, so a newcomer polls something real on the first run:
 * THIS machine's figures (machine-figures.ts: CPU ticks, memory, load, interfaces, filesystems)
 * under the standard OIDs a real `snmpd` serves them at (SNMPv2-MIB system, UCD-SNMP-MIB, IF-MIB,
 * HOST-RESOURCES-MIB), over SNMPv2c on loopback, built with net-snmp's agent.
 *
 * Figures are read again when a request arrives and the last read is older than `maxAgeMs` (100 ms
 * by default): every poll sees fresh numbers, a walk of many GETNEXTs does not re-read /proc for each
 * packet, and nothing runs between polls (no timer to leak). sysUpTime is the machine's uptime, not
 * the agent's: the counters served come from the kernel and reset when the machine boots, so that is
 * the discontinuity a poller must see.
 *
 * The net-snmp glue (`listenLoopbackAgent`, the narrow types of its untyped agent API, Counter64
 * encoding) is exported too: the simulated agents of the tests (test/helpers/snmp-agents.ts) use it.
 */
import { createSocket, type Socket } from 'node:dgram';
import snmp from 'net-snmp';
import { ArgusError } from '../../runtime/errors.ts';
import {
  type FigureSource,
  type MachineFigures,
  readMachineFigures,
  systemFigureSource,
} from './machine-figures.ts';

/** The parts of net-snmp's (untyped) agent API this project uses. */
export interface SnmpMibNode {
  readonly oid: string;
  value: unknown;
  valueType: number;
}
export interface SnmpMibRequest {
  readonly instanceNode: SnmpMibNode;
  done(): void;
}
export interface SnmpColumn {
  readonly number: number;
  readonly name: string;
  readonly type: number;
  readonly maxAccess: number;
}
/** A scalar (`scalarType`) or a table (`tableColumns` + `tableIndex`) provider of net-snmp's Mib. */
export interface SnmpProvider {
  readonly name: string;
  readonly type: number;
  readonly oid: string;
  readonly maxAccess: number;
  readonly scalarType?: number;
  readonly tableColumns?: readonly SnmpColumn[];
  readonly tableIndex?: readonly { readonly columnName: string }[];
  readonly handler?: (req: SnmpMibRequest) => void;
}
export interface SnmpMib {
  registerProvider(provider: SnmpProvider): void;
  setScalarValue(name: string, value: unknown): void;
  addTableRow(name: string, row: readonly unknown[]): void;
  deleteTableRow(name: string, rowIndex: readonly unknown[]): void;
}
export interface SnmpAuthorizer {
  addCommunity(community: string): void;
  addUser(user: snmp.User): void;
}
interface SnmpAgent {
  getMib(): SnmpMib;
  getAuthorizer(): SnmpAuthorizer;
  close(callback?: () => void): void;
}

export interface LoopbackAgent {
  readonly port: number;
  readonly mib: SnmpMib;
  readonly authorizer: SnmpAuthorizer;
  close(): Promise<void>;
}

export interface LoopbackAgentOptions {
  readonly host: string;
  /** 0 = a free port chosen by the OS. */
  readonly port: number;
  /** Called for each datagram before the agent sees it; false drops it unanswered. */
  readonly onMessage?: () => boolean;
  /** Errors the agent reports (bad community, failed decryption, …); ignored by default. */
  readonly onError?: (error: Error) => void;
}

/**
 * A net-snmp agent on one UDP socket. net-snmp turns port 0 into 161 (`port || 161`), so the socket is
 * made here (through the agent's `dgramModule` option) and bound to the port asked for; the same hook
 * lets `onMessage` drop datagrams (a "stopped" agent keeps its port but answers nothing).
 */
export async function listenLoopbackAgent(options: LoopbackAgentOptions): Promise<LoopbackAgent> {
  let socket: Socket | undefined;
  let settle: { resolve: () => void; reject: (e: Error) => void } | undefined;
  const bound = new Promise<void>((resolve, reject) => {
    settle = { resolve, reject };
  });
  const dgramModule = {
    createSocket(type: 'udp4' | 'udp6'): Socket {
      const s = createSocket(type);
      const bind = s.bind.bind(s);
      const on = s.on.bind(s);
      Object.assign(s, {
        bind: () => bind(options.port, options.host),
        on: (event: string, fn: (...args: unknown[]) => void) =>
          event === 'message' && options.onMessage
            ? on(event, (...args: unknown[]) => {
                if (options.onMessage!()) fn(...args);
              })
            : on(event, fn),
      });
      s.once('listening', () => settle!.resolve());
      s.once('error', (e) => settle!.reject(e));
      socket = s;
      return s;
    },
  };
  const onError = options.onError ?? (() => undefined);
  const agent: SnmpAgent = snmp.createAgent(
    { port: 161, address: options.host, transport: 'udp4', dgramModule },
    (error: Error | null) => {
      if (error) onError(error);
    },
  );
  try {
    await bound;
  } catch (e) {
    socket?.close();
    throw e;
  }
  return {
    port: socket!.address().port,
    mib: agent.getMib(),
    authorizer: agent.getAuthorizer(),
    close: () => new Promise<void>((resolve) => agent.close(() => resolve())),
  };
}

const TWO_64 = 2n ** 64n;

/** A Counter64 value as net-snmp's agent sends it: 8 big-endian bytes (mod 2^64). */
export function counter64Bytes(value: bigint | number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(((BigInt(value) % TWO_64) + TWO_64) % TWO_64);
  return b;
}

/** A Counter64 value as net-snmp's client returns it (a Buffer of 1..9 bytes). */
export function counter64Value(bytes: Buffer): bigint {
  return bytes.reduce((acc, byte) => (acc << 8n) | BigInt(byte), 0n);
}

/** Where the local agent serves each figure: providers' OIDs (scalar instances add `.0`). */
export const LOCAL_AGENT_OIDS = {
  sysDescr: '1.3.6.1.2.1.1.1',
  sysUpTime: '1.3.6.1.2.1.1.3',
  sysName: '1.3.6.1.2.1.1.5',
  ssCpuRaw: {
    user: '1.3.6.1.4.1.2021.11.50',
    nice: '1.3.6.1.4.1.2021.11.51',
    system: '1.3.6.1.4.1.2021.11.52',
    idle: '1.3.6.1.4.1.2021.11.53',
    wait: '1.3.6.1.4.1.2021.11.54',
    interrupt: '1.3.6.1.4.1.2021.11.56',
    softIrq: '1.3.6.1.4.1.2021.11.61',
    steal: '1.3.6.1.4.1.2021.11.64',
  },
  memTotalReal: '1.3.6.1.4.1.2021.4.5',
  memAvailReal: '1.3.6.1.4.1.2021.4.6',
  memBuffer: '1.3.6.1.4.1.2021.4.14',
  memCached: '1.3.6.1.4.1.2021.4.15',
  /** laIndex .1, laNames .2, laLoad .3 (DisplayString "0.15"). */
  laEntry: '1.3.6.1.4.1.2021.10.1',
  /** ifIndex .1, ifDescr .2, ifInDiscards .13, ifInErrors .14, ifOutDiscards .19, ifOutErrors .20. */
  ifEntry: '1.3.6.1.2.1.2.2.1',
  /** ifName .1, ifHCInOctets .6, ifHCOutOctets .10 (Counter64), indexed by ifIndex. */
  ifXEntry: '1.3.6.1.2.1.31.1.1.1',
  /** hrStorageIndex .1, Type .2, Descr .3 (mount point), AllocationUnits .4, Size .5, Used .6. */
  hrStorageEntry: '1.3.6.1.2.1.25.2.3.1',
} as const;

/** hrStorageFixedDisk: the type of every filesystem row. */
const HR_STORAGE_FIXED_DISK = '1.3.6.1.2.1.25.2.1.4';
const T = snmp.ObjectType;
const RO = snmp.MaxAccess['read-only'];
const INT32_MAX = 2 ** 31 - 1;
const u32 = (n: number): number => ((Math.floor(n) % 2 ** 32) + 2 ** 32) % 2 ** 32;
const int32 = (n: number): number => Math.min(INT32_MAX, Math.max(0, Math.floor(n)));

const column = (number: number, name: string, type: number, maxAccess: number = RO): SnmpColumn => ({
  number,
  name,
  type,
  maxAccess,
});

interface TableDef {
  readonly oid: string;
  readonly columns: readonly SnmpColumn[];
}

/** ifXTable has no index column of its own (it AUGMENTS ifEntry): a not-accessible column 0 holds it. */
const TABLES = {
  laTable: {
    oid: LOCAL_AGENT_OIDS.laEntry,
    columns: [
      column(1, 'laIndex', T.Integer),
      column(2, 'laNames', T.OctetString),
      column(3, 'laLoad', T.OctetString),
    ],
  },
  ifTable: {
    oid: LOCAL_AGENT_OIDS.ifEntry,
    columns: [
      column(1, 'ifIndex', T.Integer),
      column(2, 'ifDescr', T.OctetString),
      column(13, 'ifInDiscards', T.Counter),
      column(14, 'ifInErrors', T.Counter),
      column(19, 'ifOutDiscards', T.Counter),
      column(20, 'ifOutErrors', T.Counter),
    ],
  },
  ifXTable: {
    oid: LOCAL_AGENT_OIDS.ifXEntry,
    columns: [
      column(0, 'ifXIndex', T.Integer, snmp.MaxAccess['not-accessible']),
      column(1, 'ifName', T.OctetString),
      column(6, 'ifHCInOctets', T.Counter64),
      column(10, 'ifHCOutOctets', T.Counter64),
    ],
  },
  hrStorageTable: {
    oid: LOCAL_AGENT_OIDS.hrStorageEntry,
    columns: [
      column(1, 'hrStorageIndex', T.Integer),
      column(2, 'hrStorageType', T.OID),
      column(3, 'hrStorageDescr', T.OctetString),
      column(4, 'hrStorageAllocationUnits', T.Integer),
      column(5, 'hrStorageSize', T.Integer),
      column(6, 'hrStorageUsed', T.Integer),
    ],
  },
} as const satisfies Record<string, TableDef>;

/** Numbers handed out by first sight, so a row keeps its index while the agent runs. */
class StableIndex {
  private readonly byKey = new Map<string, number>();
  of(key: string, preferred?: number): number {
    const known = this.byKey.get(key);
    if (known !== undefined) return known;
    const taken = new Set(this.byKey.values());
    const next = preferred !== undefined && !taken.has(preferred) ? preferred : Math.max(0, ...taken) + 1;
    this.byKey.set(key, next);
    return next;
  }
}

/** Replaces a table's rows (index first in each row) with `rows`; returns the indices now present. */
function replaceRows(
  mib: SnmpMib,
  table: string,
  present: number[],
  rows: readonly (readonly unknown[])[],
): number[] {
  for (const index of present) mib.deleteTableRow(table, [index]);
  for (const row of rows) mib.addTableRow(table, row);
  return rows.map((r) => r[0] as number);
}

export interface LocalAgentOptions {
  /** UDP port; 0 (default) = a free one. */
  readonly port?: number;
  readonly host: '127.0.0.1' | (string & {});
  readonly community: string;
  /** Figures older than this are read again when a request arrives (default 100 ms). */
  readonly maxAgeMs?: number;
  /** Where figures come from (default: this machine). */
  readonly source?: FigureSource;
  /** Milliseconds clock for `maxAgeMs` (default `performance.now`). */
  readonly monotonic?: () => number;
}

export interface LocalAgent {
  readonly port: number;
  readonly host: string;
  close(): Promise<void>;
}

/** Serves this machine's figures over SNMPv2c; resolves once the socket is bound. */
export async function startLocalAgent(options: LocalAgentOptions): Promise<LocalAgent> {
  const port = options.port ?? 0;
  if (!Number.isInteger(port) || port < 0 || port > 65_535)
    throw new ArgusError('ARGUS_ERR_INVALID_CONFIG', `local agent port must be 0..65535, got ${port}`, {
      field: 'port',
      value: port,
    });
  if (typeof options.community !== 'string' || options.community === '')
    throw new ArgusError('ARGUS_ERR_INVALID_CONFIG', 'local agent community must be a non-empty string', {
      field: 'community',
    });
  const source = options.source ?? systemFigureSource;
  const maxAgeMs = options.maxAgeMs ?? 100;
  const monotonic = options.monotonic ?? (() => performance.now());
  const ifIndex = new StableIndex();
  const storageIndex = new StableIndex();
  const rowsPresent: Record<keyof typeof TABLES, number[]> = {
    laTable: [],
    ifTable: [],
    ifXTable: [],
    hrStorageTable: [],
  };
  let readAt = Number.NEGATIVE_INFINITY;

  const agent = await listenLoopbackAgent({
    host: options.host,
    port,
    onMessage: () => {
      if (monotonic() - readAt >= maxAgeMs) refresh();
      return true;
    },
  });
  agent.authorizer.addCommunity(options.community);
  const mib = agent.mib;
  const first = readMachineFigures(source);

  const scalars: [string, number, (f: MachineFigures) => unknown][] = [
    [LOCAL_AGENT_OIDS.sysDescr, T.OctetString, (f) => f.descr],
    [LOCAL_AGENT_OIDS.sysUpTime, T.TimeTicks, (f) => u32(f.uptimeTicks)],
    [LOCAL_AGENT_OIDS.sysName, T.OctetString, (f) => f.name],
    [LOCAL_AGENT_OIDS.memTotalReal, T.Integer, (f) => int32(f.memory.totalKb)],
    [LOCAL_AGENT_OIDS.memAvailReal, T.Integer, (f) => int32(f.memory.availKb)],
    [LOCAL_AGENT_OIDS.memBuffer, T.Integer, (f) => f.memory.bufferKb && int32(f.memory.bufferKb)],
    [LOCAL_AGENT_OIDS.memCached, T.Integer, (f) => f.memory.cachedKb && int32(f.memory.cachedKb)],
    ...Object.entries(LOCAL_AGENT_OIDS.ssCpuRaw).map(
      ([state, oid]): [string, number, (f: MachineFigures) => unknown] => [
        oid,
        T.Counter,
        (f) => {
          const ticks = f.cpu[state as keyof MachineFigures['cpu']];
          return ticks === undefined ? undefined : u32(ticks);
        },
      ],
    ),
  ];
  // Only what this platform reports is registered: the rest answers noSuchObject.
  const served = scalars.filter(([, , read]) => read(first) !== undefined);
  for (const [oid, scalarType] of served)
    mib.registerProvider({ name: oid, type: snmp.MibProviderType.Scalar, oid, scalarType, maxAccess: RO });
  for (const [name, t] of Object.entries(TABLES))
    mib.registerProvider({
      name,
      type: snmp.MibProviderType.Table,
      oid: t.oid,
      maxAccess: snmp.MaxAccess['not-accessible'],
      tableColumns: t.columns,
      tableIndex: [{ columnName: t.columns[0].name }],
    });

  const setRows = (table: keyof typeof TABLES, rows: readonly (readonly unknown[])[]) => {
    rowsPresent[table] = replaceRows(mib, table, rowsPresent[table], rows);
  };
  function apply(f: MachineFigures): void {
    for (const [oid, , read] of served) {
      const v = read(f);
      if (v !== undefined) mib.setScalarValue(oid, v);
    }
    setRows(
      'laTable',
      f.load.map((l, i) => [i + 1, `Load-${[1, 5, 15][i]}`, l.toFixed(2)]),
    );
    const ifs = f.interfaces.map((i) => {
      const kernelIndex = Number(source.readFile(`/sys/class/net/${i.name}/ifindex`)?.trim());
      return { ...i, index: ifIndex.of(i.name, Number.isInteger(kernelIndex) ? kernelIndex : undefined) };
    });
    setRows(
      'ifTable',
      ifs.map((i) => [i.index, i.name, u32(i.rxDrops), u32(i.rxErrors), u32(i.txDrops), u32(i.txErrors)]),
    );
    setRows(
      'ifXTable',
      ifs.map((i) => [i.index, i.name, counter64Bytes(i.rxBytes), counter64Bytes(i.txBytes)]),
    );
    setRows(
      'hrStorageTable',
      f.storage.map((s) => [
        storageIndex.of(s.mountPoint),
        HR_STORAGE_FIXED_DISK,
        s.mountPoint,
        int32(s.allocationUnits),
        int32(s.size),
        int32(s.used),
      ]),
    );
  }

  function refresh(): void {
    readAt = monotonic();
    try {
      apply(readMachineFigures(source));
    } catch {
      // A figure that cannot be served (an odd value from the platform): the last good ones stay.
    }
  }

  try {
    apply(first);
  } catch (e) {
    await agent.close();
    throw e;
  }
  readAt = monotonic();
  return {
    port: agent.port,
    host: options.host,
    close: () => agent.close(),
  };
}
