/**
 * The dead-letter routes of the inspector API (runtime/inspector/deadletters.ts) on a real runtime and a
 * real HTTP endpoint: an embedded node whose `widget` entities crash on `{type:'boom'}` while `broken`,
 * plus records written around `send` (garbage bytes, an invalid message), so every kind of letter
 * exists; then list, inspect, replay one and all, discard — and the same on Kafka, where a second
 * runtime on the same topic prefix sees what the first one discarded and replayed.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pack } from 'msgpackr';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DeadLetter, MailboxTransport } from '../../runtime/boundaries.ts';
import { realClock } from '../../runtime/clock.ts';
import { defineEntity } from '../../runtime/entity.ts';
import { decodeEnvelope, encodeEnvelope } from '../../runtime/envelope.ts';
import { type HttpServer, startHttp } from '../../runtime/http.ts';
import {
  deadLetterDetail,
  deadLetterRoutes,
  parseDeadLetterId,
  parsePaging,
  replayOf,
} from '../../runtime/inspector/deadletters.ts';
import { createRuntime, type Runtime } from '../../runtime/runtime.ts';
import { api, READ_TOKEN, testAuth } from '../helpers/api.ts';
import { kafkaBrokers, uniquePrefix } from '../helpers/services.ts';
import { waitFor } from '../helpers/wait.ts';

/** Every wall-clock stamp of the runtime (a letter's `at`): timers stay real. */
const NOW = 1_767_225_600_000;
const clock = { ...realClock, now: () => NOW };

interface WidgetState {
  added: number;
  booms: number;
}
type WidgetMessage = { readonly type: 'add'; readonly n: number } | { readonly type: 'boom' };

/** While true, widgets crash on 'boom' (the bug a replay is for, once fixed). */
let broken = true;

const parseWidget = (payload: unknown): WidgetMessage => {
  const p = payload as { type?: unknown; n?: unknown };
  if (p.type === 'boom') return { type: 'boom' };
  if (p.type === 'add' && typeof p.n === 'number') return { type: 'add', n: p.n };
  throw new Error(`widget messages are {type:'add', n} or {type:'boom'}, got ${JSON.stringify(payload)}`);
};

const entity = (kind: string) =>
  defineEntity<WidgetState, WidgetMessage>({
    kind,
    shards: 1,
    initialState: () => ({ added: 0, booms: 0 }),
    parse: parseWidget,
    receive: (s, m) => {
      switch (m.type) {
        case 'add':
          return { ...s, added: s.added + m.n };
        case 'boom':
          if (broken) throw new Error('boom is not handled yet');
          return { ...s, booms: s.booms + 1 };
        default: {
          const never: never = m;
          throw new Error(`unknown widget message ${JSON.stringify(never)}`);
        }
      }
    },
  });

const GARBAGE = new Uint8Array([0xc1, 0xff, 0x00, 0x13, 0x37]);
const INVALID = encodeEnvelope({
  id: 'id-invalid',
  kind: 'widget',
  key: 'w-5',
  type: 'add',
  timestamp: NOW,
  payload: { type: 'add', n: 'lots' },
});

/** What the decoder says of GARBAGE (msgpackr's wording). */
const GARBAGE_ERROR = ((): string => {
  const d = decodeEnvelope(GARBAGE);
  if (d.ok) throw new Error('GARBAGE decodes');
  return d.error;
})();

const mailboxOf = (rt: Runtime): MailboxTransport =>
  (rt as unknown as { boundaries: { mailbox: MailboxTransport } }).boundaries.mailbox;

const waitForLetters = (rt: Runtime, n: number, timeoutMs = 30_000): Promise<DeadLetter[]> =>
  waitFor(
    `${n} dead letters`,
    async () => {
      const l = await rt.deadLetters();
      return l.length >= n && l;
    },
    timeoutMs,
    20,
  );

interface Item {
  readonly id: string;
  readonly kind: string;
  readonly key: string | null;
  readonly reason: string;
}
interface ListBody {
  readonly total: number;
  readonly offset: number;
  readonly limit: number;
  readonly items: readonly Item[];
}

const ids = (body: ListBody): string[] => body.items.map((i) => i.id);

const boomItem = (id: string, kind: string, key: string) => {
  const [, partition, offset] = id.split(':');
  return {
    id,
    kind,
    partition: Number(partition),
    offset: Number(offset),
    key,
    reason: 'crashed',
    error: 'boom is not handled yet',
    attempts: 2,
    at: NOW,
    bytes: expect.any(Number),
  };
};

describe('dead letters on the inspector API (embedded runtime)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'argus-inspector-dl-'));
  let rt: Runtime;
  let http: HttpServer;
  const call = <T = unknown>(method: string, path: string, token?: string | null) =>
    api<T>(http.url, path, { method, ...(token === undefined ? {} : { token }) });
  const list = async (query = ''): Promise<ListBody> => {
    const r = await call<ListBody>('GET', `/api/v1/deadletters${query}`);
    expect(r.status).toBe(200);
    return r.body;
  };
  const stateOf = async (kind: string, key: string) =>
    (await call<{ state: WidgetState }>('GET', `/entities/${kind}/${key}`)).body.state;

  beforeAll(async () => {
    broken = true;
    rt = createRuntime(
      { mode: 'embedded', dataDir: dir, auth: testAuth(), deadLetter: { maxAttempts: 2 } },
      { clock },
    );
    const widgets = rt.register(entity('widget'));
    const gadgets = rt.register(entity('gadget'));
    await rt.start();
    http = await startHttp(rt, '127.0.0.1', 0, [deadLetterRoutes(() => rt), ...rt.routes()]);
    // One at a time, so the store's order (and so every id and the newest-first order) is fixed:
    // widget:0:0 crashed, widget:0:1 garbage, widget:0:2 invalid, widget:0:3 crashed, gadget:0:0 crashed.
    await widgets.send('w-1', { type: 'boom' });
    await waitForLetters(rt, 1);
    await mailboxOf(rt).append('widget', [
      { partition: 0, key: 'w-3', value: GARBAGE },
      { partition: 0, key: 'w-5', value: INVALID },
    ]);
    await waitForLetters(rt, 3);
    await widgets.send('w-2', { type: 'boom' });
    await waitForLetters(rt, 4);
    await gadgets.send('g-1', { type: 'boom' });
    await waitForLetters(rt, 5);
  }, 120_000);

  afterAll(async () => {
    await http?.close();
    await rt?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('lists every letter newest first with its fields, paged, of one kind or all', async () => {
    expect(await list()).toEqual({
      total: 5,
      offset: 0,
      limit: 100,
      items: [
        boomItem('gadget:0:0', 'gadget', 'g-1'),
        boomItem('widget:0:3', 'widget', 'w-2'),
        {
          id: 'widget:0:2',
          kind: 'widget',
          partition: 0,
          offset: 2,
          key: 'w-5',
          reason: 'invalid-message',
          error: `widget messages are {type:'add', n} or {type:'boom'}, got {"type":"add","n":"lots"}`,
          attempts: 0,
          at: NOW,
          bytes: INVALID.length,
        },
        {
          id: 'widget:0:1',
          kind: 'widget',
          partition: 0,
          offset: 1,
          key: 'w-3',
          reason: 'undecodable',
          error: GARBAGE_ERROR,
          attempts: 0,
          at: NOW,
          bytes: GARBAGE.length,
        },
        boomItem('widget:0:0', 'widget', 'w-1'),
      ],
    });
    const page = await list('?offset=1&limit=2');
    expect([page.total, page.offset, page.limit, ids(page)]).toEqual([5, 1, 2, ['widget:0:3', 'widget:0:2']]);
    expect(ids(await list('?offset=4&limit=1000'))).toEqual(['widget:0:0']);
    expect(ids(await list('?offset=9'))).toEqual([]);
    const widgets = await list('?kind=widget');
    expect([widgets.total, ids(widgets)]).toEqual([
      4,
      ['widget:0:3', 'widget:0:2', 'widget:0:1', 'widget:0:0'],
    ]);
    expect(await list('?kind=nothing')).toEqual({ total: 0, offset: 0, limit: 100, items: [] });
  });

  it('inspects a letter: its decoded message, or why it does not decode, and its bytes as base64', async () => {
    const boom = await call<Record<string, unknown>>('GET', '/api/v1/deadletters/widget:0:0', READ_TOKEN);
    expect(boom.status).toBe(200);
    expect(boom.body).toEqual({
      ...boomItem('widget:0:0', 'widget', 'w-1'),
      message: { type: 'boom' },
      decodeError: null,
      value: expect.any(String),
    });
    const bytes = Buffer.from(boom.body.value as string, 'base64');
    expect(bytes.length).toBe(boom.body.bytes);
    expect(decodeEnvelope(bytes)).toMatchObject({
      ok: true,
      envelope: { kind: 'widget', key: 'w-1', type: 'boom' },
    });

    const garbage = await call<Record<string, unknown>>(
      'GET',
      `/api/v1/deadletters/${encodeURIComponent('widget:0:1')}`,
    );
    expect(garbage.status).toBe(200);
    expect(garbage.body).toMatchObject({
      id: 'widget:0:1',
      message: null,
      decodeError: `undecodable: ${GARBAGE_ERROR}`,
      value: Buffer.from(GARBAGE).toString('base64'),
    });
  });

  it('refuses bad ids and paging (400), unknown letters and paths (404), wrong methods (405 with Allow)', async () => {
    const refusals: [string, string, number, string][] = [
      [
        'GET',
        '/api/v1/deadletters/widget-0-0',
        400,
        'dead letter id "widget-0-0" has 1 part(s): expected <kind>:<partition>:<offset>',
      ],
      [
        'GET',
        '/api/v1/deadletters/Widget:0:0',
        400,
        'dead letter id "Widget:0:0" has kind "Widget", which no entity kind can be: expected <kind>:<partition>:<offset>',
      ],
      [
        'GET',
        '/api/v1/deadletters/widget:x:0',
        400,
        'dead letter id "widget:x:0" has partition "x", not a non-negative integer: expected <kind>:<partition>:<offset>',
      ],
      [
        'POST',
        '/api/v1/deadletters/widget:0:-1/replay',
        400,
        'dead letter id "widget:0:-1" has offset "-1", not a non-negative integer: expected <kind>:<partition>:<offset>',
      ],
      [
        'DELETE',
        '/api/v1/deadletters/a:b:c:d',
        400,
        'dead letter id "a:b:c:d" has 4 part(s): expected <kind>:<partition>:<offset>',
      ],
      [
        'GET',
        '/api/v1/deadletters/%E0%A4%A',
        400,
        'path "/api/v1/deadletters/%E0%A4%A" is not valid percent-encoding',
      ],
      ['GET', '/api/v1/deadletters?limit=0', 400, 'limit must be an integer from 1 to 1000, got "0"'],
      ['GET', '/api/v1/deadletters?limit=1001', 400, 'limit must be an integer from 1 to 1000, got "1001"'],
      [
        'GET',
        '/api/v1/deadletters?offset=-3',
        400,
        'offset must be an integer from 0 to 9007199254740991, got "-3"',
      ],
      [
        'GET',
        '/api/v1/deadletters?offset=1.5',
        400,
        'offset must be an integer from 0 to 9007199254740991, got "1.5"',
      ],
      ['GET', '/api/v1/deadletters?kind=no:colons', 400, 'kind "no:colons" is not an entity kind name'],
      ['POST', '/api/v1/deadletters/replay?kind=Bad', 400, 'kind "Bad" is not an entity kind name'],
      ['GET', '/api/v1/deadletters/widget:0:99', 404, 'no dead letter widget:0:99'],
      ['GET', '/api/v1/deadletters/nothing:0:0', 404, 'no dead letter nothing:0:0'],
      ['POST', '/api/v1/deadletters/widget:7:0/replay', 404, 'no dead letter widget:7:0'],
      ['DELETE', '/api/v1/deadletters/widget:0:99', 404, 'no dead letter widget:0:99'],
      ['GET', '/api/v1/deadletters/widget:0:0/more', 404, 'no route /api/v1/deadletters/widget:0:0/more'],
    ];
    for (const [method, path, status, error] of refusals)
      expect([method, path, await call(method, path)]).toMatchObject([
        method,
        path,
        { status, body: { error } },
      ]);

    const notAllowed: [string, string, string][] = [
      ['POST', '/api/v1/deadletters', 'GET'],
      ['PUT', '/api/v1/deadletters/widget:0:0', 'GET, DELETE'],
      ['GET', '/api/v1/deadletters/widget:0:0/replay', 'POST'],
      ['DELETE', '/api/v1/deadletters/replay', 'POST'],
    ];
    for (const [method, path, allow] of notAllowed) {
      const r = await call(method, path);
      expect([method, path, r.status, r.headers.get('allow'), r.body]).toEqual([
        method,
        path,
        405,
        allow,
        { error: `method ${method} is not allowed here (allowed: ${allow})` },
      ]);
    }
    expect((await call('HEAD', '/api/v1/deadletters/widget:0:0')).status).toBe(200);
    // The HTTP gate (runtime/http.ts) guards them: reading needs a token, acting needs admin.
    expect((await call('GET', '/api/v1/deadletters', null)).status).toBe(401);
    expect((await call('DELETE', '/api/v1/deadletters/widget:0:0', READ_TOKEN)).status).toBe(403);
    expect((await list()).total).toBe(5);
  });

  it('replays one letter once the bug is fixed: its entity gets the message, the letter leaves the list', async () => {
    expect(await call('POST', '/api/v1/deadletters/widget:0:1/replay')).toMatchObject({
      status: 409,
      body: {
        error: `dead letter widget:0:1 cannot be replayed: its record does not decode (undecodable: ${GARBAGE_ERROR})`,
      },
    });
    expect(await call('POST', '/api/v1/deadletters/widget:0:2/replay')).toMatchObject({
      status: 409,
      body: {
        error: `dead letter widget:0:2 cannot be replayed: ARGUS_ERR_INVALID_MESSAGE: message for widget/w-5: widget messages are {type:'add', n} or {type:'boom'}, got {"type":"add","n":"lots"}`,
      },
    });
    broken = false;
    expect(await call('POST', '/api/v1/deadletters/widget:0:0/replay')).toMatchObject({
      status: 200,
      body: { replayed: 1 },
    });
    await waitFor(
      'w-1 handled the replayed boom',
      async () => (await stateOf('widget', 'w-1')).booms === 1,
      20_000,
    );
    expect(await stateOf('widget', 'w-1')).toEqual({ added: 0, booms: 1 });
    expect(ids(await list())).toEqual(['gadget:0:0', 'widget:0:3', 'widget:0:2', 'widget:0:1']);
    expect((await call('GET', '/api/v1/deadletters/widget:0:0')).status).toBe(404);
    expect((await call('POST', '/api/v1/deadletters/widget:0:0/replay')).status).toBe(404);
  });

  it('replays every letter of a kind, keeping (and naming) the ones that cannot be sent', async () => {
    const r = await call('POST', '/api/v1/deadletters/replay?kind=widget');
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({
      replayed: 1,
      skipped: [
        { id: 'widget:0:1', error: expect.stringContaining('does not decode') },
        { id: 'widget:0:2', error: expect.stringContaining('ARGUS_ERR_INVALID_MESSAGE') },
      ],
    });
    await waitFor(
      'w-2 handled the replayed boom',
      async () => (await stateOf('widget', 'w-2')).booms === 1,
      20_000,
    );
    expect(ids(await list())).toEqual(['gadget:0:0', 'widget:0:2', 'widget:0:1']);
    // Nothing else happened to gadgets.
    expect(await stateOf('gadget', 'g-1')).toEqual({ added: 0, booms: 0 });
  });

  it('discards one letter and keeps the others; replays all that are left', async () => {
    expect(await call('DELETE', '/api/v1/deadletters/widget:0:1')).toMatchObject({
      status: 200,
      body: { discarded: 1 },
    });
    expect(await call('DELETE', '/api/v1/deadletters/widget:0:1')).toMatchObject({
      status: 404,
      body: { error: 'no dead letter widget:0:1' },
    });
    expect(ids(await list())).toEqual(['gadget:0:0', 'widget:0:2']);

    expect(await call('POST', '/api/v1/deadletters/replay')).toMatchObject({
      status: 200,
      body: { replayed: 1, skipped: [{ id: 'widget:0:2' }] },
    });
    await waitFor(
      'g-1 handled the replayed boom',
      async () => (await stateOf('gadget', 'g-1')).booms === 1,
      20_000,
    );
    expect(ids(await list())).toEqual(['widget:0:2']);
    expect(await call('DELETE', '/api/v1/deadletters/widget:0:2')).toMatchObject({ status: 200 });
    expect(await list()).toEqual({ total: 0, offset: 0, limit: 100, items: [] });
    expect(await call('POST', '/api/v1/deadletters/replay')).toMatchObject({
      status: 200,
      body: { replayed: 0, skipped: [] },
    });
    // Replays are new messages: the entities' offsets moved on, no new letter appeared.
    expect(await rt.deadLetters()).toEqual([]);
  });
});

describe('dead letters on the inspector API (Kafka runtimes sharing a topic prefix)', () => {
  let a: Runtime;
  let b: Runtime;
  let httpA: HttpServer;
  let httpB: HttpServer;
  const at = <T = unknown>(http: HttpServer, method: string, path: string) =>
    api<T>(http.url, path, { method });
  const listed = async (http: HttpServer): Promise<string[]> => {
    const r = await at<ListBody>(http, 'GET', '/api/v1/deadletters');
    expect(r.status).toBe(200);
    return ids(r.body);
  };

  beforeAll(async () => {
    broken = true;
    const prefix = uniquePrefix('inspector-dl');
    const config = {
      mode: 'kafka',
      kafka: { brokers: kafkaBrokers(), topicPrefix: prefix },
      auth: testAuth(),
      deadLetter: { maxAttempts: 2 },
    };
    a = createRuntime({ ...config, nodeId: 'a' }, { clock });
    const widgets = a.register(entity('widget'));
    // Another kind, so that b consumes nothing of a's shards (without a cluster each node takes all).
    b = createRuntime({ ...config, nodeId: 'b' }, { clock });
    b.register(entity('spectator'));
    await a.start();
    await b.start();
    httpA = await startHttp(a, '127.0.0.1', 0, [deadLetterRoutes(() => a), ...a.routes()]);
    httpB = await startHttp(b, '127.0.0.1', 0, [deadLetterRoutes(() => b), ...b.routes()]);
    await widgets.send('w-1', { type: 'boom' });
    await waitForLetters(a, 1, 60_000);
    await mailboxOf(a).append('widget', [{ partition: 0, key: 'w-3', value: GARBAGE }]);
    await waitForLetters(a, 2, 60_000);
  }, 180_000);

  afterAll(async () => {
    await httpA?.close();
    await httpB?.close();
    await b?.stop();
    await a?.stop();
  });

  it('shows a discard and a replay made on one node in the other node’s list', async () => {
    expect(await listed(httpB)).toEqual(['widget:0:1', 'widget:0:0']);
    const inspected = await at<Record<string, unknown>>(httpB, 'GET', '/api/v1/deadletters/widget:0:0');
    expect(inspected.body).toMatchObject({ key: 'w-1', reason: 'crashed', message: { type: 'boom' } });

    expect(await at(httpA, 'DELETE', '/api/v1/deadletters/widget:0:1')).toMatchObject({
      status: 200,
      body: { discarded: 1 },
    });
    expect(await listed(httpB)).toEqual(['widget:0:0']);
    expect(await at(httpB, 'DELETE', '/api/v1/deadletters/widget:0:1')).toMatchObject({ status: 404 });

    // A replay is a send: it needs a node that runs the kind.
    broken = false;
    expect(await at(httpB, 'POST', '/api/v1/deadletters/widget:0:0/replay')).toMatchObject({
      status: 409,
      body: {
        error:
          "dead letter widget:0:0 cannot be replayed: ARGUS_ERR_UNKNOWN_KIND: no entity kind 'widget' is registered",
      },
    });
    expect(await at(httpA, 'POST', '/api/v1/deadletters/widget:0:0/replay')).toMatchObject({
      status: 200,
      body: { replayed: 1 },
    });
    await waitFor(
      'w-1 handled the replayed boom',
      async () => ((await a.entityState('widget', 'w-1')).state as WidgetState).booms === 1,
      30_000,
    );
    expect(await listed(httpB)).toEqual([]);
    expect(await listed(httpA)).toEqual([]);
  }, 120_000);
});

describe('dead letter ids, paging and replayability (pure)', () => {
  it.each([
    ['widget:0:0', { kind: 'widget', partition: 0, offset: 0 }],
    [
      'host-metrics.v2:1023:9007199254740991',
      { kind: 'host-metrics.v2', partition: 1023, offset: 9_007_199_254_740_991 },
    ],
  ])('parses %s', (text, id) => {
    expect(parseDeadLetterId(text)).toEqual({ ok: true, id });
  });

  it.each([
    ['', 'has 1 part(s)'],
    [':0:0', 'has kind "", which no entity kind can be'],
    ['w:0', 'has 2 part(s)'],
    ['w:+1:0', 'has partition "+1", not a non-negative integer'],
    ['w:0:9007199254740992', 'has offset "9007199254740992", not a non-negative integer'],
    ['w:0:1e3', 'has offset "1e3", not a non-negative integer'],
  ])('refuses %j: %s', (text, why) => {
    expect(parseDeadLetterId(text)).toEqual({
      ok: false,
      error: `dead letter id ${JSON.stringify(text)} ${why}: expected <kind>:<partition>:<offset>`,
    });
  });

  it('pages with defaults 0 and 100', () => {
    expect(parsePaging(new URLSearchParams(''))).toEqual({
      ok: true,
      paging: { kind: undefined, offset: 0, limit: 100 },
    });
    expect(parsePaging(new URLSearchParams('kind=host&offset=20&limit=1000'))).toEqual({
      ok: true,
      paging: { kind: 'host', offset: 20, limit: 1000 },
    });
  });

  it('shows any decoded message as JSON: bytes as base64, big integers as text, maps as objects', () => {
    const value = pack([
      1,
      'i',
      'widget',
      'w',
      'odd',
      1,
      { type: 'odd', raw: Buffer.from([1, 2]), big: 2n ** 63n, m: new Map([['a', 1]]) },
    ]);
    const letter: DeadLetter = {
      kind: 'widget',
      partition: 0,
      offset: 1,
      key: 'w',
      reason: 'crashed',
      error: 'x',
      attempts: 1,
      at: NOW,
      value,
    };
    expect(deadLetterDetail(letter).message).toEqual({
      type: 'odd',
      raw: 'AQI=',
      big: '9223372036854775808',
      m: { a: 1 },
    });
  });

  it('refuses to replay a letter without a key, or whose message has no type', () => {
    const letter: DeadLetter = {
      kind: 'widget',
      partition: 0,
      offset: 4,
      key: undefined,
      reason: 'crashed',
      error: 'x',
      attempts: 1,
      at: NOW,
      value: encodeEnvelope({
        id: 'i',
        kind: 'widget',
        key: 'w',
        type: 'boom',
        timestamp: 1,
        payload: { type: 'boom' },
      }),
    };
    expect(replayOf(letter)).toEqual({
      ok: false,
      error: 'dead letter widget:0:4 cannot be replayed: it has no entity key to send to',
    });
    expect(replayOf({ ...letter, key: 'w' })).toEqual({ ok: true, key: 'w', message: { type: 'boom' } });
    const untyped = encodeEnvelope({
      id: 'i',
      kind: 'widget',
      key: 'w',
      type: 'boom',
      timestamp: 1,
      payload: 7,
    });
    expect(replayOf({ ...letter, key: 'w', value: untyped })).toEqual({
      ok: false,
      error: "dead letter widget:0:4 cannot be replayed: its message is not an object with a string 'type'",
    });
  });
});
