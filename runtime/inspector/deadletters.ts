/**
 * The runtime's dead letters on the inspector API (docs/API.md, "Inspector" → "Dead letters"):
 *
 *   GET    /api/v1/deadletters?kind=&offset=0&limit=100   newest first, paged, with the total
 *   GET    /api/v1/deadletters/:id                        one letter, its decoded message, its bytes (base64)
 *   POST   /api/v1/deadletters/:id/replay                 sends its message again, then discards it
 *   POST   /api/v1/deadletters/replay?kind=               the same for every one (of the kind)
 *   DELETE /api/v1/deadletters/:id                        discards it
 *
 * An id is `<kind>:<partition>:<offset>`: the mailbox record the letter was (kinds hold no ':').
 *
 * Principles: the store is shared by the cluster (the dead-letter topics, or the one embedded journal),
 * so any node answers and a discard is seen by all. A replay goes through `runtime.send` like any new
 * message — a fresh envelope, validated by the kind's parser — and only a letter whose send is durable is
 * discarded; one that cannot be sent (it does not decode, has no key, its kind is not registered here, its
 * message is refused) is kept and answered 409 with why. A replay is at least once: if the discard fails
 * after the send, the letter stays listed and replaying it again sends it again. The route answers every
 * request it takes with a JSON `{ error }` naming the problem; auth is the HTTP gate's (runtime/http.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { DeadLetter, DeadLetterId } from '../boundaries.ts';
import { decodeEnvelope } from '../envelope.ts';
import { describeError, isArgusError } from '../errors.ts';
import type { HttpRoute } from '../http.ts';
import { failure, pathParts, problem, Refusal, type Reply, reply, writeJson } from '../json-api.ts';
import type { Runtime } from '../runtime.ts';

const PREFIX = '/api/v1/deadletters';

/** Paging defaults and bounds, in one place. */
export const deadLetterPaging = { offset: 0, limit: 100, maxLimit: 1_000 } as const;

/** The kinds the runtime registers (runtime.ts `register`): no ':' in them, which keeps ids splittable. */
const KIND = /^[a-z][a-z0-9._-]{0,62}$/;
const DIGITS = /^\d+$/;

/** A letter's id as text. */
export const deadLetterIdText = ({ kind, partition, offset }: DeadLetterId): string =>
  `${kind}:${partition}:${offset}`;

/** Parses `<kind>:<partition>:<offset>`; the error names what is wrong. */
export const parseDeadLetterId = (
  text: string,
): { readonly ok: true; readonly id: DeadLetterId } | { readonly ok: false; readonly error: string } => {
  const bad = (why: string) => ({
    ok: false as const,
    error: `dead letter id ${JSON.stringify(text)} ${why}: expected <kind>:<partition>:<offset>`,
  });
  const parts = text.split(':');
  if (parts.length !== 3) return bad(`has ${parts.length} part(s)`);
  const [kind, partition, offset] = parts as [string, string, string];
  if (!KIND.test(kind)) return bad(`has kind ${JSON.stringify(kind)}, which no entity kind can be`);
  const p = Number(partition);
  if (!DIGITS.test(partition) || !Number.isSafeInteger(p))
    return bad(`has partition ${JSON.stringify(partition)}, not a non-negative integer`);
  const o = Number(offset);
  if (!DIGITS.test(offset) || !Number.isSafeInteger(o))
    return bad(`has offset ${JSON.stringify(offset)}, not a non-negative integer`);
  return { ok: true, id: { kind, partition: p, offset: o } };
};

export interface Paging {
  readonly kind: string | undefined;
  readonly offset: number;
  readonly limit: number;
}

/** `kind`, `offset` and `limit` of a list request; the error names the parameter. */
export const parsePaging = (
  query: URLSearchParams,
): { readonly ok: true; readonly paging: Paging } | { readonly ok: false; readonly error: string } => {
  const kind = query.get('kind') ?? undefined;
  if (kind !== undefined && !KIND.test(kind))
    return { ok: false, error: `kind ${JSON.stringify(kind)} is not an entity kind name` };
  const integer = (name: 'offset' | 'limit', min: number, max: number, fallback: number) => {
    const text = query.get(name);
    if (text === null) return fallback;
    const n = Number(text);
    return DIGITS.test(text) && n >= min && n <= max
      ? n
      : `${name} must be an integer from ${min} to ${max}, got ${JSON.stringify(text)}`;
  };
  const offset = integer('offset', 0, Number.MAX_SAFE_INTEGER, deadLetterPaging.offset);
  if (typeof offset === 'string') return { ok: false, error: offset };
  const limit = integer('limit', 1, deadLetterPaging.maxLimit, deadLetterPaging.limit);
  if (typeof limit === 'string') return { ok: false, error: limit };
  return { ok: true, paging: { kind, offset, limit } };
};

/** A letter in a list: its id and fields, `key` null when it has none, `bytes` its record's size. */
export const deadLetterItem = (l: DeadLetter) => ({
  id: deadLetterIdText(l),
  kind: l.kind,
  partition: l.partition,
  offset: l.offset,
  key: l.key ?? null,
  reason: l.reason,
  error: l.error,
  attempts: l.attempts,
  at: l.at,
  bytes: l.value.length,
});

/**
 * A decoded payload as JSON can carry it: whatever a foreign writer packed (bytes, big integers, maps)
 * becomes base64, a decimal string, an object, instead of failing the answer.
 */
const jsonSafe = (value: unknown): unknown =>
  JSON.parse(
    // A function for `this`, the holder: a Buffer reaches a replacer already turned into JSON by its
    // toJSON, so the original is read from the holder.
    JSON.stringify(value, function (this: Record<string, unknown>, key: string, v: unknown) {
      const raw = this[key];
      if (raw instanceof Uint8Array) return Buffer.from(raw).toString('base64');
      if (typeof v === 'bigint') return v.toString();
      if (v instanceof Map) return Object.fromEntries(v);
      return v;
    }) ?? 'null',
  );

/** A letter inspected: the item, its message when its record decodes (else why not), its bytes. */
export const deadLetterDetail = (l: DeadLetter) => {
  const decoded = decodeEnvelope(l.value);
  return {
    ...deadLetterItem(l),
    message: decoded.ok ? jsonSafe(decoded.envelope.payload) : null,
    decodeError: decoded.ok ? null : `${decoded.reason}: ${decoded.error}`,
    value: Buffer.from(l.value).toString('base64'),
  };
};

/** What `runtime.send` needs to replay a letter, or why it cannot be replayed (a 409). */
export const replayOf = (
  l: DeadLetter,
):
  | { readonly ok: true; readonly key: string; readonly message: { readonly type: string } }
  | {
      readonly ok: false;
      readonly error: string;
    } => {
  const id = deadLetterIdText(l);
  const decoded = decodeEnvelope(l.value);
  if (!decoded.ok)
    return {
      ok: false,
      error: `dead letter ${id} cannot be replayed: its record does not decode (${decoded.reason}: ${decoded.error})`,
    };
  if (l.key === undefined)
    return { ok: false, error: `dead letter ${id} cannot be replayed: it has no entity key to send to` };
  const message = decoded.envelope.payload;
  if (
    typeof message !== 'object' ||
    message === null ||
    typeof (message as { type?: unknown }).type !== 'string'
  )
    return {
      ok: false,
      error: `dead letter ${id} cannot be replayed: its message is not an object with a string 'type'`,
    };
  return { ok: true, key: l.key, message: message as { readonly type: string } };
};

/** Errors of `send` that say the letter itself cannot be sent (not that the node cannot send now). */
const refusedByKind = (e: unknown): boolean =>
  isArgusError(e, 'ARGUS_ERR_UNKNOWN_KIND') ||
  isArgusError(e, 'ARGUS_ERR_INVALID_KEY') ||
  isArgusError(e, 'ARGUS_ERR_INVALID_MESSAGE');

/** Sends the letter's message again; the error (a Refusal 409) says why it could not be. */
const resend = async (rt: Runtime, l: DeadLetter): Promise<void> => {
  const r = replayOf(l);
  if (!r.ok) throw new Refusal(409, r.error);
  try {
    await rt.send(l.kind, r.key, r.message);
  } catch (e) {
    if (refusedByKind(e))
      throw new Refusal(
        409,
        `dead letter ${deadLetterIdText(l)} cannot be replayed: ${describeError(e).message}`,
      );
    throw e;
  }
};

const findLetter = async (rt: Runtime, id: DeadLetterId): Promise<DeadLetter> => {
  const letter = (await rt.deadLetters(id.kind)).find(
    (l) => l.partition === id.partition && l.offset === id.offset,
  );
  if (!letter) throw new Refusal(404, `no dead letter ${deadLetterIdText(id)}`);
  return letter;
};

const list = async (rt: Runtime, query: URLSearchParams): Promise<Reply> => {
  const parsed = parsePaging(query);
  if (!parsed.ok) return problem(400, parsed.error);
  const { kind, offset, limit } = parsed.paging;
  // Newest first by the store's order (the order they were dead-lettered in), not by `at`: nodes'
  // clocks differ, the store's order does not.
  const letters = (await rt.deadLetters(kind)).reverse();
  return reply(200, {
    total: letters.length,
    offset,
    limit,
    items: letters.slice(offset, offset + limit).map(deadLetterItem),
  });
};

const replayOne = async (rt: Runtime, id: DeadLetterId): Promise<Reply> => {
  const letter = await findLetter(rt, id);
  await resend(rt, letter);
  await rt.discardDeadLetters([id]);
  return reply(200, { replayed: 1 });
};

/**
 * Replays every letter (of the kind), oldest first so that one entity's messages keep their order; the
 * sends of one tick share one append. Letters that cannot be sent stay, listed in `skipped` with why.
 */
const replayAll = async (rt: Runtime, query: URLSearchParams): Promise<Reply> => {
  const kind = query.get('kind') ?? undefined;
  if (kind !== undefined && !KIND.test(kind))
    return problem(400, `kind ${JSON.stringify(kind)} is not an entity kind name`);
  const letters = await rt.deadLetters(kind);
  const outcomes = await Promise.allSettled(letters.map((l) => resend(rt, l)));
  const sent: DeadLetterId[] = [];
  const skipped: { id: string; error: string }[] = [];
  outcomes.forEach((o, i) => {
    const l = letters[i]!;
    if (o.status === 'fulfilled') sent.push(l);
    else skipped.push({ id: deadLetterIdText(l), error: describeError(o.reason).message });
  });
  if (sent.length > 0) await rt.discardDeadLetters(sent);
  return reply(200, { replayed: sent.length, skipped });
};

const discardOne = async (rt: Runtime, id: DeadLetterId): Promise<Reply> =>
  (await rt.discardDeadLetters([id])) === 1
    ? reply(200, { discarded: 1 })
    : problem(404, `no dead letter ${deadLetterIdText(id)}`);

type Method = 'GET' | 'POST' | 'DELETE';
type Handlers = Partial<Record<Method, (rt: Runtime, query: URLSearchParams) => Promise<Reply>>>;

/** The handlers of a path under /api/v1/deadletters (its decoded segments), or the reply refusing it. */
const endpoint = (parts: readonly string[]): { handlers: Handlers } | { refusal: Reply } => {
  if (parts.length === 0) return { handlers: { GET: list } };
  if (parts.length === 1 && parts[0] === 'replay') return { handlers: { POST: replayAll } };
  if (parts.length > 2 || (parts.length === 2 && parts[1] !== 'replay'))
    return { refusal: problem(404, `no route ${PREFIX}/${parts.join('/')}`) };
  const parsed = parseDeadLetterId(parts[0]!);
  if (!parsed.ok) return { refusal: problem(400, parsed.error) };
  const { id } = parsed;
  if (parts.length === 2) return { handlers: { POST: (rt) => replayOne(rt, id) } };
  return {
    handlers: {
      GET: async (rt) => reply(200, deadLetterDetail(await findLetter(rt, id))),
      DELETE: (rt) => discardOne(rt, id),
    },
  };
};

/** A failure as a reply; transport trouble (a broker away) is 503, since trying again later may work. */
const failed = (e: unknown): Reply => {
  if (isArgusError(e, 'ARGUS_ERR_TRANSPORT') || isArgusError(e, 'ARGUS_ERR_TIMEOUT'))
    return problem(503, describeError(e).message);
  return failure(e, []);
};

const answer = async (req: IncomingMessage, url: URL, runtime: () => Runtime | undefined): Promise<Reply> => {
  const parts = pathParts(url.pathname, PREFIX);
  if (parts === 'bad' || parts === undefined)
    return problem(400, `path ${JSON.stringify(url.pathname)} is not valid percent-encoding`);
  const found = endpoint(parts);
  if ('refusal' in found) return found.refusal;
  const allowed = Object.keys(found.handlers).join(', ');
  // HEAD is answered as GET, like the node's own routes (Node leaves the body out).
  const method = req.method === 'HEAD' ? 'GET' : req.method;
  const handler = found.handlers[method as Method];
  if (!handler)
    return {
      status: 405,
      body: { error: `method ${req.method} is not allowed here (allowed: ${allowed})` },
      headers: { allow: allowed },
    };
  const rt = runtime();
  if (rt?.status !== 'running')
    return problem(
      503,
      `the runtime is ${rt ? rt.status : 'not created yet'}: dead letters are not reachable`,
    );
  try {
    return await handler(rt, url.searchParams);
  } catch (e) {
    return failed(e);
  }
};

/** The dead-letter routes, over the runtime in force (undefined before it exists: 503). */
export const deadLetterRoutes =
  (runtime: () => Runtime | undefined): HttpRoute =>
  async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> => {
    if (pathParts(url.pathname, PREFIX) === undefined) return false;
    writeJson(res, await answer(req, url, runtime));
    return true;
  };
