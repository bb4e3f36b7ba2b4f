/**
 * The figures of the machine Argus runs on, read the way Net-SNMP's `snmpd` reads them, so the local
 * agent (`local-agent.ts`) a newcomer polls shows the same numbers a real `snmpd` on the same machine
 * would. Checked against Debian's snmpd 5.9.3:
 *
 * - CPU: the first `cpu` line of /proc/stat, in USER_HZ ticks summed over CPUs; ssCpuRawSystem is the
 *   `system` field alone (irq and softirq have their own objects).
 * - memory (kB, /proc/meminfo): memAvailReal is **MemFree** (not MemAvailable), memCached is
 *   Cached + SReclaimable.
 * - storage: real mounted filesystems (tmpfs included, as snmpd does), pseudo filesystems skipped,
 *   sizes scaled so they fit an Integer32 like snmpd's hrStorage does.
 *
 * Parsing is small pure functions over file contents (tested with sample files); reading is
 * `readMachineFigures(source)` with the file system and `os` injected. Where /proc is missing (not
 * Linux) the figures hold what `os` gives and leave the rest out — they never throw.
 */
import { readFileSync, statfsSync } from 'node:fs';
import os from 'node:os';

export type CpuState = 'user' | 'nice' | 'system' | 'idle' | 'wait' | 'interrupt' | 'softIrq' | 'steal';

/** Raw CPU ticks by state; a state the platform does not report is absent. */
export type CpuTicks = Partial<Readonly<Record<CpuState, number>>>;

export interface MemoryFigures {
  readonly totalKb: number;
  readonly availKb: number;
  readonly bufferKb?: number;
  readonly cachedKb?: number;
}

export interface InterfaceFigures {
  readonly name: string;
  readonly rxBytes: number;
  readonly rxErrors: number;
  readonly rxDrops: number;
  readonly txBytes: number;
  readonly txErrors: number;
  readonly txDrops: number;
}

export interface MountFigures {
  readonly device: string;
  readonly mountPoint: string;
  readonly fsType: string;
}

export interface StorageFigures {
  readonly mountPoint: string;
  /** Bytes per unit; `size` and `used` count units. */
  readonly allocationUnits: number;
  readonly size: number;
  readonly used: number;
}

export interface MachineFigures {
  readonly descr: string;
  readonly name: string;
  /** Machine uptime in hundredths of a second. */
  readonly uptimeTicks: number;
  readonly load: readonly [number, number, number];
  readonly memory: MemoryFigures;
  readonly cpu: CpuTicks;
  readonly interfaces: readonly InterfaceFigures[];
  readonly storage: readonly StorageFigures[];
}

const CPU_FIELDS: readonly CpuState[] = [
  'user',
  'nice',
  'system',
  'idle',
  'wait',
  'interrupt',
  'softIrq',
  'steal',
];

/** The aggregate `cpu` line of /proc/stat: user nice system idle iowait irq softirq steal … */
export function parseProcStat(text: string): CpuTicks | undefined {
  const line = text.split('\n').find((l) => /^cpu\s/.test(l));
  if (!line) return undefined;
  const fields = line.trim().split(/\s+/).slice(1).map(Number);
  const ticks: Partial<Record<CpuState, number>> = {};
  CPU_FIELDS.forEach((state, i) => {
    const v = fields[i];
    if (v !== undefined && Number.isFinite(v)) ticks[state] = v;
  });
  return ticks;
}

/** /proc/meminfo as a map of field → kB. */
export function parseMeminfo(text: string): ReadonlyMap<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    const m = /^([^:]+):\s+(\d+)/.exec(line);
    if (m) out.set(m[1]!, Number(m[2]));
  }
  return out;
}

/** The UCD memory objects from /proc/meminfo, as snmpd 5.9 derives them. */
export function memoryFromMeminfo(info: ReadonlyMap<string, number>): MemoryFigures | undefined {
  const total = info.get('MemTotal');
  const free = info.get('MemFree');
  if (total === undefined || free === undefined) return undefined;
  const cached = info.get('Cached');
  return {
    totalKb: total,
    availKb: free,
    ...(info.has('Buffers') ? { bufferKb: info.get('Buffers')! } : {}),
    ...(cached !== undefined ? { cachedKb: cached + (info.get('SReclaimable') ?? 0) } : {}),
  };
}

/** /proc/net/dev: `name: rxBytes rxPackets rxErrs rxDrop … txBytes txPackets txErrs txDrop …`. */
export function parseNetDev(text: string): InterfaceFigures[] {
  const out: InterfaceFigures[] = [];
  for (const line of text.split('\n')) {
    const colon = line.indexOf(':');
    if (colon < 0) continue;
    const name = line.slice(0, colon).trim();
    const f = line
      .slice(colon + 1)
      .trim()
      .split(/\s+/)
      .map(Number);
    if (!name || f.length < 16 || f.some((v) => !Number.isFinite(v))) continue;
    out.push({
      name,
      rxBytes: f[0]!,
      rxErrors: f[2]!,
      rxDrops: f[3]!,
      txBytes: f[8]!,
      txErrors: f[10]!,
      txDrops: f[11]!,
    });
  }
  return out;
}

/** Filesystems that hold no user data (kernel views, control groups, …): never storage rows. */
export const PSEUDO_FILESYSTEMS: ReadonlySet<string> = new Set([
  'autofs',
  'binfmt_misc',
  'bpf',
  'cgroup',
  'cgroup2',
  'configfs',
  'debugfs',
  'devpts',
  'devtmpfs',
  'efivarfs',
  'fusectl',
  'hugetlbfs',
  'mqueue',
  'nsfs',
  'proc',
  'pstore',
  'ramfs',
  'rpc_pipefs',
  'securityfs',
  'selinuxfs',
  'sysfs',
  'tracefs',
]);

/** /proc/mounts escapes space, tab, newline and backslash as octal (`\040`). */
const unescapeMountField = (s: string): string =>
  s.replace(/\\([0-7]{3})/g, (_m, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));

/** Real filesystems of /proc/mounts, each mount point once (the first mount of it), in file order. */
export function parseMounts(text: string): MountFigures[] {
  const seen = new Set<string>();
  const out: MountFigures[] = [];
  for (const line of text.split('\n')) {
    const [device, mountPoint, fsType] = line.trim().split(/\s+/);
    if (!device || !mountPoint || !fsType || PSEUDO_FILESYSTEMS.has(fsType)) continue;
    const point = unescapeMountField(mountPoint);
    if (seen.has(point)) continue;
    seen.add(point);
    out.push({ device: unescapeMountField(device), mountPoint: point, fsType });
  }
  return out;
}

const INT32_MAX = 2 ** 31 - 1;

/** hrStorage figures from statfs; units doubled until size fits an Integer32, as snmpd does. */
export function storageFromStatfs(
  mountPoint: string,
  s: { readonly bsize: number; readonly blocks: number; readonly bfree: number },
): StorageFigures {
  let units = s.bsize;
  let size = s.blocks;
  let used = s.blocks - s.bfree;
  while (size > INT32_MAX) {
    units *= 2;
    size = Math.floor(size / 2);
    used = Math.floor(used / 2);
  }
  return { mountPoint, allocationUnits: units, size, used };
}

/** Uptime in hundredths of a second from /proc/uptime (`639.00 792.37`). */
export function parseUptime(text: string): number | undefined {
  const secs = Number(text.trim().split(/\s+/)[0]);
  return Number.isFinite(secs) && text.trim() !== '' ? Math.round(secs * 100) : undefined;
}

/** Where figures come from; the real one reads /proc and `os`, tests inject sample files. */
export interface FigureSource {
  /** A file's text, or undefined when it cannot be read. */
  readFile(path: string): string | undefined;
  statfs(path: string): { bsize: number; blocks: number; bfree: number } | undefined;
  readonly os: Pick<
    typeof os,
    | 'type'
    | 'hostname'
    | 'release'
    | 'version'
    | 'machine'
    | 'uptime'
    | 'loadavg'
    | 'totalmem'
    | 'freemem'
    | 'cpus'
  >;
}

export const systemFigureSource: FigureSource = {
  readFile(path) {
    try {
      return readFileSync(path, 'utf8');
    } catch {
      return undefined;
    }
  },
  statfs(path) {
    try {
      const s = statfsSync(path);
      return { bsize: s.bsize, blocks: s.blocks, bfree: s.bfree };
    } catch {
      return undefined;
    }
  },
  os,
};

/** CPU ticks from `os.cpus()` (ms per CPU) where /proc/stat is missing: 10 ms = one USER_HZ tick. */
function cpuFromOs(cpus: readonly os.CpuInfo[]): CpuTicks {
  const sum = (k: keyof os.CpuInfo['times']) => Math.floor(cpus.reduce((acc, c) => acc + c.times[k], 0) / 10);
  if (cpus.length === 0) return {};
  return {
    user: sum('user'),
    nice: sum('nice'),
    system: sum('sys'),
    idle: sum('idle'),
    interrupt: sum('irq'),
  };
}

/** Everything the local agent serves, read now. Never throws: what cannot be read is left out. */
export function readMachineFigures(source: FigureSource = systemFigureSource): MachineFigures {
  const o = source.os;
  const meminfo = source.readFile('/proc/meminfo');
  const stat = source.readFile('/proc/stat');
  const uptime = source.readFile('/proc/uptime');
  const netDev = source.readFile('/proc/net/dev');
  const mounts = source.readFile('/proc/mounts');
  const storage: StorageFigures[] = [];
  for (const m of mounts ? parseMounts(mounts) : []) {
    const s = source.statfs(m.mountPoint);
    if (s && s.blocks > 0) storage.push(storageFromStatfs(m.mountPoint, s));
  }
  const [l1 = 0, l5 = 0, l15 = 0] = o.loadavg();
  return {
    descr: `${o.type()} ${o.hostname()} ${o.release()} ${o.version()} ${o.machine()}`,
    name: o.hostname(),
    uptimeTicks: (uptime !== undefined ? parseUptime(uptime) : undefined) ?? Math.round(o.uptime() * 100),
    load: [l1, l5, l15],
    memory: (meminfo !== undefined ? memoryFromMeminfo(parseMeminfo(meminfo)) : undefined) ?? {
      totalKb: Math.floor(o.totalmem() / 1024),
      availKb: Math.floor(o.freemem() / 1024),
    },
    cpu: (stat !== undefined ? parseProcStat(stat) : undefined) ?? cpuFromOs(o.cpus()),
    interfaces: netDev !== undefined ? parseNetDev(netDev) : [],
    storage,
  };
}
