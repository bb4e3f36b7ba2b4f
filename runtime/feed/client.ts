/**
 * One connected feed client: its filter and a bounded, fire-and-forget send. Nothing waits on a client:
 * a frame is handed to the socket or, when more than `limit` bytes already wait to go out to this client
 * (the socket's buffer and ws' queue: `bufferedAmount`), the client is closed with 4008 and forgotten —
 * so a client that stops reading costs at most `limit` plus one frame, and slows nobody else.
 */
import { WebSocket } from 'ws';
import type { FeedFilter } from './filter.ts';
import { CLOSE_SLOW_CONSUMER } from './protocol.ts';

export class FeedClient {
  /** Undefined until the client subscribes: no events before that. */
  filter: FeedFilter | undefined;
  /** Set by a pong, cleared by each heartbeat's ping. */
  alive = true;
  private dropped = false;

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

  /** Sends one text frame, or drops the client as a slow consumer. Never blocks, never throws. */
  send(frame: Buffer): void {
    if (!this.open) return;
    const waiting = this.ws.bufferedAmount;
    // An empty buffer takes any one frame: a single event bigger than the limit must not drop everyone.
    if (waiting > 0 && waiting + frame.length > this.limit) {
      this.drop();
      return;
    }
    this.ws.send(frame, { binary: false });
  }

  private drop(): void {
    this.dropped = true;
    // The close frame queues behind what is buffered; ws destroys the socket if the client never
    // answers it (30 s), so the buffer is freed either way.
    this.ws.close(CLOSE_SLOW_CONSUMER, `slow consumer: more than ${this.limit} bytes buffered`);
    this.onDrop(this);
  }
}
