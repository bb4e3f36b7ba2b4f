/**
 * The in-process ConfigSource (embedded mode, tests): sections of documents in memory, seeded from the
 * configuration, changed through the same API as etcd's and watched the same way.
 */
import type { ConfigSource } from './boundaries.ts';

type Listener = (entries: ReadonlyMap<string, string>) => void;

export class MemoryConfigSource implements ConfigSource {
  readonly name = 'memory';
  private readonly sections = new Map<string, Map<string, string>>();
  private readonly listeners = new Map<string, Set<Listener>>();

  constructor(seed: Readonly<Record<string, Readonly<Record<string, string>>>> = {}) {
    for (const [section, docs] of Object.entries(seed))
      this.sections.set(section, new Map(Object.entries(docs)));
  }

  private section(name: string): Map<string, string> {
    let s = this.sections.get(name);
    if (!s) {
      s = new Map();
      this.sections.set(name, s);
    }
    return s;
  }

  async list(section: string): Promise<Map<string, string>> {
    return new Map(this.section(section));
  }

  async watch(section: string, onChange: Listener): Promise<() => Promise<void>> {
    const set = this.listeners.get(section) ?? new Set();
    set.add(onChange);
    this.listeners.set(section, set);
    onChange(new Map(this.section(section)));
    return async () => {
      set.delete(onChange);
    };
  }

  async put(section: string, key: string, text: string): Promise<void> {
    this.section(section).set(key, text);
    this.changed(section);
  }

  async delete(section: string, key: string): Promise<boolean> {
    const existed = this.section(section).delete(key);
    if (existed) this.changed(section);
    return existed;
  }

  async close(): Promise<void> {
    this.listeners.clear();
  }

  private changed(section: string): void {
    const entries = new Map(this.section(section));
    for (const l of this.listeners.get(section) ?? []) l(entries);
  }
}
