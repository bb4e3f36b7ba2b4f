/**
 * Opens the coordinator the configuration names: etcd (cluster/) when it has `cluster`, else the
 * local one that owns every shard; and the config source beside it (etcd or memory). The one place runtime/ reaches into cluster/, the way
 * open-boundaries.ts is the one place it picks the journal or Kafka.
 */
import type { Clock, ConfigSource, Coordinator } from './boundaries.ts';
import type { ArgusConfig } from './config.ts';
import type { EventBus } from './events.ts';
import { LocalCoordinator } from './local-coordinator.ts';
import { MemoryConfigSource } from './memory-config.ts';

export interface CoordinatorDeps {
  readonly clock: Clock;
  readonly events: EventBus;
  readonly warn: (message: string) => void;
}

export const openCoordinator = async (config: ArgusConfig, deps: CoordinatorDeps): Promise<Coordinator> => {
  const cluster = config.cluster;
  if (!cluster) return new LocalCoordinator(() => deps.clock.now(), deps.warn);
  const { EtcdCoordinator } = await import('../cluster/coordinator.ts');
  return new EtcdCoordinator({
    endpoints: cluster.etcd.endpoints,
    prefix: cluster.etcd.prefix ?? config.kafka?.topicPrefix ?? 'argus',
    callTimeoutMs: cluster.etcd.callTimeoutMs,
    leaseTtlS: cluster.leaseTtlS,
    fenceMarginMs: cluster.fenceMarginMs,
    settleMs: cluster.settleMs,
    clock: deps.clock,
    events: deps.events,
    warn: deps.warn,
  });
};

/** Where configuration data lives: etcd (`/<prefix>/<section>/<key>`) in a cluster, else memory. */
export const openConfigSource = async (config: ArgusConfig): Promise<ConfigSource> => {
  const cluster = config.cluster;
  if (!cluster) return new MemoryConfigSource();
  const { EtcdConfigSource } = await import('../cluster/etcd-config.ts');
  return new EtcdConfigSource(
    cluster.etcd.endpoints,
    cluster.etcd.prefix ?? config.kafka?.topicPrefix ?? 'argus',
    cluster.etcd.callTimeoutMs,
  );
};
