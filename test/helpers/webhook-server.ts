/**
 * A real HTTP webhook receiver for tests, on 127.0.0.1 and a free port. It records every request
 * (headers, raw body, parsed body, time, what it answered), checks every body against the
 * Alertmanager webhook v4 field list (exact key sets, types, RFC 3339 times) and — given a secret —
 * the HMAC signature, and dedupes by idempotency key the way a careful receiver would: `all()` is
 * what came over the wire, `unique()` one accepted request per key.
 *
 * A request that fails a check is answered 400 with the problems (and they are kept in `problems()`),
 * so a test sees a malformed notification loudly. It can be scripted: `failNext(n)` answers 500 to the
 * next n requests, `fail()` answers 500 until `recover()`, `hang()` holds requests unanswered until
 * `release()` or `close()`.
 */
import { createServer, type IncomingHttpHeaders, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { ALERTMANAGER_V4_FIELDS } from '../../actors/notify/alertmanager.ts';
import { verifySignature } from '../../actors/notify/sign.ts';
import { IDEMPOTENCY_HEADER, SIGNATURE_HEADER, TIMESTAMP_HEADER } from '../../actors/notify/types.ts';

export interface WebhookRequest {
  /** Index in `all()`. */
  readonly n: number;
  readonly at: number;
  readonly method: string;
  readonly path: string;
  readonly headers: IncomingHttpHeaders;
  readonly raw: string;
  /** The parsed JSON body; undefined when it did not parse. */
  readonly body: unknown;
  readonly idempotencyKey: string | undefined;
  readonly problems: readonly string[];
  /** What the server answered; 0 while the request hangs. */
  status: number;
}

export interface WebhookServerOptions {
  /** Verify `x-argus-signature` with this secret (a request without a valid one is a problem). */
  readonly secret?: string;
  /** Which body format to check: Alertmanager v4 (default), chat (`text` + `blocks`), or none. */
  readonly format?: 'alertmanager' | 'chat' | 'any';
  /** Answer 500 to the first n requests. */
  readonly failFirst?: number;
  /** The verifier's clock for the signature timestamp (default Date.now). */
  readonly now?: () => number;
  readonly toleranceMs?: number;
}

export interface WebhookServer {
  readonly url: string;
  readonly port: number;
  all(): readonly WebhookRequest[];
  /** The first request answered 2xx for each idempotency key, in arrival order. */
  unique(): readonly WebhookRequest[];
  /** Every check that failed, as `#<n>: <problem>`. */
  problems(): readonly string[];
  failNext(n: number): void;
  fail(): void;
  recover(): void;
  hang(): void;
  /** Stops hanging and answers the held requests with `status`. */
  release(status?: number): void;
  close(): Promise<void>;
}

const RFC3339 = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:Z|[+-]\d{2}:\d{2})$/;

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const keySet = (v: Record<string, unknown>, expected: readonly string[], where: string, out: string[]) => {
  const keys = Object.keys(v);
  const missing = expected.filter((k) => !keys.includes(k));
  const extra = keys.filter((k) => !expected.includes(k));
  if (missing.length > 0) out.push(`${where}: missing ${missing.join(', ')}`);
  if (extra.length > 0) out.push(`${where}: unexpected ${extra.join(', ')}`);
};

const stringMap = (v: unknown, where: string, out: string[]) => {
  if (!isObject(v)) out.push(`${where}: must be an object of strings`);
  else
    for (const [k, s] of Object.entries(v))
      if (typeof s !== 'string') out.push(`${where}.${k}: must be a string`);
};

const str = (v: unknown, where: string, out: string[]) => {
  if (typeof v !== 'string') out.push(`${where}: must be a string, got ${JSON.stringify(v)}`);
};

const status = (v: unknown, where: string, out: string[]) => {
  if (v !== 'firing' && v !== 'resolved')
    out.push(`${where}: must be 'firing' or 'resolved', got ${JSON.stringify(v)}`);
};

/** Every way `body` is not an Alertmanager webhook v4 message (empty: it is one). */
export const alertmanagerV4Problems = (body: unknown): string[] => {
  const out: string[] = [];
  if (!isObject(body)) return ['body: must be a JSON object'];
  keySet(body, ALERTMANAGER_V4_FIELDS.message, 'body', out);
  if (body.version !== '4') out.push(`version: must be "4", got ${JSON.stringify(body.version)}`);
  str(body.groupKey, 'groupKey', out);
  str(body.receiver, 'receiver', out);
  str(body.externalURL, 'externalURL', out);
  status(body.status, 'status', out);
  if (!Number.isInteger(body.truncatedAlerts) || (body.truncatedAlerts as number) < 0)
    out.push(`truncatedAlerts: must be a whole number ≥ 0, got ${JSON.stringify(body.truncatedAlerts)}`);
  for (const f of ['groupLabels', 'commonLabels', 'commonAnnotations']) stringMap(body[f], f, out);
  if (!Array.isArray(body.alerts) || body.alerts.length === 0) {
    out.push('alerts: must be a non-empty array');
    return out;
  }
  body.alerts.forEach((a: unknown, i: number) => {
    const at = `alerts[${i}]`;
    if (!isObject(a)) {
      out.push(`${at}: must be an object`);
      return;
    }
    keySet(a, ALERTMANAGER_V4_FIELDS.alert, at, out);
    status(a.status, `${at}.status`, out);
    stringMap(a.labels, `${at}.labels`, out);
    stringMap(a.annotations, `${at}.annotations`, out);
    for (const t of ['startsAt', 'endsAt'])
      if (typeof a[t] !== 'string' || !RFC3339.test(a[t] as string))
        out.push(`${at}.${t}: must be an RFC 3339 time, got ${JSON.stringify(a[t])}`);
    str(a.generatorURL, `${at}.generatorURL`, out);
    if (typeof a.fingerprint !== 'string' || a.fingerprint === '')
      out.push(`${at}.fingerprint: must be a non-empty string`);
    if (isObject(body.commonLabels) && isObject(a.labels))
      for (const [k, v] of Object.entries(body.commonLabels))
        if (a.labels[k] !== v) out.push(`commonLabels.${k}: not the value of ${at}.labels.${k}`);
  });
  const firing = body.alerts.some((a: unknown) => isObject(a) && a.status === 'firing');
  if (body.status !== (firing ? 'firing' : 'resolved'))
    out.push(`status: must be ${firing ? "'firing' (an alert fires)" : "'resolved' (no alert fires)"}`);
  return out;
};

/** Every way `body` is not a chat (Slack-compatible) message. */
export const chatProblems = (body: unknown): string[] => {
  if (!isObject(body)) return ['body: must be a JSON object'];
  const out: string[] = [];
  keySet(body, ['text', 'blocks'], 'body', out);
  str(body.text, 'text', out);
  if (!Array.isArray(body.blocks) || body.blocks.length === 0) out.push('blocks: must be a non-empty array');
  else if (body.blocks.length > 50) out.push(`blocks: at most 50, got ${body.blocks.length}`);
  return out;
};

export const startWebhookServer = async (options: WebhookServerOptions = {}): Promise<WebhookServer> => {
  const requests: WebhookRequest[] = [];
  const held: { req: WebhookRequest; res: ServerResponse }[] = [];
  let failBudget = options.failFirst ?? 0;
  let failing = false;
  let hanging = false;
  const now = options.now ?? Date.now;

  const answer = (req: WebhookRequest, res: ServerResponse, code: number, text = '') => {
    req.status = code;
    res.writeHead(code, { 'content-type': 'text/plain' }).end(text);
  };

  const server = createServer((httpReq, res) => {
    const chunks: Buffer[] = [];
    httpReq.on('data', (c: Buffer) => chunks.push(c));
    httpReq.on('end', () => {
      const raw = Buffer.concat(chunks).toString('utf8');
      const problems: string[] = [];
      let body: unknown;
      try {
        body = JSON.parse(raw);
      } catch {
        problems.push('body: is not JSON');
      }
      if (httpReq.method !== 'POST') problems.push(`method: must be POST, got ${httpReq.method}`);
      if (!String(httpReq.headers['content-type']).startsWith('application/json'))
        problems.push(`content-type: must be application/json, got ${httpReq.headers['content-type']}`);
      const key = httpReq.headers[IDEMPOTENCY_HEADER];
      const idempotencyKey = typeof key === 'string' ? key : undefined;
      if (!idempotencyKey) problems.push(`${IDEMPOTENCY_HEADER}: missing`);
      if (body !== undefined) {
        const format = options.format ?? 'alertmanager';
        if (format === 'alertmanager') problems.push(...alertmanagerV4Problems(body));
        else if (format === 'chat') problems.push(...chatProblems(body));
      }
      if (options.secret !== undefined) {
        const header = (name: string) => {
          const v = httpReq.headers[name];
          return typeof v === 'string' ? v : undefined;
        };
        const v = verifySignature({
          secret: options.secret,
          body: raw,
          signatureHeader: header(SIGNATURE_HEADER),
          timestampHeader: header(TIMESTAMP_HEADER),
          now: now(),
          ...(options.toleranceMs !== undefined ? { toleranceMs: options.toleranceMs } : {}),
        });
        if (!v.ok) problems.push(`signature: ${v.reason}`);
      }
      const req: WebhookRequest = {
        n: requests.length,
        at: now(),
        method: httpReq.method ?? '',
        path: httpReq.url ?? '',
        headers: httpReq.headers,
        raw,
        body,
        idempotencyKey,
        problems,
        status: 0,
      };
      requests.push(req);
      if (problems.length > 0) answer(req, res, 400, problems.join('\n'));
      else if (hanging) held.push({ req, res });
      else if (failing || failBudget > 0) {
        if (failBudget > 0) failBudget--;
        answer(req, res, 500, 'scripted failure');
      } else answer(req, res, 200, 'ok');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  const release = (code = 200) => {
    hanging = false;
    for (const { req, res } of held.splice(0)) answer(req, res, code, code < 300 ? 'ok' : 'released');
  };

  return {
    url: `http://127.0.0.1:${port}/hook`,
    port,
    all: () => requests,
    unique: () => {
      const seen = new Set<string>();
      return requests.filter((r) => {
        if (r.status < 200 || r.status >= 300 || r.idempotencyKey === undefined || seen.has(r.idempotencyKey))
          return false;
        seen.add(r.idempotencyKey);
        return true;
      });
    },
    problems: () => requests.flatMap((r) => r.problems.map((p) => `#${r.n}: ${p}`)),
    failNext: (n) => {
      failBudget = n;
    },
    fail: () => {
      failing = true;
    },
    recover: () => {
      failing = false;
      failBudget = 0;
    },
    hang: () => {
      hanging = true;
    },
    release,
    close: async () => {
      for (const { res } of held.splice(0)) res.destroy();
      hanging = false;
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
};
