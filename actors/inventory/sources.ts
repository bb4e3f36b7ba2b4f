/**
 * Where the inventory comes from. Each source is read whole every cycle (the inventory is small next
 * to what it describes: 50,000 hosts is a few MB); a source that fails to read keeps the last good
 * inventory in force — a flapping HTTP endpoint never removes every host.
 */
import { readFile } from 'node:fs/promises';
import type { ConfigSource } from '../../runtime/boundaries.ts';
import type { InventoryHost } from '../host/types.ts';
import { type ParsedInventory, parseInventory, parseInventoryEntries } from './inventory.ts';

export interface InventorySource {
  /** For people: `file ./hosts.yaml`, `url http://cmdb/hosts`, `etcd inventory/`. */
  readonly describe: string;
  /** Reads and parses the whole inventory; rejects when the source cannot be read at all. */
  load(): Promise<ParsedInventory>;
}

export const fileInventory = (path: string): InventorySource => ({
  describe: `file ${path}`,
  load: async () => parseInventory(await readFile(path, 'utf8')),
});

export const urlInventory = (url: string, timeoutMs = 10_000): InventorySource => ({
  describe: `url ${url}`,
  load: async () => {
    const res = await fetch(url, {
      signal: AbortSignal.timeout(timeoutMs),
      headers: { accept: 'application/json' },
    });
    if (!res.ok) throw new Error(`GET ${url} answered ${res.status} ${res.statusText}`);
    return parseInventory(await res.text());
  },
});

/** One host per key of the config source's `inventory` section (etcd `/<prefix>/inventory/<id>`). */
export const configInventory = (
  source: ConfigSource | (() => ConfigSource),
  section = 'inventory',
): InventorySource => {
  const get = typeof source === 'function' ? source : () => source;
  return {
    describe: `config ${section}/`,
    load: async () => parseInventoryEntries(await get().list(section)),
  };
};

/** Hosts written inline (a configuration file's `hosts.inventory.hosts`), parsed like a file's. */
export const inlineInventory = (hosts: readonly unknown[]): InventorySource => ({
  describe: 'inline',
  load: async () => parseInventory({ hosts }),
});

export const staticInventory = (hosts: readonly InventoryHost[]): InventorySource => ({
  describe: 'static',
  load: async () => ({ hosts: [...hosts], errors: [] }),
});
