/**
 * The recent history: a ring per series (oldest first, the last `points` kept), string series, the
 * per-host series bound, and forgetting a host.
 */
import { describe, expect, it } from 'vitest';
import { HostHistory } from './history.ts';
import type { MetricsRecord } from './host.ts';

const record = (
  host: string,
  ts: number,
  samples: [string, Record<string, string>, number | string][],
): MetricsRecord => ({
  host,
  service: 's',
  labels: {},
  samples: samples.map(([metric, tags, value]) => ({ metric, tags, ts, value })),
});

describe('HostHistory', () => {
  it('keeps the last points of each series, oldest first', () => {
    const h = new HostHistory(3);
    for (let i = 1; i <= 5; i++)
      h.add(
        record('a', i * 1_000, [
          ['load.1', {}, i / 10],
          ['if.rate', { ifName: 'eth0' }, i],
        ]),
      );
    expect(h.of('a')).toEqual([
      {
        metric: 'load.1',
        tags: {},
        points: [
          { ts: 3_000, value: 0.3 },
          { ts: 4_000, value: 0.4 },
          { ts: 5_000, value: 0.5 },
        ],
      },
      {
        metric: 'if.rate',
        tags: { ifName: 'eth0' },
        points: [
          { ts: 3_000, value: 3 },
          { ts: 4_000, value: 4 },
          { ts: 5_000, value: 5 },
        ],
      },
    ]);
    expect(h.latest('a')).toEqual([
      { metric: 'load.1', tags: {}, ts: 5_000, value: 0.5 },
      { metric: 'if.rate', tags: { ifName: 'eth0' }, ts: 5_000, value: 5 },
    ]);
    const short = new HostHistory(3);
    short.add(record('b', 1, [['x', {}, 25_275_953_152]]));
    expect(short.of('b')).toEqual([{ metric: 'x', tags: {}, points: [{ ts: 1, value: 25_275_953_152 }] }]);
  });

  it('keeps strings of string series, bounds the series per host, and forgets hosts', () => {
    const h = new HostHistory(2, 2);
    h.add(
      record('a', 1, [
        ['app.version', {}, '1.0'],
        ['m1', {}, 1],
        ['m2', {}, 2],
      ]),
    );
    h.add(record('a', 2, [['app.version', {}, '1.1']]));
    expect(h.of('a')).toEqual([
      {
        metric: 'app.version',
        tags: {},
        points: [
          { ts: 1, value: '1.0' },
          { ts: 2, value: '1.1' },
        ],
      },
      { metric: 'm1', tags: {}, points: [{ ts: 1, value: 1 }] },
    ]);
    expect(h.hosts()).toEqual(['a']);
    h.forget('a');
    expect(h.of('a')).toEqual([]);
    expect(new HostHistory(0).hostCount).toBe(0);
  });
});
