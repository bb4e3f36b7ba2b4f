import { describe, expect, it } from 'vitest';
import { parseConfig } from './config.ts';
import { isArgusError } from './errors.ts';

describe('parseConfig', () => {
  it('fills every default', () => {
    const c = parseConfig({ nodeId: 'n1' });
    expect(c).toEqual({
      nodeId: 'n1',
      mode: 'embedded',
      dataDir: './data',
      embedded: { pollMs: 10, sync: false, streamRetention: 20_000 },
      shards: 8,
      delivery: { maxBatch: 1000, timeoutMs: 30_000 },
      passivation: { idleMs: 120_000 },
      deadLetter: { maxAttempts: 3 },
      supervision: {
        shard: { intensity: 100, periodMs: 10_000, backoff: { minMs: 10, maxMs: 10_000, jitter: 0.2 } },
        shards: { intensity: 10, periodMs: 60_000, backoff: { minMs: 10, maxMs: 10_000, jitter: 0.2 } },
        root: { intensity: 3, periodMs: 60_000, backoff: { minMs: 10, maxMs: 10_000, jitter: 0.2 } },
      },
      hosts: false,
      http: { host: '127.0.0.1', port: 7070 },
      alerts: false,
      logs: false,
      auth: { tokens: [] },
      feed: { replayMax: 1_000, bufferBytes: 1_048_576 },
      inspector: { gatherTimeoutMs: 2_000 },
    });
  });

  it.each([
    [{ mode: 'kafka' }, "kafka: is required when mode is 'kafka'"],
    [{ mode: 'kafka', kafka: { brokers: ['nohost'] } }, 'kafka.brokers[0]: must be host:port'],
    [{ mode: 'cluster' }, 'mode: Invalid option: expected one of "embedded"|"kafka"'],
    [{ shards: 0 }, 'shards: Too small: expected number to be >=1'],
    [{ shards: 2.5 }, 'shards: Invalid input: expected int, received number'],
    [
      { supervision: { shard: { backoff: { jitter: 2 } } } },
      'supervision.shard.backoff.jitter: Too big: expected number to be <=1',
    ],
    [{ deadletter: { maxAttempts: 3 } }, '(root): Unrecognized key: "deadletter"'],
    [
      { nodeId: 'has space' },
      'nodeId: must be 1-64 letters, digits, . _ - (starting with a letter or digit)',
    ],
    [{ http: { port: 70000 } }, 'http.port: Too big: expected number to be <=65535'],
  ])('refuses %j naming the field', (input, problem) => {
    let error: unknown;
    try {
      parseConfig(input);
    } catch (e) {
      error = e;
    }
    expect(isArgusError(error, 'ARGUS_ERR_INVALID_CONFIG')).toBe(true);
    expect((error as Error).message).toContain(problem);
  });

  it('fills the logs section: listeners on loopback, one sub-stream, 500 ms grace', () => {
    expect(parseConfig({ logs: {} }).logs).toEqual({
      syslog: {
        udp: '127.0.0.1:5514',
        tcp: '127.0.0.1:5514',
        maxFrameBytes: 65_536,
        defaultStream: 'syslog',
      },
      forward: { address: '127.0.0.1:24224', maxMessageBytes: 16 << 20, maxEntries: 100_000 },
      maxBodyBytes: 32 << 20,
      subStreams: 1,
      batchRecords: 1_000,
      lingerMs: 2,
      windowGraceMs: 500,
      tickMs: 100,
      retainRecords: 200_000,
      tailBufferBytes: 256 * 1024,
      rules: {},
    });
    expect(() => parseConfig({ logs: { forward: { address: 'nowhere' }, subStreams: 0 } })).toThrow(
      'invalid configuration: logs.forward.address: must be host:port; logs.subStreams: Too small: expected number to be >=1',
    );
  });

  it('names every wrong field at once', () => {
    expect(() => parseConfig({ shards: -1, passivation: { idleMs: 'soon' } })).toThrow(
      'ARGUS_ERR_INVALID_CONFIG: invalid configuration: shards: Too small: expected number to be >=1; passivation.idleMs: Invalid input: expected number, received string',
    );
  });
});
