/**
 * The SNMP boundary against an independent agent: Debian's snmpd (scripts/services/snmpd.ts), with
 * Net-SNMP's own snmpget/snmpbulkwalk as the reference reading of the same OIDs.
 */
import { execFile } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { existsSync, readdirSync, readFileSync, readlinkSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join } from 'node:path';
import { promisify } from 'node:util';
import snmp from 'net-snmp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  createNetSnmpPoller,
  type PollResult,
  type PollTarget,
  type SnmpPoller,
} from '../../actors/host/snmp.ts';
import type { MetricSet, RawValue, SnmpSettings, TableMetric } from '../../actors/host/types.ts';
import { type RunningSnmpd, startSnmpd } from '../../scripts/services/snmpd.ts';

const run = promisify(execFile);
const COMMUNITY = 'argus-ro';
const V3 = { user: 'mon', authKey: 'auth-pass-1234', privKey: 'priv-pass-1234' } as const;

const UCD = '1.3.6.1.4.1.2021';
/** [name, OID, how the reference and the poll must agree]. */
const SCALARS = [
  ['sysUpTime', '1.3.6.1.2.1.1.3.0', 'uptime'],
  ['ssCpuRawUser', `${UCD}.11.50.0`, 'ticks'],
  ['ssCpuRawNice', `${UCD}.11.51.0`, 'ticks'],
  ['ssCpuRawSystem', `${UCD}.11.52.0`, 'ticks'],
  ['ssCpuRawIdle', `${UCD}.11.53.0`, 'ticks'],
  ['ssCpuRawWait', `${UCD}.11.54.0`, 'ticks'],
  ['ssCpuRawKernel', `${UCD}.11.55.0`, 'ticks'],
  ['ssCpuRawInterrupt', `${UCD}.11.56.0`, 'ticks'],
  ['ssCpuRawSoftIRQ', `${UCD}.11.61.0`, 'ticks'],
  ['memTotalReal', `${UCD}.4.5.0`, 'constant'],
  ['memTotalSwap', `${UCD}.4.3.0`, 'constant'],
  ['memAvailReal', `${UCD}.4.6.0`, 'memory'],
  ['laLoad.1', `${UCD}.10.1.3.1`, 'between'],
  ['laLoad.2', `${UCD}.10.1.3.2`, 'between'],
  ['laLoad.3', `${UCD}.10.1.3.3`, 'between'],
  ['laLoadInt.1', `${UCD}.10.1.5.1`, 'between'],
  ['laLoadFloat.1', `${UCD}.10.1.6.1`, 'between'],
] as const;
const COUNTERS = new Set<string>(['ticks', 'uptime']);
const scalarSet: MetricSet = {
  scalars: SCALARS.map(([name, oid, kind]) => ({
    name,
    oid,
    type: COUNTERS.has(kind) ? 'counter' : 'gauge',
  })),
  tables: [],
  derived: [],
};

const IF_X: TableMetric = {
  name: 'ifXTable',
  oid: '1.3.6.1.2.1.31.1.1.1',
  tag: { column: 1, name: 'ifName' },
  columns: [
    { column: 6, name: 'if.in.octets', type: 'counter' },
    { column: 10, name: 'if.out.octets', type: 'counter' },
  ],
};
const IF: TableMetric = {
  name: 'ifTable',
  oid: '1.3.6.1.2.1.2.2.1',
  tag: { column: 2, name: 'ifDescr' },
  columns: [
    { column: 10, name: 'if.in.octets32', type: 'counter' },
    { column: 8, name: 'if.oper', type: 'gauge' },
  ],
};
const HR_STORAGE: TableMetric = {
  name: 'hrStorageTable',
  oid: '1.3.6.1.2.1.25.2.3.1',
  tag: { column: 3, name: 'hrStorageDescr' },
  columns: [
    { column: 5, name: 'storage.size', type: 'gauge' },
    { column: 6, name: 'storage.used', type: 'gauge' },
  ],
};
const tableSet: MetricSet = { scalars: [], tables: [IF_X, IF, HR_STORAGE], derived: [] };

let agent: RunningSnmpd;
let poller: SnmpPoller;
const v2c = (over: Partial<Extract<SnmpSettings, { version: '2c' }>> = {}): PollTarget => ({
  address: agent.address,
  snmp: { version: '2c', community: COMMUNITY, port: agent.port, timeoutMs: 1_000, retries: 1, ...over },
});
const v3 = (over: Partial<Extract<SnmpSettings, { version: '3' }>> = {}): PollTarget => ({
  address: agent.address,
  snmp: {
    version: '3',
    user: V3.user,
    level: 'authPriv',
    authProtocol: 'sha',
    authKey: V3.authKey,
    privProtocol: 'aes',
    privKey: V3.privKey,
    port: agent.port,
    timeoutMs: 1_000,
    retries: 1,
    ...over,
  },
});

const ok = (result: PollResult): Extract<PollResult, { ok: true }> => {
  if (!result.ok) throw new Error(`poll failed: ${result.error.code}: ${result.error.message}`);
  return result;
};
const byMetric = (values: readonly RawValue[]): Map<string, RawValue> =>
  new Map(values.map((v) => [v.metric, v]));

/** snmpget's reading: numbers, TimeTicks as raw hundredths (-Ot), strings unquoted. */
const snmpget = async (oids: readonly string[]): Promise<number[]> => {
  const args = ['-v2c', '-c', COMMUNITY, '-m', '', '-On', '-Oqvt', '-t', '2', '-r', '1'];
  const { stdout } = await run('snmpget', [...args, `${agent.address}:${agent.port}`, ...oids], {
    env: agent.toolEnv,
  });
  return stdout
    .trim()
    .split('\n')
    .map((line) => Number(line.replace(/^"|"$/g, '')));
};

/** snmpbulkwalk of one column: row index → value as printed. */
const walkColumn = async (table: TableMetric, column: number): Promise<Map<string, string>> => {
  const base = `${table.oid}.${column}`;
  const args = ['-v2c', '-c', COMMUNITY, '-m', '', '-On', '-Oq', '-t', '2', '-r', '1'];
  const { stdout } = await run('snmpbulkwalk', [...args, `${agent.address}:${agent.port}`, base], {
    env: agent.toolEnv,
  });
  const rows = new Map<string, string>();
  for (const line of stdout.trim().split('\n')) {
    const match = /^\.(\S+) (.*)$/.exec(line);
    if (!match?.[1]?.startsWith(`${base}.`)) continue;
    rows.set(match[1].slice(base.length + 1), (match[2] ?? '').replace(/^"|"$/g, ''));
  }
  return rows;
};

/** Open UDP/TCP sockets of this process (Linux: /proc/self/fd links to "socket:[inode]"). */
const socketCount = (): number =>
  readdirSync('/proc/self/fd').filter((fd) => {
    try {
      return readlinkSync(`/proc/self/fd/${fd}`).startsWith('socket:');
    } catch {
      return false;
    }
  }).length;

beforeAll(async () => {
  agent = await startSnmpd({
    community: COMMUNITY,
    v3Users: [
      { user: V3.user, authProtocol: 'SHA', authKey: V3.authKey, privProtocol: 'AES', privKey: V3.privKey },
      { user: 'mon-md5', authProtocol: 'MD5', authKey: V3.authKey },
      {
        user: 'mon-sha512',
        authProtocol: 'SHA-512',
        authKey: V3.authKey,
        privProtocol: 'AES',
        privKey: V3.privKey,
      },
    ],
  });
  poller = createNetSnmpPoller();
});

afterAll(async () => {
  await poller?.close();
  await agent?.stop();
});

describe('snmpd harness', () => {
  it('runs a loopback snmpd that answers GETs, with its v3 users in its own persistent folder', async () => {
    const [upTime] = await snmpget(['1.3.6.1.2.1.1.3.0']);
    expect(upTime).toBeGreaterThan(0);
    expect(readFileSync(join(agent.persistentDir, 'snmpd.conf'), 'utf8')).toMatch(/^usmUser .* "mon" /m);
  });

  it('stop() ends snmpd and removes its temp folder', async () => {
    const other = await startSnmpd();
    const folder = dirname(other.logFile);
    expect(existsSync(folder)).toBe(true);
    await other.stop();
    expect(existsSync(folder)).toBe(false);
    expect(() => process.kill(other.pid, 0)).toThrow();
  });
});

describe('scalars against snmpget', () => {
  it('reads the same values as snmpget at the same moment', async () => {
    const oids = SCALARS.map(([, oid]) => oid);
    const t0 = performance.now();
    const before = await snmpget(oids);
    const result = ok(await poller.poll(v2c(), scalarSet));
    const after = await snmpget(oids);
    const elapsedMs = performance.now() - t0;
    expect(result.missing).toEqual([]);
    expect(result.requests).toBe(1);
    const values = byMetric(result.values);
    // USER_HZ ticks summed over CPUs; snmpd refreshes them every 5 s.
    const tickBound = cpus().length * 100 * (5 + elapsedMs / 1_000);
    SCALARS.forEach(([name, , kind], i) => {
      const value = values.get(name)?.value;
      const b = before[i] ?? Number.NaN;
      const a = after[i] ?? Number.NaN;
      const where = `${name}: snmpget ${b} then ${a}, poll ${value}`;
      expect(value, where).toBeTypeOf('number');
      if (value === undefined) return;
      switch (kind) {
        case 'constant':
          expect([value, a], where).toEqual([b, b]);
          break;
        case 'uptime':
          expect(b <= value && value <= a, where).toBe(true);
          expect(a - b, where).toBeLessThanOrEqual(Math.ceil(elapsedMs / 10) + 1);
          break;
        case 'ticks':
          expect(b <= value && value <= a, where).toBe(true);
          expect(a - b, where).toBeLessThanOrEqual(tickBound);
          break;
        case 'memory': {
          const total = values.get('memTotalReal')?.value ?? 0;
          expect(value, where).toBeGreaterThanOrEqual(Math.min(a, b) - total * 0.01);
          expect(value, where).toBeLessThanOrEqual(Math.max(a, b) + total * 0.01);
          break;
        }
        case 'between':
          // snmpget prints an Opaque float with 6 digits; the poll decodes all of them.
          expect(value, where).toBeGreaterThanOrEqual(Math.min(a, b) - 5e-7);
          expect(value, where).toBeLessThanOrEqual(Math.max(a, b) + 5e-7);
          break;
        default:
          throw new Error(`unknown kind ${kind satisfies never}`);
      }
    });
    expect(values.get('ssCpuRawIdle')).toMatchObject({ type: 'counter', width: 32 });
    expect(values.get('memTotalReal')).toMatchObject({ type: 'gauge' });
    expect(values.get('memTotalReal')).not.toHaveProperty('width');
  });

  it('applies the scale of the metric set and reports what has no number in missing, with the reason', async () => {
    const set: MetricSet = {
      scalars: [
        { name: 'mem.total.bytes', oid: `${UCD}.4.5.0`, type: 'gauge', scale: 1024 },
        { name: 'sysDescr', oid: '1.3.6.1.2.1.1.1.0', type: 'gauge' },
        { name: 'nothing', oid: '1.3.6.1.2.1.1.99.0', type: 'gauge' },
        { name: 'noInstance', oid: `${UCD}.4.5.7`, type: 'gauge' },
      ],
      tables: [],
      derived: [],
    };
    const [memTotal] = await snmpget([`${UCD}.4.5.0`]);
    const result = ok(await poller.poll(v2c(), set));
    expect(result.values).toEqual([
      { metric: 'mem.total.bytes', tags: {}, type: 'gauge', value: (memTotal ?? 0) * 1024 },
    ]);
    expect(result.missing).toEqual(['1.3.6.1.2.1.1.1.0', '1.3.6.1.2.1.1.99.0', `${UCD}.4.5.7`]);
    expect(result.reasons['1.3.6.1.2.1.1.1.0']).toMatch(/^OctetString "Linux .*" is not a number$/);
    expect(result.reasons['1.3.6.1.2.1.1.99.0']).toBe('noSuchObject');
    expect(result.reasons[`${UCD}.4.5.7`]).toBe('noSuchInstance');
  });

  it('sends at most 32 varbinds per GET', async () => {
    const scalars = Array.from({ length: 70 }, (_, i) => ({
      name: `upTime.${i}`,
      oid: '1.3.6.1.2.1.1.3.0',
      type: 'gauge' as const,
    }));
    const result = ok(await poller.poll(v2c(), { scalars, tables: [], derived: [] }));
    expect(result.requests).toBe(3);
    expect(result.values).toHaveLength(70);
  });
});

describe('tables against snmpbulkwalk', () => {
  it.each([25, 2])(
    'walks ifXTable, ifTable and hrStorageTable with the rows and tags snmpbulkwalk shows (max-repetitions %i)',
    async (maxRepetitions) => {
      const reference = new Map<string, Map<string, string>>();
      for (const table of tableSet.tables)
        for (const column of [table.tag.column, ...table.columns.map((c) => c.column)])
          reference.set(`${table.oid}.${column}`, await walkColumn(table, column));
      const result = ok(await poller.poll(v2c(), tableSet, { maxRepetitions }));
      expect(result.missing).toEqual([]);
      for (const table of tableSet.tables) {
        const tags = reference.get(`${table.oid}.${table.tag.column}`) ?? new Map<string, string>();
        expect(tags.size, table.name).toBeGreaterThan(0);
        for (const column of table.columns) {
          const expected = [...tags.values()].sort();
          const got = result.values.filter((v) => v.metric === column.name);
          expect(got.map((v) => v.tags[table.tag.name]).sort(), `${table.name} ${column.name}`).toEqual(
            expected,
          );
          expect(got.every((v) => Object.keys(v.tags).length === 1)).toBe(true);
          // Counters only grow between the walk and the poll; the rest is the same or close.
          const walked = reference.get(`${table.oid}.${column.column}`) ?? new Map<string, string>();
          for (const [index, tag] of tags) {
            const value = got.find((v) => v.tags[table.tag.name] === tag)?.value;
            const was = Number(walked.get(index));
            if (column.type === 'counter') expect(value, `${column.name} ${tag}`).toBeGreaterThanOrEqual(was);
            if (column.name === 'storage.size' && !/memory|swap/i.test(tag)) expect(value, tag).toBe(was);
          }
        }
      }
      expect(result.values.find((v) => v.metric === 'if.in.octets')).toMatchObject({
        type: 'counter',
        width: 64,
      });
      expect(result.values.find((v) => v.metric === 'if.in.octets32')).toMatchObject({
        type: 'counter',
        width: 32,
      });
      const rows = Math.max(
        ...tableSet.tables.map((t) => reference.get(`${t.oid}.${t.tag.column}`)?.size ?? 0),
      );
      if (maxRepetitions === 2) expect(result.requests).toBeGreaterThanOrEqual(Math.ceil(rows / 2));
      else expect(result.requests).toBe(3);
    },
  );
});

describe('SNMPv3', () => {
  it.each([
    ['authPriv SHA + AES', v3 as () => PollTarget],
    [
      'authNoPriv MD5',
      () =>
        v3({
          user: 'mon-md5',
          level: 'authNoPriv',
          authProtocol: 'md5',
          privProtocol: undefined,
          privKey: undefined,
        }),
    ],
    ['authPriv SHA-512 + AES', () => v3({ user: 'mon-sha512', authProtocol: 'sha512' })],
  ])('polls with %s', async (_, target) => {
    const [memTotal] = await snmpget([`${UCD}.4.5.0`]);
    const result = ok(await poller.poll(target(), { ...tableSet, scalars: scalarSet.scalars }));
    expect(byMetric(result.values).get('memTotalReal')?.value).toBe(memTotal);
    expect(result.values.filter((v) => v.metric === 'if.in.octets').length).toBeGreaterThan(0);
  });

  it.each([
    ['a wrong auth password', { authKey: 'not-the-password' }, /wrong digest \(wrong auth password\)$/],
    ['an unknown user', { user: 'nobody' }, /unknown user name$/],
  ])('answers %s with code auth and a clear message, and keeps working', async (_, over, reason) => {
    const result = await poller.poll(v3(over), scalarSet);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.error.code).toBe('auth');
    const user = 'user' in over ? over.user : V3.user;
    expect(result.error.message).toContain(
      `snmp v3 authentication failed for user '${user}' at 127.0.0.1:${agent.port}: `,
    );
    expect(result.error.message).toMatch(reason);
    expect(ok(await poller.poll(v3(), scalarSet)).values.length).toBe(SCALARS.length);
  });
});

describe('failures and sessions', () => {
  it('answers a closed port with timeout within timeoutMs × (retries + 1) plus slack', async () => {
    const closedPort = await new Promise<number>((resolve) => {
      const socket = createSocket('udp4');
      socket.bind(0, '127.0.0.1', () => {
        const { port } = socket.address();
        socket.close(() => resolve(port));
      });
    });
    const t0 = performance.now();
    const result = await poller.poll(v2c({ port: closedPort, timeoutMs: 300, retries: 1 }), scalarSet);
    const elapsed = performance.now() - t0;
    expect(result).toMatchObject({ ok: false, error: { code: 'timeout' } });
    if (!result.ok)
      expect(result.error.message).toBe(
        `snmp v2c GET of ${SCALARS.length} OIDs to 127.0.0.1:${closedPort} timed out: no answer in 2 tries of 300 ms`,
      );
    expect(elapsed).toBeGreaterThanOrEqual(590);
    expect(elapsed).toBeLessThan(600 + 400);
  });

  it('is safe when polls of one host overlap', async () => {
    const results = await Promise.all(
      Array.from({ length: 8 }, () => poller.poll(v2c(), { ...tableSet, scalars: scalarSet.scalars })),
    );
    for (const result of results) expect(ok(result).missing).toEqual([]);
    const counts = results.map((r) => (r.ok ? r.values.length : 0));
    expect(new Set(counts).size).toBe(1);
  });

  it.each([4, 0])(
    'polls 20 targets through one shared socket whatever maxSessions (%i), closed with the poller',
    async (maxSessions) => {
      const bounded = createNetSnmpPoller({ maxSessions });
      const baseline = socketCount();
      const targets = Array.from({ length: 20 }, (_, retries) => v2c({ retries }));
      const results = await Promise.all(targets.map((t) => bounded.poll(t, scalarSet)));
      for (const result of results) ok(result);
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(socketCount() - baseline).toBe(1);
      await bounded.close();
      await new Promise((resolve) => setTimeout(resolve, 50));
      expect(socketCount()).toBe(baseline);
      expect(await bounded.poll(v2c(), scalarSet)).toMatchObject({ ok: false, error: { code: 'protocol' } });
    },
  );
});

describe('throughput (printed, not asserted)', () => {
  const OIDS = SCALARS.slice(0, 10).map(([, oid]) => oid);
  const tenOids: MetricSet = { scalars: scalarSet.scalars.slice(0, 10), tables: [], derived: [] };
  /** Requests per second with 64 in flight for `ms`. */
  const rate = async (once: () => Promise<void>, ms: number): Promise<number> => {
    const deadline = performance.now() + ms;
    let done = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: 64 }, async () => {
        while (performance.now() < deadline) {
          await once();
          done++;
        }
      }),
    );
    return done / ((performance.now() - t0) / 1_000);
  };
  const must = async (p: Promise<PollResult>): Promise<void> => {
    ok(await p);
  };

  it('measures 64 polls in flight of 10-OID GETs: bare net-snmp, cached sessions, a session per poll', async () => {
    const bare = snmp.createSession(agent.address, COMMUNITY, { port: agent.port, version: snmp.Version2c });
    const cached = createNetSnmpPoller();
    const perPoll = createNetSnmpPoller({ maxSessions: 0 });
    const [t2, t3] = [v2c(), v3()];
    const contenders: [string, () => Promise<void>][] = [
      [
        'v2c bare net-snmp session',
        () => new Promise((ok_, ko) => bare.get(OIDS, (e) => (e ? ko(e) : ok_()))),
      ],
      ['v2c poller, cached session', () => must(cached.poll(t2, tenOids))],
      ['v2c poller, session per poll', () => must(perPoll.poll(t2, tenOids))],
      ['v3 authPriv poller, cached session', () => must(cached.poll(t3, tenOids))],
      ['v3 authPriv poller, session per poll', () => must(perPoll.poll(t3, tenOids))],
    ];
    // The machine is shared: rounds interleave the contenders, the median of the rounds is printed.
    await Promise.all(contenders.map(([, once]) => rate(once, 100)));
    const rounds = new Map<string, number[]>(contenders.map(([label]) => [label, []]));
    for (let round = 0; round < 5; round++)
      for (const [label, once] of contenders) rounds.get(label)?.push(await rate(once, 400));
    for (const [label, rates] of rounds) {
      const median = [...rates].sort((a, b) => a - b)[Math.floor(rates.length / 2)] ?? 0;
      console.log(
        `[snmp throughput] ${label}: ${Math.round(median)} GET/s (median of ${rates.length} rounds)`,
      );
    }
    bare.close();
    await Promise.all([cached.close(), perPoll.close()]);
  }, 30_000);
});
