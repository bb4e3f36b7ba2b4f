/**
 * Value conversion of the SNMP boundary as tables: varbind (as net-snmp hands it over) × metric set
 * entry → RawValue or a reason. The real agent is in test/host/snmpd.test.ts.
 */
import { describe, expect, it } from 'vitest';
import { classifyError } from './snmp.ts';
import {
  compareOids,
  floatFromOpaque,
  type MetricSpec,
  SnmpType,
  tableValues,
  tagOf,
  toRawValue,
  unsignedFromBytes,
  type VarbindLike,
} from './snmp-values.ts';
import type { TableMetric } from './types.ts';

const OID = '1.3.6.1.4.1.2021.11.50.0';
const gauge: MetricSpec = { name: 'm', type: 'gauge' };
const counter: MetricSpec = { name: 'm', type: 'counter' };
const vb = (type: number, value: unknown): VarbindLike => ({ oid: OID, type, value });
const float32 = (x: number): Buffer => {
  const b = Buffer.from([0x9f, 0x78, 0x04, 0, 0, 0, 0]);
  b.writeFloatBE(x, 3);
  return b;
};
const float64 = (x: number): Buffer => {
  const b = Buffer.from([0x9f, 0x79, 0x08, 0, 0, 0, 0, 0, 0, 0, 0]);
  b.writeDoubleBE(x, 3);
  return b;
};

describe('toRawValue', () => {
  const cases: [string, VarbindLike, MetricSpec, unknown][] = [
    [
      'Counter32 as a counter: width 32',
      vb(SnmpType.Counter32, 4_294_967_295),
      counter,
      { type: 'counter', width: 32, value: 4_294_967_295 },
    ],
    [
      'Counter64 of 8 bytes: width 64, big-endian',
      vb(SnmpType.Counter64, Buffer.from('0000000100000002', 'hex')),
      counter,
      { type: 'counter', width: 64, value: 2 ** 32 + 2 },
    ],
    [
      'Counter64 of 1 byte (leading zeros cut by the agent)',
      vb(SnmpType.Counter64, Buffer.from([0])),
      counter,
      { type: 'counter', width: 64, value: 0 },
    ],
    [
      'Counter64 of 9 bytes (sign byte) at 2^64 - 1',
      vb(SnmpType.Counter64, Buffer.from('00ffffffffffffffff', 'hex')),
      counter,
      { type: 'counter', width: 64, value: 2 ** 64 },
    ],
    [
      'Counter64 exact at 2^53',
      vb(SnmpType.Counter64, Buffer.from('0020000000000000', 'hex')),
      counter,
      { type: 'counter', width: 64, value: 2 ** 53 },
    ],
    [
      'Counter64 as a bigint',
      vb(SnmpType.Counter64, 12_345n),
      counter,
      { type: 'counter', width: 64, value: 12_345 },
    ],
    ['Gauge32 as a gauge: no width', vb(SnmpType.Gauge32, 42), gauge, { type: 'gauge', value: 42 }],
    ['Integer, negative', vb(SnmpType.Integer, -5), gauge, { type: 'gauge', value: -5 }],
    ['TimeTicks', vb(SnmpType.TimeTicks, 123_456), gauge, { type: 'gauge', value: 123_456 }],
    [
      'TimeTicks read as a counter wraps at 32 bits',
      vb(SnmpType.TimeTicks, 7),
      counter,
      { type: 'counter', width: 32, value: 7 },
    ],
    [
      'OctetString "0.15" (laLoad)',
      vb(SnmpType.OctetString, Buffer.from('0.15')),
      gauge,
      { type: 'gauge', value: 0.15 },
    ],
    [
      'OctetString with trailing NULs',
      vb(SnmpType.OctetString, Buffer.from('12\0\0')),
      gauge,
      { type: 'gauge', value: 12 },
    ],
    [
      'OctetString "-3e2"',
      vb(SnmpType.OctetString, Buffer.from('-3e2')),
      gauge,
      { type: 'gauge', value: -300 },
    ],
    ['Opaque float (laLoadFloat)', vb(SnmpType.Opaque, float32(0.5)), gauge, { type: 'gauge', value: 0.5 }],
    ['Opaque double', vb(SnmpType.Opaque, float64(0.1)), gauge, { type: 'gauge', value: 0.1 }],
    [
      'scale from the metric set (kB → bytes)',
      vb(SnmpType.Integer, 2),
      { name: 'm', type: 'gauge', scale: 1024 },
      { type: 'gauge', value: 2048 },
    ],
    [
      'scale on a counter',
      vb(SnmpType.Counter32, 3),
      { name: 'm', type: 'counter', scale: 8 },
      { type: 'counter', width: 32, value: 24 },
    ],
  ];
  it.each(cases)('%s', (_, varbind, metric, expected) => {
    const result = toRawValue(varbind, metric, { ifName: 'eth0' });
    expect(result).toEqual({
      ok: true,
      value: { metric: 'm', tags: { ifName: 'eth0' }, ...(expected as object) },
    });
  });

  const skipped: [string, VarbindLike, string][] = [
    ['noSuchObject', vb(SnmpType.NoSuchObject, null), 'noSuchObject'],
    ['noSuchInstance', vb(SnmpType.NoSuchInstance, null), 'noSuchInstance'],
    ['endOfMibView', vb(SnmpType.EndOfMibView, null), 'endOfMibView'],
    [
      'OctetString that is text',
      vb(SnmpType.OctetString, Buffer.from('up')),
      'OctetString "up" is not a number',
    ],
    ['empty OctetString', vb(SnmpType.OctetString, Buffer.alloc(0)), 'OctetString "" is not a number'],
    [
      'OctetString "1.2.3"',
      vb(SnmpType.OctetString, Buffer.from('1.2.3')),
      'OctetString "1.2.3" is not a number',
    ],
    [
      'Opaque that is not a float',
      vb(SnmpType.Opaque, Buffer.from([1, 2, 3])),
      'Opaque that is not a float or double',
    ],
    ['IpAddress', vb(SnmpType.IpAddress, '10.0.0.1'), 'IpAddress is not numeric'],
    ['OID', vb(SnmpType.OID, '1.3.6'), 'OID is not numeric'],
    ['Null', vb(SnmpType.Null, null), 'Null is not numeric'],
    ['an unknown type', vb(99, 1), 'type 99 is not numeric'],
  ];
  it.each(skipped)('%s is skipped with a reason', (_, varbind, reason) => {
    expect(toRawValue(varbind, gauge)).toEqual({ ok: false, reason });
  });
});

describe('byte decoders', () => {
  it('reads unsigned big-endian integers of any length', () => {
    expect(unsignedFromBytes(Buffer.alloc(0))).toBe(0);
    expect(unsignedFromBytes(Buffer.from('07eb4372', 'hex'))).toBe(0x07eb4372);
    expect(unsignedFromBytes(Buffer.from('001fffffffffffff', 'hex'))).toBe(2 ** 53 - 1);
  });
  it('decodes only the two Net-SNMP opaque encodings', () => {
    expect(floatFromOpaque(Buffer.from('9f78043f06e000', 'hex'))).toBeCloseTo(0.52685546875, 10);
    expect(floatFromOpaque(Buffer.from('9f78053f06e000', 'hex'))).toBeUndefined();
    expect(floatFromOpaque(Buffer.from('9f79043f06e000', 'hex'))).toBeUndefined();
  });
});

describe('tagOf', () => {
  it('reads OctetStrings as UTF-8 without trailing NULs', () => {
    expect(tagOf(vb(SnmpType.OctetString, Buffer.from('eth0\0')))).toBe('eth0');
    expect(tagOf(vb(SnmpType.OctetString, Buffer.from('Mémoire physique')))).toBe('Mémoire physique');
  });
  it('reads numbers and addresses as text, no value as undefined', () => {
    expect(tagOf(vb(SnmpType.Integer, 3))).toBe('3');
    expect(tagOf(vb(SnmpType.IpAddress, '10.1.2.3'))).toBe('10.1.2.3');
    expect(tagOf(vb(SnmpType.NoSuchInstance, null))).toBeUndefined();
  });
});

describe('compareOids', () => {
  it('orders arc by arc, numerically', () => {
    expect(['10', '9', '1.2', '1', '2.1'].sort(compareOids)).toEqual(['1', '1.2', '2.1', '9', '10']);
    expect(compareOids('3.4', '3.4')).toBe(0);
  });
});

describe('tableValues', () => {
  const table: TableMetric = {
    name: 'ifXTable',
    oid: '1.3.6.1.2.1.31.1.1.1',
    tag: { column: 1, name: 'ifName' },
    columns: [{ column: 6, name: 'if.in', type: 'counter', scale: 8 }],
  };
  const cell = (column: number, index: string, type: number, value: unknown): [string, VarbindLike] => [
    index,
    { oid: `${table.oid}.${column}.${index}`, type, value },
  ];
  it('joins columns by row index and tags each row; rows without tag or value go to missing', () => {
    const cells = new Map([
      [
        1,
        new Map([
          cell(1, '10', SnmpType.OctetString, Buffer.from('eth1')),
          cell(1, '2', SnmpType.OctetString, Buffer.from('eth0')),
        ]),
      ],
      [
        6,
        new Map([
          cell(6, '2', SnmpType.Counter64, Buffer.from([1, 0])),
          cell(6, '10', SnmpType.NoSuchInstance, null),
          cell(6, '11', SnmpType.Counter64, Buffer.from([1])),
        ]),
      ],
    ]);
    expect(tableValues(table, cells)).toEqual({
      values: [{ metric: 'if.in', tags: { ifName: 'eth0' }, type: 'counter', width: 64, value: 256 * 8 }],
      missing: [
        { oid: `${table.oid}.6.10`, reason: 'noSuchInstance' },
        { oid: `${table.oid}.1.11`, reason: 'row 11 of ifXTable has no ifName' },
      ],
    });
  });
});

describe('classifyError', () => {
  const v3 = {
    address: '127.0.0.1',
    snmp: { version: '3', user: 'mon', level: 'authPriv', port: 16100, timeoutMs: 500, retries: 1 },
  } as const;
  const named = (name: string, message: string, code?: unknown): Error =>
    Object.assign(new Error(message), { name, code });
  it.each([
    [
      named('RequestTimedOutError', 'Request timed out'),
      'timeout',
      'snmp v3 GET of 3 OIDs to 127.0.0.1:16100 timed out: no answer in 2 tries of 500 ms',
    ],
    [
      named('ResponseInvalidError', 'Wrong Digest (incorrect password, community or key)', 5),
      'auth',
      "snmp v3 authentication failed for user 'mon' at 127.0.0.1:16100: wrong digest (wrong auth password)",
    ],
    [
      named('ResponseInvalidError', 'Failed to decrypt PDU', 4),
      'auth',
      "snmp v3 authentication failed for user 'mon' at 127.0.0.1:16100: Failed to decrypt PDU",
    ],
    [
      named('Error', 'send EHOSTUNREACH', 'EHOSTUNREACH'),
      'unreachable',
      'snmp v3 GET of 3 OIDs: 127.0.0.1:16100 is unreachable (EHOSTUNREACH: send EHOSTUNREACH)',
    ],
    [
      named('RequestFailedError', 'TooBig', 1),
      'protocol',
      'snmp v3 GET of 3 OIDs at 127.0.0.1:16100 failed: TooBig',
    ],
  ])('%s → %s', (error, code, message) => {
    const failure = classifyError(error, v3, 'GET of 3 OIDs');
    expect({ code: failure.code, message: failure.message }).toEqual({ code, message });
  });
});
