/**
 * The inventory: which hosts exist, how to reach them over SNMP, which service they belong to. It comes
 * from a YAML/JSON file, an HTTP URL returning JSON, or a config section (etcd's
 * `/<prefix>/inventory/<id>`, one host per key), and is re-read every cycle so added and removed hosts
 * take effect at once.
 *
 * Parsing is per host, like every edge in Argus: a host with a bad field is reported with its index or
 * id and the field, and every valid host is kept — one typo never empties the inventory.
 *
 * Document: `{ hosts: [ { id, address?, service?, labels?, interval?, snmp? } ], defaults?: { … } }`
 * (or a bare array). `interval` is seconds or a duration (`30s`, `1m`); `snmp` is
 * `{ version: '2c', community }` or `{ version: '3', user, level, authProtocol, authKey, privProtocol,
 * privKey }`, each with optional `port`, `timeoutMs`, `retries`. A host without `address` is push-only.
 */
import { parse as parseYaml } from 'yaml';
import { z } from 'zod';
import type { InventoryHost, SnmpSettings } from '../host/types.ts';

export const INVENTORY_DEFAULTS = {
  service: 'default',
  intervalMs: 60_000,
  port: 161,
  timeoutMs: 2_000,
  retries: 1,
  community: 'public',
} as const;

const hostId = z
  .string()
  .regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,254}$/, "must be 1-255 letters, digits, '.', '_', ':' or '-'");

const durationMs = z.union(
  [
    z
      .number()
      .positive()
      .transform((s) => Math.round(s * 1000)),
    z
      .string()
      .regex(/^\d+(\.\d+)?(ms|s|m|h)$/, "must be seconds or a duration like '30s', '1m', '500ms'")
      .transform((d) => {
        const [, n, unit] = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(d)!;
        const factor = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[unit as 'ms' | 's' | 'm' | 'h'];
        return Math.round(Number(n) * factor);
      }),
  ],
  { error: "must be seconds or a duration like '30s', '1m', '500ms'" },
);

const transport = {
  port: z.number().int().min(1).max(65_535).optional(),
  timeoutMs: z.number().int().min(10).max(60_000).optional(),
  retries: z.number().int().min(0).max(10).optional(),
};

const snmpSchema = z.discriminatedUnion('version', [
  z.object({ version: z.literal('2c'), community: z.string().min(1).optional(), ...transport }).strict(),
  z
    .object({
      version: z.literal('3'),
      user: z.string().min(1),
      level: z.enum(['noAuthNoPriv', 'authNoPriv', 'authPriv']).default('authPriv'),
      authProtocol: z.enum(['md5', 'sha', 'sha256', 'sha512']).optional(),
      authKey: z.string().min(8, 'must be at least 8 characters (RFC 3414)').optional(),
      privProtocol: z.enum(['des', 'aes']).optional(),
      privKey: z.string().min(8, 'must be at least 8 characters (RFC 3414)').optional(),
      ...transport,
    })
    .strict()
    .superRefine((v, ctx) => {
      if (v.level !== 'noAuthNoPriv') {
        if (!v.authProtocol)
          ctx.addIssue({ code: 'custom', path: ['authProtocol'], message: `is required for ${v.level}` });
        if (!v.authKey)
          ctx.addIssue({ code: 'custom', path: ['authKey'], message: `is required for ${v.level}` });
      }
      if (v.level === 'authPriv') {
        if (!v.privProtocol)
          ctx.addIssue({ code: 'custom', path: ['privProtocol'], message: 'is required for authPriv' });
        if (!v.privKey)
          ctx.addIssue({ code: 'custom', path: ['privKey'], message: 'is required for authPriv' });
      }
    }),
]);

const hostSchema = z
  .object({
    id: hostId,
    address: z.string().min(1).max(255).optional(),
    service: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/, "must be 1-128 letters, digits, '.', '_' or '-'")
      .optional(),
    labels: z.record(z.string().min(1).max(128), z.string().max(1024)).optional(),
    interval: durationMs.optional(),
    snmp: snmpSchema.optional(),
  })
  .strict();

const defaultsSchema = hostSchema.omit({ id: true, address: true }).partial().strict();

export interface ParsedInventory {
  readonly hosts: InventoryHost[];
  /** One line per rejected host: `hosts[3] (id 'db-1'): snmp.authKey: is required for authPriv`. */
  readonly errors: string[];
}

const pathOf = (path: readonly PropertyKey[]): string =>
  path.reduce<string>(
    (acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${String(p)}` : String(p)),
    '',
  );

const issues = (error: z.ZodError): string =>
  error.issues.map((i) => `${pathOf(i.path) || '(host)'}: ${i.message}`).join('; ');

const snmpSettings = (
  s: z.output<typeof snmpSchema> | undefined,
  d: z.output<typeof snmpSchema> | undefined,
): SnmpSettings => {
  const v = s ?? d ?? { version: '2c' as const };
  const base = {
    port: v.port ?? d?.port ?? INVENTORY_DEFAULTS.port,
    timeoutMs: v.timeoutMs ?? d?.timeoutMs ?? INVENTORY_DEFAULTS.timeoutMs,
    retries: v.retries ?? d?.retries ?? INVENTORY_DEFAULTS.retries,
  };
  if (v.version === '2c') {
    const dc = d?.version === '2c' ? d.community : undefined;
    return { version: '2c', community: v.community ?? dc ?? INVENTORY_DEFAULTS.community, ...base };
  }
  return {
    version: '3',
    user: v.user,
    level: v.level,
    ...(v.authProtocol ? { authProtocol: v.authProtocol } : {}),
    ...(v.authKey ? { authKey: v.authKey } : {}),
    ...(v.privProtocol ? { privProtocol: v.privProtocol } : {}),
    ...(v.privKey ? { privKey: v.privKey } : {}),
    ...base,
  };
};

/** Text (YAML or JSON) or an already parsed document. */
export const readDocument = (doc: unknown): unknown => {
  if (typeof doc !== 'string') return doc;
  try {
    return parseYaml(doc);
  } catch (e) {
    throw new Error(`not YAML or JSON: ${(e as Error).message.split('\n')[0]}`);
  }
};

/** Parses an inventory document; throws only when the document as a whole is unusable. */
export const parseInventory = (input: unknown): ParsedInventory => {
  const doc = readDocument(input);
  const list = Array.isArray(doc)
    ? doc
    : typeof doc === 'object' && doc !== null && Array.isArray((doc as { hosts?: unknown }).hosts)
      ? (doc as { hosts: unknown[] }).hosts
      : undefined;
  if (!list) throw new Error("an inventory is a list of hosts, or an object with a 'hosts' list");
  const errors: string[] = [];
  let defaults: z.output<typeof defaultsSchema> = {};
  if (!Array.isArray(doc) && (doc as { defaults?: unknown }).defaults !== undefined) {
    const d = defaultsSchema.safeParse((doc as { defaults?: unknown }).defaults);
    if (d.success) defaults = d.data;
    else errors.push(`defaults: ${issues(d.error)} (defaults ignored)`);
  }
  const hosts: InventoryHost[] = [];
  const seen = new Set<string>();
  list.forEach((raw, i) => {
    const r = hostSchema.safeParse(raw);
    const id =
      typeof (raw as { id?: unknown })?.id === 'string' ? ` (id '${(raw as { id: string }).id}')` : '';
    if (!r.success) {
      errors.push(`hosts[${i}]${id}: ${issues(r.error)}`);
      return;
    }
    const h = r.data;
    if (seen.has(h.id)) {
      errors.push(`hosts[${i}]${id}: id is listed twice (the first one is kept)`);
      return;
    }
    seen.add(h.id);
    hosts.push(toHost(h, defaults));
  });
  return { hosts, errors };
};

const toHost = (h: z.output<typeof hostSchema>, d: z.output<typeof defaultsSchema>): InventoryHost => ({
  id: h.id,
  ...(h.address ? { address: h.address, snmp: snmpSettings(h.snmp, d.snmp) } : {}),
  service: h.service ?? d.service ?? INVENTORY_DEFAULTS.service,
  labels: { ...(d.labels ?? {}), ...(h.labels ?? {}) },
  intervalMs: h.interval ?? d.interval ?? INVENTORY_DEFAULTS.intervalMs,
});

/** A config section of one host per key (etcd `inventory/<id>`): the key is the id unless the doc says. */
export const parseInventoryEntries = (entries: ReadonlyMap<string, string>): ParsedInventory => {
  const docs: unknown[] = [];
  const errors: string[] = [];
  for (const [key, text] of entries) {
    try {
      const doc = readDocument(text);
      if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) throw new Error('must be an object');
      docs.push({ id: key, ...(doc as object) });
    } catch (e) {
      errors.push(`inventory/${key}: ${(e as Error).message}`);
    }
  }
  const parsed = parseInventory(docs);
  return { hosts: parsed.hosts, errors: [...errors, ...parsed.errors] };
};
