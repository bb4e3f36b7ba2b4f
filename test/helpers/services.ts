/**
 * What a test file needs to reach the real services started by test/setup/services.ts.
 */
import { randomBytes } from 'node:crypto';
import { inject } from 'vitest';

const fromEnv = (name: string): string[] =>
  (process.env[name] ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');

const addresses = (key: 'kafkaBrokers' | 'etcdEndpoints', env: string): string[] => {
  const provided = inject(key);
  const list = provided !== undefined && provided.length > 0 ? provided : fromEnv(env);
  if (list.length === 0) {
    throw new Error(
      `no ${key}: the run has no services. Add globalSetup: ['test/setup/services.ts'] to vitest.config.ts, ` +
        `or start them by hand (npm run services start) and set ${env}.`,
    );
  }
  return list;
};

/** Kafka bootstrap addresses ("127.0.0.1:port"). */
export const kafkaBrokers = (): string[] => addresses('kafkaBrokers', 'ARGUS_KAFKA_BROKERS');

/** etcd client URLs ("http://127.0.0.1:port"). */
export const etcdEndpoints = (): string[] => addresses('etcdEndpoints', 'ARGUS_ETCD_ENDPOINTS');

/**
 * A prefix for Kafka topics and etcd keys that no other test (of this run or an earlier one against
 * the same services) uses: the name, reduced to letters, digits and '-', plus random hex.
 * Valid in a Kafka topic name and an etcd path segment.
 */
export const uniquePrefix = (name: string): string => {
  const slug = name
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 40);
  return `${slug || 'test'}-${randomBytes(4).toString('hex')}`;
};
