import { describe, expect, it } from 'vitest';
import { isArgusError } from '../../runtime/errors.ts';
import { DEFAULT_METRIC_SET } from './default-metricset.ts';
import { parseMetricSet, resolveMetricSet } from './metricset.ts';
import type { MetricSet } from './types.ts';

const EMPTY: MetricSet = { scalars: [], tables: [], derived: [] };

/** The problems a document is rejected with (fails the test if it is accepted). */
const problemsOf = (doc: unknown, defaults: MetricSet = EMPTY): string[] => {
  try {
    resolveMetricSet(doc, defaults);
  } catch (e) {
    if (isArgusError(e, 'ARGUS_ERR_INVALID_CONFIG')) return e.detail.problems as string[];
    throw e;
  }
  throw new Error('accepted an invalid document');
};

const scalar = (name: string, type = 'gauge', oid = '1.3.6.1.2.1.1.3.0') => ({ name, oid, type });
const table = (name: string, tag: string, columns: { column: number; name: string; type: string }[]) => ({
  name,
  oid: '1.3.6.1.2.1.2.2.1',
  tag: { column: 2, name: tag },
  columns,
});

describe('parseMetricSet: valid documents', () => {
  it('fills defaults, strips a leading dot and keeps only what was given', () => {
    const doc = {
      scalars: [{ name: 'sys.uptime', oid: '.1.3.6.1.2.1.1.3.0', type: 'gauge', scale: 0.01, unit: 's' }],
      tables: [table('ifTable', 'ifDescr', [{ column: 14, name: 'if.in_errors', type: 'counter' }])],
      derived: [
        { kind: 'ratio', name: 'r', numerator: 'if.in_errors.rate', denominator: 'if.in_errors.rate' },
        { kind: 'cpu', name: 'cpu', ticks: { errors: 'if.in_errors' } },
      ],
    };
    expect(parseMetricSet(doc)).toEqual({
      scalars: [{ name: 'sys.uptime', oid: '1.3.6.1.2.1.1.3.0', type: 'gauge', scale: 0.01, unit: 's' }],
      tables: [
        {
          name: 'ifTable',
          oid: '1.3.6.1.2.1.2.2.1',
          tag: { column: 2, name: 'ifDescr' },
          columns: [{ column: 14, name: 'if.in_errors', type: 'counter' }],
        },
      ],
      derived: [
        {
          kind: 'ratio',
          name: 'r',
          numerator: 'if.in_errors.rate',
          denominator: 'if.in_errors.rate',
          factor: 1,
        },
        { kind: 'cpu', name: 'cpu', ticks: { errors: 'if.in_errors' }, idle: [] },
      ],
    });
  });

  it('accepts an empty document as an empty set', () => {
    expect(parseMetricSet({})).toEqual(EMPTY);
  });

  it('reads YAML and JSON text', () => {
    const yaml = [
      'scalars:',
      '  - name: load.1',
      '    oid: 1.3.6.1.4.1.2021.10.1.3.1',
      '    type: gauge',
      'derived:',
      '  - { kind: ratio, name: load.ratio, numerator: load.1, denominator: load.1, factor: 2 }',
    ].join('\n');
    const expected = {
      scalars: [{ name: 'load.1', oid: '1.3.6.1.4.1.2021.10.1.3.1', type: 'gauge' }],
      tables: [],
      derived: [{ kind: 'ratio', name: 'load.ratio', numerator: 'load.1', denominator: 'load.1', factor: 2 }],
    };
    expect(parseMetricSet(yaml)).toEqual(expected);
    expect(parseMetricSet(JSON.stringify(expected))).toEqual(expected);
  });

  it("extends 'default': own entries replace same-named ones and the rest is added", () => {
    const r = parseMetricSet({
      extends: 'default',
      scalars: [
        { name: 'load.1', oid: '1.3.6.1.4.1.2021.10.1.3.1', type: 'gauge', unit: 'procs' },
        scalar('app.sessions'),
      ],
      derived: [
        { kind: 'ratio', name: 'mem.free_ratio', numerator: 'mem.available', denominator: 'mem.total' },
      ],
    });
    expect(r.scalars.filter((s) => s.name === 'load.1')).toEqual([
      { name: 'load.1', oid: '1.3.6.1.4.1.2021.10.1.3.1', type: 'gauge', unit: 'procs' },
    ]);
    expect(r.scalars).toHaveLength(DEFAULT_METRIC_SET.scalars.length + 1);
    expect(r.scalars.at(-1)?.name).toBe('app.sessions');
    expect(r.tables).toEqual(DEFAULT_METRIC_SET.tables);
    expect(r.derived.map((d) => d.name)).toEqual(['cpu', 'disk.used_pct', 'mem.free_ratio']);
  });

  it('without extends the defaults are not used', () => {
    expect(resolveMetricSet({ scalars: [scalar('a')] }, DEFAULT_METRIC_SET).scalars).toEqual([scalar('a')]);
  });
});

describe('parseMetricSet: every problem, by field path', () => {
  const cpu = (ticks: Record<string, string>, idle: string[] = []) => ({
    kind: 'cpu',
    name: 'cpu',
    ticks,
    idle,
  });
  it.each<[string, unknown, string[]]>([
    [
      'a wrong type',
      { scalars: [scalar('a', 'count')] },
      ["scalars[0].type: must be 'gauge' or 'counter', got 'count'"],
    ],
    [
      'a non-numeric OID',
      { scalars: [{ ...scalar('a'), oid: 'sysUpTime.0' }] },
      ['scalars[0].oid: must be a numeric OID like 1.3.6.1.2.1.1.3.0'],
    ],
    [
      'an OID arc past 2^32',
      { scalars: [{ ...scalar('a'), oid: '1.3.4294967296' }] },
      ['scalars[0].oid: must be a numeric OID like 1.3.6.1.2.1.1.3.0'],
    ],
    [
      'an OID of one arc',
      { scalars: [{ ...scalar('a'), oid: '1' }] },
      ['scalars[0].oid: must be a numeric OID like 1.3.6.1.2.1.1.3.0'],
    ],
    [
      'a bad name',
      { scalars: [scalar('9lives')] },
      [
        'scalars[0].name: must be a name like mem.total (letters, digits, _ and ., not starting with a digit)',
      ],
    ],
    ['a missing field', { scalars: [{ name: 'a', oid: '1.3.6' }] }, ['scalars[0].type: is required']],
    [
      'an unknown field',
      { scalars: [{ ...scalar('a'), scael: 2 }] },
      ["scalars[0]: unknown field(s) 'scael'"],
    ],
    [
      'a zero scale',
      { scalars: [{ ...scalar('a'), scale: 0 }] },
      ['scalars[0].scale: must be a number above 0'],
    ],
    ['an empty unit', { scalars: [{ ...scalar('a'), unit: '' }] }, ['scalars[0].unit: must not be empty']],
    ['scalars not a list', { scalars: 5 }, ['scalars: must be array, got 5']],
    ['an unknown top-level field', { scalar: [] }, ["(root): unknown field(s) 'scalar'"]],
    ['extends something else', { extends: 'base' }, ["extends: must be 'default', got 'base'"]],
    [
      'a fractional column',
      { tables: [table('t', 'x', [{ column: 1.5, name: 'a', type: 'gauge' }])] },
      ['tables[0].columns[0].column: must be a positive integer'],
    ],
    [
      'a zero tag column',
      {
        tables: [
          { ...table('t', 'x', [{ column: 1, name: 'a', type: 'gauge' }]), tag: { column: 0, name: 'x' } },
        ],
      },
      ['tables[0].tag.column: must be a positive integer'],
    ],
    [
      'a table without columns',
      { tables: [table('t', 'x', [])] },
      ['tables[0].columns: must list at least one column'],
    ],
    [
      'a column type in a second table',
      {
        tables: [
          table('t', 'x', [{ column: 1, name: 'a', type: 'gauge' }]),
          table('u', 'x', [{ column: 1, name: 'b', type: 'count' }]),
        ],
      },
      ["tables[1].columns[0].type: must be 'gauge' or 'counter', got 'count'"],
    ],
    [
      'a column number used twice',
      {
        tables: [
          table('t', 'x', [
            { column: 3, name: 'a', type: 'gauge' },
            { column: 3, name: 'b', type: 'gauge' },
          ]),
        ],
      },
      ['tables[0].columns[1].column: 3 is already used by columns[0]'],
    ],
    [
      'a table name used twice',
      {
        tables: [
          table('t', 'x', [{ column: 3, name: 'a', type: 'gauge' }]),
          table('t', 'x', [{ column: 3, name: 'b', type: 'gauge' }]),
        ],
      },
      ["tables[1].name: table 't' is already defined at tables[0]"],
    ],
    [
      'a metric name used twice',
      { scalars: [scalar('a')], tables: [table('t', 'x', [{ column: 3, name: 'a', type: 'gauge' }])] },
      ["tables[0].columns[0].name: 'a' is already used by scalars[0].name"],
    ],
    [
      "a name that a counter's rate takes",
      { scalars: [scalar('c', 'counter'), scalar('c.rate')] },
      ["scalars[1].name: 'c.rate' is already used by scalars[0].name"],
    ],
    [
      'an unknown derived kind',
      { derived: [{ kind: 'sum', name: 'x' }] },
      ["derived[0].kind: must be 'ratio' or 'cpu', got 'sum'"],
    ],
    ['a derived metric without kind', { derived: [{ name: 'x' }] }, ['derived[0].kind: is required']],
    [
      'a ratio of unknown metrics',
      {
        scalars: [scalar('g')],
        derived: [{ kind: 'ratio', name: 'r', numerator: 'g.rate', denominator: 'nope' }],
      },
      [
        "derived[0].numerator: 'g.rate' is not a metric of this set (nor a counter's .rate)",
        "derived[0].denominator: 'nope' is not a metric of this set (nor a counter's .rate)",
      ],
    ],
    [
      'a ratio across series',
      {
        scalars: [scalar('g')],
        tables: [table('t', 'ifDescr', [{ column: 3, name: 'a', type: 'gauge' }])],
        derived: [{ kind: 'ratio', name: 'r', numerator: 'a', denominator: 'g' }],
      },
      ['derived[0]: numerator and denominator never share a series (tagged by ifDescr vs scalar)'],
    ],
    [
      'a ratio named like a metric',
      { scalars: [scalar('g')], derived: [{ kind: 'ratio', name: 'g', numerator: 'g', denominator: 'g' }] },
      ["derived[0].name: 'g' is already used by scalars[0].name"],
    ],
    [
      'cpu ticks that are gauges or unknown',
      { scalars: [scalar('g')], derived: [cpu({ user: 'g', idle: 'nope' })] },
      [
        "derived[0].ticks.user: 'g' must be a counter (ticks)",
        "derived[0].ticks.idle: 'nope' is not a metric of this set",
      ],
    ],
    [
      'a cpu idle state not in ticks',
      { scalars: [scalar('t', 'counter')], derived: [cpu({ user: 't' }, ['idle'])] },
      ["derived[0].idle[0]: 'idle' is not one of the states in ticks"],
    ],
    [
      'a bad cpu state name',
      { scalars: [scalar('t', 'counter')], derived: [cpu({ 'io-wait': 't' })] },
      ['derived[0].ticks.io-wait: must be a state name (letters, digits, _)'],
    ],
    ['cpu without ticks', { derived: [cpu({})] }, ['derived[0].ticks: must name at least one state']],
    [
      'a tick counter used by two cpu derivations',
      {
        scalars: [scalar('t', 'counter')],
        derived: [cpu({ user: 't' }), { ...cpu({ user: 't' }), name: 'cpu2' }],
      },
      ["derived[1].ticks.user: 't' is already used by derived[0]"],
    ],
    [
      'a metric named like a cpu percentage',
      { scalars: [scalar('t', 'counter'), scalar('cpu.busy_pct')], derived: [cpu({ user: 't' })] },
      ["derived[0].name: emits 'cpu.busy_pct', already used by scalars[1].name"],
    ],
    ['a number', 5, ['(root): must be an object with scalars, tables and derived, got 5']],
    ['a list', [], ['(root): must be an object with scalars, tables and derived, got []']],
    ['empty text', '', ['(root): must be an object with scalars, tables and derived, got null']],
    [
      'broken YAML',
      'scalars: [',
      [
        '(root): is not valid YAML or JSON: Flow sequence in block collection must be sufficiently indented and end with a ] at line 1, column 11:',
      ],
    ],
  ])('%s', (_, doc, problems) => {
    expect(problemsOf(doc)).toEqual(problems);
  });

  it('lists every problem at once, with the indexes of the document', () => {
    const doc = {
      scalars: [scalar('a', 'count'), { name: '9x', oid: '1.3.x' }, scalar('b')],
      derived: [{ kind: 'rat' }, { kind: 'ratio', name: 'r', numerator: 'b', denominator: 'zz' }],
    };
    expect(problemsOf(doc)).toEqual([
      "scalars[0].type: must be 'gauge' or 'counter', got 'count'",
      'scalars[1].name: must be a name like mem.total (letters, digits, _ and ., not starting with a digit)',
      'scalars[1].oid: must be a numeric OID like 1.3.6.1.2.1.1.3.0',
      'scalars[1].type: is required',
      "derived[0].kind: must be 'ratio' or 'cpu', got 'rat'",
      "derived[1].denominator: 'zz' is not a metric of this set (nor a counter's .rate)",
    ]);
  });

  it('does not report references to an entry that is itself broken', () => {
    const doc = {
      scalars: [scalar('a', 'count')],
      derived: [{ kind: 'ratio', name: 'r', numerator: 'a', denominator: 'a.rate' }],
    };
    expect(problemsOf(doc)).toEqual(["scalars[0].type: must be 'gauge' or 'counter', got 'count'"]);
  });

  it('reports a clash with the default set on the own entry', () => {
    expect(problemsOf({ extends: 'default', scalars: [scalar('if.in_octets')] }, DEFAULT_METRIC_SET)).toEqual(
      ["scalars[0].name: 'if.in_octets' is already used by default.tables[0].columns[0].name"],
    );
  });

  it('throws a coded error whose message carries the problems', () => {
    expect(() => parseMetricSet({ scalars: [scalar('a', 'count')] })).toThrow(
      "ARGUS_ERR_INVALID_CONFIG: invalid metric set: scalars[0].type: must be 'gauge' or 'counter', got 'count'",
    );
  });
});

describe('parseMetricSet: fuzz', () => {
  // A small seeded PRNG (mulberry32) so a failure is reproducible.
  const prng = (seed: number) => () => {
    seed = (seed + 0x6d2b79f5) | 0;
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const words = [
    'scalars',
    'tables',
    'derived',
    'extends',
    'default',
    'name',
    'oid',
    'type',
    'gauge',
    'counter',
    'column',
    'columns',
    'tag',
    'kind',
    'ratio',
    'cpu',
    'ticks',
    'idle',
    'numerator',
    'denominator',
    'factor',
    'scale',
    'unit',
    '1.3.6.1',
    '.1.3',
    'a',
    'a.rate',
    '__proto__',
    'constructor',
    'toString',
    '',
  ];
  const value = (r: () => number, depth: number): unknown => {
    const pick = Math.floor(r() * (depth > 3 ? 6 : 9));
    switch (pick) {
      case 0:
        return words[Math.floor(r() * words.length)];
      case 1:
        return Math.floor(r() * 40) - 5;
      case 2:
        return [Number.NaN, Number.POSITIVE_INFINITY, -0, 1.5, 2 ** 60][Math.floor(r() * 5)];
      case 3:
        return r() < 0.5;
      case 4:
        return null;
      case 5:
        return undefined;
      case 6:
      case 7: {
        const o: Record<string, unknown> = {};
        for (let i = Math.floor(r() * 5); i > 0; i--)
          o[words[Math.floor(r() * words.length)] ?? 'x'] = value(r, depth + 1);
        return o;
      }
      default:
        return Array.from({ length: Math.floor(r() * 4) }, () => value(r, depth + 1));
    }
  };

  it('never throws anything but the coded error, for 3000 random documents', () => {
    const r = prng(42);
    let rejected = 0;
    for (let i = 0; i < 3000; i++) {
      const doc = value(r, 0);
      const input = r() < 0.2 ? (JSON.stringify(doc) ?? 'null') : doc;
      try {
        parseMetricSet(input);
      } catch (e) {
        rejected++;
        expect(isArgusError(e, 'ARGUS_ERR_INVALID_CONFIG'), String(e)).toBe(true);
        expect((e as Error).message).toMatch(/^ARGUS_ERR_INVALID_CONFIG: invalid metric set: \S/);
      }
    }
    expect(rejected).toBeGreaterThan(2000);
  });
});

describe('DEFAULT_METRIC_SET', () => {
  it('passes its own validation unchanged, and is what extends with nothing adds up to', () => {
    expect(parseMetricSet(DEFAULT_METRIC_SET)).toEqual(DEFAULT_METRIC_SET);
    expect(parseMetricSet({ extends: 'default' })).toEqual(DEFAULT_METRIC_SET);
  });

  it('asks for at most 20 scalar OIDs, each once', () => {
    const oids = DEFAULT_METRIC_SET.scalars.map((s) => s.oid);
    expect(oids.length).toBeLessThanOrEqual(20);
    expect(new Set(oids).size).toBe(oids.length);
  });

  // The standard OIDs, as the MIBs define them (checked against a live Net-SNMP 5.9 agent).
  it.each([
    ['cpu.raw.user', '1.3.6.1.4.1.2021.11.50.0', 'counter'], // UCD-SNMP-MIB::ssCpuRawUser.0
    ['cpu.raw.nice', '1.3.6.1.4.1.2021.11.51.0', 'counter'], // ssCpuRawNice
    ['cpu.raw.system', '1.3.6.1.4.1.2021.11.52.0', 'counter'], // ssCpuRawSystem
    ['cpu.raw.idle', '1.3.6.1.4.1.2021.11.53.0', 'counter'], // ssCpuRawIdle
    ['cpu.raw.wait', '1.3.6.1.4.1.2021.11.54.0', 'counter'], // ssCpuRawWait
    ['cpu.raw.interrupt', '1.3.6.1.4.1.2021.11.56.0', 'counter'], // ssCpuRawInterrupt
    ['cpu.raw.softirq', '1.3.6.1.4.1.2021.11.61.0', 'counter'], // ssCpuRawSoftIRQ
    ['cpu.raw.steal', '1.3.6.1.4.1.2021.11.64.0', 'counter'], // ssCpuRawSteal
    ['mem.total', '1.3.6.1.4.1.2021.4.5.0', 'gauge'], // memTotalReal
    ['mem.available', '1.3.6.1.4.1.2021.4.6.0', 'gauge'], // memAvailReal
    ['mem.buffers', '1.3.6.1.4.1.2021.4.14.0', 'gauge'], // memBuffer
    ['mem.cached', '1.3.6.1.4.1.2021.4.15.0', 'gauge'], // memCached
    ['load.1', '1.3.6.1.4.1.2021.10.1.3.1', 'gauge'], // laLoad.1
    ['load.5', '1.3.6.1.4.1.2021.10.1.3.2', 'gauge'], // laLoad.2
    ['load.15', '1.3.6.1.4.1.2021.10.1.3.3', 'gauge'], // laLoad.3
    ['sys.uptime', '1.3.6.1.2.1.1.3.0', 'gauge'], // SNMPv2-MIB::sysUpTime.0
  ])('%s is %s (%s)', (name, oid, type) => {
    expect(DEFAULT_METRIC_SET.scalars.find((s) => s.name === name)).toMatchObject({ oid, type });
  });

  it('scales kB to bytes and TimeTicks to seconds', () => {
    const scaleOf = (n: string) => DEFAULT_METRIC_SET.scalars.find((s) => s.name === n)?.scale;
    expect(['mem.total', 'mem.available', 'mem.buffers', 'mem.cached'].map(scaleOf)).toEqual([
      1024, 1024, 1024, 1024,
    ]);
    expect(scaleOf('sys.uptime')).toBe(0.01);
  });

  it('walks ifXTable, ifTable and hrStorageTable by their standard columns', () => {
    const shape = DEFAULT_METRIC_SET.tables.map((t) => [
      t.name,
      t.oid,
      t.tag.column,
      t.tag.name,
      t.columns.map((c) => `${c.column}:${c.name}:${c.type}`),
    ]);
    expect(shape).toEqual([
      [
        'ifXTable',
        '1.3.6.1.2.1.31.1.1.1',
        1,
        'ifName',
        ['6:if.in_octets:counter', '10:if.out_octets:counter'],
      ],
      [
        'ifTable',
        '1.3.6.1.2.1.2.2.1',
        2,
        'ifDescr',
        [
          '13:if.in_discards:counter',
          '14:if.in_errors:counter',
          '19:if.out_discards:counter',
          '20:if.out_errors:counter',
        ],
      ],
      [
        'hrStorageTable',
        '1.3.6.1.2.1.25.2.3.1',
        3,
        'hrStorageDescr',
        ['4:disk.alloc_units:gauge', '5:disk.size:gauge', '6:disk.used:gauge'],
      ],
    ]);
  });

  it('derives cpu from every tick counter, with iowait as idle, and disk.used_pct from used/size', () => {
    const cpu = DEFAULT_METRIC_SET.derived.find((d) => d.kind === 'cpu');
    const ticks = DEFAULT_METRIC_SET.scalars.filter((s) => s.name.startsWith('cpu.raw.')).map((s) => s.name);
    expect(cpu && Object.values(cpu.ticks)).toEqual(ticks);
    expect(cpu?.kind === 'cpu' && cpu.idle).toEqual(['idle', 'wait']);
    expect(DEFAULT_METRIC_SET.derived.find((d) => d.name === 'disk.used_pct')).toEqual({
      kind: 'ratio',
      name: 'disk.used_pct',
      numerator: 'disk.used',
      denominator: 'disk.size',
      factor: 100,
      unit: '%',
    });
  });
});
