/**
 * The infrastructure of the cluster fault tests: etcd and Kafka that halt and resume with their data
 * (scripts/services/*.ts), and the TCP proxy that cuts a connection (test/helpers/tcp-proxy.ts).
 * Starts its own etcd and Kafka: run alone with
 * `ARGUS_KAFKA_BROKERS=none:1 ARGUS_ETCD_ENDPOINTS=none:1 npx vitest run test/services-restart.test.ts`.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { Etcd3, GRPCDeadlineExceededError, GRPCUnavailableError } from 'etcd3';
import { Kafka, logLevel, Partitioners } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type RunningEtcd, type RunningKafka, startEtcd, startKafka } from '../scripts/services.ts';
import { uniquePrefix } from './helpers/services.ts';
import { parseEndpoint, startTcpProxy, type TcpProxy } from './helpers/tcp-proxy.ts';
import { sleep, waitFor } from './helpers/wait.ts';

/** 'connected', or the error code of a plain TCP connect to 127.0.0.1:port. */
const tryConnect = (port: number): Promise<string> =>
  new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve('connected');
    });
    socket.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? e.message));
  });

const portOf = (endpoint: string): number => parseEndpoint(endpoint).port;

/** An etcd client whose calls give up after `deadlineMs` (etcd3 1.1.2 ignores `dialTimeout`). */
const etcdClient = (hosts: string[] | string, deadlineMs: number): Etcd3 =>
  new Etcd3({ hosts, defaultCallOptions: () => ({ deadline: Date.now() + deadlineMs }) });

describe('restartable etcd', () => {
  let etcd: RunningEtcd;
  const clients: Etcd3[] = [];
  const client = (deadlineMs = 3_000): Etcd3 => {
    const c = etcdClient(etcd.endpoints, deadlineMs);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    etcd = await startEtcd();
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await etcd?.stop();
  });

  it('keeps keys and leases across halt and resume, on the same endpoint', async () => {
    const key = `/${uniquePrefix('restart')}/greeting`;
    const before = client();
    await before.put(key).value('kept across a restart ✓');
    const lease = before.lease(30, { autoKeepAlive: false });
    await lease.put(`${key}-leased`).value('leased');
    const leaseId = await lease.grant();
    await sleep(1_100);
    const ttlBefore = Number((await before.leaseClient.leaseTimeToLive({ ID: leaseId })).TTL);
    const endpoints = [...etcd.endpoints];
    const pidBefore = etcd.pid;

    await etcd.halt();
    expect(await tryConnect(portOf(endpoints[0] as string))).toBe('ECONNREFUSED');
    await expect(client().get(key).string()).rejects.toBeInstanceOf(GRPCUnavailableError);
    await etcd.halt(); // a no-op while halted

    await etcd.resume();
    expect(etcd.endpoints).toEqual(endpoints);
    expect(etcd.pid).not.toBe(pidBefore);
    const after = client();
    expect(await after.get(key).string()).toBe('kept across a restart ✓');
    expect(await after.get(`${key}-leased`).string()).toBe('leased');
    // The restarted leader gives every lease its full TTL again: a dead holder's keys live longer.
    const ttlAfter = Number((await after.leaseClient.leaseTimeToLive({ ID: leaseId })).TTL);
    expect(ttlBefore).toBeLessThan(30);
    expect(ttlAfter).toBeGreaterThan(ttlBefore);
    // The client from before the halt reconnects by itself.
    expect(await before.get(key).string()).toBe('kept across a restart ✓');
  });

  it('stop() after halt() removes the data folder', async () => {
    const other = await startEtcd({ keepFiles: false });
    const folder = dirname(other.logFile);
    try {
      await other.halt();
      expect(existsSync(`${folder}/data`)).toBe(true);
    } finally {
      await other.stop();
    }
    expect(existsSync(folder)).toBe(false);
    await expect(other.resume()).rejects.toThrow('resume() after stop()');
  });
});

describe('restartable Kafka', () => {
  let kafka: RunningKafka;
  beforeAll(async () => {
    kafka = await startKafka();
  });
  afterAll(async () => {
    await kafka?.stop();
  });

  it('keeps a topic and its records across halt and resume, on the same port', async () => {
    const client = (): Kafka =>
      new Kafka({
        clientId: 'services-restart-test',
        brokers: kafka.brokers,
        logLevel: logLevel.NOTHING,
        connectionTimeout: 1_000,
        retry: { retries: 2 },
      });
    const topic = `${uniquePrefix('restart')}.records`;
    const admin = client().admin();
    await admin.connect();
    try {
      expect(await admin.createTopics({ topics: [{ topic, numPartitions: 1 }], waitForLeaders: true })).toBe(
        true,
      );
    } finally {
      await admin.disconnect();
    }
    const producer = client().producer({ createPartitioner: Partitioners.DefaultPartitioner });
    await producer.connect();
    try {
      await producer.send({
        topic,
        acks: -1,
        messages: [
          { key: 'a', value: 'first' },
          { key: 'b', value: 'second' },
          { key: 'c', value: 'third ✓' },
        ],
      });
    } finally {
      await producer.disconnect();
    }
    const brokers = [...kafka.brokers];
    const pidBefore = kafka.pid;

    await kafka.halt();
    expect(await tryConnect(portOf(brokers[0] as string))).toBe('ECONNREFUSED');
    const down = client().admin();
    await expect(down.connect()).rejects.toThrow();
    await down.disconnect();

    await kafka.resume();
    expect(kafka.brokers).toEqual(brokers);
    expect(kafka.pid).not.toBe(pidBefore);

    const reader = client();
    const consumer = reader.consumer({ groupId: `${topic}.reader`, maxWaitTimeInMs: 100 });
    const admin2 = reader.admin();
    try {
      await consumer.connect();
      await consumer.subscribe({ topic, fromBeginning: true });
      const received: { key: string; value: string; offset: string }[] = [];
      await new Promise<void>((resolve, reject) => {
        consumer
          .run({
            eachMessage: async ({ message }) => {
              received.push({
                key: message.key?.toString() ?? '',
                value: message.value?.toString() ?? '',
                offset: message.offset,
              });
              if (received.length === 3) resolve();
            },
          })
          .catch(reject);
      });
      expect(received).toEqual([
        { key: 'a', value: 'first', offset: '0' },
        { key: 'b', value: 'second', offset: '1' },
        { key: 'c', value: 'third ✓', offset: '2' },
      ]);
      await admin2.connect();
      expect(await admin2.fetchTopicOffsets(topic)).toEqual([
        { partition: 0, offset: '3', high: '3', low: '0' },
      ]);
    } finally {
      await consumer.disconnect();
      await admin2.disconnect();
    }
  }, 60_000);
});

/** Everything a socket receives, and how it ended. */
const collect = (socket: Socket) => {
  const chunks: Buffer[] = [];
  let error: string | undefined;
  let closed = false;
  socket.on('data', (chunk: Buffer) => chunks.push(chunk));
  socket.on('error', (e: NodeJS.ErrnoException) => {
    error = e.code ?? e.message;
  });
  const close = new Promise<void>((resolve) => socket.once('close', () => resolve()));
  void close.then(() => {
    closed = true;
  });
  return {
    bytes: (): Buffer => Buffer.concat(chunks),
    error: (): string | undefined => error,
    isClosed: (): boolean => closed,
    close,
  };
};

const connect = (port: number): Promise<Socket> =>
  new Promise((resolve, reject) => {
    const socket = createConnection({ host: '127.0.0.1', port });
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
  });

describe('tcp proxy', () => {
  let echo: Server;
  let echoPort: number;
  /** Connections the echo server has seen. */
  let echoConnections = 0;
  const proxies: TcpProxy[] = [];
  const sockets: Socket[] = [];
  const proxyToEcho = async (): Promise<TcpProxy> => {
    const proxy = await startTcpProxy({ host: '127.0.0.1', port: echoPort });
    proxies.push(proxy);
    return proxy;
  };
  const open = async (proxy: TcpProxy) => {
    const socket = await connect(proxy.port);
    sockets.push(socket);
    return { socket, received: collect(socket) };
  };

  beforeAll(async () => {
    echo = createServer((socket) => {
      echoConnections++;
      socket.on('error', () => undefined);
      socket.pipe(socket);
    });
    await new Promise<void>((resolve) => echo.listen(0, '127.0.0.1', resolve));
    const address = echo.address();
    if (typeof address !== 'object' || address === null) throw new Error('no echo port');
    echoPort = address.port;
  });
  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await Promise.all(proxies.map((p) => p.close()));
    await new Promise<void>((resolve) => echo.close(() => resolve()));
  });

  it('parses etcd and Kafka endpoint forms', () => {
    expect(parseEndpoint('http://127.0.0.1:2379')).toEqual({ host: '127.0.0.1', port: 2379 });
    expect(parseEndpoint('127.0.0.1:9092')).toEqual({ host: '127.0.0.1', port: 9092 });
    expect(parseEndpoint('[::1]:9092')).toEqual({ host: '::1', port: 9092 });
    expect(() => parseEndpoint('localhost')).toThrow('not a host:port endpoint');
  });

  it('forwards byte for byte in both directions', async () => {
    const proxy = await proxyToEcho();
    expect(proxy.address).toBe(`127.0.0.1:${proxy.port}`);
    expect(proxy.url).toBe(`http://127.0.0.1:${proxy.port}`);
    const { socket, received } = await open(proxy);
    const payload = randomBytes(4 * 1024 * 1024);
    socket.write(payload);
    await waitFor('the echo of 4 MiB', () => received.bytes().length >= payload.length, 10_000);
    expect(received.bytes().equals(payload)).toBe(true);
    expect(proxy.connectionCount()).toBe(1);
    socket.end();
    await received.close;
    await waitFor('the proxy to drop the closed connection', () => proxy.connectionCount() === 0);
  });

  it("'reset' resets open connections and refuses new ones; restore() accepts again", async () => {
    const proxy = await proxyToEcho();
    const { socket, received } = await open(proxy);
    socket.write('ping');
    await waitFor('the echo', () => received.bytes().toString() === 'ping');

    await proxy.cut('reset');
    expect(proxy.state).toBe('reset');
    await received.close;
    expect(received.error()).toBe('ECONNRESET');
    expect(proxy.connectionCount()).toBe(0);
    expect(await tryConnect(proxy.port)).toBe('ECONNREFUSED');

    await proxy.restore();
    expect(proxy.state).toBe('open');
    const again = await open(proxy);
    again.socket.write('pong');
    await waitFor('the echo after restore', () => again.received.bytes().toString() === 'pong');
  });

  it("'blackhole' holds connections silently; restore() delivers what was held", async () => {
    const proxy = await proxyToEcho();
    const { socket, received } = await open(proxy);
    socket.write('before;');
    await waitFor('the echo', () => received.bytes().toString() === 'before;');

    await proxy.cut('blackhole');
    const serverConnections = echoConnections;
    socket.write('during;');
    const late = await open(proxy); // accepted: the handshake is the kernel's
    late.socket.write('late;');
    await sleep(300);
    expect(received.bytes().toString()).toBe('before;');
    expect(late.received.bytes().length).toBe(0);
    expect(received.isClosed()).toBe(false);
    expect(late.received.isClosed()).toBe(false);
    expect(proxy.connectionCount()).toBe(2);
    expect(echoConnections).toBe(serverConnections); // the server never heard of `late`

    await proxy.restore();
    await waitFor('the held bytes', () => received.bytes().toString() === 'before;during;');
    await waitFor('the late connection', () => late.received.bytes().toString() === 'late;');
    expect(echoConnections).toBe(serverConnections + 1);
    socket.write('after;');
    await waitFor('the echo after restore', () => received.bytes().toString() === 'before;during;after;');
  });

  it('restore({ resetHeld: true }) resets what a blackhole held and drops its bytes', async () => {
    const proxy = await proxyToEcho();
    const { socket, received } = await open(proxy);
    await proxy.cut('blackhole');
    socket.write('lost');
    await sleep(100);
    await proxy.restore({ resetHeld: true });
    await received.close;
    expect(received.error()).toBe('ECONNRESET');
    expect(received.bytes().length).toBe(0);
    const fresh = await open(proxy);
    fresh.socket.write('fresh');
    await waitFor('a new connection to work', () => fresh.received.bytes().toString() === 'fresh');
  });
});

describe('tcp proxy in front of etcd (gRPC)', () => {
  let etcd: RunningEtcd;
  let proxy: TcpProxy;
  const clients: Etcd3[] = [];
  const viaProxy = (deadlineMs: number): Etcd3 => {
    const c = etcdClient(proxy.url, deadlineMs);
    clients.push(c);
    return c;
  };

  beforeAll(async () => {
    etcd = await startEtcd();
    proxy = await startTcpProxy(etcd.endpoints[0] as string);
  });
  afterAll(async () => {
    for (const c of clients) c.close();
    await proxy?.close();
    await etcd?.stop();
  });

  it("'reset' fails calls at once, 'blackhole' lets them time out, restore() heals", async () => {
    const key = `/${uniquePrefix('proxy')}/value`;
    const steady = viaProxy(3_000);
    await steady.put(key).value('through the proxy ✓');
    expect(await steady.get(key).string()).toBe('through the proxy ✓');
    expect(proxy.connectionCount()).toBeGreaterThan(0);

    await proxy.cut('reset');
    const t0 = performance.now();
    await expect(steady.get(key).string()).rejects.toBeInstanceOf(GRPCUnavailableError);
    expect(performance.now() - t0).toBeLessThan(2_000); // refused, not waited out (deadline 3 s)
    await expect(viaProxy(3_000).get(key).string()).rejects.toBeInstanceOf(GRPCUnavailableError);

    await proxy.restore();
    const quick = viaProxy(300);
    expect(await quick.get(key).string()).toBe('through the proxy ✓');

    await proxy.cut('blackhole');
    const t1 = performance.now();
    await expect(quick.get(key).string()).rejects.toBeInstanceOf(GRPCDeadlineExceededError);
    expect(performance.now() - t1).toBeGreaterThanOrEqual(290);
    await expect(viaProxy(300).get(key).string()).rejects.toBeInstanceOf(GRPCDeadlineExceededError);
    expect(proxy.connectionCount()).toBeGreaterThan(0);

    await proxy.restore();
    expect(await viaProxy(3_000).get(key).string()).toBe('through the proxy ✓');
  });
});
