/**
 * The WebSocket live event feed as a runtime extension (`runtime.use(eventFeed())`), served by
 * `startHttp` at `GET /api/v1/events/stream` (protocol: protocol.ts and docs/API.md).
 *
 * What it carries: every event of the runtime's bus (`runtime.subscribe`: lifecycle, dead letters,
 * cluster) except `@argus.batch` (one per checkpoint: far too chatty for people), and every record of
 * the `events` output stream (alerts `@argus.alert`, notifications `@argus.notify`, written by entities
 * with `ctx.emit('events', …)`). One node (embedded): the stream's records come from `onOutput`. Kafka
 * mode: other nodes' entities write the stream's topic, so the feed tails the topic (tail.ts) and does
 * not also take `onOutput`, which would show this node's events twice.
 *
 * Configuration (`auth.tokens`, `feed.replayMax`, `feed.bufferBytes`) comes from the runtime's; options
 * override it (an embedder that makes its own token passes `tokens`).
 */
import type { LogTap } from '../../actors/log/types.ts';
import type { TokenEntry } from '../auth.ts';
import type { Clock } from '../boundaries.ts';
import { realClock } from '../clock.ts';
import { ArgusError } from '../errors.ts';
import type { ArgusEvent } from '../events.ts';
import { refuseUpgrade, type UpgradeRoute } from '../http.ts';
import { streamTopic } from '../kafka/topics.ts';
import type { Runtime, RuntimeExtension } from '../runtime.ts';
import type { FeedEvent } from './filter.ts';
import { DEFAULT_TAIL_BUFFER_BYTES, FEED_PATH, FeedHub, type FeedStats, NO_FEED_STATS } from './hub.ts';
import { type EventSource, kafkaTail, outputSource } from './tail.ts';

/** The output stream the feed shows besides the bus. */
export const EVENTS_STREAM = 'events';

/** Bus events the feed leaves out. */
const NOT_SHOWN: ReadonlySet<ArgusEvent['type']> = new Set(['@argus.batch']);

export interface EventFeedOptions {
  /** The tokens that may read; default the runtime's `auth.tokens`. */
  readonly tokens?: readonly TokenEntry[];
  /** Default `feed.replayMax`. */
  readonly replayMax?: number;
  /** Default `feed.bufferBytes`. */
  readonly bufferBytes?: number;
  /** Default 30 s. */
  readonly heartbeatMs?: number;
  readonly clock?: Clock;
  /** Where the `events` stream's records come from; default the Kafka tail in kafka mode, else onOutput. */
  readonly source?: (runtime: Runtime) => EventSource;
  /**
   * The node's log tap, asked for when the first client tails a stream (so it may be made after the
   * feed); undefined or absent: `tail` frames are refused. Subscribed only while some client tails.
   */
  readonly logTap?: () => LogTap | undefined;
  /** Default `logs.tailBufferBytes` (256 KiB when logs are off). */
  readonly tailBufferBytes?: number;
}

export interface EventFeed extends RuntimeExtension {
  readonly name: 'feed';
  readonly upgrades: readonly UpgradeRoute[];
  stats(): FeedStats;
}

const warnFor =
  (runtime: Runtime) =>
  (message: string): void =>
    process.emitWarning(`argus ${runtime.nodeId}: feed: ${message}`);

/** The `events` stream's source for this runtime's mode. */
export const defaultSource = (runtime: Runtime, prefill: number, clock: Clock): EventSource => {
  const { config } = runtime;
  if (config.mode !== 'kafka' || !config.kafka) return outputSource(runtime, EVENTS_STREAM);
  const prefix = config.kafka.topicPrefix;
  return kafkaTail({
    brokers: config.kafka.brokers,
    clientId: `${config.kafka.clientId}-${runtime.nodeId}-feed`,
    topic: streamTopic(prefix, EVENTS_STREAM),
    groupPrefix: `${prefix}.feed.${runtime.nodeId}`,
    prefill,
    clock,
    warn: warnFor(runtime),
  });
};

export const eventFeed = (options: EventFeedOptions = {}): EventFeed => {
  const clock = options.clock ?? realClock;
  let hub: FeedHub | undefined;
  let source: EventSource | undefined;
  let unsubscribe: (() => void) | undefined;

  const upgrade: UpgradeRoute = (req, socket, head, url) => {
    if (hub) return hub.upgrade(req, socket, head, url);
    if (url.pathname !== FEED_PATH) return false;
    refuseUpgrade(socket, 503, 'the live event feed is not running');
    return true;
  };

  return {
    name: 'feed',
    upgrades: [upgrade],
    register(runtime) {
      const { config } = runtime;
      const replayMax = options.replayMax ?? config.feed.replayMax;
      const tailBufferBytes =
        options.tailBufferBytes ?? (config.logs ? config.logs.tailBufferBytes : DEFAULT_TAIL_BUFFER_BYTES);
      for (const [field, value, min] of [
        ['replayMax', replayMax, 0],
        ['tailBufferBytes', tailBufferBytes, 1],
        ['bufferBytes', options.bufferBytes ?? config.feed.bufferBytes, 1],
        ['heartbeatMs', options.heartbeatMs ?? 30_000, 1],
      ] as const) {
        if (!Number.isInteger(value) || value < min)
          throw new ArgusError(
            'ARGUS_ERR_INVALID_CONFIG',
            `eventFeed: ${field} must be an integer ≥ ${min}`,
            {
              field,
              value,
            },
          );
      }
      hub = new FeedHub({
        node: runtime.nodeId,
        tokens: options.tokens ?? config.auth.tokens,
        replayMax,
        bufferBytes: options.bufferBytes ?? config.feed.bufferBytes,
        heartbeatMs: options.heartbeatMs ?? 30_000,
        clock,
        warn: warnFor(runtime),
        logTap: options.logTap,
        tailBufferBytes,
      });
      source = options.source ? options.source(runtime) : defaultSource(runtime, replayMax, clock);
    },
    async start(runtime) {
      if (!hub || !source) throw new ArgusError('ARGUS_ERR_NOT_STARTED', 'eventFeed: start before register');
      const feed = hub;
      feed.start();
      unsubscribe = runtime.subscribe((event) => {
        if (!NOT_SHOWN.has(event.type)) feed.publish([event as unknown as FeedEvent]);
      });
      await source.start((events) => feed.publish(events));
    },
    async stop() {
      unsubscribe?.();
      unsubscribe = undefined;
      await source?.stop();
      await hub?.stop();
    },
    stats: () => hub?.stats() ?? NO_FEED_STATS,
  };
};
