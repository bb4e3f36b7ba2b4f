/**
 * The documents of one config-source section in force, hot-applied: what metric rules (actors/rule/
 * rules.ts) and log rules (actors/log/rules.ts) share. The section is watched; each document is parsed
 * with the kind's `parse`; a document that does not parse is reported once (`warn`) and kept in
 * `rejected` with why, and its id keeps its last good version (or has none). A document whose text did
 * not change is not parsed again. When what is in force changed, `derive` runs first (the owner's
 * indexes), then every listener.
 */
import type { ConfigSource } from './boundaries.ts';
import { describeError } from './errors.ts';

export interface DocumentKind<T> {
  /** The config source's section (`rules`, `logrules`). */
  readonly section: string;
  /** What one document is called in warnings (`rule`, `log rule`). */
  readonly noun: string;
  /** Parses a document; a throw refuses it. */
  parse(id: string, text: string): T;
  /** Why a document was refused, for people. */
  why(e: unknown): string;
  /** The same document in force (no change to announce): by version. */
  same(a: T, b: T): boolean;
}

export class WatchedDocuments<T> {
  private docs = new Map<string, { readonly text: string; readonly doc: T }>();
  private changes = 0;
  private stopWatch: (() => Promise<void>) | undefined;
  private readonly listeners = new Set<() => void>();
  /** Documents of the source that are ignored, by id, with why. */
  readonly rejected = new Map<string, string>();

  constructor(
    private readonly source: ConfigSource,
    private readonly kind: DocumentKind<T>,
    private readonly warn: (message: string) => void,
    /** Rebuilds what the owner derives from the documents in force, before listeners run. */
    private readonly derive: (docs: ReadonlyMap<string, T>) => void = () => undefined,
  ) {}

  async start(): Promise<void> {
    this.stopWatch = await this.source.watch(
      this.kind.section,
      (entries) => this.load(entries),
      (e) => this.warn(`${this.kind.noun}s watch: ${e.message}`),
    );
  }

  async stop(): Promise<void> {
    await this.stopWatch?.();
    this.stopWatch = undefined;
  }

  /** Counts changes of what is in force (starts at 0; +1 whenever a document is added, changed or removed). */
  get version(): number {
    return this.changes;
  }

  get(id: string): T | undefined {
    return this.docs.get(id)?.doc;
  }

  /** The documents in force, in the source's order. */
  values(): T[] {
    return [...this.docs.values()].map((d) => d.doc);
  }

  /** Called after every change; returns the unsubscribe. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  private load(entries: ReadonlyMap<string, string>): void {
    const next = new Map<string, { text: string; doc: T }>();
    for (const [id, text] of entries) {
      const previous = this.docs.get(id);
      if (previous?.text === text) {
        next.set(id, previous);
        this.rejected.delete(id);
        continue;
      }
      try {
        next.set(id, { text, doc: this.kind.parse(id, text) });
        this.rejected.delete(id);
      } catch (e) {
        const why = this.kind.why(e);
        if (this.rejected.get(id) !== why)
          this.warn(
            `${this.kind.noun} '${id}' ignored (${previous ? 'its last good version stays' : 'it has none'}): ${why}`,
          );
        this.rejected.set(id, why);
        if (previous) next.set(id, previous);
      }
    }
    for (const id of this.rejected.keys()) if (!entries.has(id)) this.rejected.delete(id);
    if (this.unchanged(next)) return;
    this.docs = next;
    this.derive(new Map([...next].map(([id, d]) => [id, d.doc])));
    this.changes++;
    for (const l of this.listeners) {
      try {
        l();
      } catch (e) {
        this.warn(`${this.kind.noun}s listener failed: ${describeError(e).message}`);
      }
    }
  }

  private unchanged(next: ReadonlyMap<string, { readonly doc: T }>): boolean {
    if (next.size !== this.docs.size) return false;
    for (const [id, d] of next) {
      const before = this.docs.get(id);
      if (!before || !this.kind.same(before.doc, d.doc)) return false;
    }
    return true;
  }
}
