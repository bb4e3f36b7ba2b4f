import { afterEach, describe, expect, it } from 'vitest';
import {
  type ClientEntry,
  compressedPackedForwardRequest,
  ForwardClient,
  forwardRequest,
  messageRequest,
  pack,
  packedForwardRequest,
} from '../../test/helpers/forward-client.ts';
import { RecordingSink } from '../../test/helpers/log-sink.ts';
import { sleep, waitFor } from '../../test/helpers/wait.ts';
import { type ForwardListener, startForwardListener } from './forward-listener.ts';

const T = 1_764_640_800; // 2026-12-02T02:00:00Z
const e = (n: number, record: Record<string, unknown> = { message: `m${n}` }): ClientEntry => ({
  seconds: T + n,
  nanos: 123_456_789,
  record,
});
const stored = (stream: string, n: number, record: Record<string, unknown> = { message: `m${n}` }) => ({
  stream,
  log: {
    time: (T + n) * 1000 + 123,
    host: typeof record.host === 'string' ? record.host : '127.0.0.1',
    fields: record,
  },
});

let listener: ForwardListener | undefined;
const clients: ForwardClient[] = [];
afterEach(async () => {
  for (const c of clients.splice(0)) c.destroy();
  await listener?.close();
  listener = undefined;
});

const start = async (
  sink: RecordingSink,
  extra: { maxMessageBytes?: number; maxInFlightRecords?: number } = {},
) => {
  const warnings: string[] = [];
  listener = await startForwardListener({
    address: '127.0.0.1:0',
    maxMessageBytes: extra.maxMessageBytes ?? 16 << 20,
    maxEntries: 100_000,
    sink,
    now: () => Date.now(),
    warn: (m) => warnings.push(m),
    warnEveryMs: 0,
    ...(extra.maxInFlightRecords !== undefined && { maxInFlightRecords: extra.maxInFlightRecords }),
  });
  return { l: listener, warnings };
};
const client = async (l: ForwardListener) => {
  const c = await ForwardClient.connect(l.address);
  clients.push(c);
  return c;
};

describe('forward listener: the four modes', () => {
  it('stores Message, Forward, PackedForward and CompressedPackedForward entries exactly', async () => {
    const sink = new RecordingSink();
    const { l } = await start(sink);
    const c = await client(l);
    await c.send(messageRequest('app.msg', e(1, { message: 'm1', host: 'web1' })));
    await c.send(forwardRequest('app.fwd', [e(2), e(3)], { option: 'x' }));
    await c.send(packedForwardRequest('app.packed', [e(4), e(5)]));
    await c.send(compressedPackedForwardRequest('app.gz', [e(6)]));
    await c.send(compressedPackedForwardRequest('docker/app', [e(7), e(8)], {}, true));
    await waitFor('8 records', () => sink.count === 8);
    expect(sink.records()).toEqual([
      stored('app.msg', 1, { message: 'm1', host: 'web1' }),
      stored('app.fwd', 2),
      stored('app.fwd', 3),
      stored('app.packed', 4),
      stored('app.packed', 5),
      stored('app.gz', 6),
      stored('docker_app', 7),
      stored('docker_app', 8),
    ]);
    expect(sink.calls.length).toBe(5);
    expect(l.stats()).toMatchObject({ received: 8, stored: 8, invalid: 0, acked: 0, connections: 1 });
    expect(c.bytesReceived).toBe(0);
  });

  it('acks a chunk only after the sink resolved, in request order per connection', async () => {
    const sink = new RecordingSink();
    sink.hold();
    const { l } = await start(sink);
    const c = await client(l);
    await c.send(
      Buffer.concat([
        packedForwardRequest('a', [e(1)], { chunk: 'c1' }),
        messageRequest('b', e(2), { chunk: 'c2' }),
        forwardRequest('a', [e(3)], { chunk: 'c3', size: 99 }),
      ]),
    );
    await waitFor('3 appends', () => sink.calls.length === 3);
    sink.resolve(1);
    sink.resolve(2);
    await sleep(100);
    expect(c.bytesReceived).toBe(0); // c2 and c3 are durable, but c1 is not yet
    sink.resolve(0);
    expect(await c.waitForAcks(3)).toEqual(['c1', 'c2', 'c3']);
    expect(l.stats()).toMatchObject({ acked: 3, stored: 3 });
  });

  it('still acks a client that ended its side after its last request, then closes', async () => {
    const sink = new RecordingSink();
    sink.hold();
    const { l } = await start(sink);
    const c = await client(l);
    await c.send(messageRequest('a', e(1), { chunk: 'last' }));
    c.end();
    await waitFor('the append', () => sink.calls.length === 1);
    await sleep(50);
    sink.release();
    await c.closed;
    expect(c.acks).toEqual(['last']);
    await waitFor('closed on the server side', () => l.stats().connections === 0);
    expect(l.stats().acked).toBe(1);
  });

  it('does not ack a request the sink rejected, and closes after the acks before it', async () => {
    const sink = new RecordingSink();
    sink.hold();
    const { l, warnings } = await start(sink);
    const c = await client(l);
    await c.send(
      Buffer.concat([
        messageRequest('a', e(1), { chunk: 'ok' }),
        messageRequest('a', e(2), { chunk: 'lost' }),
      ]),
    );
    await waitFor('2 appends', () => sink.calls.length === 2);
    sink.reject(1, new Error('mailbox down'));
    await sleep(50);
    expect(c.acks).toEqual([]);
    sink.resolve(0);
    await c.closed;
    expect(c.acks).toEqual(['ok']);
    expect(l.stats()).toMatchObject({ sinkFailures: 1, stored: 1, acked: 1 });
    expect(warnings).toEqual([expect.stringMatching(/: 1 records of stream 'a' not stored: mailbox down$/)]);
  });
});

describe('forward listener: bad input', () => {
  const bomb = Buffer.concat([Buffer.from([0x93]), pack('t'), Buffer.from([0xdd, 0xff, 0xff, 0xff, 0xff])]);

  it('closes a connection that sends a msgpack bomb after acking what landed; the next connection is served', async () => {
    const sink = new RecordingSink();
    const { l, warnings } = await start(sink);
    const c = await client(l);
    const before = process.memoryUsage().heapUsed;
    await c.send(Buffer.concat([messageRequest('a', e(1), { chunk: 'c1' }), bomb]));
    await c.closed;
    expect(process.memoryUsage().heapUsed - before).toBeLessThan(32 << 20);
    expect(c.acks).toEqual(['c1']);
    expect(sink.records()).toEqual([stored('a', 1)]);
    expect(warnings.map((w) => w.replace(/:\d+:/, ':P:'))).toEqual([
      'forward from 127.0.0.1:P: Forward mode: 4294967295 entries declared at offset 3, more than maxEntries 100000; the connection cannot continue',
    ]);
    // A record map that declares 2^32-1 pairs: refused from its header, nothing allocated.
    const mapBomb = await client(l);
    await mapBomb.send(
      Buffer.concat([Buffer.from([0x93]), pack('t'), pack(T), Buffer.from([0xdf, 0xff, 0xff, 0xff, 0xff])]),
    );
    await mapBomb.closed;
    expect(warnings[1]!.replace(/:\d+:/, ':P:')).toBe(
      'forward from 127.0.0.1:P: Message mode: a map at offset 8 declares 4294967295 entries, more than the 16777203 bytes left (maxMessageBytes 16777216); the connection cannot continue',
    );
    await waitFor('connection gone', () => l.stats().connections === 0);
    const next = await client(l);
    await next.send(messageRequest('a', e(2), { chunk: 'c2' }));
    expect(await next.waitForAcks(1)).toEqual(['c2']);
    expect(l.stats()).toMatchObject({ invalid: 2, stored: 2, acked: 2 });
  });

  it('closes on a request over maxMessageBytes, and on bytes that are not forward requests', async () => {
    const sink = new RecordingSink();
    const { l } = await start(sink, { maxMessageBytes: 1024 });
    const big = await client(l);
    await big.send(messageRequest('a', e(1, { message: 'x'.repeat(2000) })));
    await big.closed;
    const json = await client(l);
    await json.send(Buffer.from('{"not":"msgpack"}'));
    await json.closed;
    expect(sink.count).toBe(0);
    expect(l.stats().invalid).toBe(2);
  });

  it('skips a request whose tag is not a string (acked, it can never be stored) and a bad entry', async () => {
    const sink = new RecordingSink();
    const { l, warnings } = await start(sink);
    const c = await client(l);
    const badTag = Buffer.concat([Buffer.from([0x94]), pack(42), pack(T), pack({}), pack({ chunk: 'bad' })]);
    const badEntry = Buffer.concat([
      Buffer.from([0x93]),
      pack('a'),
      Buffer.from([0x92]),
      Buffer.concat([Buffer.from([0x92]), pack(T), pack('not a map')]),
      Buffer.concat([Buffer.from([0x92]), pack(T + 5), pack({ message: 'm5' })]),
      pack({ chunk: 'partial' }),
    ]);
    await c.send(Buffer.concat([badTag, badEntry, messageRequest('a', e(6), { chunk: 'good' })]));
    expect(await c.waitForAcks(3)).toEqual(['bad', 'partial', 'good']);
    expect(sink.records()).toEqual([
      { stream: 'a', log: { time: (T + 5) * 1000, host: '127.0.0.1', fields: { message: 'm5' } } },
      stored('a', 6),
    ]);
    expect(warnings.map((w) => w.replace(/:\d+:/, ':P:'))).toEqual([
      'forward from 127.0.0.1:P: Message mode: tag is "42", not a string; request skipped',
      `forward from 127.0.0.1:P: Forward mode: tag 'a' entry 0: record is "not a map", not a map; entry skipped`,
    ]);
    expect(c.socket.destroyed).toBe(false);
    expect(l.stats()).toMatchObject({ invalid: 2, stored: 2, acked: 3 });
  });

  it('pauses a connection while its appends in flight pass the bound', async () => {
    const sink = new RecordingSink();
    sink.hold();
    const { l } = await start(sink, { maxInFlightRecords: 2 });
    const c = await client(l);
    await c.send(forwardRequest('a', [e(1), e(2), e(3)], { chunk: 'c1' }));
    await waitFor('paused', () => l.stats().pausedConnections === 1);
    await c.send(messageRequest('a', e(4), { chunk: 'c2' }));
    await sleep(100);
    expect(sink.calls.length).toBe(1);
    sink.release();
    expect(await c.waitForAcks(2)).toEqual(['c1', 'c2']);
    expect(l.stats().pausedConnections).toBe(0);
  });
});
