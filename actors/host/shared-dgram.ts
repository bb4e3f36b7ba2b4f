/**
 * Many net-snmp sessions on one UDP socket. net-snmp gives every `Session` a socket of its own, made by
 * its `dgramModule` option (`createSocket(transport)`, then `unref`, `on('message' | 'close' | 'error')`,
 * `send(buffer, offset, length, port, address, cb)`, `ref`/`unref` around requests, `close`). The module
 * made here hands each session a socketless `SessionSocket` instead: its sends go out through one real
 * socket per transport (udp4, udp6), bound to an ephemeral port on all addresses, and each datagram that
 * comes back is handed to the sessions that sent to its source (address, port). A session talks to one
 * agent, so the source names it. Two sessions of the same agent (two credentials, or a session per
 * poll with polls overlapping) are told apart by the request id (v3: msgID), which both the request and
 * its answer carry in clear: the answer goes to the session that sent that id, so no session decodes
 * the others' answers. A datagram from a source nobody sent to, or an answer no session of its source
 * waits for (late, after a timeout), is dropped, as net-snmp would drop it.
 *
 * What it buys: a session costs its objects only (no fd, no port, no bind or close per session), so a
 * poller can keep one session per host for a great many hosts. What it costs: one receive queue for
 * every answer, hence the larger receive buffer (RECV_BUFFER_BYTES, capped by net.core.rmem_max).
 *
 * Lifetime: the real socket is made on the first send of its transport and lives until `close()`; it is
 * unref'd whenever no session has a request outstanding (net-snmp refs a session's socket while it
 * waits), so an idle poller does not hold the process. `close()` closes the real sockets once the last
 * open session has closed (a poll in flight finishes first). A real socket's error closes every session
 * that sent through it (net-snmp fails their requests) and the next send makes a new socket.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { lookup } from 'node:dns';
import { EventEmitter } from 'node:events';
import { isIP, SocketAddress } from 'node:net';

export type Transport = 'udp4' | 'udp6';

/** Enough for some thousand answers queued while the event loop is busy elsewhere. */
const RECV_BUFFER_BYTES = 4 * 1024 * 1024;
const ANY_ADDRESS: Readonly<Record<Transport, string>> = { udp4: '0.0.0.0', udp6: '::' };

type SendCallback = (error: Error | null, bytes?: number) => void;

/** One session's view of the shared socket: the part of node's dgram.Socket net-snmp uses. */
export interface SessionSocket extends EventEmitter {
  send(
    buffer: Buffer,
    offset: number,
    length: number,
    port: number,
    address: string,
    callback?: SendCallback,
  ): void;
  bind(): void;
  ref(): this;
  unref(): this;
  close(callback?: () => void): void;
  address(): { address: string; family: string; port: number };
}

export interface SharedDgram {
  /** For net-snmp's `dgramModule` option. */
  readonly module: { createSocket(transport: Transport): SessionSocket };
  /** Real sockets open now (at most one per transport). */
  socketCount(): number;
  /** Sessions that sent and are still open, by source they listen to: a gauge for tests. */
  listenerCount(): number;
  /** Closes the real sockets once every session is closed; `createSocket` throws from now on. */
  close(): void;
}

const notRunning = (): Error =>
  Object.assign(new Error('Not running'), { code: 'ERR_SOCKET_DGRAM_NOT_RUNNING' });

/** How the source of an answer will read: rinfo gives IPv6 in its canonical form. */
const canonicalIp = (address: string, family: number): string =>
  family === 6 ? new SocketAddress({ address, family: 'ipv6' }).address : address;

const sourceKey = (address: string, port: number): string => `${port} ${address}`;

/** Request ids a session remembers (its requests in flight; a timed-out one is forgotten later). */
const MAX_AWAITED = 64;

/**
 * The request id of an SNMP message as net-snmp reads it (`Message.getReqId`): the PDU's request-id
 * for v1/v2c, msgID for v3; undefined if the datagram does not start like an SNMP message.
 */
export const requestIdOf = (buffer: Buffer): number | undefined => {
  let at = 0;
  /** Skips a tag and length; gives the content length. */
  const header = (): number | undefined => {
    at++;
    let length = buffer[at++];
    if (length === undefined || at > buffer.length) return undefined;
    if (length & 0x80) {
      const bytes = length & 0x7f;
      if (bytes === 0 || bytes > 4 || at + bytes > buffer.length) return undefined;
      length = buffer.readUIntBE(at, bytes);
      at += bytes;
    }
    return length;
  };
  const integer = (): number | undefined => {
    if (buffer[at] !== 0x02) return undefined;
    const length = header();
    if (length === undefined || length < 1 || length > 6 || at + length > buffer.length) return undefined;
    const value = buffer.readIntBE(at, length);
    at += length;
    return value;
  };
  if (buffer[0] !== 0x30 || header() === undefined) return undefined;
  const version = integer();
  if (version === 3) {
    if (buffer[at] !== 0x30 || header() === undefined) return undefined;
    return integer();
  }
  if (version === undefined || buffer[at] !== 0x04) return undefined;
  const community = header();
  if (community === undefined) return undefined;
  at += community;
  const pdu = buffer[at];
  if (pdu === undefined || (pdu & 0xe0) !== 0xa0 || header() === undefined) return undefined;
  return integer();
};

/** The sockets and routes of one transport. */
class Hub {
  socket: Socket | undefined;
  /** Source → the session (or sessions: the same agent twice) that sent to it. */
  readonly routes = new Map<string, SharedSocket | Set<SharedSocket>>();
  refs = 0;
  open = 0;

  constructor(
    readonly transport: Transport,
    readonly closing: () => boolean,
  ) {}

  socketForSend(): Socket {
    if (this.socket) return this.socket;
    const socket = createSocket(this.transport);
    socket.on('message', (buffer: Buffer, rinfo: RemoteInfo) => this.dispatch(buffer, rinfo));
    socket.on('error', () => this.fail(socket));
    // Sends before 'listening' are queued by node until the bind is done.
    socket.bind(0, ANY_ADDRESS[this.transport], () => {
      try {
        socket.setRecvBufferSize(RECV_BUFFER_BYTES);
      } catch {
        // the kernel's default buffer then: works, with less slack
      }
    });
    if (this.refs === 0) socket.unref();
    this.socket = socket;
    return socket;
  }

  dispatch(buffer: Buffer, rinfo: RemoteInfo): void {
    const to = this.routes.get(sourceKey(rinfo.address, rinfo.port));
    if (to === undefined) return;
    const id = requestIdOf(buffer);
    if (!(to instanceof Set)) {
      if (id !== undefined) to.answered(id);
      // The one session of that agent gets it all, undecodable or not: a socket of its own would.
      to.emit('message', buffer, rinfo);
      return;
    }
    if (id === undefined) return;
    for (const session of to)
      if (session.answered(id)) {
        session.emit('message', buffer, rinfo);
        return;
      }
  }

  route(key: string, session: SharedSocket): void {
    const to = this.routes.get(key);
    if (to === undefined) this.routes.set(key, session);
    else if (to instanceof Set) to.add(session);
    else if (to !== session) this.routes.set(key, new Set([to, session]));
  }

  unroute(key: string, session: SharedSocket): void {
    const to = this.routes.get(key);
    if (to === session) this.routes.delete(key);
    else if (to instanceof Set) {
      to.delete(session);
      if (to.size === 1) this.routes.set(key, to.values().next().value as SharedSocket);
    }
  }

  changeRefs(delta: 1 | -1): void {
    this.refs += delta;
    if (this.refs === 1 && delta === 1) this.socket?.ref();
    if (this.refs === 0) this.socket?.unref();
  }

  /** The real socket failed: every session that used it is closed, the next send opens a new one. */
  fail(socket: Socket): void {
    if (this.socket !== socket) return;
    this.socket = undefined;
    closeQuietly(socket);
    const sessions = new Set<SharedSocket>();
    for (const to of this.routes.values())
      for (const session of to instanceof Set ? to : [to]) sessions.add(session);
    for (const session of sessions) session.close();
  }

  sessionClosed(): void {
    this.open--;
    if (this.open === 0 && this.closing()) this.closeSocket();
  }

  closeSocket(): void {
    if (this.socket) closeQuietly(this.socket);
    this.socket = undefined;
  }
}

const closeQuietly = (socket: Socket): void => {
  try {
    socket.close();
  } catch {
    // already closed
  }
};

class SharedSocket extends EventEmitter implements SessionSocket {
  #closed = false;
  /** A new dgram socket is ref'd; net-snmp unrefs it at once. */
  #refed = true;
  /** The sources this session sent to (one, but for a name that resolved to several addresses). */
  readonly #keys: string[] = [];
  /** Request ids sent and not answered yet, oldest first. */
  readonly #awaited: number[] = [];

  constructor(readonly hub: Hub) {
    super();
    hub.open++;
    hub.changeRefs(1);
  }

  send(
    buffer: Buffer,
    offset: number,
    length: number,
    port: number,
    address: string,
    callback?: SendCallback,
  ): void {
    if (this.#closed) throw notRunning();
    const family = isIP(address);
    if (family !== 0) {
      this.#sendTo(buffer, offset, length, port, canonicalIp(address, family), callback);
      return;
    }
    // A host name: resolved here (as node's dgram would) so that the answer's source can be routed.
    lookup(address, { family: this.hub.transport === 'udp6' ? 6 : 4 }, (error, ip) => {
      if (error) callback?.(error);
      else if (this.#closed) callback?.(notRunning());
      else this.#sendTo(buffer, offset, length, port, ip, callback);
    });
  }

  #sendTo(
    buffer: Buffer,
    offset: number,
    length: number,
    port: number,
    ip: string,
    callback?: SendCallback,
  ): void {
    const id = requestIdOf(buffer.subarray(offset, offset + length));
    if (id !== undefined && !this.#awaited.includes(id)) {
      if (this.#awaited.push(id) > MAX_AWAITED) this.#awaited.shift();
    }
    const key = sourceKey(ip, port);
    if (!this.#keys.includes(key)) {
      this.#keys.push(key);
      this.hub.route(key, this);
    }
    this.hub.socketForSend().send(buffer, offset, length, port, ip, callback);
  }

  /** Whether this session waits for an answer with that request id; it then no longer does. */
  answered(id: number): boolean {
    const i = this.#awaited.indexOf(id);
    if (i >= 0) this.#awaited.splice(i, 1);
    return i >= 0;
  }

  /** net-snmp binds only for a sourceAddress/sourcePort, which the poller never sets. */
  bind(): void {
    throw Object.assign(new Error('a shared SNMP socket cannot be bound per session'), {
      code: 'ERR_SOCKET_DGRAM_IS_CONNECTED',
    });
  }

  ref(): this {
    if (!this.#closed && !this.#refed) {
      this.#refed = true;
      this.hub.changeRefs(1);
    }
    return this;
  }

  unref(): this {
    if (!this.#closed && this.#refed) {
      this.#refed = false;
      this.hub.changeRefs(-1);
    }
    return this;
  }

  address(): { address: string; family: string; port: number } {
    if (!this.hub.socket) throw notRunning();
    return this.hub.socket.address();
  }

  close(callback?: () => void): void {
    if (this.#closed) return;
    this.unref();
    this.#closed = true;
    for (const key of this.#keys) this.hub.unroute(key, this);
    this.hub.sessionClosed();
    // node's dgram emits 'close' on the next tick too; net-snmp then fails the requests still open.
    process.nextTick(() => {
      callback?.();
      this.emit('close');
    });
  }
}

export const createSharedDgram = (): SharedDgram => {
  let closing = false;
  const hubs: Record<Transport, Hub> = {
    udp4: new Hub('udp4', () => closing),
    udp6: new Hub('udp6', () => closing),
  };
  return {
    module: {
      createSocket(transport: Transport): SessionSocket {
        if (closing) throw notRunning();
        return new SharedSocket(hubs[transport]);
      },
    },
    socketCount: () => (hubs.udp4.socket ? 1 : 0) + (hubs.udp6.socket ? 1 : 0),
    listenerCount: () => {
      let n = 0;
      for (const hub of Object.values(hubs))
        for (const to of hub.routes.values()) n += to instanceof Set ? to.size : 1;
      return n;
    },
    close: () => {
      closing = true;
      for (const hub of Object.values(hubs)) if (hub.open === 0) hub.closeSocket();
    },
  };
};
