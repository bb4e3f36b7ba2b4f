/**
 * The real services the integration tests run against (DESIGN.md, "Real services in tests"):
 * a one-node Kafka (KRaft) and a one-member etcd, on loopback, in temp folders, never outliving us.
 *
 * As a module: `startKafka()`, `startEtcd()`, `startServices()` (used by test/setup/services.ts).
 * As a CLI:    `node --import tsx scripts/services.ts start` starts both, writes .argus/services.json
 *              ({ kafkaBrokers, etcdEndpoints, pids }) and stays in the foreground until SIGINT/SIGTERM.
 */
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { type EtcdOptions, type RunningEtcd, startEtcd } from './services/etcd.ts';
import { type KafkaOptions, type RunningKafka, startKafka } from './services/kafka.ts';

export { type EtcdOptions, type RunningEtcd, startEtcd } from './services/etcd.ts';
export { KAFKA_VERSION, type KafkaOptions, type RunningKafka, startKafka } from './services/kafka.ts';

export interface RunningServices {
  readonly kafka: RunningKafka;
  readonly etcd: RunningEtcd;
  /** How long each took to answer, in ms (for the curious and for CI logs). */
  readonly startupMs: { readonly kafka: number; readonly etcd: number };
  stop(): Promise<void>;
}

const timed = async <T>(start: () => Promise<T>): Promise<[T, number]> => {
  const t0 = performance.now();
  const value = await start();
  return [value, Math.round(performance.now() - t0)];
};

/** Starts Kafka and etcd side by side; if one fails, the other is stopped before the error is thrown. */
export const startServices = async (
  options: { kafka?: KafkaOptions; etcd?: EtcdOptions } = {},
): Promise<RunningServices> => {
  const [kafka, etcd] = await Promise.allSettled([
    timed(() => startKafka(options.kafka)),
    timed(() => startEtcd(options.etcd)),
  ]);
  if (kafka.status === 'rejected' || etcd.status === 'rejected') {
    await Promise.all([
      kafka.status === 'fulfilled' ? kafka.value[0].stop() : undefined,
      etcd.status === 'fulfilled' ? etcd.value[0].stop() : undefined,
    ]);
    const errors = [kafka, etcd].flatMap((r) => (r.status === 'rejected' ? [r.reason as unknown] : []));
    throw errors.length === 1 ? errors[0] : new AggregateError(errors, 'Kafka and etcd both failed to start');
  }
  const [runningKafka, kafkaMs] = kafka.value;
  const [runningEtcd, etcdMs] = etcd.value;
  return {
    kafka: runningKafka,
    etcd: runningEtcd,
    startupMs: { kafka: kafkaMs, etcd: etcdMs },
    stop: async () => {
      await Promise.all([runningKafka.stop(), runningEtcd.stop()]);
    },
  };
};

const repoRoot = join(dirname(fileURLToPath(import.meta.url)), '..');

const runCli = async (command: string | undefined): Promise<void> => {
  if (command !== 'start') {
    console.error('usage: node --import tsx scripts/services.ts start');
    process.exit(2);
  }
  const services = await startServices();
  const stateFile = join(repoRoot, '.argus', 'services.json');
  mkdirSync(dirname(stateFile), { recursive: true });
  const state = {
    kafkaBrokers: services.kafka.brokers,
    etcdEndpoints: services.etcd.endpoints,
    pids: { cli: process.pid, kafka: services.kafka.pid, etcd: services.etcd.pid },
    logs: { kafka: services.kafka.logFile, etcd: services.etcd.logFile },
  };
  writeFileSync(stateFile, `${JSON.stringify(state, null, 2)}\n`);
  console.log(
    `kafka ${services.kafka.brokers.join(',')} (up in ${services.startupMs.kafka} ms), ` +
      `etcd ${services.etcd.endpoints.join(',')} (up in ${services.startupMs.etcd} ms)`,
  );
  console.log(
    `wrote ${stateFile}; for tests: export ARGUS_KAFKA_BROKERS=${services.kafka.brokers.join(',')}`,
  );
  console.log(`export ARGUS_ETCD_ENDPOINTS=${services.etcd.endpoints.join(',')}; Ctrl-C stops both`);
  let stopping = false;
  const shutdown = async (): Promise<void> => {
    if (stopping) return;
    stopping = true;
    await services.stop();
    rmSync(stateFile, { force: true });
    process.exit(0);
  };
  process.on('SIGINT', () => void shutdown());
  process.on('SIGTERM', () => void shutdown());
};

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  runCli(process.argv[2]).catch((e: unknown) => {
    console.error(e instanceof Error ? e.message : e);
    process.exit(1);
  });
}
