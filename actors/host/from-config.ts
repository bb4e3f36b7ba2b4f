/**
 * Host metrics from the runtime configuration's `hosts` section (docs/CONFIGURATION.md): what
 * `npm start` uses, and what an embedder can use instead of assembling `hostMetrics()` by hand.
 */
import type { ArgusConfig } from '../../runtime/config.ts';
import { MemoryConfigSource } from '../../runtime/memory-config.ts';
import type { Runtime } from '../../runtime/runtime.ts';
import {
  configInventory,
  fileInventory,
  type InventorySource,
  inlineInventory,
  urlInventory,
} from '../inventory/sources.ts';
import type { HostObserver } from './host.ts';
import { type HostMetrics, hostMetrics } from './host-metrics.ts';
import { METRICSETS_SECTION } from './metricsets.ts';

type HostsConfig = Exclude<ArgusConfig['hosts'], false>;

const inventoryOf = (hosts: HostsConfig, runtime: () => Runtime): InventorySource | undefined => {
  const i = hosts.inventory;
  if (!i) return undefined;
  if (i.file) return fileInventory(i.file);
  if (i.url) return urlInventory(i.url);
  if (i.hosts) return inlineInventory(i.hosts);
  return configInventory(() => runtime().configSource);
};

/**
 * The extension the configuration describes, and — on one node — the in-memory config source seeded
 * with its metric sets (pass it as `createRuntime(config, { configSource })`; a cluster reads etcd).
 */
export const hostMetricsFromConfig = (
  config: ArgusConfig,
  runtime: () => Runtime,
  extra: { readonly observer?: HostObserver } = {},
): { extension: HostMetrics; configSource: MemoryConfigSource | undefined } | undefined => {
  const hosts = config.hosts;
  if (hosts === false) return undefined;
  const inventory = inventoryOf(hosts, runtime);
  const extension = hostMetrics({
    ...(inventory ? { inventory } : {}),
    cycleMs: hosts.cycleMs,
    concurrency: hosts.concurrency,
    jitterMs: hosts.jitterMs,
    lateAfterMs: hosts.lateAfterMs,
    historyPoints: hosts.historyPoints,
    maxBodyBytes: hosts.maxBodyBytes,
    localAgent: hosts.localAgent ?? (config.mode === 'embedded' && !inventory),
    ...(extra.observer ? { observer: extra.observer } : {}),
  });
  const seeds = Object.fromEntries(
    Object.entries(hosts.metricSets ?? {}).map(([service, doc]) => [
      service,
      typeof doc === 'string' ? doc : JSON.stringify(doc),
    ]),
  );
  const configSource = config.cluster ? undefined : new MemoryConfigSource({ [METRICSETS_SECTION]: seeds });
  return { extension, configSource };
};
