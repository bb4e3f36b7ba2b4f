/**
 * A loopback TCP proxy a test puts between a client and a server (etcd, a second node…) to cut the
 * network between them and heal it again.
 *
 * - `cut('reset')`: the server is gone. Every open connection is reset (both sides see ECONNRESET)
 *   and the proxy stops listening, so new connects fail at once with ECONNREFUSED.
 * - `cut('blackhole')`: a silent partition. Connections stay open and new ones are accepted, but no
 *   byte moves in either direction, and neither does a close or reset: clients see timeouts only.
 *   A connection accepted in a blackhole reaches the server only after restore().
 * - `restore()`: forwarding again. Connections reset by a cut are gone; new ones work. Connections
 *   held by a blackhole go on where they stopped and get the bytes sent into the partition, in order
 *   — what TCP's retransmission does once a short partition heals. Dropping those bytes and going on
 *   would be no partition at all but a stream with a hole, which TCP never delivers (HTTP/2 and Kafka
 *   framing would just break). `restore({ resetHeld: true })` resets those connections instead,
 *   dropping what they held: a partition that outlasted the peers' timeouts.
 *
 * Bytes already written on before a cut may still arrive, like packets in flight. A blackholed
 * connection is not a perfect partition: the kernel still acknowledges what the proxy's buffers take
 * in, so a sender's writes succeed for a while (as they do into its own send buffer in a real one).
 *
 * Kafka: a broker advertises its own address in metadata, so a Kafka client bootstrapped through a
 * proxy bypasses it after the first request; proxying Kafka needs a broker that advertises the proxy.
 */
import { createConnection, createServer, type Server, type Socket } from 'node:net';

export interface TcpTarget {
  readonly host: string;
  readonly port: number;
}

export type CutMode = 'reset' | 'blackhole';
export type TcpProxyState = 'open' | CutMode | 'closed';

export interface RestoreOptions {
  /** Reset the connections a blackhole held instead of letting them go on (default false). */
  readonly resetHeld?: boolean;
}

export interface TcpProxy {
  readonly target: TcpTarget;
  /** Always '127.0.0.1'. */
  readonly host: string;
  readonly port: number;
  /** `127.0.0.1:<port>` (Kafka's broker form). */
  readonly address: string;
  /** `http://127.0.0.1:<port>` (etcd's endpoint form). */
  readonly url: string;
  readonly state: TcpProxyState;
  /** Client connections accepted and not closed yet. */
  connectionCount(): number;
  /** Connections accepted since the start (a client that reconnected shows here). */
  acceptedCount(): number;
  cut(mode: CutMode): Promise<void>;
  restore(options?: RestoreOptions): Promise<void>;
  /** Ends every connection and stops listening. Idempotent. */
  close(): Promise<void>;
}

/** `http://host:port`, `https://host:port` or `host:port` (IPv6 as `[::1]:port`). */
export const parseEndpoint = (endpoint: string): TcpTarget => {
  const url = new URL(/^[a-z][a-z0-9+.-]*:\/\//i.test(endpoint) ? endpoint : `tcp://${endpoint}`);
  const port = Number(url.port);
  if (url.hostname === '' || !Number.isInteger(port) || port <= 0) {
    throw new Error(`not a host:port endpoint: ${JSON.stringify(endpoint)}`);
  }
  return { host: url.hostname.replace(/^\[|\]$/g, ''), port };
};

/** One direction of a connection. */
interface Flow {
  readonly from: Socket;
  readonly to: Socket;
  /** Paused because `to` is full, until it drains. */
  waitingForDrain: boolean;
}

interface Link {
  readonly client: Socket;
  /** Connected when the client is accepted, or at restore() for a client accepted in a blackhole. */
  upstream: Socket | undefined;
  flows: Flow[];
  /** A FIN or a reset that came during a blackhole: delivered by restore(). */
  readonly pendingEnd: Set<Socket>;
  readonly pendingReset: Set<Socket>;
}

const HOST = '127.0.0.1';

/** RST when the socket is connected, a plain destroy otherwise. */
const reset = (socket: Socket): void => {
  if (socket.destroyed) return;
  if (socket.connecting || socket.pending) socket.destroy();
  else socket.resetAndDestroy();
};

const listen = (server: Server, port: number): Promise<number> =>
  new Promise((resolve, reject) => {
    const onError = (e: Error): void => reject(e);
    server.once('error', onError);
    server.listen(port, HOST, () => {
      server.off('error', onError);
      const address = server.address();
      if (typeof address === 'object' && address !== null) resolve(address.port);
      else reject(new Error('could not read the port of the proxy'));
    });
  });

const closeServer = (server: Server): Promise<void> =>
  new Promise((resolve) => {
    if (!server.listening) resolve();
    else server.close(() => resolve());
  });

export const startTcpProxy = async (target: TcpTarget | string): Promise<TcpProxy> => {
  const upstreamTarget = typeof target === 'string' ? parseEndpoint(target) : target;
  const links = new Set<Link>();
  let state: TcpProxyState = 'open';
  let accepted = 0;

  const forwarding = (): boolean => state === 'open';

  const endLink = (link: Link): void => {
    links.delete(link);
    reset(link.client);
    if (link.upstream !== undefined) reset(link.upstream);
  };

  const forget = (link: Link): void => {
    if (link.client.destroyed && (link.upstream === undefined || link.upstream.destroyed)) links.delete(link);
  };

  /** Connects the upstream side and wires both directions; the sockets stay paused. */
  const attach = (link: Link): void => {
    const { client } = link;
    const upstream = createConnection({ host: upstreamTarget.host, port: upstreamTarget.port });
    upstream.pause();
    upstream.setNoDelay(true);
    link.upstream = upstream;
    link.flows = [
      { from: client, to: upstream, waitingForDrain: false },
      { from: upstream, to: client, waitingForDrain: false },
    ];
    for (const flow of link.flows) {
      const { from, to } = flow;
      from.on('data', (chunk: Buffer) => {
        // A cut pauses every socket, so no data should come; if some does, it goes back unread.
        if (!forwarding()) {
          from.pause();
          from.unshift(chunk);
          return;
        }
        if (!to.write(chunk)) {
          flow.waitingForDrain = true;
          from.pause();
        }
      });
      to.on('drain', () => {
        flow.waitingForDrain = false;
        if (forwarding() && links.has(link)) from.resume();
      });
      // A FIN or a reset crosses like data: not while cut.
      from.on('end', () => {
        if (forwarding()) to.end();
        else link.pendingEnd.add(to);
      });
      from.on('error', () => {
        if (forwarding()) endLink(link);
        else link.pendingReset.add(to);
      });
    }
    upstream.on('close', () => forget(link));
  };

  const resumeLink = (link: Link): void => {
    for (const flow of link.flows) if (!flow.waitingForDrain) flow.from.resume();
  };

  const onConnection = (client: Socket): void => {
    accepted++;
    if (!forwarding() && state !== 'blackhole') {
      // Accepted just before the listener closed.
      reset(client);
      return;
    }
    client.setNoDelay(true);
    const link: Link = {
      client,
      upstream: undefined,
      flows: [],
      pendingEnd: new Set(),
      pendingReset: new Set(),
    };
    links.add(link);
    client.on('error', () => undefined); // handled by the flows once attached; nothing to do before
    client.on('close', () => forget(link));
    // In a blackhole the client is accepted (the kernel did the handshake) but the server hears of it
    // only after restore().
    if (forwarding()) {
      attach(link);
      resumeLink(link);
    }
  };

  let server = createServer({ pauseOnConnect: true }, onConnection);
  const port = await listen(server, 0);

  const relisten = async (): Promise<void> => {
    if (server.listening) return;
    // The old connections' sockets may keep the port busy for a moment; SO_REUSEADDR (set by Node)
    // covers TIME_WAIT, a retry covers the rest.
    const deadline = Date.now() + 5_000;
    for (;;) {
      const next = createServer({ pauseOnConnect: true }, onConnection);
      try {
        await listen(next, port);
        server = next;
        return;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code !== 'EADDRINUSE' || Date.now() > deadline) throw e;
        await new Promise((r) => setTimeout(r, 50));
      }
    }
  };

  const pauseAll = (): void => {
    for (const link of links) {
      link.client.pause();
      link.upstream?.pause();
    }
  };

  const resetAll = (): void => {
    for (const link of [...links]) endLink(link);
  };

  const proxy: TcpProxy = {
    target: upstreamTarget,
    host: HOST,
    port,
    address: `${HOST}:${port}`,
    url: `http://${HOST}:${port}`,
    get state() {
      return state;
    },
    connectionCount: () => links.size,
    acceptedCount: () => accepted,
    cut: async (mode) => {
      if (state === 'closed') throw new Error('tcp proxy: cut() after close()');
      state = mode;
      if (mode === 'reset') {
        const closed = closeServer(server);
        resetAll();
        await closed;
      } else {
        pauseAll();
        await relisten();
      }
    },
    restore: async (options = {}) => {
      if (state === 'closed') throw new Error('tcp proxy: restore() after close()');
      if (state === 'blackhole' && options.resetHeld === true) resetAll();
      await relisten();
      state = 'open';
      for (const link of [...links]) {
        if (link.pendingReset.size > 0 || link.client.destroyed) {
          endLink(link);
          continue;
        }
        if (link.upstream === undefined) attach(link);
        for (const socket of link.pendingEnd) if (!socket.destroyed) socket.end();
        link.pendingEnd.clear();
        resumeLink(link);
      }
    },
    close: async () => {
      if (state === 'closed') return;
      state = 'closed';
      const closed = closeServer(server);
      for (const link of [...links]) {
        links.delete(link);
        link.client.destroy();
        link.upstream?.destroy();
      }
      await closed;
    },
  };
  return proxy;
};
