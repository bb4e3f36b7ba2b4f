/**
 * The forward listener against real peers: Fluentd's npm client @fluent-org/logger (every event mode,
 * acks, EventTime), Debian's python3-fluent-logger (run by /usr/bin/python3, nanosecond EventTime), and
 * the spec-exact client of test/helpers/forward-client.ts. The listener is real (loopback, port 0);
 * the sink is the recording fake whose appends the test holds, so "acked only once durable" is seen
 * from the client's side. A missing peer fails the test.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { EventTime, FluentClient } from '@fluent-org/logger';
import { afterAll, describe, expect, it } from 'vitest';
import { type ForwardListener, startForwardListener } from '../../runtime/logs/forward-listener.ts';
import {
  compressedPackedForwardRequest,
  ForwardClient,
  packedForwardRequest,
} from '../helpers/forward-client.ts';
import { RecordingSink } from '../helpers/log-sink.ts';
import { sleep, waitFor } from '../helpers/wait.ts';
import { expectTime, portOf, requireBinary } from './support.ts';

const run = promisify(execFile);
const PYTHON = '/usr/bin/python3';

/** Every listener's warnings: a peer test expects none. */
const warnings: string[] = [];
afterAll(() => expect(warnings).toEqual([]));

const forwardListener = (sink: RecordingSink): Promise<ForwardListener> =>
  startForwardListener({
    address: '127.0.0.1:0',
    maxMessageBytes: 16 << 20,
    maxEntries: 100_000,
    sink,
    now: () => Date.now(),
    warn: (m) => warnings.push(m),
  });

describe('@fluent-org/logger (npm) → forward listener', () => {
  const modes = ['Message', 'Forward', 'PackedForward', 'CompressedPackedForward'] as const;

  it.each(modes)('%s with acks: every emit resolves only after the sink resolved', async (eventMode) => {
    const sink = new RecordingSink();
    const l = await forwardListener(sink);
    const client = new FluentClient('npm', {
      eventMode,
      ack: { ackTimeout: 10_000 },
      milliseconds: true,
      socket: { host: '127.0.0.1', port: Number(portOf(l.address)), disableReconnect: true },
      disableAutoconnect: true,
    });
    try {
      await client.connect();
      sink.hold();
      let resolved = 0;
      const emits = [
        client.emit('app', { message: 'first', n: 1 }, new EventTime(1_764_640_800, 123_456_789)),
        client.emit(
          'app',
          { message: 'second', nested: { a: [1, 'x'] } },
          new EventTime(1_764_640_801, 999_999_999),
        ),
        client.emit('other', { message: 'third', host: 'h3' }, 1_764_640_802_250),
      ].map((p) => p.then(() => resolved++));
      await waitFor('the appends', () => sink.count === 3);
      await sleep(200);
      expect(resolved).toBe(0);
      sink.release();
      await Promise.all(emits);
      expect(resolved).toBe(3);
      expect([...sink.records('npm.app'), ...sink.records('npm.other')]).toEqual([
        {
          stream: 'npm.app',
          log: { time: 1_764_640_800_123, host: '127.0.0.1', fields: { message: 'first', n: 1 } },
        },
        {
          stream: 'npm.app',
          log: {
            time: 1_764_640_801_999,
            host: '127.0.0.1',
            fields: { message: 'second', nested: { a: [1, 'x'] } },
          },
        },
        {
          stream: 'npm.other',
          log: { time: 1_764_640_802_250, host: 'h3', fields: { message: 'third', host: 'h3' } },
        },
      ]);
      expect(l.stats()).toMatchObject({ invalid: 0, stored: 3, acked: sink.calls.length });
    } finally {
      await client.disconnect();
      await l.close();
    }
  });
});

describe('python3-fluent-logger (Debian) → forward listener', () => {
  const script = `
import json, sys
from fluent import sender
overflowed = []
s = sender.FluentSender('py', host='127.0.0.1', port=int(sys.argv[1]), nanosecond_precision=True,
                        buffer_overflow_handler=lambda pendings: overflowed.append(len(pendings)))
sent = [
  s.emit_with_time('app', 1764640800.125, {'message': 'float seconds', 'n': 1}),
  s.emit_with_time('app', sender.EventTime(1764640801.5), {'message': 'EventTime', 'host': 'py-host'}),
  s.emit_with_time('app', 1764640802, {'message': 'int seconds', 'list': [1, 'b', None]}),
  s.emit('now', {'message': 'emit now'}),
]
s.close()
print(json.dumps({'sent': sent, 'overflowed': overflowed, 'error': str(s.last_error) if s.last_error else None}))
`;

  it('Message mode with nanosecond EventTime: exact records, the time in ms', async () => {
    requireBinary(PYTHON);
    const sink = new RecordingSink();
    const l = await forwardListener(sink);
    try {
      const from = Date.now();
      const { stdout } = await run(PYTHON, ['-c', script, portOf(l.address)]);
      expect(JSON.parse(stdout)).toEqual({ sent: [true, true, true, true], overflowed: [], error: null });
      await waitFor('4 records', () => sink.count === 4);
      const [now] = sink.records('py.now');
      expectTime(now!.log.time, from, Date.now(), 1);
      expect(sink.records()).toEqual([
        {
          stream: 'py.app',
          log: { time: 1_764_640_800_125, host: '127.0.0.1', fields: { message: 'float seconds', n: 1 } },
        },
        {
          stream: 'py.app',
          log: {
            time: 1_764_640_801_500,
            host: 'py-host',
            fields: { message: 'EventTime', host: 'py-host' },
          },
        },
        {
          stream: 'py.app',
          log: {
            time: 1_764_640_802_000,
            host: '127.0.0.1',
            fields: { message: 'int seconds', list: [1, 'b', null] },
          },
        },
        {
          stream: 'py.now',
          log: { time: now!.log.time, host: '127.0.0.1', fields: { message: 'emit now' } },
        },
      ]);
    } finally {
      await l.close();
    }
  });
});

describe('spec-exact forward client → forward listener', () => {
  it('PackedForward and CompressedPackedForward with chunk: acked once durable, records exact', async () => {
    const sink = new RecordingSink();
    const l = await forwardListener(sink);
    const c = await ForwardClient.connect(l.address);
    try {
      sink.hold();
      const entries = [
        { seconds: 1_764_640_800, nanos: 1, record: { message: 'a' } },
        { seconds: 1_764_640_800, nanos: 999_999_999, record: { message: 'b' } },
      ];
      await c.send(packedForwardRequest('spec.packed', entries, { chunk: 'p1' }));
      await c.send(compressedPackedForwardRequest('spec.gz', entries, { chunk: 'g1' }, true));
      await waitFor('2 appends', () => sink.calls.length === 2);
      await sleep(100);
      expect(c.bytesReceived).toBe(0);
      sink.release();
      expect(await c.waitForAcks(2)).toEqual(['p1', 'g1']);
      const stored = (stream: string) => [
        { stream, log: { time: 1_764_640_800_000, host: '127.0.0.1', fields: { message: 'a' } } },
        { stream, log: { time: 1_764_640_800_999, host: '127.0.0.1', fields: { message: 'b' } } },
      ];
      expect(sink.records()).toEqual([...stored('spec.packed'), ...stored('spec.gz')]);
    } finally {
      c.destroy();
      await l.close();
    }
  });
});
