/**
 * The sample files of actors/host and actors/inventory stay valid: they are what people copy.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseInventory } from '../inventory/inventory.ts';
import { DEFAULT_METRIC_SET } from './default-metricset.ts';
import { parseMetricSet } from './metricset.ts';

const read = (path: string) => readFileSync(new URL(path, import.meta.url), 'utf8');

describe('sample configuration', () => {
  it('sample-metricset.yaml is a valid metric set that extends the default', () => {
    const set = parseMetricSet(read('./sample-metricset.yaml'));
    expect(set.scalars.map((s) => s.name)).toEqual([
      ...DEFAULT_METRIC_SET.scalars.map((s) => s.name),
      'board.temp_c',
      'board.fan_errors',
    ]);
    expect(set.tables.map((t) => t.name)).toEqual([
      ...DEFAULT_METRIC_SET.tables.map((t) => t.name),
      'diskIOTable',
    ]);
  });

  it('sample-inventory.yaml parses with no rejected host', () => {
    const inv = parseInventory(read('../inventory/sample-inventory.yaml'));
    expect(inv.errors).toEqual([]);
    expect(inv.hosts.map((h) => [h.id, h.service, h.intervalMs, h.snmp?.version ?? null])).toEqual([
      ['web-01', 'web', 60_000, '2c'],
      ['web-02', 'web', 60_000, '2c'],
      ['db-01', 'mysql', 30_000, '3'],
      ['batch-07', 'batch', 60_000, null],
    ]);
    expect(inv.hosts[0]!.labels).toEqual({ team: 'payments', rack: 'r12' });
  });
});
