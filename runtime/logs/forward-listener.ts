/**
 * The Fluentd forward protocol v1 over TCP (Fluentd's and Fluent Bit's `forward` outputs, the fluent
 * logger libraries). Each connection has its own `ForwardDecoder`; each request's entries are appended
 * to the stream its tag names (`forward` when the tag makes no stream name).
 *
 * - Acks: a request with the `chunk` option is answered `{ack: chunk}` only once its append resolved —
 *   the records are durable — and acks go out in request order per connection. This is what makes
 *   `require_ack_response` (and @fluent-org/logger's `ack`) an end-to-end guarantee.
 * - A sink rejection is counted and warned. The request is not acked; if it asked for one, the
 *   connection is closed once the acks queued so far are written, so the client retries at once instead of
 *   waiting out its ack timeout (Fluentd treats a connection closed before the ack as a failed chunk).
 * - A fatal decoder error (no resync point: a msgpack bomb, a request over `maxMessageBytes`, bytes that
 *   are not forward requests) stops reading; the acks of what already landed are written, then the
 *   connection is closed. The listener accepts the next connection as usual.
 * - A non-fatal error skips only its request or entry. A request skipped whole that asked for an ack is
 *   acked in its turn: it can never be stored, and an unacked chunk would be resent forever.
 * - Options other than `chunk` and `compressed` (`size`, …) are ignored.
 * - Not served: the handshake (`shared_key`), and UDP heartbeats (Fluentd's default heartbeat is a
 *   TCP connect, which needs nothing).
 */
import { createServer, type Server, type Socket } from 'node:net';
import { ackFor, ForwardDecoder } from '../../actors/log/forward.ts';
import {
  appendCounted,
  Counters,
  closeTcp,
  FLOW_DEFAULTS,
  FlowGate,
  type ListenerOptions,
  type LogListenerStats,
  listenTcp,
  throttled,
} from './listen.ts';
import { fromForward, peerAddress } from './records.ts';

export interface ForwardListenerOptions extends ListenerOptions {
  /** `host:port` to listen on (port 0: any free one). */
  readonly address: string;
  /** Largest request (and gzip output), in bytes. */
  readonly maxMessageBytes: number;
  /** Most entries in one request. */
  readonly maxEntries: number;
  /** How long a connection closed after an error may take to read its last acks (default 5 s). */
  readonly lingerMs?: number;
}

export interface ForwardListener {
  /** The bound `host:port`. */
  readonly address: string;
  stats(): LogListenerStats;
  /** Stops listening and closes every connection; appends in flight are not waited for. */
  close(): Promise<void>;
}

export const startForwardListener = async (options: ForwardListenerOptions): Promise<ForwardListener> => {
  const counters = new Counters();
  const warn = throttled(options.warn, options.now, options.warnEveryMs ?? FLOW_DEFAULTS.warnEveryMs);
  const sockets = new Set<Socket>();
  // Half-open: a client that ends its side after its last request still gets its acks.
  const server: Server = createServer({ allowHalfOpen: true }, (socket) =>
    serve(socket, sockets, options, counters, warn),
  );
  const address = await listenTcp(server, 'logs.forward.address', options.address);
  return { address, stats: () => counters.snapshot(), close: () => closeTcp(server, sockets) };
};

/** A request's place in the ack order: `landed` resolves true when it may be acked. */
interface AckTurn {
  readonly chunk: string;
  landed: Promise<boolean>;
}

const serve = (
  socket: Socket,
  sockets: Set<Socket>,
  options: ForwardListenerOptions,
  counters: Counters,
  warn: (message: string) => void,
): void => {
  const peer = peerAddress(socket.remoteAddress);
  const where = `forward from ${peer}:${socket.remotePort ?? '?'}`;
  sockets.add(socket);
  counters.connections++;
  const gate = new FlowGate(socket, counters, {
    maxRecords: options.maxInFlightRecords ?? FLOW_DEFAULTS.maxInFlightRecords,
    maxBytes: options.maxInFlightBytes ?? FLOW_DEFAULTS.maxInFlightBytes,
  });
  /** Acks are written in request order: each turn waits for the one before it. */
  let acks: Promise<void> = Promise.resolve();
  let lastTurn: AckTurn | undefined;
  let closing = false;
  const write = (chunk: string): void => {
    if (socket.destroyed || !socket.writable) return;
    socket.write(ackFor(chunk));
    counters.add('acked');
  };
  /** Closes once the acks queued so far are written (the peer gets what landed, then EOF). */
  const closeAfterAcks = (): void => {
    if (closing) return;
    closing = true;
    socket.pause();
    void acks.then(() => {
      socket.end();
      setTimeout(() => socket.destroy(), options.lingerMs ?? 5_000).unref();
    });
  };
  const queueAck = (turn: AckTurn): void => {
    lastTurn = turn;
    acks = acks.then(async () => {
      // Read when the turn comes: onEvents may still swap in the append of a request whose entry failed.
      if (await turn.landed) write(turn.chunk);
    });
  };
  let produced: Promise<unknown>[] = [];
  let producedRecords = 0;
  const decoder = new ForwardDecoder({
    maxMessageBytes: options.maxMessageBytes,
    maxEntries: options.maxEntries,
    onEvents: (tag, entries, info) => {
      const routed = entries.map((entry) => fromForward(tag, entry, peer));
      const stream = routed[0]?.stream;
      const appended =
        stream === undefined
          ? Promise.resolve(true)
          : appendCounted(
              options.sink,
              stream,
              routed.map((r) => r.log),
              counters,
              warn,
              where,
            );
      produced.push(appended);
      producedRecords += routed.length;
      if (info.chunk === undefined) return;
      const chunk = info.chunk;
      const landed = appended.then((ok) => {
        if (!ok) closeAfterAcks();
        return ok;
      });
      // An entry of this request was refused (onError queued an ack turn for it just before): this
      // request is stored after all, so its turn waits for the append.
      if (lastTurn !== undefined && lastTurn.chunk === chunk && lastTurn.landed === REFUSED) {
        lastTurn.landed = landed;
        return;
      }
      queueAck({ chunk, landed });
    },
    onError: (error) => {
      counters.add('invalid');
      warn(`${where}: ${error.message}`);
      if (error.fatal) closeAfterAcks();
      else if (error.chunk !== undefined) {
        if (lastTurn?.chunk === error.chunk && lastTurn.landed === REFUSED) return;
        queueAck({ chunk: error.chunk, landed: REFUSED });
      }
    },
  });
  socket.on('data', (chunk: Buffer) => {
    if (closing) return;
    decoder.push(chunk);
    const landed = produced;
    const records = producedRecords;
    produced = [];
    producedRecords = 0;
    if (landed.length > 0) gate.track(records, chunk.length, Promise.all(landed));
  });
  socket.on('end', () => closeAfterAcks());
  socket.on('error', () => socket.destroy());
  socket.on('close', () => {
    sockets.delete(socket);
    counters.connections--;
    gate.release();
  });
};

/** The `landed` of a request refused whole: acked in its turn, nothing to wait for. */
const REFUSED: Promise<boolean> = Promise.resolve(true);
