/**
 * The route tree: severity syntax, Alertmanager's matching (depth-first, first matching child unless
 * `continue`, fallback to the parent), inheritance of receivers/group_by/timings, stable group keys,
 * the example (1-3 → infra; 4-5 → infra and the service owners), and errors by field path.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse as parseYaml } from 'yaml';
import { parseReceiver } from './receivers.ts';
import { formatLabels, groupLabelsOf, parseRoutes, parseSeverity, routeAlert } from './routes.ts';

const EXAMPLE = `
receiver: infra
group_by: [alertname, service]
routes:
  - severity: 1-3
    receiver: infra
  - severity: 4-5
    receiver: infra
    group_wait: 10s
    routes:
      - matchers: ['service="payments"']
        receivers: [infra, payments-owners]
      - matchers: ['service=~"web|api"']
        receivers: [infra, web-owners]
`;

const where = (root: ReturnType<typeof parseRoutes>, labels: Record<string, string>, severity: number) =>
  routeAlert(root, labels, severity).map((m) => `${m.receiver} ${m.groupKey}`);

describe('parseSeverity', () => {
  it.each([
    [4, { min: 4, max: 4 }],
    ['4', { min: 4, max: 4 }],
    ['1-3', { min: 1, max: 3 }],
    ['4 - 5', { min: 4, max: 5 }],
    ['>=4', { min: 4, max: 5 }],
    ['>3', { min: 4, max: 5 }],
    ['<=2', { min: 1, max: 2 }],
    ['<3', { min: 1, max: 2 }],
    ['=5', { min: 5, max: 5 }],
    [9, undefined],
    [2.5, undefined],
    ['3-1', undefined],
    ['>5', undefined],
    ['<1', undefined],
    ['high', undefined],
    [true, undefined],
  ])('%j → %j', (input, expected) => {
    expect(parseSeverity(input)).toEqual(expected);
  });
});

describe('the issue example: 1-3 → infra; 4-5 → infra and the service owners', () => {
  const root = parseRoutes(EXAMPLE);
  it.each([
    [2, { alertname: 'cpu', service: 'payments' }, ['infra root.0{alertname="cpu",service="payments"}']],
    [3, { alertname: 'cpu', service: 'web' }, ['infra root.0{alertname="cpu",service="web"}']],
    [
      4,
      { alertname: 'cpu', service: 'payments', host: 'p-1' },
      [
        'infra root.1.0{alertname="cpu",service="payments"}',
        'payments-owners root.1.0{alertname="cpu",service="payments"}',
      ],
    ],
    [
      5,
      { alertname: 'disk', service: 'api' },
      [
        'infra root.1.1{alertname="disk",service="api"}',
        'web-owners root.1.1{alertname="disk",service="api"}',
      ],
    ],
    // No owners route for the service: the severity route itself is the match.
    [5, { alertname: 'disk', service: 'db' }, ['infra root.1{alertname="disk",service="db"}']],
  ])('severity %i %j', (severity, labels, expected) => {
    expect(where(root, labels, severity)).toEqual(expected);
  });

  it('children inherit group_by and timings; their own group_wait applies below them', () => {
    const [m] = routeAlert(root, { alertname: 'cpu', service: 'payments' }, 4);
    expect(m!.timing).toEqual({
      groupBy: ['alertname', 'service'],
      groupWaitMs: 10_000,
      groupIntervalMs: 300_000,
      repeatIntervalMs: 14_400_000,
    });
    expect(routeAlert(root, { alertname: 'cpu' }, 1)[0]!.timing.groupWaitMs).toBe(30_000);
  });

  it('gives the group labels it grouped by (those the alert has)', () => {
    const [m] = routeAlert(root, { alertname: 'cpu', host: 'h' }, 2);
    expect(m).toMatchObject({
      routeId: 'root.0',
      groupKey: 'root.0{alertname="cpu"}',
      groupLabels: { alertname: 'cpu' },
    });
  });
});

describe('matching', () => {
  const tree = parseRoutes({
    receiver: 'default',
    routes: [
      { matchers: ['team="a"'], receiver: 'a1', continue: true },
      { matchers: ['team="a"'], receiver: 'a2' },
      { matchers: ['team="a"'], receiver: 'a3' },
      {
        matchers: ['team=~"b|c"'],
        receiver: 'bc',
        routes: [{ matchers: ['env="prod"'], receiver: 'bc-prod' }],
      },
    ],
  });
  it.each([
    [{ team: 'a' }, ['a1 root.0{}', 'a2 root.1{}']],
    [{ team: 'b' }, ['bc root.3{}']],
    [{ team: 'c', env: 'prod' }, ['bc-prod root.3.0{}']],
    [{ team: 'z' }, ['default root{}']],
  ])('%j → %j', (labels, expected) => {
    expect(where(tree, labels, 3)).toEqual(expected);
  });

  it('a continue route that is the last match still falls through to nothing else', () => {
    const t = parseRoutes({
      receiver: 'd',
      routes: [{ matchers: ['x="1"'], receiver: 'r', continue: true }],
    });
    expect(where(t, { x: '1' }, 1)).toEqual(['r root.0{}']);
    expect(where(t, { x: '2' }, 1)).toEqual(['d root{}']);
  });

  it('a root with no receivers routes nowhere', () => {
    expect(routeAlert(parseRoutes({ receivers: [] }), { a: 'b' }, 5)).toEqual([]);
  });
});

describe('group keys', () => {
  it('are stable whatever the label order, and quote values', () => {
    expect(formatLabels({ b: '2', a: 'say "x"' })).toBe('{a="say \\"x\\"",b="2"}');
    expect(
      formatLabels(groupLabelsOf(['service', 'alertname'], { service: 's', alertname: 'n', host: 'h' })),
    ).toBe('{alertname="n",service="s"}');
  });

  it("group by '...' takes every label", () => {
    const t = parseRoutes({ receiver: 'r', group_by: ['...'] });
    expect(where(t, { host: 'h', alertname: 'a' }, 1)).toEqual(['r root{alertname="a",host="h"}']);
  });
});

describe('parseRoutes errors', () => {
  const fails = (doc: unknown) => {
    try {
      parseRoutes(doc);
    } catch (e) {
      return (e as Error).message;
    }
    throw new Error('expected a failure');
  };
  it.each([
    [
      { receiver: 'infra', routes: [{ receiver: 'a' }, { group_wait: 'soon' }] },
      "invalid route tree: routes[1].group_wait: must be a duration like 30s, 5m or 1h30m, got 'soon'",
    ],
    [
      { receiver: 'infra', routes: [{ severity: 9, matchers: ['team'] }] },
      'invalid route tree: routes[0].matchers[0]: must be a matcher like team="infra", env!="dev", service=~"pay.*" or x!~"y", got "team" (no operator after \'team\'); ' +
        "routes[0].severity: must be a severity 1-5, a range like 1-3 or a bound like '>=4', got 9",
    ],
    [
      { matchers: ['a="b"'], group_interval: '0s' },
      'invalid route tree: group_interval: must be longer than 0; receiver: is required at the root (where alerts no child route matches go); ' +
        'matchers: is not allowed at the root, which matches every alert',
    ],
    [
      { receiver: 'infra', routes: [{ reciever: 'x', routes: [{ receivers: ['a', 'a'] }] }] },
      "invalid route tree: routes[0]: unknown field(s) 'reciever'; routes[0].routes[0].receivers: must not name a receiver twice",
    ],
    [
      { receiver: 'infra', group_by: ['...', 'x'], repeat_interval: 30 },
      "invalid route tree: group_by: '...' must be alone (it means every label); repeat_interval: must be a duration like 30s, 5m or 1h30m, got 30",
    ],
    [
      { receiver: 'infra', routes: [{ receiver: 'a', receivers: ['b'] }] },
      'invalid route tree: routes[0].receivers: use receiver or receivers, not both',
    ],
    [
      'receiver: [unclosed',
      'invalid route tree: (root): is not valid YAML or JSON: Flow sequence in block collection must be sufficiently indented and end with a ] at line 1, column 20',
    ],
    [
      [],
      'invalid route tree: (root): must be a route (an object with receiver, matchers, routes, …), got []',
    ],
  ])('%j', (doc, message) => {
    expect(fails(doc)).toBe(`ARGUS_ERR_INVALID_CONFIG: ${message}`);
  });

  it('lists the problems in detail', () => {
    try {
      parseRoutes({ receiver: 'r', routes: [{ group_wait: 'x' }, { continue: 'yes' }] });
    } catch (e) {
      expect((e as { detail: unknown }).detail).toEqual({
        problems: [
          "routes[0].group_wait: must be a duration like 30s, 5m or 1h30m, got 'x'",
          "routes[1].continue: must be boolean, got 'yes'",
        ],
      });
    }
  });
});

describe('sample-config.yaml', () => {
  const sample = parseYaml(readFileSync(new URL('./sample-config.yaml', import.meta.url), 'utf8')) as {
    routes: { tree: unknown };
    receivers: Record<string, unknown>;
  };
  it('has a valid route tree whose receivers are all defined', () => {
    const root = parseRoutes(sample.routes.tree);
    const receivers = Object.entries(sample.receivers).map(([id, doc]) => parseReceiver(id, doc));
    expect(receivers.map((r) => r.id)).toEqual(['infra', 'payments-owners']);
    expect(where(root, { alertname: 'cpu', service: 'payments' }, 5)).toEqual([
      'infra root.1.0{alertname="cpu",service="payments"}',
      'payments-owners root.1.0{alertname="cpu",service="payments"}',
    ]);
    expect(where(root, { alertname: 'cpu', service: 'payments' }, 2)).toEqual([
      'infra root.0{alertname="cpu",service="payments"}',
    ]);
  });
});
