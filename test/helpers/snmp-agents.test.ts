/**
 * The simulated agents are what the poller's tests and benchmarks stand on, so they are checked with a
 * plain net-snmp client (and Net-SNMP's snmpget for DES): exact values under an injected clock, wraps
 * and resets, stop/resume, SNMPv3 levels and refusals, and the child-process variant's lifecycle.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import snmp from 'net-snmp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { counter64Value, LOCAL_AGENT_OIDS as O } from '../../actors/host/local-agent.ts';
import {
  type AgentProcess,
  type AgentSpec,
  hostAgentSpec,
  type SimUser,
  type SimulatedAgents,
  startAgentProcess,
  startSimulatedAgents,
  wrappingCounter32,
} from './snmp-agents.ts';

const execFileAsync = promisify(execFile);
const T0 = 1_700_000_000_000;
const WRAP = '1.3.6.1.4.1.99999.1.0';
const RESET = '1.3.6.1.4.1.99999.2.0';
const BIG = '1.3.6.1.4.1.99999.3.0';
const USERS: SimUser[] = [
  {
    user: 'sha-aes',
    level: 'authPriv',
    authProtocol: 'sha',
    authKey: 'auth-pass-1',
    privProtocol: 'aes',
    privKey: 'priv-pass-1',
  },
  {
    user: 'md5-aes',
    level: 'authPriv',
    authProtocol: 'md5',
    authKey: 'auth-pass-2',
    privProtocol: 'aes',
    privKey: 'priv-pass-2',
  },
  { user: 'sha-auth', level: 'authNoPriv', authProtocol: 'sha', authKey: 'auth-pass-3' },
];

type Target = { port: number } & ({ community: string } | { user: SimUser });

/** A plain net-snmp client GET; values decoded (strings, numbers, Counter64 as bigint). */
function get(target: Target, oids: string[], timeout = 1_000): Promise<(string | number | bigint)[]> {
  const session =
    'community' in target
      ? snmp.createSession('127.0.0.1', target.community, {
          port: target.port,
          version: snmp.Version2c,
          timeout,
          retries: 0,
        })
      : snmp.createV3Session(
          '127.0.0.1',
          {
            name: target.user.user,
            level: snmp.SecurityLevel[target.user.level],
            ...(target.user.authProtocol
              ? { authProtocol: snmp.AuthProtocols[target.user.authProtocol], authKey: target.user.authKey }
              : {}),
            ...(target.user.privProtocol
              ? { privProtocol: snmp.PrivProtocols[target.user.privProtocol], privKey: target.user.privKey }
              : {}),
          },
          { port: target.port, timeout, retries: 0 },
        );
  return new Promise((resolve, reject) => {
    session.get(oids, (error, varbinds) => {
      session.close();
      if (error) return reject(error);
      const bad = varbinds!.find((v) => snmp.isVarbindError(v));
      if (bad) return reject(new Error(snmp.varbindError(bad)));
      resolve(
        varbinds!.map((v) =>
          v.type === snmp.ObjectType.Counter64
            ? counter64Value(v.value as Buffer)
            : Buffer.isBuffer(v.value)
              ? v.value.toString()
              : (v.value as number),
        ),
      );
    });
  });
}

const spec = (i: number): AgentSpec => {
  const base = hostAgentSpec(`sim-${i}`, { users: USERS });
  return {
    ...base,
    scalars: {
      ...base.scalars,
      [WRAP]: wrappingCounter32(1_000, 5),
      [RESET]: { type: 'Counter32', start: 500, perSecond: 10, resetAfterMs: 20_000 },
      [BIG]: { type: 'Counter64', start: '18446744073709551000', perSecond: 100 },
    },
  };
};

describe('simulated agents in this process', () => {
  let now = T0;
  const errors: { id: string; message: string }[] = [];
  let sim: SimulatedAgents;
  let startMs = 0;

  beforeAll(async () => {
    const t = performance.now();
    sim = await startSimulatedAgents(
      Array.from({ length: 200 }, (_, i) => spec(i)),
      { now: () => now, onError: (id, e) => errors.push({ id, message: e.message }) },
    );
    startMs = performance.now() - t;
  });
  afterAll(() => sim?.close());

  const port = (id: string) => sim.agents.find((a) => a.id === id)!.port;

  it('starts 200 agents on distinct loopback ports within a few seconds', () => {
    expect(sim.agents).toHaveLength(200);
    expect(new Set(sim.agents.map((a) => a.port)).size).toBe(200);
    expect(sim.agents.every((a) => a.address === '127.0.0.1' && a.port > 0)).toBe(true);
    expect(startMs).toBeLessThan(5_000);
  });

  it('every agent answers its own sysName, and a sample answers exact counters after 10 s', async () => {
    now = T0 + 10_000;
    const names = await Promise.all(
      sim.agents.map((a) => get({ port: a.port, community: 'public' }, [`${O.sysName}.0`])),
    );
    expect(names.map((n) => n[0])).toEqual(sim.agents.map((a) => a.id));
    for (const a of sim.agents.filter((_, i) => i % 20 === 0)) {
      const values = await get({ port: a.port, community: 'public' }, [
        `${O.sysUpTime}.0`,
        `${O.ssCpuRaw.user}.0`,
        `${O.ssCpuRaw.idle}.0`,
        `${O.memTotalReal}.0`,
        `${O.ifXEntry}.1.2`,
        `${O.ifXEntry}.6.1`,
        `${O.ifXEntry}.10.2`,
        `${O.laEntry}.3.1`,
        `${O.hrStorageEntry}.3.32`,
      ]);
      expect(values).toEqual([
        360_000 + 1_000,
        1_000_000 + 300,
        1_000_000 + 1_500,
        8_388_608,
        'eth1',
        5_000_000_000_000n + 1_250_000n,
        7_000_000_000_000n + 625_000n,
        '0.15',
        '/data1',
      ]);
    }
  });

  it('walks a table: tag column then counters, row by row', async () => {
    now = T0 + 2_000;
    const session = snmp.createSession('127.0.0.1', 'public', {
      port: port('sim-7'),
      timeout: 1_000,
      retries: 0,
    });
    const rows = await new Promise<unknown>((resolve, reject) =>
      session.table(O.ifXEntry.slice(0, -2), 20, (error, table) => (error ? reject(error) : resolve(table))),
    );
    session.close();
    const shown = Object.fromEntries(
      Object.entries(rows as Record<string, Record<string, Buffer>>).map(([index, cells]) => [
        index,
        [cells[1]!.toString(), counter64Value(cells[6]!), counter64Value(cells[10]!)],
      ]),
    );
    expect(shown).toEqual({
      1: ['eth0', 5_000_000_250_000n, 7_000_000_125_000n],
      2: ['eth1', 5_000_000_250_000n, 7_000_000_125_000n],
    });
  });

  it('a Counter32 near 2^32 wraps, a counter resets at its moment, a Counter64 wraps at 2^64', async () => {
    const target = { port: port('sim-3'), community: 'public' };
    now = T0 + 4_000;
    expect(await get(target, [WRAP, RESET, BIG])).toEqual([
      2 ** 32 - 1_000,
      540,
      18_446_744_073_709_551_400n,
    ]);
    now = T0 + 7_000;
    expect(await get(target, [WRAP, BIG])).toEqual([2_000, 84n]);
    now = T0 + 21_000;
    expect(await get(target, [RESET])).toEqual([10]);
  });

  it('set replaces a script and restarts a counter from now', async () => {
    now = T0 + 30_000;
    await sim.set('sim-5', `${O.sysName}.0`, { type: 'OctetString', value: 'renamed' });
    await sim.set('sim-5', `${O.ssCpuRaw.user}.0`, { type: 'Counter32', start: 7, perSecond: 2 });
    now = T0 + 33_000;
    expect(
      await get({ port: port('sim-5'), community: 'public' }, [`${O.sysName}.0`, `${O.ssCpuRaw.user}.0`]),
    ).toEqual(['renamed', 13]);
    await expect(sim.set('sim-5', '1.3.6.1.9.9.0', { type: 'Integer', value: 1 })).rejects.toThrow(
      /serves no OID/,
    );
  });

  it('a stopped agent lets a GET time out while others answer; resumed, it answers again', async () => {
    const target = { port: port('sim-9'), community: 'public' };
    await sim.stop('sim-9');
    await expect(get(target, [`${O.sysName}.0`], 300)).rejects.toThrow(/timed out/i);
    expect(await get({ port: port('sim-10'), community: 'public' }, [`${O.sysName}.0`])).toEqual(['sim-10']);
    await sim.resume('sim-9');
    expect(await get(target, [`${O.sysName}.0`])).toEqual(['sim-9']);
  });

  it('serves SNMPv3 users at authPriv (SHA/AES, MD5/AES) and authNoPriv', async () => {
    for (const user of USERS)
      expect(await get({ port: port('sim-11'), user }, [`${O.sysName}.0`])).toEqual(['sim-11']);
  });

  it('refuses a wrong privacy key, a wrong auth key, an unknown user and a wrong community', async () => {
    const p = port('sim-12');
    errors.length = 0;
    const wrongPriv = { ...USERS[0]!, privKey: 'not-the-key' };
    const wrongAuth = { ...USERS[2]!, authKey: 'not-the-key' };
    const unknown = { ...USERS[2]!, user: 'nobody' };
    await expect(get({ port: p, user: wrongPriv }, [`${O.sysName}.0`], 400)).rejects.toThrow(/timed out/i);
    await expect(get({ port: p, user: wrongAuth }, [`${O.sysName}.0`], 400)).rejects.toThrow(/timed out/i);
    await expect(get({ port: p, user: unknown }, [`${O.sysName}.0`], 400)).rejects.toThrow(
      'Unknown User Name',
    );
    await expect(get({ port: p, community: 'private' }, [`${O.sysName}.0`], 300)).rejects.toThrow(
      /timed out/i,
    );
    // An unknown user gets a USM report; the other three are dropped and reported by the agent.
    expect(errors.map((e) => `${e.id} ${e.message}`)).toEqual([
      expect.stringMatching(/^sim-12 Failed to decrypt PDU/),
      expect.stringMatching(/^sim-12 Authentication digest \w+ received in message does not match/),
      'sim-12 Local community not found for message with community private',
    ]);
  });
});

/** Net-SNMP's own snmpget (an independent client), with a throwaway persistent folder. */
async function snmpget(port: number, args: string[], oid: string): Promise<string> {
  const dir = mkdtempSync(join(tmpdir(), 'argus-snmpget-'));
  try {
    const { stdout } = await execFileAsync(
      '/usr/bin/snmpget',
      ['-On', '-Oqv', '-t', '0.5', '-r', '0', ...args, `127.0.0.1:${port}`, oid],
      { env: { ...process.env, SNMP_PERSISTENT_DIR: dir, MIBS: '' } },
    );
    return stdout.trim();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

const DES_USER: SimUser = {
  user: 'md5-des',
  level: 'authPriv',
  authProtocol: 'md5',
  authKey: 'auth-pass-4',
  privProtocol: 'des',
  privKey: 'priv-pass-4',
};

describe('simulated agents in a child process', () => {
  let proc: AgentProcess;
  beforeAll(async () => {
    // DES exists in Node's OpenSSL 3 only with the legacy provider: the child gets it, this process not.
    proc = await startAgentProcess(
      Array.from({ length: 20 }, (_, i) => hostAgentSpec(`child-${i}`, { users: [DES_USER] })),
      { execArgv: ['--openssl-legacy-provider'] },
    );
  });
  afterAll(() => proc?.close());

  it('serves an MD5/DES authPriv user to snmpget, and refuses a wrong privacy key', async () => {
    const v3 = (privKey: string) => [
      '-v3',
      '-l',
      'authPriv',
      '-u',
      'md5-des',
      '-a',
      'MD5',
      '-A',
      'auth-pass-4',
      '-x',
      'DES',
      '-X',
      privKey,
    ];
    expect(await snmpget(proc.agents[2]!.port, v3('priv-pass-4'), `${O.sysName}.0`)).toBe('"child-2"');
    await expect(snmpget(proc.agents[2]!.port, v3('wrong-pass-4'), `${O.sysName}.0`)).rejects.toThrow(
      /Timeout: No Response/,
    );
  });

  it('answers from another process and obeys set, stop and resume', async () => {
    expect(proc.agents.map((a) => a.id)).toEqual(Array.from({ length: 20 }, (_, i) => `child-${i}`));
    const names = await Promise.all(
      proc.agents.map((a) => get({ port: a.port, community: 'public' }, [`${O.sysName}.0`])),
    );
    expect(names.flat()).toEqual(proc.agents.map((a) => a.id));
    const target = { port: proc.agents[4]!.port, community: 'public' };
    await proc.set('child-4', `${O.memAvailReal}.0`, { type: 'Integer', value: 1234 });
    expect(await get(target, [`${O.memAvailReal}.0`])).toEqual([1234]);
    await proc.stop('child-4');
    await expect(get(target, [`${O.sysName}.0`], 300)).rejects.toThrow(/timed out/i);
    await proc.resume('child-4');
    expect(await get(target, [`${O.sysName}.0`])).toEqual(['child-4']);
    await expect(proc.set('child-4', '1.3.6.1.9.9.0', { type: 'Integer', value: 1 })).rejects.toThrow(
      /serves no OID/,
    );
  });

  it('exits 0 when its stdin closes, and its agents stop answering', async () => {
    const target = { port: proc.agents[0]!.port, community: 'public' };
    await proc.close();
    expect(await proc.exited).toBe(0);
    await expect(get(target, [`${O.sysName}.0`], 300)).rejects.toThrow(/timed out/i);
  });
});
