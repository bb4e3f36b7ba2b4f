/**
 * A throwaway Apache Kafka broker for tests: one node in KRaft combined mode (broker + controller),
 * fresh storage in a temp folder, listeners on free loopback ports, settings that favour fast tests
 * over durability. The jars come from scripts/install-test-deps.sh (Maven Central, cached).
 * `halt()`/`resume()` take it down and bring it back on the same ports with the same data, for
 * "Kafka is down" tests.
 */
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { Kafka, logLevel } from 'kafkajs';
import { freePorts, spawnService, startRestartable, tailFile } from './process.ts';

/** Keep in step with scripts/kafka/pom.xml and scripts/install-test-deps.sh. */
export const KAFKA_VERSION = '3.9.2';

export interface KafkaOptions {
  /** Folder holding `libs/*.jar`; default `$ARGUS_CACHE_DIR/kafka-<version>` or `~/.cache/argus/kafka-<version>`. */
  readonly kafkaHome?: string;
  /** JVM max heap in MiB (default 768). */
  readonly heapMb?: number;
  /** How long to wait for the broker to answer (default 90 s). */
  readonly startTimeoutMs?: number;
  /** Keep the temp folder (data and log) after stop. Default: env ARGUS_KEEP_SERVICE_FILES=1. */
  readonly keepFiles?: boolean;
  /** halt(): how long the broker may shut down cleanly after SIGTERM before SIGKILL (default HALT_GRACE_MS). */
  readonly haltGraceMs?: number;
}

/**
 * See `haltGraceMs`. A clean shutdown takes about 0.5 s and the resume then about 2.5 s (JVM start).
 * After a SIGKILL the resume takes about 12 s: not log recovery (tens of ms for test data) but the
 * controller refusing the new broker incarnation until the old one's session expires
 * (broker.session.timeout.ms, 9 s). Pass 0 for a crash all the same.
 */
export const HALT_GRACE_MS = 5_000;

export interface RunningKafka {
  readonly brokers: string[];
  readonly logFile: string;
  /** The current broker process (a new one after each resume). */
  readonly pid: number;
  /**
   * Ends the broker (SIGTERM, SIGKILL after `haltGraceMs`) and keeps its data and ports. What was
   * acknowledged stays: the data is in the page cache even when the JVM gets no time to flush.
   */
  halt(): Promise<void>;
  /**
   * Starts the broker again on the same ports with the same data (no new format) and resolves once
   * it answers, group coordinator and producer ids included.
   */
  resume(): Promise<void>;
  /** Final stop, also after halt(): ends the broker and removes the temp folder unless keepFiles. */
  stop(): Promise<void>;
}

export const defaultKafkaHome = (): string =>
  join(process.env.ARGUS_CACHE_DIR ?? join(homedir(), '.cache', 'argus'), `kafka-${KAFKA_VERSION}`);

const serverProperties = (dir: string, brokerPort: number, controllerPort: number): string =>
  `${[
    'process.roles=broker,controller',
    'node.id=1',
    `controller.quorum.voters=1@127.0.0.1:${controllerPort}`,
    `listeners=PLAINTEXT://127.0.0.1:${brokerPort},CONTROLLER://127.0.0.1:${controllerPort}`,
    `advertised.listeners=PLAINTEXT://127.0.0.1:${brokerPort}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    `log.dirs=${join(dir, 'data')}`,
    // Topics are created by the code under test, with explicit partition counts: a typo must fail.
    'auto.create.topics.enable=false',
    'num.partitions=1',
    'default.replication.factor=1',
    'min.insync.replicas=1',
    'offsets.topic.replication.factor=1',
    // Fewer internal partitions: faster first group join, fewer files.
    'offsets.topic.num.partitions=4',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'transaction.state.log.num.partitions=4',
    // A test consumer joins at once instead of waiting 3 s for company.
    'group.initial.rebalance.delay.ms=0',
    'group.min.session.timeout.ms=1000',
    // Compaction that happens within a test: check often, small dedupe buffer for the small heap.
    'log.cleaner.backoff.ms=500',
    'log.cleaner.threads=1',
    'log.cleaner.dedupe.buffer.size=16777216',
    'num.network.threads=2',
    'num.io.threads=4',
    'background.threads=4',
    'num.recovery.threads.per.data.dir=1',
  ].join('\n')}\n`;

const log4jProperties = (logFile: string): string =>
  `${[
    'log4j.rootLogger=INFO, file',
    'log4j.appender.file=org.apache.log4j.FileAppender',
    `log4j.appender.file.File=${logFile}`,
    'log4j.appender.file.layout=org.apache.log4j.PatternLayout',
    'log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n',
    // Per-request and per-partition state chatter drowns what matters when a test fails.
    'log4j.logger.kafka.request.logger=WARN',
    'log4j.logger.state.change.logger=WARN',
    'log4j.logger.kafka.log.LogCleaner=INFO',
  ].join('\n')}\n`;

const jvmArgs = (heapMb: number, log4jFile: string): string[] => [
  `-Xmx${heapMb}m`,
  '-Xms256m',
  '-XX:+UseG1GC',
  '-XX:MaxGCPauseMillis=20',
  '-XX:+ExitOnOutOfMemoryError',
  '-Djava.awt.headless=true',
  `-Dlog4j.configuration=file:${log4jFile}`,
];

/**
 * 16 random bytes in URL-safe base64 without padding, like `kafka-storage random-uuid`. Like Kafka's
 * Uuid.randomUuid we redraw ids starting with '-': the command line parser would take one for an option.
 */
const randomClusterId = (): string => {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
};

/** Runs a Java main class to completion (used for `StorageTool format`). */
const runJava = async (name: string, args: string[], dir: string, logFile: string): Promise<void> => {
  const tool = spawnService({ name, command: 'java', args, logFile, tempDir: dir, keepTempDir: true });
  const code = await tool.exited;
  if (code !== 0) throw new Error(`${name} failed with code ${code}:\n${tailFile(logFile)}`);
};

export const startKafka = async (options: KafkaOptions = {}): Promise<RunningKafka> => {
  const home = options.kafkaHome ?? defaultKafkaHome();
  const libs = join(home, 'libs');
  if (!existsSync(join(libs, `kafka_2.13-${KAFKA_VERSION}.jar`))) {
    throw new Error(
      `Kafka ${KAFKA_VERSION} jars not found in ${libs}: run 'bash scripts/install-test-deps.sh' first`,
    );
  }
  const keepFiles = options.keepFiles ?? process.env.ARGUS_KEEP_SERVICE_FILES === '1';
  const dir = mkdtempSync(join(tmpdir(), 'argus-kafka-'));
  const logFile = join(dir, 'server.log');
  const [brokerPort, controllerPort] = (await freePorts(2)) as [number, number];
  const propsFile = join(dir, 'server.properties');
  const log4jFile = join(dir, 'log4j.properties');
  writeFileSync(propsFile, serverProperties(dir, brokerPort, controllerPort));
  writeFileSync(log4jFile, log4jProperties(logFile));

  const classpath = join(libs, '*');
  const jvm = jvmArgs(options.heapMb ?? 768, log4jFile);
  const clusterId = randomClusterId();
  try {
    await runJava(
      'kafka storage format',
      [...jvm, '-cp', classpath, 'kafka.tools.StorageTool', 'format', '-t', clusterId, '-c', propsFile],
      dir,
      join(dir, 'format.log'),
    );
  } catch (e) {
    if (!keepFiles) rmSync(dir, { recursive: true, force: true });
    throw e;
  }

  const brokers = [`127.0.0.1:${brokerPort}`];
  const service = await startRestartable({
    spawn: () =>
      spawnService({
        name: `kafka ${KAFKA_VERSION}`,
        command: 'java',
        args: [...jvm, '-cp', classpath, 'kafka.Kafka', propsFile],
        logFile,
        tempDir: dir,
        keepTempDir: keepFiles,
      }),
    probe: () => probeBroker(brokers),
    startTimeoutMs: options.startTimeoutMs ?? 90_000,
    logFile,
    tempDir: dir,
    keepTempDir: keepFiles,
    haltGraceMs: options.haltGraceMs ?? HALT_GRACE_MS,
  });
  return {
    brokers,
    logFile,
    get pid() {
      return service.process.pid;
    },
    halt: () => service.halt(),
    resume: () => service.resume(),
    stop: () => service.stop(),
  };
};

/**
 * Answers once the broker serves metadata and the group coordinator is loaded. The first group
 * request creates __consumer_offsets; doing it here keeps "coordinator is loading" errors and consumer
 * restarts out of the first test that uses a consumer group.
 */
const probeBroker = async (brokers: string[]): Promise<void> => {
  const kafka = new Kafka({
    clientId: 'argus-services-probe',
    brokers,
    logLevel: logLevel.NOTHING,
    connectionTimeout: 1_000,
    // Not kafkajs' 30 s: a socket that accepts and never answers (not yet the broker) fails the probe soon.
    requestTimeout: 5_000,
    retry: { retries: 0 },
  });
  const admin = kafka.admin();
  try {
    await admin.connect();
    const cluster = await admin.describeCluster();
    if (cluster.brokers.length === 0) throw new Error('no broker registered yet');
    // Throws (COORDINATOR_LOAD_IN_PROGRESS, …) until the coordinator serves the group.
    await admin.describeGroups(['argus-services-probe']);
    // Likewise for producer ids: the first idempotent producer otherwise logs "coordinator is loading".
    // (kafkajs refuses an idempotent producer with retries: 0.)
    const producer = kafka.producer({ idempotent: true, retry: { retries: 1, initialRetryTime: 100 } });
    await producer.connect();
    await producer.disconnect();
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
};
