/**
 * The shared socket under net-snmp sessions, against plain UDP "agents" on loopback that answer every
 * datagram with their name and the datagram (or, for SNMP-shaped datagrams, with the datagram itself,
 * whose request id an answer keeps). The poller over it, with real agents, is in
 * test/host/snmpd.test.ts.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { EventEmitter } from 'node:events';
import snmp from 'net-snmp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSharedDgram, requestIdOf, type SessionSocket } from './shared-dgram.ts';

interface EchoAgent {
  readonly name: string;
  readonly port: number;
  readonly socket: Socket;
  /** Source ports of the datagrams it got. */
  readonly seen: number[];
}

const echoAgent = (name: string): Promise<EchoAgent> =>
  new Promise((resolve) => {
    const socket = createSocket('udp4');
    const seen: number[] = [];
    socket.on('message', (buffer: Buffer, rinfo: RemoteInfo) => {
      seen.push(rinfo.port);
      const answer = buffer[0] === 0x30 ? buffer : Buffer.concat([Buffer.from(`${name}:`), buffer]);
      socket.send(answer, rinfo.port, rinfo.address);
    });
    socket.bind(0, '127.0.0.1', () => resolve({ name, port: socket.address().port, socket, seen }));
  });

/** What a session socket receives, as text. */
const inbox = (session: SessionSocket): string[] => {
  const got: string[] = [];
  session.on('message', (buffer: Buffer) => got.push(buffer.toString()));
  return got;
};

/** A v2c GET with that request id and no varbinds, as net-snmp encodes it. */
const v2cGet = (id: number): Buffer => {
  const idBytes = Buffer.alloc(4);
  idBytes.writeInt32BE(id);
  const pdu = Buffer.from([0xa0, 15, 0x02, 4, ...idBytes, 0x02, 1, 0, 0x02, 1, 0, 0x30, 0]);
  const body = Buffer.concat([Buffer.from([0x02, 1, 1, 0x04, 6]), Buffer.from('public'), pdu]);
  return Buffer.concat([Buffer.from([0x30, body.length]), body]);
};

/** The request ids of what `session` receives (SNMP-shaped datagrams). */
const idsReceived = (session: SessionSocket): (number | undefined)[] => {
  const got: (number | undefined)[] = [];
  session.on('message', (buffer: Buffer) => got.push(requestIdOf(buffer)));
  return got;
};

const send = (session: SessionSocket, agent: EchoAgent, text: string | Buffer): Promise<void> =>
  new Promise((resolve, reject) => {
    const buffer = Buffer.from(text);
    session.send(buffer, 0, buffer.length, agent.port, '127.0.0.1', (error) =>
      error ? reject(error) : resolve(),
    );
  });

const settle = (ms = 30): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

let a: EchoAgent;
let b: EchoAgent;
beforeAll(async () => {
  [a, b] = await Promise.all([echoAgent('a'), echoAgent('b')]);
});
afterAll(() => {
  a.socket.close();
  b.socket.close();
});

describe('shared dgram', () => {
  it('gives two sessions to two agents their own answers, through one socket', async () => {
    const shared = createSharedDgram();
    const toA = shared.module.createSocket('udp4');
    const toB = shared.module.createSocket('udp4');
    const [gotA, gotB] = [inbox(toA), inbox(toB)];
    await Promise.all([send(toA, a, '1'), send(toB, b, '2'), send(toA, a, '3')]);
    await settle();
    expect(gotA.sort()).toEqual(['a:1', 'a:3']);
    expect(gotB).toEqual(['b:2']);
    expect(shared.socketCount()).toBe(1);
    expect(new Set([...a.seen.slice(-2), ...b.seen.slice(-1)]).size).toBe(1); // one source port
    toA.close();
    toB.close();
    shared.close();
  });

  it('gives two sessions of one agent the answers to their own request ids, once each', async () => {
    const shared = createSharedDgram();
    const first = shared.module.createSocket('udp4');
    const second = shared.module.createSocket('udp4');
    const [got1, got2] = [idsReceived(first), idsReceived(second)];
    await Promise.all([send(first, a, v2cGet(11)), send(second, a, v2cGet(22)), send(first, a, v2cGet(-3))]);
    await settle();
    a.socket.send(v2cGet(11), first.address().port, '127.0.0.1'); // answered already: nobody waits
    a.socket.send('not snmp', first.address().port, '127.0.0.1');
    await settle();
    expect(got1.sort()).toEqual([-3, 11]);
    expect(got2).toEqual([22]);
    first.close();
    second.close();
    shared.close();
  });

  it('stops delivering to a closed session, which emits close; the others go on', async () => {
    const shared = createSharedDgram();
    const closing = shared.module.createSocket('udp4');
    const staying = shared.module.createSocket('udp4');
    const [gotClosing, gotStaying] = [inbox(closing), inbox(staying)];
    await Promise.all([send(closing, b, 'before'), send(staying, a, 'other')]);
    await settle();
    const closed = new Promise<void>((resolve) => closing.on('close', () => resolve()));
    closing.close();
    await closed;
    expect(shared.listenerCount()).toBe(1);
    b.socket.send('late', staying.address().port, '127.0.0.1');
    await send(staying, a, 'after');
    await settle();
    expect(gotClosing).toEqual(['b:before']);
    expect(gotStaying.sort()).toEqual(['a:after', 'a:other']);
    expect(() => closing.send(Buffer.from('again'), 0, 5, a.port, '127.0.0.1')).toThrow('Not running');
    staying.close();
    shared.close();
  });

  it('drops datagrams from a source no session sent to', async () => {
    const shared = createSharedDgram();
    const session = shared.module.createSocket('udp4');
    const got = inbox(session);
    await send(session, a, 'q');
    await settle();
    const { port } = session.address();
    b.socket.send('unasked', port, '127.0.0.1');
    await settle();
    expect(got).toEqual(['a:q']);
    session.close();
    shared.close();
  });

  it('closes the real socket on close, once the last session has closed', async () => {
    const shared = createSharedDgram();
    const session = shared.module.createSocket('udp4');
    await send(session, a, 'ping');
    const { port } = session.address();
    shared.close();
    expect(shared.socketCount()).toBe(1); // a session is still open
    expect(() => shared.module.createSocket('udp4')).toThrow('Not running');
    session.close();
    expect(shared.socketCount()).toBe(0);
    await settle();
    // The port is free again: the socket is really closed.
    const probe = createSocket('udp4');
    await new Promise<void>((resolve, reject) => {
      probe.once('error', reject);
      probe.bind(port, '0.0.0.0', () => resolve());
    });
    probe.close();
  });
});

describe('requestIdOf', () => {
  /** What a net-snmp session sends for a GET, and the id it registered the request under. */
  const firstRequest = (create: (dgramModule: object) => snmp.Session): Promise<[Buffer, number]> =>
    new Promise((resolve) => {
      const sent: Buffer[] = [];
      const socket = Object.assign(new EventEmitter(), {
        ref: () => socket,
        unref: () => socket,
        close: () => undefined,
        send: (buffer: Buffer, _o: number, _l: number, _p: number, _a: string, cb: () => void) => {
          sent.push(Buffer.from(buffer));
          cb();
        },
      });
      const session = create({ createSocket: () => socket });
      session.get(['1.3.6.1.2.1.1.3.0'], () => undefined);
      setImmediate(() => {
        const ids = Object.keys((session as unknown as { reqs: object }).reqs).map(Number);
        session.cancelRequests(new Error('done'));
        resolve([sent[0] as Buffer, ids[0] as number]);
      });
    });

  it('reads the request id net-snmp matches answers by: v2c request-id, v3 msgID', async () => {
    const v2c = await firstRequest((dgramModule) =>
      snmp.createSession('127.0.0.1', 'public', { version: snmp.Version2c, dgramModule }),
    );
    const v3 = await firstRequest((dgramModule) =>
      snmp.createV3Session(
        '127.0.0.1',
        { name: 'mon', level: snmp.SecurityLevel.noAuthNoPriv },
        { version: snmp.Version3, dgramModule },
      ),
    );
    for (const [buffer, id] of [v2c, v3]) expect(requestIdOf(buffer)).toBe(id);
  });

  it('gives undefined for what is not an SNMP message', () => {
    for (const junk of ['', 'a:1', '\x30\x05\x02\x01', '\x30\x03\x02\x01\x01'])
      expect(requestIdOf(Buffer.from(junk, 'latin1'))).toBeUndefined();
    expect(requestIdOf(v2cGet(7).subarray(0, 20))).toBeUndefined();
  });
});
