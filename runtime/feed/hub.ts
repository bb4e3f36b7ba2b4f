/**
 * The feed's core, independent of the runtime (feed.ts wires it to one): takes WebSocket upgrades on
 * `/api/v1/events/stream` (read scope required, checked before the handshake), keeps the replay ring,
 * and fans each published event out to the clients whose filter it matches — encoded once, sent to
 * every client as the same bytes. Heartbeat: a ping every `heartbeatMs`; a client that did not answer
 * the previous one is terminated. `stop` closes every client with 1001.
 *
 * Log tails (`tail` / `untail` frames) are handed to tails.ts, which subscribes to the node's `LogTap`
 * only while some client tails; they neither need nor change the event subscription.
 */
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { type RawData, type WebSocket, WebSocketServer } from 'ws';
import type { LogTap } from '../../actors/log/types.ts';
import { authorize, BEARER_PROTOCOL_PREFIX, type TokenEntry, tokenOf } from '../auth.ts';
import type { Clock, TimerHandle } from '../boundaries.ts';
import { refuseUpgrade } from '../http.ts';
import { FeedClient } from './client.ts';
import { type FeedEvent, matches } from './filter.ts';
import {
  CLOSE_GOING_AWAY,
  encodeFrame,
  FEED_PROTOCOL,
  MAX_CLIENT_FRAME,
  parseClientFrame,
  type SubscribeFrame,
} from './protocol.ts';
import { Ring } from './ring.ts';
import { LogTails } from './tails.ts';

export const FEED_PATH = '/api/v1/events/stream';

export interface FeedHubOptions {
  /** This node's id, in the hello frame. */
  readonly node: string;
  readonly tokens: readonly TokenEntry[];
  readonly replayMax: number;
  readonly bufferBytes: number;
  readonly heartbeatMs: number;
  readonly clock: Clock;
  readonly warn: (message: string) => void;
  /** Where tailed log records come from; absent or undefined: tails are refused (logs are off). */
  readonly logTap?: () => LogTap | undefined;
  /** Bytes waiting to a client past which its log records are sampled; default 256 KiB. */
  readonly tailBufferBytes?: number;
  /** How often a client with a sampling marker still to send is looked at; default 100 ms. */
  readonly tailFlushMs?: number;
}

/** `logs.tailBufferBytes`' default. */
export const DEFAULT_TAIL_BUFFER_BYTES = 256 * 1024;

export interface FeedStats {
  /** Clients connected now. */
  readonly clients: number;
  /** Clients closed as slow consumers since start. */
  readonly dropped: number;
  /** Events published since start. */
  readonly published: number;
  /** Events in the replay ring. */
  readonly replayable: number;
  /** Log tails open now (all clients, all streams). */
  readonly tails: number;
  /** Log records left out of tails by sampling since start (each counted in a `sampled` marker). */
  readonly sampledOut: number;
}

export const NO_FEED_STATS: FeedStats = {
  clients: 0,
  dropped: 0,
  published: 0,
  replayable: 0,
  tails: 0,
  sampledOut: 0,
};

interface Entry {
  readonly event: FeedEvent;
  /** The `{"type":"event","event":…}` frame, encoded once for every client. */
  readonly frame: Buffer;
}

/** How long `stop` waits for clients to answer the 1001 close before cutting them off. */
const CLOSE_GRACE_MS = 1_000;

/** Selects the feed's subprotocol when offered; else echoes a lone `bearer.<token>` (a client that sent only that fails the handshake without an answer). */
const selectProtocol = (offered: Set<string>): string | false => {
  if (offered.has(FEED_PROTOCOL)) return FEED_PROTOCOL;
  const list = [...offered];
  return list.length === 1 && list[0]!.startsWith(BEARER_PROTOCOL_PREFIX) ? list[0]! : false;
};

export class FeedHub {
  private readonly wss = new WebSocketServer({
    noServer: true,
    maxPayload: MAX_CLIENT_FRAME,
    perMessageDeflate: false,
    handleProtocols: selectProtocol,
  });
  private readonly ring: Ring<Entry>;
  private readonly clients = new Set<FeedClient>();
  private readonly tails: LogTails;
  private running = false;
  private heartbeat: TimerHandle | undefined;
  private dropped = 0;
  private published = 0;
  private unencodable = 0;

  constructor(private readonly options: FeedHubOptions) {
    this.ring = new Ring(options.replayMax);
    this.tails = new LogTails({
      logTap: options.logTap ?? (() => undefined),
      bufferBytes: options.tailBufferBytes ?? DEFAULT_TAIL_BUFFER_BYTES,
      flushMs: options.tailFlushMs ?? 100,
      clock: options.clock,
      warn: options.warn,
    });
  }

  start(): void {
    this.running = true;
    this.scheduleHeartbeat();
  }

  stats(): FeedStats {
    return {
      clients: this.clients.size,
      dropped: this.dropped,
      published: this.published,
      replayable: this.ring.size,
      tails: this.tails.stats().tails,
      sampledOut: this.tails.stats().sampledOut,
    };
  }

  /** The upgrade route (http.ts `UpgradeRoute`): takes `/api/v1/events/stream`, nothing else. */
  upgrade(req: IncomingMessage, socket: Duplex, head: Buffer, url: URL): boolean {
    if (url.pathname !== FEED_PATH) return false;
    if (!this.running) {
      refuseUpgrade(socket, 503, 'the live event feed is not running');
      return true;
    }
    const auth = authorize(this.options.tokens, tokenOf(req, url), 'read');
    if (!auth.ok) {
      refuseUpgrade(
        socket,
        auth.status,
        auth.error,
        auth.status === 401 ? { 'www-authenticate': 'Bearer realm="argus"' } : {},
      );
      return true;
    }
    this.wss.handleUpgrade(req, socket, head, (ws) => this.connected(ws, auth.name));
    return true;
  }

  /** Keeps each event for replay and sends it to every subscribed client it matches. */
  publish(events: readonly FeedEvent[]): void {
    for (const event of events) {
      let frame: Buffer;
      try {
        frame = encodeFrame({ type: 'event', event });
      } catch (e) {
        if (this.unencodable++ === 0)
          this.options.warn(
            `an event of type '${event.type}' is not JSON (${(e as Error).message}); skipped`,
          );
        continue;
      }
      this.published++;
      const entry = { event, frame };
      this.ring.push(entry);
      for (const client of this.clients) {
        if (client.filter && matches(client.filter, event)) client.send(frame);
      }
    }
  }

  async stop(): Promise<void> {
    this.running = false;
    this.tails.stop();
    if (this.heartbeat) this.options.clock.clearTimeout(this.heartbeat);
    this.heartbeat = undefined;
    const closing = [...this.clients].map(
      (client) =>
        new Promise<void>((resolve) => {
          if (client.ws.readyState === client.ws.CLOSED) return resolve();
          client.ws.once('close', () => resolve());
          client.ws.close(CLOSE_GOING_AWAY, 'node stopping');
        }),
    );
    this.clients.clear();
    if (closing.length > 0) {
      let timer: TimerHandle | undefined;
      await Promise.race([
        Promise.all(closing),
        new Promise<void>((resolve) => {
          timer = this.options.clock.setTimeout(resolve, CLOSE_GRACE_MS);
        }),
      ]);
      if (timer) this.options.clock.clearTimeout(timer);
    }
    for (const ws of this.wss.clients) ws.terminate();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  private connected(ws: WebSocket, name: string): void {
    if (!this.running) {
      ws.close(CLOSE_GOING_AWAY, 'node stopping');
      return;
    }
    const client = new FeedClient(ws, name, this.options.bufferBytes, (c) => {
      this.dropped++;
      this.clients.delete(c);
      this.tails.remove(c);
    });
    this.clients.add(client);
    ws.on('close', () => {
      this.clients.delete(client);
      this.tails.remove(client);
    });
    // ws reports protocol errors (a frame over maxPayload: 1009, bad UTF-8: 1007) here and closes.
    ws.on('error', () => undefined);
    ws.on('pong', () => {
      client.alive = true;
    });
    ws.on('message', (data: RawData, isBinary: boolean) => this.received(client, data, isBinary));
    client.send(encodeFrame({ type: 'hello', node: this.options.node }));
  }

  private received(client: FeedClient, data: RawData, isBinary: boolean): void {
    const text = Buffer.isBuffer(data)
      ? data
      : Array.isArray(data)
        ? Buffer.concat(data)
        : Buffer.from(data as ArrayBuffer);
    const parsed = parseClientFrame(text, isBinary);
    if (!parsed.ok) {
      client.send(encodeFrame({ type: 'error', error: parsed.error }));
      return;
    }
    const frame = parsed.value;
    switch (frame.type) {
      case 'subscribe':
        this.subscribe(client, frame);
        return;
      case 'tail':
        this.tails.tail(client, frame);
        return;
      case 'untail':
        this.tails.untail(client, frame.stream);
        return;
      default: {
        const never: never = frame;
        throw new Error(`unhandled frame ${JSON.stringify(never)}`);
      }
    }
  }

  private subscribe(client: FeedClient, { filter, replay }: SubscribeFrame): void {
    // Synchronous from here to the new filter: no live event slips between the replay and it.
    const past = replay > 0 ? this.ring.last(replay, (e) => matches(filter, e.event)) : [];
    for (const entry of past) client.send(entry.frame);
    client.filter = filter;
    client.send(encodeFrame({ type: 'subscribed', filter, replayed: past.length }));
  }

  private scheduleHeartbeat(): void {
    if (!this.running) return;
    this.heartbeat = this.options.clock.setTimeout(() => {
      this.heartbeat = undefined;
      for (const client of this.clients) {
        if (!client.alive) {
          client.ws.terminate();
          this.clients.delete(client);
          this.tails.remove(client);
          continue;
        }
        client.alive = false;
        client.ws.ping();
      }
      this.scheduleHeartbeat();
    }, this.options.heartbeatMs);
  }
}
