/**
 * The log half as one runtime extension (`runtime.use(logs(options))`): the `log` kind, the listeners
 * (syslog UDP/TCP, Fluentd forward, NDJSON over the node's HTTP endpoint), the log rules watched from
 * the config source (`logrules`), the ticks that close windows, the live-tail tap and the HTTP API
 * (search, streams, log rules).
 *
 * Ticks are sent only by the node owning the stream entity's shard, and only when the entity says a
 * window is due (`ask … 'due'`), so idle streams cost nothing; they go through the mailbox, so a
 * window's results are durable exactly once (entity.ts).
 */
import type { Clock } from '../../runtime/boundaries.ts';
import { realClock } from '../../runtime/clock.ts';
import type { ArgusConfig } from '../../runtime/config.ts';
import type { EntityContext } from '../../runtime/entity.ts';
import { describeError } from '../../runtime/errors.ts';
import { type KafkaLogTap, kafkaLogTap } from '../../runtime/feed/log-tail.ts';
import type { HttpRoute } from '../../runtime/http.ts';
import { mailboxTopic } from '../../runtime/kafka/topics.ts';
import { type ForwardListener, startForwardListener } from '../../runtime/logs/forward-listener.ts';
import { logsIngestRoute } from '../../runtime/logs/http-logs.ts';
import { type SyslogListeners, startSyslogListeners } from '../../runtime/logs/syslog-listener.ts';
import type { Runtime, RuntimeExtension } from '../../runtime/runtime.ts';
import { Ticker } from '../../runtime/ticker.ts';
import type { Alerting } from '../rule/alerting.ts';
import { EVENTS_STREAM, publishAlerts } from '../rule/publish.ts';
import type { AlertEvent } from '../rule/types.ts';
import { LOG_KIND, type LogEntityOptions, type LogMessage, logEntity, subStreamKey } from './entity.ts';
import { logsApi } from './logs-api.ts';
import { LogRuleSet } from './rules.ts';
import { logRulesApi } from './rules-api.ts';
import { LogIngest } from './sink.ts';
import type { LogSink, LogTap, LogTapListener, StoredLog } from './types.ts';

export type LogsConfig = Exclude<ArgusConfig['logs'], false>;

export interface LogsOptions {
  /** The `logs` section (defaults filled by parseConfig); listeners set to false are not started. */
  readonly config: LogsConfig;
  /** Alerting: log alerts then go through its route tree, receivers and firing index. */
  readonly alerting?: Alerting;
  readonly clock?: Clock;
  readonly warn?: (message: string) => void;
}

export class Logs implements RuntimeExtension {
  readonly name = 'logs';
  readonly routes: readonly HttpRoute[];
  private runtime: Runtime | undefined;
  private ruleSet: LogRuleSet | undefined;
  private ingest: LogIngest | undefined;
  private syslog: SyslogListeners | undefined;
  private forward: ForwardListener | undefined;
  private readonly ticker: Ticker;
  private ticking = false;
  private readonly clock: Clock;
  private readonly warn: (message: string) => void;
  private readonly tapListeners = new Set<LogTapListener>();
  /** Kafka mode: the live tail follows the log mailbox topic (every node's records). */
  private remote: KafkaLogTap | undefined;
  private unsubscribeRemote: (() => void) | undefined;
  /** Streams that had rules: ticked until their entity has nothing due (a deleted rule's alerts end). */
  private readonly ticked = new Set<string>();

  constructor(private readonly options: LogsOptions) {
    this.clock = options.clock ?? realClock;
    this.warn = options.warn ?? ((m: string) => process.emitWarning(`argus logs: ${m}`));
    this.ticker = new Ticker(options.config.tickMs, () => this.tick());
    this.routes = [
      logsIngestRoute(() => this.ingest, {
        maxBodyBytes: options.config.maxBodyBytes,
        now: () => this.clock.now(),
      }),
      logRulesApi(() => this.ruleSet),
      logsApi(
        () => this.runtime,
        () => this.ruleSet,
        options.config.subStreams,
      ),
    ];
  }

  /** Where listeners (and embedders) put records. */
  get sink(): LogSink | undefined {
    return this.ingest;
  }

  get rules(): LogRuleSet | undefined {
    return this.ruleSet;
  }

  /** The bound listener addresses (the real ports when 0 was configured). */
  get addresses(): { syslogUdp?: string; syslogTcp?: string; forward?: string } {
    return {
      ...(this.syslog?.udpAddress ? { syslogUdp: this.syslog.udpAddress } : {}),
      ...(this.syslog?.tcpAddress ? { syslogTcp: this.syslog.tcpAddress } : {}),
      ...(this.forward ? { forward: this.forward.address } : {}),
    };
  }

  stats() {
    return {
      ingest: this.ingest?.stats(),
      syslog: this.syslog?.stats(),
      forward: this.forward?.stats(),
    };
  }

  /** The live tail's source: records of every stream as they become durable (this node's, or the cluster's). */
  readonly tap: LogTap = {
    subscribe: (listener) => {
      this.tapListeners.add(listener);
      this.followRemote();
      return () => {
        this.tapListeners.delete(listener);
        if (this.tapListeners.size === 0) this.unfollowRemote();
      };
    },
  };

  register(runtime: Runtime): void {
    const publish = (ctx: EntityContext, events: readonly AlertEvent[]) => {
      if (this.options.alerting) publishAlerts(ctx, events, this.options.alerting.notify?.routes());
      else for (const e of events) ctx.emit(EVENTS_STREAM, e);
    };
    const entity: LogEntityOptions = {
      rules: (stream) => this.ruleSet?.byStream(stream) ?? [],
      graceMs: this.options.config.windowGraceMs,
      publish,
      metricsKind: () => (runtime.definitionOf('host') ? 'host' : undefined),
      streams: [EVENTS_STREAM],
      retainRecords: this.options.config.retainRecords,
    };
    runtime.register(logEntity(entity));
    this.options.alerting?.addRuleSource((rule) => this.ruleSet?.get(rule) !== undefined);
  }

  async start(runtime: Runtime): Promise<void> {
    this.runtime = runtime;
    const config = this.options.config;
    const rules = new LogRuleSet(runtime.configSource, this.warn);
    await rules.start();
    this.ruleSet = rules;
    for (const r of rules.all()) this.ticked.add(r.plan.stream);
    rules.onChange(() => {
      for (const r of rules.all()) this.ticked.add(r.plan.stream);
    });
    // Records this node appended: the tail's source on one node (a cluster follows the mailbox topic).
    const kafka = runtime.config.mode === 'kafka' ? runtime.config.kafka : undefined;
    const local = kafka === undefined;
    this.ingest = new LogIngest(() => (this.runtime?.status === 'running' ? this.runtime : undefined), {
      subStreams: config.subStreams,
      batchRecords: config.batchRecords,
      lingerMs: config.lingerMs,
      ...(local
        ? { landed: (stream: string, records: readonly StoredLog[]) => this.landed(stream, records) }
        : {}),
    });
    this.remote = kafka
      ? kafkaLogTap({
          brokers: kafka.brokers,
          clientId: `${kafka.clientId}-logtail`,
          topic: mailboxTopic(kafka.topicPrefix, LOG_KIND),
          groupPrefix: `${kafka.topicPrefix}.logtail.${runtime.nodeId}`,
          clock: this.clock,
          warn: this.warn,
        })
      : undefined;
    const now = () => this.clock.now();
    const warn = this.warn;
    try {
      if (config.syslog.udp !== false || config.syslog.tcp !== false)
        this.syslog = await startSyslogListeners({
          udp: config.syslog.udp,
          tcp: config.syslog.tcp,
          maxFrameBytes: config.syslog.maxFrameBytes,
          defaultStream: config.syslog.defaultStream,
          sink: this.ingest,
          now,
          warn,
        });
      if (config.forward.address !== false)
        this.forward = await startForwardListener({
          address: config.forward.address,
          maxMessageBytes: config.forward.maxMessageBytes,
          maxEntries: config.forward.maxEntries,
          sink: this.ingest,
          now,
          warn,
        });
    } catch (e) {
      await this.closeListeners();
      await rules.stop();
      throw e;
    }
    this.ticker.start();
  }

  async stop(): Promise<void> {
    this.ticker.stop();
    this.unfollowRemote();
    await this.remote?.stop();
    this.remote = undefined;
    await this.closeListeners();
    await this.ingest?.drain();
    await this.ruleSet?.stop();
    this.runtime = undefined;
  }

  private async closeListeners(): Promise<void> {
    await Promise.allSettled([this.syslog?.close(), this.forward?.close()]);
    this.syslog = undefined;
    this.forward = undefined;
  }

  private landed(stream: string, records: readonly StoredLog[]): void {
    for (const l of this.tapListeners) {
      try {
        l(stream, records);
      } catch (e) {
        this.warn(`a live tail listener failed: ${describeError(e).message}`);
      }
    }
  }

  private followRemote(): void {
    if (!this.remote || this.unsubscribeRemote) return;
    this.unsubscribeRemote = this.remote.subscribe((stream, records) => this.landed(stream, records));
  }

  private unfollowRemote(): void {
    this.unsubscribeRemote?.();
    this.unsubscribeRemote = undefined;
  }

  /** Sends `log.tick` to each local stream entity that has a window (or a deleted rule) due. */
  private async tick(): Promise<void> {
    const rt = this.runtime;
    if (!rt || this.ticking || rt.status !== 'running') return;
    this.ticking = true;
    try {
      const at = this.clock.now();
      const held = new Set(rt.runningShards(LOG_KIND));
      const sends: Promise<void>[] = [];
      for (const stream of [...this.ticked]) {
        const key = subStreamKey(stream, '', 1);
        if (!held.has(rt.shardOf(LOG_KIND, key))) continue;
        const due = (await rt.ask(LOG_KIND, key, 'due').catch(() => undefined)) as number | null | undefined;
        if (due === undefined) continue;
        if (due === null) {
          if (!this.ruleSet?.byStream(stream).length) this.ticked.delete(stream);
          continue;
        }
        if (due > at) continue;
        const message: LogMessage = { type: 'log.tick', at };
        sends.push(rt.send(LOG_KIND, key, message));
      }
      await Promise.all(sends);
    } catch (e) {
      if (this.runtime?.status === 'running') this.warn(`tick: ${describeError(e).message}`);
    } finally {
      this.ticking = false;
    }
  }
}

export const logs = (options: LogsOptions): Logs => new Logs(options);
