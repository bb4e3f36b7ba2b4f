/**
 * Inventory documents: defaults, SNMP settings, durations, and per-host errors that keep every valid
 * host (one typo never empties the inventory). Fuzzed: nothing but a clear Error escapes.
 */
import { describe, expect, it } from 'vitest';
import { parseInventory, parseInventoryEntries } from './inventory.ts';

describe('parseInventory', () => {
  it('fills defaults: service, interval, v2c public on port 161', () => {
    expect(parseInventory({ hosts: [{ id: 'a', address: '10.0.0.1' }] })).toEqual({
      hosts: [
        {
          id: 'a',
          address: '10.0.0.1',
          snmp: { version: '2c', community: 'public', port: 161, timeoutMs: 2_000, retries: 1 },
          service: 'default',
          labels: {},
          intervalMs: 60_000,
        },
      ],
      errors: [],
    });
  });

  it('reads YAML and JSON text, bare lists, durations and the defaults block', () => {
    const yaml = `
defaults: { service: web, interval: 30s, labels: { dc: kr1 }, snmp: { version: '2c', community: s3cret, port: 1161 } }
hosts:
  - { id: a, address: 10.0.0.1, interval: 500ms, labels: { rack: r1 } }
  - { id: b, address: 10.0.0.2, interval: 2 }
  - { id: c }
`;
    const inv = parseInventory(yaml);
    expect(inv.errors).toEqual([]);
    expect(inv.hosts.map((h) => [h.id, h.service, h.intervalMs, h.labels, h.snmp])).toEqual([
      [
        'a',
        'web',
        500,
        { dc: 'kr1', rack: 'r1' },
        { version: '2c', community: 's3cret', port: 1161, timeoutMs: 2_000, retries: 1 },
      ],
      [
        'b',
        'web',
        2_000,
        { dc: 'kr1' },
        { version: '2c', community: 's3cret', port: 1161, timeoutMs: 2_000, retries: 1 },
      ],
      ['c', 'web', 30_000, { dc: 'kr1' }, undefined],
    ]);
    expect(parseInventory('[{"id":"x","address":"h"}]').hosts.map((h) => h.id)).toEqual(['x']);
  });

  it('takes SNMPv3 users with their protocols', () => {
    const inv = parseInventory({
      hosts: [
        {
          id: 'v3',
          address: 'h',
          snmp: {
            version: '3',
            user: 'mon',
            authProtocol: 'sha512',
            authKey: 'authkey-1',
            privProtocol: 'aes',
            privKey: 'privkey-1',
          },
        },
      ],
    });
    expect(inv.hosts[0]!.snmp).toEqual({
      version: '3',
      user: 'mon',
      level: 'authPriv',
      authProtocol: 'sha512',
      authKey: 'authkey-1',
      privProtocol: 'aes',
      privKey: 'privkey-1',
      port: 161,
      timeoutMs: 2_000,
      retries: 1,
    });
  });

  it('rejects bad hosts with the field and the reason, keeping the good ones', () => {
    const inv = parseInventory({
      hosts: [
        { id: 'ok-1', address: 'h1' },
        { id: 'bad id!', address: 'h2' },
        {
          id: 'v3',
          address: 'h3',
          snmp: { version: '3', user: 'u', level: 'authPriv', authProtocol: 'sha', authKey: 'long-enough' },
        },
        { id: 'ok-1', address: 'h4' },
        { id: 'iv', address: 'h5', interval: 'soon' },
        { id: 'typo', address: 'h6', servce: 'web' },
        {
          id: 'short',
          address: 'h7',
          snmp: { version: '3', user: 'u', level: 'authNoPriv', authProtocol: 'md5', authKey: 'short' },
        },
        'nope',
        { id: 'ok-2', address: 'h8', snmp: { version: '1' } },
      ],
    });
    expect(inv.hosts.map((h) => h.id)).toEqual(['ok-1']);
    expect(inv.errors).toEqual([
      "hosts[1] (id 'bad id!'): id: must be 1-255 letters, digits, '.', '_', ':' or '-'",
      "hosts[2] (id 'v3'): snmp.privProtocol: is required for authPriv; snmp.privKey: is required for authPriv",
      "hosts[3] (id 'ok-1'): id is listed twice (the first one is kept)",
      "hosts[4] (id 'iv'): interval: must be seconds or a duration like '30s', '1m', '500ms'",
      expect.stringMatching(/^hosts\[5\] \(id 'typo'\): \(host\): Unrecognized key: "servce"/),
      "hosts[6] (id 'short'): snmp.authKey: must be at least 8 characters (RFC 3414)",
      expect.stringMatching(/^hosts\[7\]: \(host\): /),
      expect.stringMatching(/^hosts\[8\] \(id 'ok-2'\): snmp.version: /),
    ]);
  });

  it('refuses a document that is no inventory at all, clearly', () => {
    expect(() => parseInventory({ servers: [] })).toThrow(
      "an inventory is a list of hosts, or an object with a 'hosts' list",
    );
    expect(() => parseInventory('hosts: [')).toThrow(/^not YAML or JSON: /);
  });

  it('reads one host per config key, the key being the id', () => {
    const inv = parseInventoryEntries(
      new Map([
        ['web-1', '{"address":"10.0.0.1","service":"web"}'],
        ['web-2', 'address: 10.0.0.2'],
        ['broken', '[1, 2'],
        ['list', '[1]'],
      ]),
    );
    expect(inv.hosts.map((h) => [h.id, h.address, h.service])).toEqual([
      ['web-1', '10.0.0.1', 'web'],
      ['web-2', '10.0.0.2', 'default'],
    ]);
    expect(inv.errors).toEqual([
      expect.stringMatching(/^inventory\/broken: not YAML or JSON/),
      'inventory/list: must be an object',
    ]);
  });

  it('never throws anything but an Error with a message on random documents (fuzz)', () => {
    let seed = 7;
    const rnd = () => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed / 2 ** 31;
    };
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
    const value = (depth: number): unknown => {
      const r = rnd();
      if (depth > 3 || r < 0.3)
        return pick([null, 0, -1, 1.5, '', 'x', '30s', true, '10.0.0.1', 'public', '3', '2c']);
      if (r < 0.6) return Array.from({ length: Math.floor(rnd() * 4) }, () => value(depth + 1));
      const keys = [
        'id',
        'address',
        'service',
        'labels',
        'interval',
        'snmp',
        'version',
        'user',
        'level',
        'hosts',
        'defaults',
        'port',
      ];
      return Object.fromEntries(
        Array.from({ length: Math.floor(rnd() * 5) }, () => [pick(keys), value(depth + 1)]),
      );
    };
    let parsed = 0;
    for (let i = 0; i < 5_000; i++) {
      const doc = rnd() < 0.5 ? { hosts: Array.from({ length: 3 }, () => value(1)) } : value(0);
      try {
        const inv = parseInventory(doc);
        parsed++;
        for (const h of inv.hosts) expect(typeof h.id).toBe('string');
        for (const e of inv.errors) expect(e).toMatch(/^(hosts\[\d+\]|defaults)/);
      } catch (e) {
        expect(e).toBeInstanceOf(Error);
        expect((e as Error).message.length).toBeGreaterThan(0);
      }
    }
    expect(parsed).toBeGreaterThan(2_000);
  });
});
