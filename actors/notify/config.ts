/**
 * The notification configuration in force, from three sections of the config source (etcd in a
 * cluster, the configuration file in embedded mode), hot-applied through watches:
 *
 * - `routes`, key `tree` (`/<prefix>/routes/tree`): the route tree (routes.ts). **When there is no
 *   tree, alerts route to nothing** — `route()` answers `[]` — rather than to every receiver: a new
 *   receiver must never start getting pages nobody routed to it.
 * - `receivers`, key = receiver id (`/<prefix>/receivers/<id>`): receivers.ts.
 * - `silences`, key = silence id (`/<prefix>/silences/<id>`): silences.ts.
 *
 * Writes are validated before they reach the source, so a bad document is refused to its sender with
 * every wrong field. A bad document written around that check (etcdctl) is reported through `warn`
 * and ignored: the last good version of that key stays in force (or nothing, if it never had one) —
 * exactly like the metric sets (actors/host/metricsets.ts).
 */
import { randomUUID } from 'node:crypto';
import type { ConfigSource } from '../../runtime/boundaries.ts';
import { realClock } from '../../runtime/clock.ts';
import { ArgusError, describeError } from '../../runtime/errors.ts';
import type { Labels } from '../rule/types.ts';
import { ID, ID_HINT, isPlainObject, Problems, readDocument, show } from './document.ts';
import { parseReceiver } from './receivers.ts';
import { parseRoutes, routeAlert } from './routes.ts';
import { parseSilence, silenceDocument } from './silences.ts';
import type { ReceiverConfig, Route, RouteMatch, Silence } from './types.ts';

export const ROUTES_SECTION = 'routes';
export const ROUTES_KEY = 'tree';
export const RECEIVERS_SECTION = 'receivers';
export const SILENCES_SECTION = 'silences';

/** What a receiver entity needs of the configuration (NotifyConfig is one; tests pass a literal). */
export interface NotifyLookup {
  receiver(id: string): ReceiverConfig | undefined;
  silences(): readonly Silence[];
}

/** A silence as the API takes it: the document's fields; `starts_at` defaults to now. */
export type SilenceInput = Readonly<Record<string, unknown>> | string;

export interface NotifyConfigOptions {
  /** Documents ignored because they do not validate (etcdctl writes), and watch errors. */
  readonly warn?: (message: string) => void;
  /** New silence ids (injected so tests pin them). Default: random UUIDs. */
  readonly newId?: () => string;
  /** Wall-clock ms: `starts_at` of new silences, and the end of expired ones. Default: the real clock. */
  readonly now?: () => number;
}

export class NotifyConfig implements NotifyLookup {
  private root: Route | undefined;
  private receiverMap = new Map<string, ReceiverConfig>();
  private silenceMap = new Map<string, Silence>();
  private stops: (() => Promise<void>)[] = [];
  /** Rejected documents by `<section>/<key>`, with why (for the inspector and tests). */
  readonly rejected = new Map<string, string>();
  private readonly warn: (message: string) => void;
  private readonly newId: () => string;
  private readonly now: () => number;

  constructor(
    private readonly source: ConfigSource,
    options: NotifyConfigOptions = {},
  ) {
    this.warn = options.warn ?? (() => undefined);
    this.newId = options.newId ?? (() => randomUUID());
    this.now = options.now ?? (() => realClock.now());
  }

  /** Watches the three sections; if one watch fails to start, the others are stopped again. */
  async start(): Promise<void> {
    const watches: [string, (entries: ReadonlyMap<string, string>) => void][] = [
      [RECEIVERS_SECTION, (e) => this.applyReceivers(e)],
      [SILENCES_SECTION, (e) => this.applySilences(e)],
      [ROUTES_SECTION, (e) => this.applyRoutes(e)],
    ];
    try {
      for (const [section, apply] of watches)
        this.stops.push(
          await this.source.watch(section, apply, (e) => this.warn(`${section}: ${e.message}`)),
        );
    } catch (e) {
      await this.stop();
      throw e;
    }
  }

  async stop(): Promise<void> {
    const stops = this.stops.reverse();
    this.stops = [];
    for (const stop of stops) await stop();
  }

  /** The route tree in force; undefined when none is configured (alerts then go nowhere). */
  routes(): Route | undefined {
    return this.root;
  }

  /** Where an alert goes now: `routeAlert` on the tree in force, `[]` without one. */
  route(labels: Labels, severity: number): RouteMatch[] {
    return this.root ? routeAlert(this.root, labels, severity) : [];
  }

  receiver(id: string): ReceiverConfig | undefined {
    return this.receiverMap.get(id);
  }

  receivers(): ReceiverConfig[] {
    return [...this.receiverMap.values()].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** Every silence stored (pending, active and expired), oldest start first. */
  silences(): Silence[] {
    return [...this.silenceMap.values()].sort((a, b) => a.startsAt - b.startsAt || (a.id < b.id ? -1 : 1));
  }

  /** Validates, then stores the route tree (the watch applies it). Throws ARGUS_ERR_INVALID_CONFIG. */
  async putRoutes(text: string): Promise<Route> {
    const root = parseRoutes(text);
    await this.source.put(ROUTES_SECTION, ROUTES_KEY, text);
    return root;
  }

  deleteRoutes(): Promise<boolean> {
    return this.source.delete(ROUTES_SECTION, ROUTES_KEY);
  }

  /** Validates, then stores a receiver. Throws ARGUS_ERR_INVALID_CONFIG naming each wrong field. */
  async putReceiver(id: string, text: string): Promise<ReceiverConfig> {
    const receiver = parseReceiver(id, text);
    await this.source.put(RECEIVERS_SECTION, id, text);
    return receiver;
  }

  /**
   * Removes a receiver. Its entity keeps what it has queued (and says the receiver is missing in its
   * summary) until the receiver is configured again or its notifications are discarded.
   */
  deleteReceiver(id: string): Promise<boolean> {
    return this.source.delete(RECEIVERS_SECTION, id);
  }

  /** Validates and stores a new silence; answers its id. Throws ARGUS_ERR_INVALID_CONFIG. */
  async addSilence(input: SilenceInput): Promise<string> {
    const id = this.newId();
    if (!ID.test(id))
      throw new ArgusError('ARGUS_ERR_INVALID_CONFIG', `generated silence id ${show(id)} ${ID_HINT}`, { id });
    const value = typeof input === 'string' ? readDocument(input, new Problems()) : input;
    // starts_at defaults to now; a text that does not parse goes to parseSilence to be reported as is.
    const doc = isPlainObject(value) ? { starts_at: this.now(), ...value } : input;
    const silence = parseSilence(id, doc);
    const { id: _, ...rest } = silence;
    await this.source.put(SILENCES_SECTION, id, silenceDocument(rest));
    return id;
  }

  /**
   * Ends a silence now: an active one gets `ends_at` = now; a pending one (or one at its very start) is
   * removed, as it never applied. False when there is no such silence or it had already expired.
   */
  async expireSilence(id: string): Promise<boolean> {
    const s = this.silenceMap.get(id);
    if (!s) return false;
    const now = this.now();
    if (now >= s.endsAt) return false;
    if (now <= s.startsAt) return this.source.delete(SILENCES_SECTION, id);
    const { id: _, ...rest } = s;
    await this.source.put(SILENCES_SECTION, id, silenceDocument({ ...rest, endsAt: now }));
    return true;
  }

  private applyRoutes(entries: ReadonlyMap<string, string>): void {
    for (const key of entries.keys())
      if (key !== ROUTES_KEY) this.reject(ROUTES_SECTION, key, `only the key '${ROUTES_KEY}' is read`, false);
    const text = entries.get(ROUTES_KEY);
    if (text === undefined) {
      this.root = undefined;
      this.rejected.delete(`${ROUTES_SECTION}/${ROUTES_KEY}`);
      return;
    }
    try {
      this.root = parseRoutes(text);
      this.rejected.delete(`${ROUTES_SECTION}/${ROUTES_KEY}`);
    } catch (e) {
      this.reject(ROUTES_SECTION, ROUTES_KEY, describeError(e).message, this.root !== undefined);
    }
  }

  private applyReceivers(entries: ReadonlyMap<string, string>): void {
    this.receiverMap = this.applyKeyed(RECEIVERS_SECTION, entries, this.receiverMap, parseReceiver);
  }

  private applySilences(entries: ReadonlyMap<string, string>): void {
    this.silenceMap = this.applyKeyed(SILENCES_SECTION, entries, this.silenceMap, parseSilence);
  }

  /** One document per key: the valid ones replace, the invalid ones keep their last good version. */
  private applyKeyed<T>(
    section: string,
    entries: ReadonlyMap<string, string>,
    previous: ReadonlyMap<string, T>,
    parse: (id: string, text: string) => T,
  ): Map<string, T> {
    const next = new Map<string, T>();
    for (const [key, text] of entries) {
      try {
        next.set(key, parse(key, text));
        this.rejected.delete(`${section}/${key}`);
      } catch (e) {
        const last = previous.get(key);
        if (last !== undefined) next.set(key, last);
        this.reject(section, key, describeError(e).message, last !== undefined);
      }
    }
    for (const k of [...this.rejected.keys()])
      if (k.startsWith(`${section}/`) && !entries.has(k.slice(section.length + 1))) this.rejected.delete(k);
    return next;
  }

  private reject(section: string, key: string, why: string, keptLast: boolean): void {
    const where = `${section}/${key}`;
    if (this.rejected.get(where) === why) return;
    this.rejected.set(where, why);
    this.warn(
      `${where} ignored (${keptLast ? 'the last good one stays' : 'it had no good version'}): ${why}`,
    );
  }
}
