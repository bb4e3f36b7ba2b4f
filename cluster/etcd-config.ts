/**
 * The etcd ConfigSource (DESIGN.md, "etcd layout"): documents at `/<prefix>/<section>/<key>`, read at
 * one revision and watched from the next, so no change between the read and the watch is missed. A
 * watch that loses etcd reconnects by itself (etcd3 resumes from the last revision it saw) and reports
 * the outage; the last good section stays in force meanwhile.
 */
import type { Etcd3, Watcher } from 'etcd3';
import type { ConfigSource } from '../runtime/boundaries.ts';
import { ArgusError, describeError } from '../runtime/errors.ts';
import { createEtcdClient } from './etcd-client.ts';

const SECTION = /^[a-z][a-z0-9-]{0,62}$/;

export class EtcdConfigSource implements ConfigSource {
  readonly name = 'etcd';
  private readonly client: Etcd3;
  private readonly watchers = new Set<Watcher>();

  constructor(
    endpoints: readonly string[],
    private readonly prefix: string,
    callTimeoutMs = 1_500,
  ) {
    this.client = createEtcdClient(endpoints, callTimeoutMs);
  }

  private base(section: string): string {
    if (!SECTION.test(section))
      throw new ArgusError('ARGUS_ERR_INVALID_CONFIG', `config section '${section}' is not a valid name`, {
        section,
      });
    return `/${this.prefix}/${section}/`;
  }

  private keyOf(section: string, key: string): string {
    if (key.length === 0 || key.length > 512 || key.includes('/'))
      throw new ArgusError(
        'ARGUS_ERR_INVALID_CONFIG',
        `config key '${key}' must be 1-512 characters without '/'`,
        { section, key },
      );
    return this.base(section) + key;
  }

  async list(section: string): Promise<Map<string, string>> {
    return (await this.read(section)).entries;
  }

  private async read(section: string): Promise<{ entries: Map<string, string>; revision: string }> {
    const base = this.base(section);
    try {
      const res = await this.client.getAll().prefix(base).exec();
      const entries = new Map<string, string>();
      for (const kv of res.kvs) entries.set(kv.key.toString().slice(base.length), kv.value.toString());
      return { entries, revision: res.header.revision };
    } catch (e) {
      throw coordination(`reading ${base}`, e);
    }
  }

  async watch(
    section: string,
    onChange: (entries: ReadonlyMap<string, string>) => void,
    onError?: (error: Error) => void,
  ): Promise<() => Promise<void>> {
    const base = this.base(section);
    const { entries, revision } = await this.read(section);
    onChange(new Map(entries));
    let watcher: Watcher;
    try {
      watcher = await this.client
        .watch()
        .prefix(base)
        .startRevision(String(BigInt(revision) + 1n))
        .create();
    } catch (e) {
      throw coordination(`watching ${base}`, e);
    }
    this.watchers.add(watcher);
    watcher.on('put', (kv) => {
      entries.set(kv.key.toString().slice(base.length), kv.value.toString());
      onChange(new Map(entries));
    });
    watcher.on('delete', (kv) => {
      entries.delete(kv.key.toString().slice(base.length));
      onChange(new Map(entries));
    });
    watcher.on('error', (e) => onError?.(coordination(`watching ${base}`, e)));
    watcher.on('disconnected', () => onError?.(new Error(`the watch of ${base} lost etcd; reconnecting`)));
    return async () => {
      this.watchers.delete(watcher);
      await watcher.cancel().catch(() => undefined);
    };
  }

  async put(section: string, key: string, text: string): Promise<void> {
    const k = this.keyOf(section, key);
    try {
      await this.client.put(k).value(text).exec();
    } catch (e) {
      throw coordination(`writing ${k}`, e);
    }
  }

  async delete(section: string, key: string): Promise<boolean> {
    const k = this.keyOf(section, key);
    try {
      const res = await this.client.delete().key(k).exec();
      return Number(res.deleted) > 0;
    } catch (e) {
      throw coordination(`deleting ${k}`, e);
    }
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.watchers].map((w) => w.cancel()));
    this.watchers.clear();
    this.client.close();
  }
}

const coordination = (what: string, e: unknown): ArgusError =>
  new ArgusError('ARGUS_ERR_COORDINATION', `${what} failed: ${describeError(e).message}`, {}, { cause: e });
