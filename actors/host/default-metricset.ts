/**
 * The metric set every service gets unless it says otherwise (and the base of `extends: 'default'`):
 * what any Net-SNMP agent on Linux answers, 16 scalar GETs plus three table walks per poll.
 * OIDs checked against UCD-SNMP-MIB, HOST-RESOURCES-MIB, IF-MIB and SNMPv2-MIB, and against a live
 * Net-SNMP 5.9 `snmpd`.
 *
 * Choices worth knowing:
 * - CPU: the UCD `ssCpuRaw*` tick counters (Counter32, 1/100 s, summed over all CPUs). Kernel (.55)
 *   is left out: Linux does not implement it (its time is in system). Guest and guest-nice (.65, .66)
 *   are left out: Linux already counts them inside user and nice, so adding them would count twice.
 *   `cpu.busy_pct` counts iowait as idle (the CPU was free to run other work, as vmstat/top see it);
 *   steal counts as busy (this host could not use that time). `cpu.wait_pct` is still emitted.
 * - Memory: UCD values are in kB, scaled ×1024 to bytes. On Linux, Net-SNMP's memAvailReal is
 *   MemFree (not the kernel's MemAvailable), so `mem.available` excludes reclaimable cache; buffers and
 *   cached are emitted for rules that need "free + buffers + cached". No `mem.used_pct`: a ratio cannot
 *   express (total − free − buffers − cached)/total; HOST-RESOURCES' "Physical memory" row in
 *   `disk.used_pct` gives used (including cache) / total.
 * - Load: laLoad is a DisplayString ("0.15"); the SNMP reader turns numeric strings into numbers.
 * - Interfaces: 64-bit octet counters from ifXTable tagged by ifName; error and discard counters (only
 *   32-bit ones exist) from ifTable tagged by ifDescr (on Linux both are the interface name).
 * - Storage: hrStorageSize/Used are in allocation units; the ratio cancels them out.
 *   `disk.alloc_units` is there for rules that need bytes (size × alloc_units).
 * - Uptime: sysUpTime is TimeTicks (1/100 s), scaled ×0.01 to seconds. It is the agent's uptime: it
 *   goes down when snmpd restarts (or after ~497 days, when TimeTicks wrap), and derive.ts takes that as
 *   a reset of every counter — which is what an agent restart means for the counters it serves.
 */
import type { MetricSet } from './types.ts';

const UCD = '1.3.6.1.4.1.2021';
const CPU_STATES = {
  user: 50,
  nice: 51,
  system: 52,
  idle: 53,
  wait: 54,
  interrupt: 56,
  softirq: 61,
  steal: 64,
} as const;

export const DEFAULT_METRIC_SET: MetricSet = {
  scalars: [
    ...Object.entries(CPU_STATES).map(([state, n]) => ({
      name: `cpu.raw.${state}`,
      oid: `${UCD}.11.${n}.0`,
      type: 'counter' as const,
      unit: 'ticks',
    })),
    { name: 'mem.total', oid: `${UCD}.4.5.0`, type: 'gauge', unit: 'bytes', scale: 1024 },
    { name: 'mem.available', oid: `${UCD}.4.6.0`, type: 'gauge', unit: 'bytes', scale: 1024 },
    { name: 'mem.buffers', oid: `${UCD}.4.14.0`, type: 'gauge', unit: 'bytes', scale: 1024 },
    { name: 'mem.cached', oid: `${UCD}.4.15.0`, type: 'gauge', unit: 'bytes', scale: 1024 },
    { name: 'load.1', oid: `${UCD}.10.1.3.1`, type: 'gauge' },
    { name: 'load.5', oid: `${UCD}.10.1.3.2`, type: 'gauge' },
    { name: 'load.15', oid: `${UCD}.10.1.3.3`, type: 'gauge' },
    { name: 'sys.uptime', oid: '1.3.6.1.2.1.1.3.0', type: 'gauge', unit: 's', scale: 0.01 },
  ],
  tables: [
    {
      name: 'ifXTable',
      oid: '1.3.6.1.2.1.31.1.1.1',
      tag: { column: 1, name: 'ifName' },
      columns: [
        { column: 6, name: 'if.in_octets', type: 'counter', unit: 'bytes' },
        { column: 10, name: 'if.out_octets', type: 'counter', unit: 'bytes' },
      ],
    },
    {
      name: 'ifTable',
      oid: '1.3.6.1.2.1.2.2.1',
      tag: { column: 2, name: 'ifDescr' },
      columns: [
        { column: 13, name: 'if.in_discards', type: 'counter', unit: 'packets' },
        { column: 14, name: 'if.in_errors', type: 'counter', unit: 'packets' },
        { column: 19, name: 'if.out_discards', type: 'counter', unit: 'packets' },
        { column: 20, name: 'if.out_errors', type: 'counter', unit: 'packets' },
      ],
    },
    {
      name: 'hrStorageTable',
      oid: '1.3.6.1.2.1.25.2.3.1',
      tag: { column: 3, name: 'hrStorageDescr' },
      columns: [
        { column: 4, name: 'disk.alloc_units', type: 'gauge', unit: 'bytes' },
        { column: 5, name: 'disk.size', type: 'gauge', unit: 'units' },
        { column: 6, name: 'disk.used', type: 'gauge', unit: 'units' },
      ],
    },
  ],
  derived: [
    {
      kind: 'cpu',
      name: 'cpu',
      ticks: Object.fromEntries(Object.keys(CPU_STATES).map((s) => [s, `cpu.raw.${s}`])),
      idle: ['idle', 'wait'],
    },
    {
      kind: 'ratio',
      name: 'disk.used_pct',
      numerator: 'disk.used',
      denominator: 'disk.size',
      factor: 100,
      unit: '%',
    },
  ],
};
