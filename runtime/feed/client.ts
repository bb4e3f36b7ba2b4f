/**
 * One connected feed client: its filter, its log tails and two bounded, fire-and-forget sends. Nothing
 * waits on a client.
 *
 * - `send` (events, hello, subscribed, subscribe errors): a frame is handed to the socket or, when more
 *   than `limit` bytes of these already wait to go out to this client, the client is closed with 4008 and
 *   forgotten — so a client that stops reading costs at most `limit` plus one frame, and slows nobody else.
 * - `sendTail` (log frames, markers, tail acks and errors) never closes. tails.ts samples log records
 *   instead, once more than its own bound waits (everything waiting, events included: events come
 *   first). Tail bytes still waiting are tracked (each frame's bytes until ws reports it written to the
 *   socket) and left out of the events rule: waiting tail frames can never push a client over the events
 *   bound, and a client is closed only for events it could not take. Per client at most
 *   `limit` + the tail bound + a frame or two wait.
 */
import { WebSocket } from 'ws';
import type { FeedFilter } from './filter.ts';
import { CLOSE_SLOW_CONSUMER, type LogFilterExpr } from './protocol.ts';
import { type Gap, NOT_SAMPLING, type SampleState } from './sample.ts';

/** One stream a client tails. */
export interface ClientTail {
  readonly stream: string;
  /** The filter text as given; tails with the same text share their filtered, encoded frames. */
  readonly filter: string;
  readonly expr: LogFilterExpr;
  /** The stretch of sampling open for this stream (a marker not sent yet). */
  gap: Gap | undefined;
}

/** A WebSocket frame's header on an unmasked (server) frame of `length` payload bytes. */
const headerBytes = (length: number): number => (length >= 65_536 ? 10 : length > 125 ? 4 : 2);

export class FeedClient {
  /** Undefined until the client subscribes: no events before that. */
  filter: FeedFilter | undefined;
  /** Set by a pong, cleared by each heartbeat's ping. */
  alive = true;
  /** Streams tailed, by name (tails.ts keeps them). */
  readonly tails = new Map<string, ClientTail>();
  /** The 1-in-k sampling of this client's log records. */
  sampling: SampleState = NOT_SAMPLING;
  private dropped = false;
  /** Bytes of tail frames handed to ws and not yet written to the socket. */
  private tailWaiting = 0;

  constructor(
    readonly ws: WebSocket,
    /** The token's name (never the token): who this is, for the inspector. */
    readonly name: string,
    private readonly limit: number,
    private readonly onDrop: (client: FeedClient) => void,
  ) {}

  get open(): boolean {
    return !this.dropped && this.ws.readyState === WebSocket.OPEN;
  }

  /** Every byte waiting to go out to this client (the socket's buffer and ws' queue). */
  get waiting(): number {
    return this.ws.bufferedAmount;
  }

  /** Sends one text frame, or drops the client as a slow consumer. Never blocks, never throws. */
  send(frame: Buffer): void {
    if (!this.open) return;
    // Tail frames waiting do not count (module doc); the header of one may be gone before its payload.
    const waiting = Math.max(0, this.ws.bufferedAmount - this.tailWaiting);
    // An empty buffer takes any one frame: a single event bigger than the limit must not drop everyone.
    if (waiting > 0 && waiting + frame.length > this.limit) {
      this.drop();
      return;
    }
    this.ws.send(frame, { binary: false });
  }

  /** Sends one tail frame; never closes the client (sampling keeps these bounded). */
  sendTail(frame: Buffer): void {
    if (!this.open) return;
    const bytes = frame.length + headerBytes(frame.length);
    this.tailWaiting += bytes;
    this.ws.send(frame, { binary: false }, () => {
      this.tailWaiting -= bytes;
    });
  }

  private drop(): void {
    this.dropped = true;
    // The close frame queues behind what is buffered; ws destroys the socket if the client never
    // answers it (30 s), so the buffer is freed either way.
    this.ws.close(CLOSE_SLOW_CONSUMER, `slow consumer: more than ${this.limit} bytes buffered`);
    this.onDrop(this);
  }
}
