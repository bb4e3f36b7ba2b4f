/**
 * The metric sets in force: one per service, from the config source's `metricsets` section (etcd
 * `/<prefix>/metricsets/<service>`), hot-applied — the next poll of every host of a changed service
 * collects the new set, no restart. The `default` key, when present, replaces the built-in default
 * set for services that have none.
 *
 * Writes are validated before they reach the source (`put`), so a bad document is refused to its sender
 * with the field that is wrong. A bad document written around that check (etcdctl) is reported and
 * ignored: the service keeps its last good set (or the default).
 */
import type { ConfigSource } from '../../runtime/boundaries.ts';
import { ArgusError, describeError, isArgusError } from '../../runtime/errors.ts';
import { DEFAULT_METRIC_SET } from './default-metricset.ts';
import { resolveMetricSet } from './metricset.ts';
import type { MetricSet } from './types.ts';

export const METRICSETS_SECTION = 'metricsets';

export class MetricSets {
  private sets = new Map<string, MetricSet>();
  private fallback: MetricSet = DEFAULT_METRIC_SET;
  private stopWatch: (() => Promise<void>) | undefined;
  /** Rejected documents by service, with why (for the inspector and tests). */
  readonly rejected = new Map<string, string>();

  constructor(
    private readonly source: ConfigSource,
    private readonly warn: (message: string) => void = () => undefined,
  ) {}

  async start(): Promise<void> {
    this.stopWatch = await this.source.watch(
      METRICSETS_SECTION,
      (entries) => this.apply(entries),
      (e) => this.warn(e.message),
    );
  }

  async stop(): Promise<void> {
    await this.stopWatch?.();
    this.stopWatch = undefined;
  }

  /** The set a host of `service` polls now. */
  forService(service: string): MetricSet {
    return this.sets.get(service) ?? this.fallback;
  }

  /** Validates, then stores (the watch applies it). Throws ARGUS_ERR_INVALID_CONFIG naming each wrong field. */
  async put(service: string, text: string): Promise<MetricSet> {
    if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(service))
      throw new ArgusError(
        'ARGUS_ERR_INVALID_CONFIG',
        `metric set service '${service}' is not a valid service name`,
        {
          service,
        },
      );
    const set = this.validate(service, text);
    await this.source.put(METRICSETS_SECTION, service, text);
    return set;
  }

  delete(service: string): Promise<boolean> {
    return this.source.delete(METRICSETS_SECTION, service);
  }

  private validate(service: string, text: string): MetricSet {
    try {
      return resolveMetricSet(text, service === 'default' ? DEFAULT_METRIC_SET : this.fallback);
    } catch (e) {
      // resolveMetricSet's own ArgusError: keep its problems, and its code only once in the message.
      const problems = isArgusError(e) ? e.detail.problems : undefined;
      const why = isArgusError(e) ? e.message.slice(`${e.code}: `.length) : describeError(e).message;
      throw new ArgusError('ARGUS_ERR_INVALID_CONFIG', `metric set '${service}': ${why}`, {
        service,
        ...(problems ? { problems } : {}),
      });
    }
  }

  private apply(entries: ReadonlyMap<string, string>): void {
    const next = new Map<string, MetricSet>();
    // The default first: the others extend it.
    const defaultText = entries.get('default');
    let fallback = DEFAULT_METRIC_SET;
    if (defaultText !== undefined) {
      try {
        fallback = resolveMetricSet(defaultText, DEFAULT_METRIC_SET);
        this.rejected.delete('default');
      } catch (e) {
        this.reject('default', e);
        fallback = this.fallback;
      }
    }
    this.fallback = fallback;
    for (const [service, text] of entries) {
      if (service === 'default') continue;
      try {
        next.set(service, resolveMetricSet(text, fallback));
        this.rejected.delete(service);
      } catch (e) {
        this.reject(service, e);
        const previous = this.sets.get(service);
        if (previous) next.set(service, previous);
      }
    }
    for (const service of this.rejected.keys()) if (!entries.has(service)) this.rejected.delete(service);
    this.sets = next;
  }

  private reject(service: string, e: unknown): void {
    const why = describeError(e).message;
    this.rejected.set(service, why);
    this.warn(`metric set '${service}' ignored (the last good one stays): ${why}`);
  }
}
