/**
 * The whole path against Debian's snmpd: a host entity polling it with the default metric set, through
 * the runtime (poller → mailbox → host entity → metrics stream). Its samples must say what Net-SNMP's
 * own tools read from the same agent: memory exactly, every storage row and its size exactly, the
 * interface tables' rows by name, uptime between two readings; CPU percentages add up.
 */
import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MetricsRecord } from '../../actors/host/host.ts';
import { type HostMetrics, hostMetrics } from '../../actors/host/host-metrics.ts';
import { staticInventory } from '../../actors/inventory/sources.ts';
import { createRuntime, type Runtime } from '../../runtime/runtime.ts';
import { type RunningSnmpd, startSnmpd } from '../../scripts/services/snmpd.ts';
import { waitFor } from '../helpers/wait.ts';

const run = promisify(execFile);
const COMMUNITY = 'argus-host';
const dir = mkdtempSync(join(tmpdir(), 'argus-snmpd-host-'));
let agent: RunningSnmpd;
let rt: Runtime;
let hm: HostMetrics;
const records: MetricsRecord[] = [];

beforeAll(async () => {
  agent = await startSnmpd({ community: COMMUNITY });
  hm = hostMetrics({
    inventory: staticInventory([
      {
        id: 'snmpd',
        address: agent.address,
        snmp: { version: '2c', community: COMMUNITY, port: agent.port, timeoutMs: 2_000, retries: 1 },
        service: 'default',
        labels: { agent: 'net-snmp' },
        intervalMs: 1_000,
      },
    ]),
  });
  rt = createRuntime({ mode: 'embedded', dataDir: dir, http: false, shards: 2 });
  rt.use(hm);
  rt.onOutput('metrics', (outs) => {
    for (const o of outs) records.push(o.value as MetricsRecord);
  });
  await rt.start();
}, 60_000);

afterAll(async () => {
  await rt?.stop();
  await agent?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const args = () => [
  '-v2c',
  '-c',
  COMMUNITY,
  '-m',
  '',
  '-On',
  '-t',
  '2',
  '-r',
  '1',
  `${agent.address}:${agent.port}`,
];

const snmpget = async (oid: string): Promise<number> => {
  const { stdout } = await run('snmpget', ['-Oqvt', ...args(), oid], { env: agent.toolEnv });
  return Number(stdout.trim().replace(/^"|"$/g, ''));
};

/** snmpbulkwalk of a column: index → value as printed. */
const walk = async (oid: string): Promise<Map<string, string>> => {
  const { stdout } = await run('snmpbulkwalk', ['-Oq', ...args(), oid], { env: agent.toolEnv });
  const rows = new Map<string, string>();
  for (const line of stdout.trim().split('\n')) {
    const m = /^\.(\S+) (.*)$/.exec(line);
    if (m?.[1]?.startsWith(`${oid}.`))
      rows.set(m[1].slice(oid.length + 1), (m[2] ?? '').replace(/^"|"$/g, ''));
  }
  return rows;
};

const sample = (r: MetricsRecord, metric: string, tags: Record<string, string> = {}) =>
  r.samples.find((s) => s.metric === metric && JSON.stringify(s.tags) === JSON.stringify(tags))?.value;

describe('a host entity polling Debian snmpd with the default metric set', () => {
  it('reports what snmpget and snmpbulkwalk read from the same agent', async () => {
    const before = await snmpget('1.3.6.1.2.1.1.3.0');
    // The second record of the host is the first with counter rates and CPU percentages.
    await waitFor(
      'two polls of snmpd',
      () => records.filter((r) => r.host === 'snmpd').length >= 2,
      20_000,
      50,
    );
    const after = await snmpget('1.3.6.1.2.1.1.3.0');
    const [first, second] = records.filter((r) => r.host === 'snmpd');
    expect(first!.labels).toEqual({ agent: 'net-snmp' });

    expect(sample(second!, 'mem.total')).toBe((await snmpget('1.3.6.1.4.1.2021.4.5.0')) * 1024);
    const uptime = sample(first!, 'sys.uptime') as number;
    expect(uptime).toBeGreaterThanOrEqual(Math.floor(before) / 100 - 0.01);
    expect(uptime).toBeLessThanOrEqual(after / 100 + 0.01);

    // Storage: the same rows, by description, with the same sizes and allocation units.
    const descr = await walk('1.3.6.1.2.1.25.2.3.1.3');
    const size = await walk('1.3.6.1.2.1.25.2.3.1.5');
    const units = await walk('1.3.6.1.2.1.25.2.3.1.4');
    const sizes = second!.samples.filter((s) => s.metric === 'disk.size');
    expect(sizes.map((s) => s.tags.hrStorageDescr).sort()).toEqual([...descr.values()].sort());
    for (const [index, name] of descr) {
      expect(sample(second!, 'disk.size', { hrStorageDescr: name })).toBe(Number(size.get(index)));
      expect(sample(second!, 'disk.alloc_units', { hrStorageDescr: name })).toBe(
        Number(units.get(index)!.split(' ')[0]),
      );
    }

    // Interfaces: one rate series per ifName (ifXTable) and per ifDescr (ifTable), as walked.
    const ifNames = [...(await walk('1.3.6.1.2.1.31.1.1.1.1')).values()].sort();
    const ifDescrs = [...(await walk('1.3.6.1.2.1.2.2.1.2')).values()].sort();
    const tagsOf = (metric: string, tag: string) =>
      second!.samples
        .filter((s) => s.metric === metric)
        .map((s) => s.tags[tag])
        .sort();
    expect(tagsOf('if.in_octets.rate', 'ifName')).toEqual(ifNames);
    expect(tagsOf('if.out_octets.rate', 'ifName')).toEqual(ifNames);
    expect(tagsOf('if.in_errors.rate', 'ifDescr')).toEqual(ifDescrs);
    for (const s of second!.samples.filter((x) => x.metric.startsWith('if.')))
      expect(s.value).toBeGreaterThanOrEqual(0);

    // CPU: snmpd refreshes its tick counters every few seconds, so the percentages come with the first
    // poll that saw them move. The states add up to 100, busy = 100 - idle - wait.
    const withCpu = await waitFor(
      'a poll with CPU percentages',
      () => records.find((r) => r.host === 'snmpd' && sample(r, 'cpu.busy_pct') !== undefined),
      30_000,
      100,
    );
    const cpu = withCpu.samples.filter(
      (s) => /^cpu\.[a-z]+_pct$/.test(s.metric) && s.metric !== 'cpu.busy_pct',
    );
    expect(cpu.map((s) => s.metric).sort()).toEqual(
      ['idle', 'interrupt', 'nice', 'softirq', 'steal', 'system', 'user', 'wait'].map(
        (st) => `cpu.${st}_pct`,
      ),
    );
    const total = cpu.reduce((n, s) => n + (s.value as number), 0);
    expect(total).toBeCloseTo(100, 6);
    const busy = sample(withCpu, 'cpu.busy_pct') as number;
    expect(busy).toBeCloseTo(
      100 - (sample(withCpu, 'cpu.idle_pct') as number) - (sample(withCpu, 'cpu.wait_pct') as number),
      6,
    );

    const summary = (await rt.ask('host', 'snmpd', 'summary')) as { status: string; failures: number };
    expect(summary).toMatchObject({ status: 'reachable', failures: 0 });
    expect(hm.pollerStats()).toMatchObject({ failed: 0, sendErrors: 0 });
  }, 60_000);
});
