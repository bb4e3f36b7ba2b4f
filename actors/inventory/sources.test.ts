/**
 * Inventory sources against real I/O: a file edited between reads, an HTTP endpoint on loopback (good
 * JSON, an error status, garbage), and the config source's `inventory` section.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MemoryConfigSource } from '../../runtime/memory-config.ts';
import { configInventory, fileInventory, inlineInventory, urlInventory } from './sources.ts';

const dir = mkdtempSync(join(tmpdir(), 'argus-inventory-'));
const servers: Server[] = [];
afterAll(async () => {
  for (const s of servers) await new Promise((r) => s.close(r));
  rmSync(dir, { recursive: true, force: true });
});

const serve = async (answer: () => { status: number; body: string }): Promise<string> => {
  const server = createServer((_req, res) => {
    const a = answer();
    res.writeHead(a.status, { 'content-type': 'application/json' });
    res.end(a.body);
  });
  servers.push(server);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}/hosts`;
};

describe('inventory sources', () => {
  it('reads a file again on every load, so edits take effect', async () => {
    const path = join(dir, 'hosts.yaml');
    writeFileSync(path, 'hosts:\n  - { id: a, address: 10.0.0.1 }\n');
    const source = fileInventory(path);
    expect(source.describe).toBe(`file ${path}`);
    expect((await source.load()).hosts.map((h) => h.id)).toEqual(['a']);
    writeFileSync(path, 'hosts:\n  - { id: a, address: 10.0.0.1 }\n  - { id: b, address: 10.0.0.2 }\n');
    expect((await source.load()).hosts.map((h) => h.id)).toEqual(['a', 'b']);
    await expect(fileInventory(join(dir, 'missing.yaml')).load()).rejects.toThrow(/ENOENT/);
  });

  it('reads JSON from a URL, and fails clearly on an error status or garbage', async () => {
    let answer = {
      status: 200,
      body: JSON.stringify({ hosts: [{ id: 'web-1', address: '10.0.0.5', service: 'web' }] }),
    };
    const url = await serve(() => answer);
    const source = urlInventory(url);
    expect((await source.load()).hosts.map((h) => [h.id, h.service])).toEqual([['web-1', 'web']]);
    answer = { status: 503, body: '{}' };
    await expect(source.load()).rejects.toThrow(`GET ${url} answered 503 Service Unavailable`);
    answer = { status: 200, body: '{"hosts": [' };
    await expect(source.load()).rejects.toThrow(/^not YAML or JSON/);
  });

  it('reads one host per key of the config section, and inline hosts', async () => {
    const config = new MemoryConfigSource({
      inventory: { 'db-1': '{"address":"10.0.0.9","service":"mysql"}' },
    });
    const source = configInventory(config);
    expect((await source.load()).hosts.map((h) => [h.id, h.service])).toEqual([['db-1', 'mysql']]);
    await config.put('inventory', 'db-2', 'address: 10.0.0.10');
    expect((await source.load()).hosts.map((h) => h.id)).toEqual(['db-1', 'db-2']);
    const inline = await inlineInventory([{ id: 'x' }, { id: '' }]).load();
    expect(inline.hosts.map((h) => h.id)).toEqual(['x']);
    expect(inline.errors).toHaveLength(1);
  });
});
