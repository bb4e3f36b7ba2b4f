/**
 * The local agent must show this machine's real figures: the /proc parsers are checked as tables of
 * sample files, the running agent against /proc read around each request (bracketing moving counters),
 * against `os`, and against Net-SNMP's snmpd on the same machine.
 */
import { readFileSync, statfsSync } from 'node:fs';
import os from 'node:os';
import snmp from 'net-snmp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSnmpd } from '../../scripts/services/snmpd.ts';
import { counter64Value, type LocalAgent, LOCAL_AGENT_OIDS as O, startLocalAgent } from './local-agent.ts';
import {
  type FigureSource,
  memoryFromMeminfo,
  parseMeminfo,
  parseMounts,
  parseNetDev,
  parseProcStat,
  parseUptime,
  readMachineFigures,
  storageFromStatfs,
} from './machine-figures.ts';

const STAT = `cpu  57300 3 23646 121110 690 7 1915 11 0 0
cpu0 27932 0 11395 62008 92 0 927 0 0 0
intr 123 0 0
`;
const MEMINFO = `MemTotal:       24683548 kB
MemFree:        23023296 kB
MemAvailable:   23874388 kB
Buffers:          231944 kB
Cached:           767952 kB
SReclaimable:     165340 kB
HugePages_Total:       0
`;
const NET_DEV = `Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 263945053  867802    0    0    0     0          0         0 263945053  867802    0    0    0     0       0          0
  eth0: 9199354192    8134    3    4    0     0          0         0   669680    5727    5    6    0     0       0          0
`;
const MOUNTS = `proc /proc proc rw,relatime 0 0
sysfs /sys sysfs rw,relatime 0 0
tmpfs /dev/shm tmpfs rw,relatime,size=24683548k 0 0
/dev/vda / ext4 rw,relatime 0 0
/dev/vdb /srv/my\\040data xfs rw 0 0
tmpfs /dev/shm tmpfs rw,relatime 0 0
cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0
`;

const noProc: FigureSource = {
  readFile: () => undefined,
  statfs: () => undefined,
  os: {
    ...os,
    hostname: () => 'mac-1',
    uptime: () => 12.5,
    totalmem: () => 8 * 1024 ** 3,
    freemem: () => 1024 ** 3,
    loadavg: () => [0.5, 0.25, 0.125],
    cpus: () => [{ model: 'x', speed: 1, times: { user: 1000, nice: 0, sys: 500, idle: 9000, irq: 20 } }],
  },
};

describe('machine figures from /proc files', () => {
  it('reads the aggregate cpu line in ticks, by state', () => {
    expect(parseProcStat(STAT)).toEqual({
      user: 57300,
      nice: 3,
      system: 23646,
      idle: 121110,
      wait: 690,
      interrupt: 7,
      softIrq: 1915,
      steal: 11,
    });
    expect(parseProcStat('intr 1 2\n')).toBeUndefined();
  });

  it('derives memory as snmpd 5.9 does: avail = MemFree, cached = Cached + SReclaimable', () => {
    expect(memoryFromMeminfo(parseMeminfo(MEMINFO))).toEqual({
      totalKb: 24_683_548,
      availKb: 23_023_296,
      bufferKb: 231_944,
      cachedKb: 767_952 + 165_340,
    });
    expect(memoryFromMeminfo(parseMeminfo('Buffers: 1 kB\n'))).toBeUndefined();
  });

  it('reads interface counters of /proc/net/dev, skipping its headers', () => {
    expect(parseNetDev(NET_DEV)).toEqual([
      {
        name: 'lo',
        rxBytes: 263945053,
        rxErrors: 0,
        rxDrops: 0,
        txBytes: 263945053,
        txErrors: 0,
        txDrops: 0,
      },
      {
        name: 'eth0',
        rxBytes: 9199354192,
        rxErrors: 3,
        rxDrops: 4,
        txBytes: 669680,
        txErrors: 5,
        txDrops: 6,
      },
    ]);
  });

  it('keeps real filesystems once each, unescaping mount points', () => {
    expect(parseMounts(MOUNTS)).toEqual([
      { device: 'tmpfs', mountPoint: '/dev/shm', fsType: 'tmpfs' },
      { device: '/dev/vda', mountPoint: '/', fsType: 'ext4' },
      { device: '/dev/vdb', mountPoint: '/srv/my data', fsType: 'xfs' },
    ]);
  });

  it('scales storage units until the size fits an Integer32', () => {
    expect(storageFromStatfs('/', { bsize: 4096, blocks: 1000, bfree: 400 })).toEqual({
      mountPoint: '/',
      allocationUnits: 4096,
      size: 1000,
      used: 600,
    });
    expect(storageFromStatfs('/big', { bsize: 4096, blocks: 2 ** 33, bfree: 2 ** 32 })).toEqual({
      mountPoint: '/big',
      allocationUnits: 4096 * 8,
      size: 2 ** 30,
      used: 2 ** 29,
    });
  });

  it('reads uptime in hundredths of a second', () => {
    expect(parseUptime('639.07 792.37\n')).toBe(63_907);
    expect(parseUptime('')).toBeUndefined();
  });

  it('without /proc (not Linux) serves what os gives and leaves the rest out', () => {
    const f = readMachineFigures(noProc);
    expect(f.name).toBe('mac-1');
    expect(f.uptimeTicks).toBe(1250);
    expect(f.memory).toEqual({ totalKb: 8 * 1024 ** 2, availKb: 1024 ** 2 });
    expect(f.cpu).toEqual({ user: 100, nice: 0, system: 50, idle: 900, interrupt: 2 });
    expect(f.load).toEqual([0.5, 0.25, 0.125]);
    expect(f.interfaces).toEqual([]);
    expect(f.storage).toEqual([]);
  });
});

type Value = string | number | bigint;
const decode = (v: snmp.Varbind): Value =>
  v.type === snmp.ObjectType.Counter64
    ? counter64Value(v.value as Buffer)
    : Buffer.isBuffer(v.value)
      ? v.value.toString()
      : (v.value as number);

const COMMUNITY = 'argus-test';
const session = (port: number, community = COMMUNITY) =>
  snmp.createSession('127.0.0.1', community, { port, version: snmp.Version2c, timeout: 2_000, retries: 0 });

function get(port: number, oids: string[], community = COMMUNITY, timeout = 2_000): Promise<Value[]> {
  const s = snmp.createSession('127.0.0.1', community, {
    port,
    version: snmp.Version2c,
    timeout,
    retries: 0,
  });
  return new Promise((resolve, reject) =>
    s.get(oids, (error, varbinds) => {
      s.close();
      if (error) return reject(error);
      const bad = varbinds!.find((v) => snmp.isVarbindError(v));
      if (bad) return reject(new Error(snmp.varbindError(bad)));
      resolve(varbinds!.map(decode));
    }),
  );
}

/** Column → row index → value, for the walked subtree of a table entry. */
function walk(port: number, entry: string): Promise<Map<number, Map<string, Value>>> {
  const s = session(port);
  const columns = new Map<number, Map<string, Value>>();
  return new Promise((resolve, reject) =>
    s.subtree(
      entry,
      20,
      (varbinds) => {
        for (const v of varbinds) {
          const [column, ...index] = v.oid.slice(entry.length + 1).split('.');
          const col = columns.get(Number(column)) ?? new Map<string, Value>();
          col.set(index.join('.'), decode(v));
          columns.set(Number(column), col);
        }
      },
      (error) => {
        s.close();
        if (error) reject(error);
        else resolve(columns);
      },
    ),
  );
}

const procStat = () => parseProcStat(readFileSync('/proc/stat', 'utf8'))!;
const netDev = () => parseNetDev(readFileSync('/proc/net/dev', 'utf8'));
const sorted = (xs: Iterable<Value>) => [...xs].map(String).sort();

describe('the local agent on this machine', () => {
  let agent: LocalAgent;
  beforeAll(async () => {
    // maxAgeMs 0: every request reads /proc, so a value read around it brackets the answer.
    agent = await startLocalAgent({ port: 0, host: '127.0.0.1', community: COMMUNITY, maxAgeMs: 0 });
  });
  afterAll(() => agent?.close());

  it('serves system identity, uptime and memory (kB, exact against os.totalmem)', async () => {
    const up0 = parseUptime(readFileSync('/proc/uptime', 'utf8'))!;
    const s = session(agent.port);
    const vbs = await new Promise<snmp.Varbind[]>((resolve, reject) =>
      s.get(
        [`${O.sysDescr}.0`, `${O.sysUpTime}.0`, `${O.sysName}.0`, `${O.memTotalReal}.0`, `${O.laEntry}.3.1`],
        (e, v) => (e ? reject(e) : resolve(v!)),
      ),
    );
    s.close();
    const up1 = parseUptime(readFileSync('/proc/uptime', 'utf8'))!;
    const [descr, uptime, name, total, load] = vbs.map(decode);
    expect(vbs[1]!.type).toBe(snmp.ObjectType.TimeTicks);
    expect(descr).toBe(`${os.type()} ${os.hostname()} ${os.release()} ${os.version()} ${os.machine()}`);
    expect(uptime).toBeGreaterThanOrEqual(up0);
    expect(uptime).toBeLessThanOrEqual(up1);
    expect(name).toBe(os.hostname());
    expect(total).toBe(os.totalmem() / 1024);
    expect(load).toMatch(/^\d+\.\d\d$/);
  });

  it('refuses a community it was not given', async () => {
    await expect(get(agent.port, [`${O.sysName}.0`], 'public', 300)).rejects.toThrow(/timed out/i);
  });

  it('serves UCD CPU ticks as Counter32 between two reads of /proc/stat', async () => {
    const states = Object.keys(O.ssCpuRaw) as (keyof typeof O.ssCpuRaw)[];
    const before = procStat();
    const s = session(agent.port);
    const vbs = await new Promise<snmp.Varbind[]>((resolve, reject) =>
      s.get(
        states.map((k) => `${O.ssCpuRaw[k]}.0`),
        (e, v) => (e ? reject(e) : resolve(v!)),
      ),
    );
    s.close();
    const after = procStat();
    states.forEach((state, i) => {
      expect(vbs[i]!.type).toBe(snmp.ObjectType.Counter);
      expect(vbs[i]!.value).toBeGreaterThanOrEqual(before[state]!);
      expect(vbs[i]!.value).toBeLessThanOrEqual(after[state]!);
    });
  });

  it('serves ifTable and ifXTable with the interfaces of /proc/net/dev', async () => {
    const before = netDev();
    const x = await walk(agent.port, O.ifXEntry);
    const t = await walk(agent.port, O.ifEntry);
    const after = netDev();
    expect(sorted(x.get(1)!.values())).toEqual(sorted(before.map((i) => i.name)));
    expect(sorted(t.get(2)!.values())).toEqual(sorted(before.map((i) => i.name)));
    expect([...t.get(1)!.keys()]).toEqual([...x.get(1)!.keys()]);
    for (const [index, name] of x.get(1)!) {
      const b = before.find((i) => i.name === name)!;
      const a = after.find((i) => i.name === name)!;
      expect(x.get(6)!.get(index)).toBeGreaterThanOrEqual(BigInt(b.rxBytes));
      expect(x.get(6)!.get(index)).toBeLessThanOrEqual(BigInt(a.rxBytes));
      expect(x.get(10)!.get(index)).toBeGreaterThanOrEqual(BigInt(b.txBytes));
      expect(x.get(10)!.get(index)).toBeLessThanOrEqual(BigInt(a.txBytes));
      expect(t.get(1)!.get(index)).toBe(Number(index));
    }
  });

  it('serves hrStorageTable rows for the mounted filesystems, sized by statfs', async () => {
    const pseudo =
      /^(proc|sysfs|devtmpfs|devpts|cgroup2?|mqueue|debugfs|tracefs|securityfs|pstore|bpf|autofs|hugetlbfs|configfs|fusectl|binfmt_misc|nsfs|ramfs|rpc_pipefs|efivarfs|selinuxfs)$/;
    const expected = new Set(
      readFileSync('/proc/mounts', 'utf8')
        .trim()
        .split('\n')
        .map((l) => l.split(' '))
        .filter(([, , type]) => !pseudo.test(type!))
        .map(([, point]) => point!.replace(/\\040/g, ' '))
        .filter((point) => {
          try {
            return statfsSync(point).blocks > 0;
          } catch {
            return false;
          }
        }),
    );
    const table = await walk(agent.port, O.hrStorageEntry);
    expect(sorted(table.get(3)!.values())).toEqual(sorted(expected));
    const root = [...table.get(3)!].find(([, point]) => point === '/')![0];
    const fs = statfsSync('/');
    expect(table.get(4)!.get(root)).toBe(fs.bsize);
    expect(table.get(5)!.get(root)).toBe(fs.blocks);
  });

  it('agrees with Net-SNMP snmpd on this machine: memory total, interfaces, filesystems', async () => {
    const snmpd = await startSnmpd({ community: COMMUNITY });
    try {
      const [ours, theirs] = await Promise.all([
        get(agent.port, [`${O.memTotalReal}.0`]),
        get(snmpd.port, [`${O.memTotalReal}.0`]),
      ]);
      expect(ours).toEqual(theirs);
      const ifOurs = await walk(agent.port, O.ifEntry);
      const ifTheirs = await walk(snmpd.port, O.ifEntry);
      expect(sorted(ifOurs.get(2)!.values())).toEqual(sorted(ifTheirs.get(2)!.values()));
      const hrOurs = await walk(agent.port, O.hrStorageEntry);
      const hrTheirs = await walk(snmpd.port, O.hrStorageEntry);
      const disks = [...hrTheirs.get(2)!]
        .filter(([, type]) => type === '1.3.6.1.2.1.25.2.1.4')
        .map(([i]) => i);
      expect(sorted(hrOurs.get(3)!.values())).toEqual(sorted(disks.map((i) => hrTheirs.get(3)!.get(i)!)));
    } finally {
      await snmpd.stop();
    }
  });
});

describe('the local agent where there is no /proc', () => {
  it('serves what os gives, answers noSuchObject for the rest and never crashes', async () => {
    const agent = await startLocalAgent({ host: '127.0.0.1', community: COMMUNITY, source: noProc });
    try {
      expect(
        await get(agent.port, [`${O.sysName}.0`, `${O.memTotalReal}.0`, `${O.ssCpuRaw.user}.0`]),
      ).toEqual(['mac-1', 8 * 1024 ** 2, 100]);
      await expect(get(agent.port, [`${O.ssCpuRaw.wait}.0`])).rejects.toThrow(/NoSuchObject/i);
      expect((await walk(agent.port, O.ifXEntry)).size).toBe(0);
      await expect(startLocalAgent({ host: '127.0.0.1', community: 'x', port: agent.port })).rejects.toThrow(
        /EADDRINUSE/,
      );
    } finally {
      await agent.close();
    }
  });

  it('refuses an empty community or a bad port with a coded error', async () => {
    await expect(startLocalAgent({ host: '127.0.0.1', community: '' })).rejects.toThrow(
      /ARGUS_ERR_INVALID_CONFIG/,
    );
    await expect(startLocalAgent({ host: '127.0.0.1', community: 'x', port: 70_000 })).rejects.toThrow(
      /ARGUS_ERR_INVALID_CONFIG.*port/,
    );
  });
});
