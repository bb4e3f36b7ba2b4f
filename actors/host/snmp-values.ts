/**
 * From SNMP varbinds to `RawValue`s: pure functions, no I/O, unit-tested as tables (snmp.test.ts).
 *
 * The metric set entry decides what a value means (gauge or counter, scale); the SNMP type only
 * decides how to read the number and, for counters, their wrap width:
 *
 * | SNMP type                                   | read as                                             |
 * |---------------------------------------------|-----------------------------------------------------|
 * | Counter32                                   | number; a counter metric gets width 32              |
 * | Counter64 (net-snmp: big-endian Buffer)     | number, exact up to 2^53; a counter gets width 64   |
 * | Integer, Gauge32/Unsigned32, TimeTicks      | number (a counter metric gets width 32)             |
 * | OctetString holding a decimal ("0.15")      | number (UCD laLoad, some vendors' temperatures)     |
 * | Opaque float/double (Net-SNMP's encoding)   | number (UCD laLoadFloat)                            |
 * | anything else, noSuchObject/Instance, end   | not a value: a reason, and the OID goes to `missing` |
 *
 * Scale multiplies the number as read (UCD memory is in kB: scale 1024 gives bytes). For a scaled
 * counter the wrap is at 2^width × scale.
 */
import type { CounterWidth, MetricType, RawValue, TableMetric, Tags } from './types.ts';

/** The varbind types of SNMP (RFC 2578/3416), as net-snmp numbers them (`snmp.ObjectType`). */
export const SnmpType = {
  Boolean: 1,
  Integer: 2,
  OctetString: 4,
  Null: 5,
  OID: 6,
  IpAddress: 64,
  Counter32: 65,
  Gauge32: 66,
  TimeTicks: 67,
  Opaque: 68,
  Counter64: 70,
  NoSuchObject: 128,
  NoSuchInstance: 129,
  EndOfMibView: 130,
} as const;

const TYPE_NAMES: Readonly<Record<number, string>> = Object.fromEntries(
  Object.entries(SnmpType).map(([name, code]) => [code, name]),
);

/** The name of an SNMP type for messages: `Counter64`, `type 99` if unknown. */
export const snmpTypeName = (type: number | undefined): string =>
  type === undefined ? 'no type' : (TYPE_NAMES[type] ?? `type ${type}`);

/** A varbind as net-snmp hands it over (only the fields we read). */
export interface VarbindLike {
  readonly oid: string;
  readonly type?: number;
  readonly value?: unknown;
}

/** What the metric set says of the value at an OID. */
export interface MetricSpec {
  readonly name: string;
  readonly type: MetricType;
  readonly scale?: number;
}

export type Conversion =
  | { readonly ok: true; readonly value: RawValue }
  | { readonly ok: false; readonly reason: string };

/** True for the v2c/v3 "no value here" answers: noSuchObject, noSuchInstance, endOfMibView. */
export const isNoValue = (type: number | undefined): boolean =>
  type === SnmpType.NoSuchObject || type === SnmpType.NoSuchInstance || type === SnmpType.EndOfMibView;

/** An unsigned big-endian integer of any length (Counter64 comes as 1..9 bytes); exact up to 2^53. */
export const unsignedFromBytes = (bytes: Uint8Array): number => {
  let value = 0n;
  for (const byte of bytes) value = (value << 8n) | BigInt(byte);
  return Number(value);
};

/**
 * Net-SNMP's Opaque-wrapped floats (draft-perkins-opaque-01): 0x9f 0x78 0x04 + IEEE 754 single, or
 * 0x9f 0x79 0x08 + double, big-endian. net-snmp (the JS library) hands the Opaque body over undecoded.
 */
export const floatFromOpaque = (bytes: Uint8Array): number | undefined => {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (bytes.length === 7 && bytes[0] === 0x9f && bytes[1] === 0x78 && bytes[2] === 0x04)
    return view.getFloat32(3, false);
  if (bytes.length === 11 && bytes[0] === 0x9f && bytes[1] === 0x79 && bytes[2] === 0x08)
    return view.getFloat64(3, false);
  return undefined;
};

/** An OctetString as text: UTF-8, trailing NULs (C strings of some agents) and surrounding blanks cut. */
export const textFromOctets = (value: unknown): string | undefined => {
  if (typeof value === 'string') return value.replace(/\0+$/, '').trim();
  if (value instanceof Uint8Array) return Buffer.from(value).toString('utf8').replace(/\0+$/, '').trim();
  return undefined;
};

const DECIMAL = /^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$/;

const quote = (text: string): string => JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text);

/** The number a varbind holds, or why it holds none. */
export const numberOf = (
  varbind: VarbindLike,
): { ok: true; value: number } | { ok: false; reason: string } => {
  const { type, value } = varbind;
  switch (type) {
    case SnmpType.Integer:
    case SnmpType.Counter32:
    case SnmpType.Gauge32:
    case SnmpType.TimeTicks:
      if (typeof value === 'number' && Number.isFinite(value)) return { ok: true, value };
      return { ok: false, reason: `${snmpTypeName(type)} without a numeric value` };
    case SnmpType.Counter64:
      if (value instanceof Uint8Array) return { ok: true, value: unsignedFromBytes(value) };
      if (typeof value === 'bigint') return { ok: true, value: Number(value) };
      if (typeof value === 'number' && Number.isFinite(value)) return { ok: true, value };
      return { ok: false, reason: 'Counter64 without a numeric value' };
    case SnmpType.OctetString: {
      const text = textFromOctets(value);
      if (text !== undefined && DECIMAL.test(text)) return { ok: true, value: Number(text) };
      return { ok: false, reason: `OctetString ${quote(text ?? '')} is not a number` };
    }
    case SnmpType.Opaque: {
      const float = value instanceof Uint8Array ? floatFromOpaque(value) : undefined;
      if (float !== undefined && Number.isFinite(float)) return { ok: true, value: float };
      return { ok: false, reason: 'Opaque that is not a float or double' };
    }
    case SnmpType.NoSuchObject:
      return { ok: false, reason: 'noSuchObject' };
    case SnmpType.NoSuchInstance:
      return { ok: false, reason: 'noSuchInstance' };
    case SnmpType.EndOfMibView:
      return { ok: false, reason: 'endOfMibView' };
    default:
      return { ok: false, reason: `${snmpTypeName(type)} is not numeric` };
  }
};

/** The wrap width of a counter metric read from a varbind of this SNMP type. */
const widthOf = (type: number | undefined): CounterWidth => (type === SnmpType.Counter64 ? 64 : 32);

/** A varbind as the `RawValue` of a metric: type and scale from the metric set entry. */
export const toRawValue = (varbind: VarbindLike, metric: MetricSpec, tags: Tags = {}): Conversion => {
  const number = numberOf(varbind);
  if (!number.ok) return number;
  const value = metric.scale === undefined ? number.value : number.value * metric.scale;
  return {
    ok: true,
    value:
      metric.type === 'counter'
        ? { metric: metric.name, tags, type: 'counter', width: widthOf(varbind.type), value }
        : { metric: metric.name, tags, type: 'gauge', value },
  };
};

/** The value of a tag column as a string (ifName, hrStorageDescr, or an index number); undefined if none. */
export const tagOf = (varbind: VarbindLike): string | undefined => {
  if (isNoValue(varbind.type)) return undefined;
  if (varbind.type === SnmpType.OctetString) return textFromOctets(varbind.value);
  if (varbind.type === SnmpType.IpAddress || varbind.type === SnmpType.OID)
    return typeof varbind.value === 'string' ? varbind.value : undefined;
  const number = numberOf(varbind);
  return number.ok ? String(number.value) : undefined;
};

/** -1, 0, 1 as OID suffix `a` sorts before, with, after `b` (numerically, arc by arc). */
export const compareOids = (a: string, b: string): number => {
  const x = a.split('.').map(Number);
  const y = b.split('.').map(Number);
  for (let i = 0; i < Math.min(x.length, y.length); i++) {
    const d = (x[i] ?? 0) - (y[i] ?? 0);
    if (d !== 0) return Math.sign(d);
  }
  return Math.sign(x.length - y.length);
};

/** What a poll could not read: the OID and why. */
export interface Missing {
  readonly oid: string;
  readonly reason: string;
}

/**
 * A walked table as values: one per (row, metric column), tagged by the row's tag column value. Rows
 * come in index order; a row without a tag value is left out (its tag cell goes to `missing`).
 */
export const tableValues = (
  table: TableMetric,
  cells: ReadonlyMap<number, ReadonlyMap<string, VarbindLike>>,
): { values: RawValue[]; missing: Missing[] } => {
  const values: RawValue[] = [];
  const missing: Missing[] = [];
  const tagCells = cells.get(table.tag.column);
  const indexes = new Set<string>();
  for (const column of cells.values()) for (const index of column.keys()) indexes.add(index);
  for (const index of [...indexes].sort(compareOids)) {
    const tagCell = tagCells?.get(index);
    const tag = tagCell ? tagOf(tagCell) : undefined;
    if (tag === undefined) {
      const reason = `row ${index} of ${table.name} has no ${table.tag.name}`;
      missing.push({ oid: `${table.oid}.${table.tag.column}.${index}`, reason });
      continue;
    }
    const tags = { [table.tag.name]: tag };
    for (const column of table.columns) {
      const oid = `${table.oid}.${column.column}.${index}`;
      const cell = cells.get(column.column)?.get(index);
      const converted = cell
        ? toRawValue(cell, column, tags)
        : { ok: false as const, reason: `row ${index} of ${table.name} has no column ${column.column}` };
      if (converted.ok) values.push(converted.value);
      else missing.push({ oid, reason: converted.reason });
    }
  }
  return { values, missing };
};
