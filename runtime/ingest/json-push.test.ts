import { describe, expect, it } from 'vitest';
import { parseJsonPush } from './json-push.ts';

const NOW = 1_714_564_800_000;
const parse = (body: unknown) => parseJsonPush(body, { now: NOW });
const errorsOf = (body: unknown) => parse(body).errors;

describe('parseJsonPush: accepted items', () => {
  it('turns one object into a point per metric, counters typed, booleans as 1/0', () => {
    expect(
      parse({
        ts: 1_714_564_801_234,
        resource: 'web-12',
        metrics: { 'queue.depth': 17, 'jobs.done': 12345, healthy: true, down: false, version: 'v1.2' },
        tags: { queue: 'orders' },
        counters: ['jobs.done'],
      }),
    ).toEqual({
      points: [
        {
          host: 'web-12',
          point: { metric: 'queue.depth', tags: { queue: 'orders' }, ts: 1_714_564_801_234, value: 17 },
        },
        {
          host: 'web-12',
          point: {
            metric: 'jobs.done',
            tags: { queue: 'orders' },
            ts: 1_714_564_801_234,
            value: 12345,
            type: 'counter',
          },
        },
        {
          host: 'web-12',
          point: { metric: 'healthy', tags: { queue: 'orders' }, ts: 1_714_564_801_234, value: 1 },
        },
        {
          host: 'web-12',
          point: { metric: 'down', tags: { queue: 'orders' }, ts: 1_714_564_801_234, value: 0 },
        },
        {
          host: 'web-12',
          point: { metric: 'version', tags: { queue: 'orders' }, ts: 1_714_564_801_234, value: 'v1.2' },
        },
      ],
      errors: [],
    });
  });

  it('gauges have no type, missing ts is now, missing tags are empty', () => {
    const { points } = parse([{ resource: 'a', metrics: { x: 1.5 } }]);
    expect(points).toEqual([{ host: 'a', point: { metric: 'x', tags: {}, ts: NOW, value: 1.5 } }]);
    expect(Object.hasOwn(points[0]!.point, 'type')).toBe(false);
  });

  it.each([
    ['2024-05-01T12:00:00Z', 1_714_564_800_000],
    ['2024-05-01T12:00:00.123Z', 1_714_564_800_123],
    ['2024-05-01T12:00:00.123456789Z', 1_714_564_800_123],
    ['2024-05-01T14:00:00+02:00', 1_714_564_800_000],
    ['2024-05-01 12:00Z', 1_714_564_800_000],
    ['2024-02-29T00:00:00Z', 1_709_164_800_000],
  ])('reads ISO 8601 ts %s', (ts, ms) => {
    expect(parse({ ts, resource: 'a', metrics: { x: 1 } }).points[0]?.point.ts).toBe(ms);
  });

  it('floors fractional ms and treats null optional fields as absent', () => {
    expect(
      parse({ ts: 1000.9, resource: 'a', metrics: { x: 1 }, tags: null, counters: null }).points,
    ).toEqual([{ host: 'a', point: { metric: 'x', tags: {}, ts: 1000, value: 1 } }]);
  });

  it('an empty array is nothing, not an error', () => {
    expect(parse([])).toEqual({ points: [], errors: [] });
  });
});

describe('parseJsonPush: rejected items', () => {
  const ok = { resource: 'a', metrics: { x: 1 } };
  it.each([
    ['a number body', 7, '[0]: must be an object with resource and metrics, got a number'],
    ['null', null, '[0]: must be an object with resource and metrics, got null'],
    ['an array item', [[]], '[0]: must be an object with resource and metrics, got an array'],
    ['no resource', { metrics: { x: 1 } }, '[0].resource: required non-empty string'],
    ['an empty resource', { ...ok, resource: '' }, '[0].resource: required non-empty string'],
    ['a numeric resource', { ...ok, resource: 12 }, '[0].resource: required non-empty string'],
    [
      'a resource with a newline',
      { ...ok, resource: 'a\nb' },
      '[0].resource: must not contain control characters',
    ],
    [
      'no metrics',
      { resource: 'a' },
      '[0].metrics: required object of name → number, boolean or string, got nothing',
    ],
    [
      'metrics as an array',
      { resource: 'a', metrics: [1] },
      '[0].metrics: required object of name → number, boolean or string, got an array',
    ],
    ['empty metrics', { resource: 'a', metrics: {} }, '[0].metrics: must hold at least one metric'],
    [
      'a null metric',
      { ...ok, metrics: { cpu: null } },
      '[0].metrics.cpu: must be a finite number, boolean or string, got null',
    ],
    [
      'an object metric',
      { ...ok, metrics: { cpu: {} } },
      '[0].metrics.cpu: must be a finite number, boolean or string, got an object',
    ],
    [
      'an infinite metric',
      { ...ok, metrics: { cpu: Infinity } },
      '[0].metrics.cpu: must be a finite number, boolean or string, got Infinity',
    ],
    [
      'a NaN metric',
      { ...ok, metrics: { cpu: Number.NaN } },
      '[0].metrics.cpu: must be a finite number, boolean or string, got NaN',
    ],
    ['an empty metric name', { ...ok, metrics: { '': 1 } }, '[0].metrics[""]: name must not be empty'],
    [
      'a long metric name',
      { ...ok, metrics: { ['m'.repeat(201)]: 1 } },
      `[0].metrics.${'m'.repeat(201)}: name must be at most 200 characters (got 201)`,
    ],
    [
      'a control char in a name',
      { ...ok, metrics: { 'a\u0001b': 1 } },
      '[0].metrics["a\\u0001b"]: name must not contain control characters',
    ],
    [
      'a huge string',
      { ...ok, metrics: { s: 'x'.repeat(65_536) } },
      '[0].metrics.s: string longer than 65535 characters',
    ],
    [
      'a ts string that is not ISO',
      { ...ok, ts: 'yesterday' },
      '[0].ts: "yesterday" is not an ISO 8601 time with a time zone (e.g. 2024-05-01T12:00:00Z)',
    ],
    [
      'a ts without a zone',
      { ...ok, ts: '2024-05-01T12:00:00' },
      '[0].ts: "2024-05-01T12:00:00" is not an ISO 8601 time with a time zone (e.g. 2024-05-01T12:00:00Z)',
    ],
    [
      'a ts on Feb 30',
      { ...ok, ts: '2024-02-30T00:00:00Z' },
      '[0].ts: "2024-02-30T00:00:00Z" is not an ISO 8601 time with a time zone (e.g. 2024-05-01T12:00:00Z)',
    ],
    [
      'a boolean ts',
      { ...ok, ts: true },
      '[0].ts: must be a number (ms since the epoch) or an ISO 8601 string, got a boolean',
    ],
    [
      'a ts out of range',
      { ...ok, ts: 1e20 },
      '[0].ts: must be ms since the epoch within ±8640000000000000, got 100000000000000000000',
    ],
    [
      'tags as a string',
      { ...ok, tags: 'dc=eu' },
      '[0].tags: must be an object of name → string, got a string',
    ],
    ['a numeric tag', { ...ok, tags: { dc: 1 } }, '[0].tags.dc: must be a string, got a number'],
    ['an empty tag value', { ...ok, tags: { dc: '' } }, '[0].tags.dc: value must not be empty'],
    ['an empty tag key', { ...ok, tags: { '': 'x' } }, '[0].tags[""]: key must not be empty'],
    [
      'counters as a string',
      { ...ok, counters: 'x' },
      '[0].counters: must be an array of metric names, got a string',
    ],
    ['a numeric counter', { ...ok, counters: [1] }, '[0].counters[0]: must be a metric name, got a number'],
    ['an unknown counter', { ...ok, counters: ['x', 'y'] }, '[0].counters[1]: "y" is not a name in metrics'],
    [
      'a string counter',
      { ...ok, metrics: { v: 'a' }, counters: ['v'] },
      '[0].counters[0]: "v" must name a numeric metric',
    ],
    [
      'an unknown field',
      { ...ok, timestamp: 1 },
      '[0].timestamp: unknown field (expected ts, resource, metrics, tags, counters)',
    ],
  ])('%s', (_name, body, error) => {
    expect(parse(body)).toEqual({ points: [], errors: [{ index: 0, error }] });
  });

  it('keeps the valid items, rejects a bad item whole and reports all its problems by index', () => {
    const body = JSON.parse(`[
      {"resource": "a", "metrics": {"x": 1}},
      {"resource": "b", "metrics": {"good": 2, "cpu": "x", "bad": null}, "tags": {"dc": 5}},
      {"resource": "", "metrics": {"y": 3}},
      {"resource": "d", "metrics": {"z": 4}, "ts": "2024-05-01T12:00:00Z"}
    ]`);
    expect(parse(body)).toEqual({
      points: [
        { host: 'a', point: { metric: 'x', tags: {}, ts: NOW, value: 1 } },
        { host: 'd', point: { metric: 'z', tags: {}, ts: 1_714_564_800_000, value: 4 } },
      ],
      errors: [
        { index: 1, error: '[1].tags.dc: must be a string, got a number' },
        { index: 1, error: '[1].metrics.bad: must be a finite number, boolean or string, got null' },
        { index: 2, error: '[2].resource: required non-empty string' },
      ],
    });
  });

  it('shows at most 20 errors for one item, and how many more there were', () => {
    const metrics = Object.fromEntries(Array.from({ length: 25 }, (_, i) => [`m${i}`, null]));
    const errors = errorsOf([{ resource: 'a', metrics }]);
    expect(errors).toHaveLength(21);
    expect(errors[20]).toEqual({ index: 0, error: '[0]: 5 more errors not shown' });
  });

  it('a __proto__ tag or metric from JSON stays a plain own name', () => {
    const { points, errors } = parse(
      JSON.parse('{"resource":"a","metrics":{"__proto__":1},"tags":{"__proto__":"x"}}'),
    );
    expect(errors).toEqual([]);
    expect(points[0]?.point.metric).toBe('__proto__');
    expect(Object.entries(points[0]!.point.tags)).toEqual([['__proto__', 'x']]);
    expect(Object.getPrototypeOf(points[0]!.point.tags)).toBe(Object.prototype);
  });
});

describe('parseJsonPush: fuzz (20,000 inputs)', () => {
  it('never throws; every point is well formed; errors name valid indexes; good items survive', () => {
    let seed = 11;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const scalars: unknown[] = [
      0,
      -1,
      1.5,
      1e300,
      Infinity,
      Number.NaN,
      '',
      'x',
      'a\u0000',
      true,
      false,
      null,
      undefined,
      [],
      {},
      [1],
      'm'.repeat(201),
      '2024-05-01T12:00:00Z',
      '2024-13-01T00:00:00Z',
    ];
    const names = ['x', 'cpu', '', 'a b', '__proto__', 'constructor', 'toString', 'ts', 'resource', '\u0007'];
    const randomValue = (depth: number): unknown => {
      if (depth > 2 || rand() < 0.5) return pick(scalars);
      if (rand() < 0.5) return Array.from({ length: Math.floor(rand() * 4) }, () => randomValue(depth + 1));
      return Object.fromEntries(
        Array.from({ length: Math.floor(rand() * 4) }, () => [pick(names), randomValue(depth + 1)]),
      );
    };
    const good = { resource: 'good', metrics: { ok: 1 } };
    let accepted = 0;
    let rejected = 0;
    for (let n = 0; n < 20_000; n++) {
      const item: Record<string, unknown> = {
        resource: 'r',
        metrics: { a: 1, b: 'x' },
        tags: { t: 'v' },
        counters: ['a'],
      };
      const field = pick(['resource', 'metrics', 'tags', 'counters', 'ts', 'extra']);
      if (rand() < 0.8) item[field] = randomValue(0);
      else delete item[field];
      const body = n % 4 === 0 ? randomValue(0) : [good, item, good];
      const { points, errors } = parse(body);
      accepted += points.length;
      rejected += errors.length;
      for (const { host, point } of points) {
        expect(typeof host === 'string' && host.length > 0 && host.length <= 200).toBe(true);
        expect(typeof point.metric === 'string' && point.metric.length > 0).toBe(true);
        expect(Number.isInteger(point.ts)).toBe(true);
        expect(typeof point.value === 'string' || Number.isFinite(point.value)).toBe(true);
        expect(
          point.type === undefined || (point.type === 'counter' && typeof point.value === 'number'),
        ).toBe(true);
        for (const v of Object.values(point.tags)) expect(typeof v === 'string' && v.length > 0).toBe(true);
      }
      const items = Array.isArray(body) ? body.length : 1;
      for (const e of errors) {
        expect(Number.isInteger(e.index) && e.index >= 0 && e.index < items).toBe(true);
        expect(e.error.startsWith(`[${e.index}]`)).toBe(true);
      }
      if (Array.isArray(body) && body[0] === good) {
        expect(points.filter((p) => p.host === 'good')).toHaveLength(2);
        expect(errors.every((e) => e.index === 1)).toBe(true);
      }
    }
    expect(accepted).toBeGreaterThan(10_000);
    expect(rejected).toBeGreaterThan(10_000);
  });
});
