/**
 * Syslog over the network: RFC 5426 over UDP (one datagram, one message) and RFC 6587 over TCP (octet
 * counting and LF/CRLF/NUL framing, told apart per frame by `SyslogFramer`). Each message is parsed by
 * `parseSyslog` (RFC 5424 or 3164) and appended to the stream its APP-NAME names (`defaultStream`
 * without one).
 *
 * - Batches: a TCP read's records go to the sink as one append per stream; datagrams arriving in the
 *   same turn of the event loop are appended together. The sink batches further.
 * - Back-pressure: a TCP connection is paused while its appends in flight pass the bound (10,000
 *   records or 4 MiB by default) and resumed when they land; UDP datagrams over the bound are dropped
 *   and counted (listen.ts).
 * - A bad message (unparsable, truncated, longer than `maxFrameBytes`) is counted and warned about at
 *   most once per `warnEveryMs`; the listener and the connection carry on with the next message. A
 *   sink rejection is counted and warned the same way; the connection stays open (syslog has no acks,
 *   so a sender could not tell anyway).
 */
import type { Socket as UdpSocket } from 'node:dgram';
import { createServer, type Server, type Socket } from 'node:net';
import { SyslogFramer } from '../../actors/log/framing.ts';
import { parseSyslog } from '../../actors/log/syslog.ts';
import {
  appendCounted,
  bindUdp,
  byStream,
  Counters,
  closeTcp,
  FLOW_DEFAULTS,
  FlowGate,
  type ListenerOptions,
  type LogListenerStats,
  listenTcp,
  throttled,
} from './listen.ts';
import { fromSyslog, peerAddress, type RoutedLog } from './records.ts';

/** `now` is also the arrival time and the year of 3164 timestamps; the in-flight bound is per TCP connection and over all UDP datagrams. */
export interface SyslogListenerOptions extends ListenerOptions {
  /** `host:port` for datagrams, or false. */
  readonly udp: string | false;
  /** `host:port` for TCP, or false. */
  readonly tcp: string | false;
  /** Longest message (datagram or frame) kept, in bytes. */
  readonly maxFrameBytes: number;
  /** The stream of a message without an APP-NAME / TAG. */
  readonly defaultStream: string;
  /** The zone of 3164 timestamps, minutes east of UTC (default 0). */
  readonly utcOffsetMinutes?: number;
}

export interface SyslogListeners {
  /** The bound `host:port` (the real port when 0 was asked for). */
  readonly udpAddress?: string;
  readonly tcpAddress?: string;
  stats(): LogListenerStats;
  /** Stops listening and closes every connection; appends in flight are not waited for. */
  close(): Promise<void>;
}

export const startSyslogListeners = async (options: SyslogListenerOptions): Promise<SyslogListeners> => {
  const counters = new Counters();
  const warn = throttled(options.warn, options.now, options.warnEveryMs ?? FLOW_DEFAULTS.warnEveryMs);
  const limits = {
    maxRecords: options.maxInFlightRecords ?? FLOW_DEFAULTS.maxInFlightRecords,
    maxBytes: options.maxInFlightBytes ?? FLOW_DEFAULTS.maxInFlightBytes,
  };
  const parse = (bytes: Buffer, peer: string, where: string): RoutedLog | undefined => {
    const now = options.now();
    const parsed = parseSyslog(bytes, { now, utcOffsetMinutes: options.utcOffsetMinutes ?? 0 });
    if (parsed.ok) return fromSyslog(parsed.record, { peer, now, defaultStream: options.defaultStream });
    counters.add('invalid');
    warn(`${where}: message refused: ${parsed.error}`);
    return undefined;
  };
  const appendAll = (routed: readonly RoutedLog[], where: string): Promise<boolean[]> =>
    Promise.all(
      [...byStream(routed)].map(([stream, logs]) =>
        appendCounted(options.sink, stream, logs, counters, warn, where),
      ),
    );

  const context: Context = { options, counters, limits, warn, parse, appendAll };
  let udp: { socket: UdpSocket; address: string } | undefined;
  let tcp: { server: Server; sockets: Set<Socket>; address: string } | undefined;
  try {
    if (options.udp !== false) {
      udp = await bindUdp('logs.syslog.udp', options.udp);
      serveUdp(udp.socket, context);
    }
    if (options.tcp !== false) {
      const sockets = new Set<Socket>();
      const server = createServer((socket) => serveTcp(socket, sockets, context));
      tcp = { server, sockets, address: await listenTcp(server, 'logs.syslog.tcp', options.tcp) };
    }
  } catch (e) {
    // A failed start unwinds what it started.
    udp?.socket.close();
    throw e;
  }
  return {
    ...(udp && { udpAddress: udp.address }),
    ...(tcp && { tcpAddress: tcp.address }),
    stats: () => counters.snapshot(),
    close: async () => {
      const closing: Promise<void>[] = [];
      if (udp) {
        const socket = udp.socket;
        closing.push(new Promise((resolve) => socket.close(() => resolve())));
      }
      if (tcp) closing.push(closeTcp(tcp.server, tcp.sockets));
      await Promise.all(closing);
    },
  };
};

/** What both transports share: options, counters, the bound, the throttled warning, parse and append. */
interface Context {
  readonly options: SyslogListenerOptions;
  readonly counters: Counters;
  readonly limits: { readonly maxRecords: number; readonly maxBytes: number };
  readonly warn: (message: string) => void;
  readonly parse: (bytes: Buffer, peer: string, where: string) => RoutedLog | undefined;
  readonly appendAll: (routed: readonly RoutedLog[], where: string) => Promise<boolean[]>;
}

const serveUdp = (socket: UdpSocket, context: Context): void => {
  const { options, counters, limits } = context;
  let pending: RoutedLog[] = [];
  let pendingBytes = 0;
  const flush = (): void => {
    const batch = pending;
    const bytes = pendingBytes;
    pending = [];
    pendingBytes = 0;
    counters.inFlightRecords += batch.length;
    counters.inFlightBytes += bytes;
    const done = (): void => {
      counters.inFlightRecords -= batch.length;
      counters.inFlightBytes -= bytes;
    };
    context.appendAll(batch, 'syslog udp').then(done, done);
  };
  socket.on('message', (datagram, rinfo) => {
    const peer = peerAddress(rinfo.address);
    const where = `syslog udp from ${peer}`;
    if (datagram.length > options.maxFrameBytes) {
      counters.add('invalid');
      context.warn(
        `${where}: datagram of ${datagram.length} bytes is larger than maxFrameBytes (${options.maxFrameBytes}): dropped`,
      );
      return;
    }
    const records = counters.inFlightRecords + pending.length;
    if (records >= limits.maxRecords || counters.inFlightBytes + pendingBytes >= limits.maxBytes) {
      counters.add('dropped');
      return;
    }
    const routed = context.parse(datagram, peer, where);
    if (routed === undefined) return;
    if (pending.length === 0) setImmediate(flush);
    pending.push(routed);
    pendingBytes += datagram.length;
  });
  // A datagram socket reports ICMP errors of earlier sends; it sends nothing, so there is nothing to do.
  socket.on('error', () => {});
};

const serveTcp = (socket: Socket, sockets: Set<Socket>, context: Context): void => {
  const { options, counters, warn } = context;
  const peer = peerAddress(socket.remoteAddress);
  const where = `syslog tcp from ${peer}:${socket.remotePort ?? '?'}`;
  sockets.add(socket);
  counters.connections++;
  const gate = new FlowGate(socket, counters, context.limits);
  let read: RoutedLog[] = [];
  const framer = new SyslogFramer({
    maxFrameBytes: options.maxFrameBytes,
    onFrame: (frame) => {
      const routed = context.parse(frame, peer, where);
      if (routed !== undefined) read.push(routed);
    },
    onError: (message) => {
      counters.add('invalid');
      warn(`${where}: ${message}`);
    },
  });
  const flush = (bytes: number): void => {
    if (read.length === 0) return;
    const batch = read;
    read = [];
    gate.track(batch.length, bytes, context.appendAll(batch, where));
  };
  socket.on('data', (chunk: Buffer) => {
    framer.push(chunk);
    flush(chunk.length);
  });
  socket.on('end', () => {
    framer.end();
    flush(0);
    socket.end();
  });
  // A reset by the peer: what was framed is appended; the rest is gone with the connection.
  socket.on('error', () => socket.destroy());
  socket.on('close', () => {
    sockets.delete(socket);
    counters.connections--;
    gate.release();
  });
};
