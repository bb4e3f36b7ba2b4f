/**
 * What the log listeners share: binding `host:port` (port 0 allowed; the bound address is reported),
 * counters, warnings that cannot flood the log, and the per-connection gate that stops reading a TCP
 * socket while too much of what it sent is still on its way to the sink.
 *
 * Back-pressure is the sink's own pace: a connection whose appends in flight pass `maxRecords` or
 * `maxBytes` is paused (the kernel's window then slows the sender), and resumed once enough of them
 * have landed. UDP cannot be paused: a datagram that arrives over the bound is dropped and counted, as
 * the kernel would once its buffer is full.
 */
import { createSocket, type Socket as UdpSocket } from 'node:dgram';
import { isIP, type Server, type Socket } from 'node:net';
import type { IncomingLog, LogSink } from '../../actors/log/types.ts';
import { ArgusError, describeError } from '../errors.ts';
import type { RoutedLog } from './records.ts';

/** What every listener takes besides its addresses and protocol limits. */
export interface ListenerOptions {
  readonly sink: LogSink;
  /** Wall-clock ms (the warning throttle, arrival times). */
  readonly now: () => number;
  readonly warn: (message: string) => void;
  /** At most one warning per this many ms (default 10 s). */
  readonly warnEveryMs?: number;
  /** Appends in flight per connection before it is paused. */
  readonly maxInFlightRecords?: number;
  readonly maxInFlightBytes?: number;
}

export const FLOW_DEFAULTS = { maxInFlightRecords: 10_000, maxInFlightBytes: 4 << 20, warnEveryMs: 10_000 };

/** What a listener has seen since it started. */
export interface LogListenerStats {
  /** Records handed to the sink. */
  readonly received: number;
  /** Records the sink said are durable. */
  readonly stored: number;
  /** Messages refused: unparsable, truncated, oversized (syslog), bad requests and entries (forward). */
  readonly invalid: number;
  /** Records of appends the sink rejected. */
  readonly sinkFailures: number;
  /** UDP datagrams dropped while the appends in flight were over the bound. */
  readonly dropped: number;
  /** TCP connections open now, and how many of them are paused for back-pressure. */
  readonly connections: number;
  readonly pausedConnections: number;
  /** Forward `chunk` acks written. */
  readonly acked: number;
}

export type Counter = Exclude<keyof LogListenerStats, 'connections' | 'pausedConnections'>;

export class Counters {
  private readonly values: Record<Counter, number> = {
    received: 0,
    stored: 0,
    invalid: 0,
    sinkFailures: 0,
    dropped: 0,
    acked: 0,
  };
  connections = 0;
  paused = 0;
  /** Records in flight over every connection and datagram (the UDP bound). */
  inFlightRecords = 0;
  inFlightBytes = 0;

  add(counter: Counter, n = 1): void {
    this.values[counter] += n;
  }

  snapshot(): LogListenerStats {
    return { ...this.values, connections: this.connections, pausedConnections: this.paused };
  }
}

/** A `host:port` (`[v6]:port`) split, or a coded error naming the field. */
export const parseAddress = (field: string, address: string): { host: string; port: number } => {
  const m = /^\[([0-9a-fA-F:]+)\]:(\d{1,5})$/.exec(address) ?? /^([A-Za-z0-9.-]+):(\d{1,5})$/.exec(address);
  const port = m === null ? Number.NaN : Number(m[2]);
  if (m === null || port > 65_535)
    throw new ArgusError('ARGUS_ERR_INVALID_CONFIG', `${field}: '${address}' is not host:port`, {
      field,
      value: address,
    });
  return { host: m[1]!, port };
};

const formatAddress = (host: string, port: number): string =>
  isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;

/** Starts `server` on `address`; resolves the bound `host:port`. */
export const listenTcp = (server: Server, field: string, address: string): Promise<string> => {
  const { host, port } = parseAddress(field, address);
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      const bound = server.address();
      resolve(
        typeof bound === 'object' && bound !== null ? formatAddress(bound.address, bound.port) : address,
      );
    });
  });
};

/** A UDP socket bound to `address`, and the bound `host:port`. */
export const bindUdp = (field: string, address: string): Promise<{ socket: UdpSocket; address: string }> => {
  const { host, port } = parseAddress(field, address);
  const socket = createSocket(isIP(host) === 6 ? 'udp6' : 'udp4');
  return new Promise((resolve, reject) => {
    const fail = (e: Error): void => {
      socket.close();
      reject(e);
    };
    socket.once('error', fail);
    socket.bind(port, host, () => {
      socket.off('error', fail);
      const bound = socket.address();
      resolve({ socket, address: formatAddress(bound.address, bound.port) });
    });
  });
};

export const closeTcp = (server: Server, sockets: ReadonlySet<Socket>): Promise<void> =>
  new Promise((resolve) => {
    server.close(() => resolve());
    for (const socket of sockets) socket.destroy();
  });

/** `warn` at most once per `everyMs` (by `now`); the next warning says how many were held back. */
export const throttled = (
  warn: (message: string) => void,
  now: () => number,
  everyMs: number,
): ((message: string) => void) => {
  let last = Number.NEGATIVE_INFINITY;
  let held = 0;
  return (message) => {
    const t = now();
    if (t - last < everyMs) {
      held++;
      return;
    }
    last = t;
    warn(held > 0 ? `${message} (${held} more since the last warning)` : message);
    held = 0;
  };
};

/** Groups records by stream, in arrival order. */
export const byStream = (routed: readonly RoutedLog[]): Map<string, IncomingLog[]> => {
  const out = new Map<string, IncomingLog[]>();
  for (const { stream, log } of routed) {
    const list = out.get(stream);
    if (list) list.push(log);
    else out.set(stream, [log]);
  }
  return out;
};

/**
 * Appends one stream's records, counting them; resolves true once durable, false when the sink
 * rejected (counted and warned). Never rejects, never throws.
 */
export const appendCounted = async (
  sink: LogSink,
  stream: string,
  logs: readonly IncomingLog[],
  counters: Counters,
  warn: (message: string) => void,
  where: string,
): Promise<boolean> => {
  counters.add('received', logs.length);
  try {
    await sink.append(stream, logs);
    counters.add('stored', logs.length);
    return true;
  } catch (e) {
    counters.add('sinkFailures', logs.length);
    warn(`${where}: ${logs.length} records of stream '${stream}' not stored: ${describeError(e).message}`);
    return false;
  }
};

/**
 * One TCP connection's share of the bound: `track` what a read produced, and the socket is paused while
 * its records or bytes in flight are over the limits.
 */
export class FlowGate {
  private records = 0;
  private bytes = 0;
  private paused = false;

  constructor(
    private readonly socket: Socket,
    private readonly counters: Counters,
    private readonly limits: { readonly maxRecords: number; readonly maxBytes: number },
  ) {}

  track(records: number, bytes: number, landed: Promise<unknown>): void {
    this.records += records;
    this.bytes += bytes;
    if (!this.paused && (this.records > this.limits.maxRecords || this.bytes > this.limits.maxBytes)) {
      this.paused = true;
      this.counters.paused++;
      this.socket.pause();
    }
    const done = (): void => {
      this.records -= records;
      this.bytes -= bytes;
      if (this.paused && this.records <= this.limits.maxRecords && this.bytes <= this.limits.maxBytes) {
        this.release();
        if (!this.socket.destroyed) this.socket.resume();
      }
    };
    landed.then(done, done);
  }

  /** The connection closed: it no longer counts as paused. */
  release(): void {
    if (!this.paused) return;
    this.paused = false;
    this.counters.paused--;
  }
}
