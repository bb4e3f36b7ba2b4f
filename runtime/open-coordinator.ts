/**
 * Opens the coordinator the configuration names: etcd (cluster/) when it has `cluster`, else the
 * local one that owns every shard. The one place runtime/ reaches into cluster/, the way
 * open-boundaries.ts is the one place it picks the journal or Kafka.
 */
import type { Clock, Coordinator } from './boundaries.ts';
import type { ArgusConfig } from './config.ts';
import type { EventBus } from './events.ts';
import { LocalCoordinator } from './local-coordinator.ts';

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
