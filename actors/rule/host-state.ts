/**
 * The HostRuleState a host evaluation builds (evaluate.ts): copied on write — the state it was given is
 * never changed (the runtime may still hold it for a snapshot or a retried delivery) — with one copy
 * per touched rule per call, not per sample.
 *
 * Two entries are not rules (rule ids start with a letter or a digit, these with `@`):
 * - `@host`: its `version` is `JSON.stringify([host, service])`, the identity the alerts are labelled
 *   with, so a no-data check without a record labels them the same. No series.
 * - `@seen`: series key → when a sample of that series last came, for the series of no-data rules that
 *   never had a transition. Keeping it once per host instead of once per rule and series, with one
 *   shared mark per record time, is what keeps no-data rules cheap: a sample replaces a pointer in
 *   one map instead of allocating a SeriesAlert, a series map and an entry per rule.
 *
 * Objects are dictionaries (`Object.create(null)`): their keys vary per host, and V8's hidden classes
 * would turn every lookup megamorphic on plain objects (measured: several times slower).
 */
import type { HostRuleState, SeriesAlert } from './types.ts';

export const HOST_IDENTITY = '@host';
export const SEEN = '@seen';

export type Entry = HostRuleState[string];
export type SeriesMap = Record<string, SeriesAlert>;

/** `o[key]` if it is o's own (a series key could be `constructor`). */
export const own = <T>(o: Readonly<Record<string, T>> | undefined, key: string): T | undefined => {
  if (o === undefined) return undefined;
  const v = o[key];
  return v !== undefined && Object.hasOwn(o, key) ? v : undefined;
};

export const isEmpty = (o: object): boolean => {
  for (const _ in o) return false;
  return true;
};

const dict = <T>(from?: Readonly<Record<string, T>>): Record<string, T> =>
  Object.assign(Object.create(null), from);

/** A `@seen` value: an inactive, never-transitioned series last seen at `at`. */
export const seenMark = (at: number): SeriesAlert => ({
  phase: 'inactive',
  seq: 0,
  activeSince: 0,
  firedAt: 0,
  lastActiveAt: 0,
  lastSeenAt: at,
  value: null,
  noData: false,
});

export class Working {
  private top: Record<string, Entry> | undefined;
  private readonly copied = new Set<string>();
  private mark: SeriesAlert | undefined;
  constructor(private readonly base: HostRuleState | undefined) {}

  series(ruleId: string): Readonly<SeriesMap> | undefined {
    return own(this.top ?? this.base, ruleId)?.series;
  }

  /** The rule version the entry was last evaluated with (`@host`: the identity). */
  version(ruleId: string): string | undefined {
    return own(this.top ?? this.base, ruleId)?.version;
  }

  /** The rule entries (not `@host`, `@seen`). */
  ruleIds(): string[] {
    return Object.keys(this.top ?? this.base ?? {}).filter((id) => !id.startsWith('@'));
  }

  setIdentity(identity: string): void {
    if (this.version(HOST_IDENTITY) === identity) return;
    this.writable()[HOST_IDENTITY] = { version: identity, series: {} };
  }

  put(ruleId: string, version: string, key: string, s: SeriesAlert | undefined): void {
    const top = this.writable();
    let entry = own(top, ruleId);
    if (!this.copied.has(ruleId) || entry === undefined || entry.version !== version) {
      if (s === undefined && entry === undefined) return;
      entry = { version, series: dict(entry?.series) };
      top[ruleId] = entry;
      this.copied.add(ruleId);
    }
    const series = entry.series as SeriesMap;
    if (s === undefined) delete series[key];
    else series[key] = s;
  }

  /** A sample of `key` came at `at` (for no-data). */
  markSeen(key: string, at: number): void {
    const last = own(this.series(SEEN), key);
    if (last !== undefined && last.lastSeenAt >= at) return;
    if (this.mark?.lastSeenAt !== at) this.mark = seenMark(at);
    this.put(SEEN, '', key, this.mark);
  }

  seenAt(key: string): number | undefined {
    return own(this.series(SEEN), key)?.lastSeenAt;
  }

  drop(ruleId: string): void {
    if (own(this.top ?? this.base, ruleId) === undefined) return;
    delete this.writable()[ruleId];
    this.copied.delete(ruleId);
  }

  result(): HostRuleState | undefined {
    if (this.top === undefined) return this.base;
    for (const id of this.copied) {
      const entry = this.top[id];
      if (entry !== undefined && isEmpty(entry.series)) delete this.top[id];
    }
    // Only the identity left: nothing to remember.
    for (const id in this.top) if (id !== HOST_IDENTITY) return this.top;
    return undefined;
  }

  private writable(): Record<string, Entry> {
    if (this.top === undefined) this.top = dict(this.base);
    return this.top;
  }
}
