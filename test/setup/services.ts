/**
 * Vitest global setup: starts Kafka and etcd once for the whole run (scripts/services.ts) and hands
 * their addresses to test files (`inject`, and env for child processes). Services given through
 * ARGUS_KAFKA_BROKERS / ARGUS_ETCD_ENDPOINTS (comma separated) are used as they are, e.g. from
 * `npm run services start`. A service that cannot start fails the run loudly: tests are never
 * skipped for a missing service.
 */
import type { TestProject } from 'vitest/node';
import { startEtcd, startKafka } from '../../scripts/services.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    kafkaBrokers: string[];
    etcdEndpoints: string[];
  }
}

const fromEnv = (name: string): string[] | undefined => {
  const list = (process.env[name] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  return list.length > 0 ? list : undefined;
};

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const stops: (() => Promise<void>)[] = [];
  const teardown = async (): Promise<void> => {
    await Promise.allSettled(stops.map((stop) => stop()));
  };
  try {
    const t0 = performance.now();
    const [kafkaBrokers, etcdEndpoints] = await Promise.all([
      fromEnv('ARGUS_KAFKA_BROKERS') ??
        startKafka().then((kafka) => {
          stops.push(kafka.stop);
          console.log(
            `[services] kafka ${kafka.brokers.join(',')} up in ${Math.round(performance.now() - t0)} ms`,
          );
          return kafka.brokers;
        }),
      fromEnv('ARGUS_ETCD_ENDPOINTS') ??
        startEtcd().then((etcd) => {
          stops.push(etcd.stop);
          console.log(
            `[services] etcd ${etcd.endpoints.join(',')} up in ${Math.round(performance.now() - t0)} ms`,
          );
          return etcd.endpoints;
        }),
    ]);
    project.provide('kafkaBrokers', kafkaBrokers);
    project.provide('etcdEndpoints', etcdEndpoints);
    // Child processes that tests spawn (a second Argus node, say) find the services through env.
    process.env.ARGUS_KAFKA_BROKERS = kafkaBrokers.join(',');
    process.env.ARGUS_ETCD_ENDPOINTS = etcdEndpoints.join(',');
  } catch (e) {
    await teardown();
    throw e;
  }
  return teardown;
}
