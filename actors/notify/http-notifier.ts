/**
 * The real `Notifier`: one HTTP POST per delivery, over keep-alive agents (a receiver that takes a
 * page a minute keeps its connection instead of a TLS handshake each time).
 *
 * Every request carries `Content-Type: application/json`, `Idempotency-Key: <notification id>` (the
 * same for every attempt and for the same notification rebuilt after a crash), the receiver's own
 * headers, and — when the receiver has a secret — `X-Argus-Timestamp` and `X-Argus-Signature`
 * (sign.ts) with the timestamp from the injected clock. The whole exchange is bounded by the
 * receiver's timeout (AbortSignal.timeout).
 *
 * 2xx is success; anything else is a failure whose `error` says what came back (status, reason, the
 * start of the body) or what went wrong (refused, timed out). Whether it is retried is the receiver
 * entity's decision from the status (backoff.ts `isRetryable`). `deliver` never throws or rejects.
 */
import http from 'node:http';
import https from 'node:https';
import { realClock } from '../../runtime/clock.ts';
import { describeError } from '../../runtime/errors.ts';
import { signatureHeaders } from './sign.ts';
import type { DeliveryOutcome, DeliveryRequest, Notifier } from './types.ts';

export interface HttpNotifierOptions {
  /** Wall-clock ms for the signature timestamp. */
  readonly clock?: { now(): number };
  readonly userAgent?: string;
  /** Concurrent connections per receiver host (default 8; a receiver delivers one at a time anyway). */
  readonly maxSockets?: number;
}

export interface HttpNotifier extends Notifier {
  /** Closes the kept-alive connections. */
  close(): void;
}

/** How much of an error answer's body goes into the error text. */
const ERROR_BODY_CHARS = 200;

const oneLine = (s: string) => s.replace(/\s+/g, ' ').trim();

export const createHttpNotifier = (options: HttpNotifierOptions = {}): HttpNotifier => {
  const clock = options.clock ?? realClock;
  const userAgent = options.userAgent ?? 'Argus-Notifier/1';
  const agentOptions = { keepAlive: true, maxSockets: options.maxSockets ?? 8 };
  const agents = { http: new http.Agent(agentOptions), https: new https.Agent(agentOptions) };

  const deliver = (req: DeliveryRequest): Promise<DeliveryOutcome> =>
    new Promise<DeliveryOutcome>((resolve) => {
      let settled = false;
      const settle = (o: DeliveryOutcome) => {
        if (settled) return;
        settled = true;
        resolve(o);
      };
      const { receiver, body } = req;
      let url: URL;
      try {
        url = new URL(receiver.url);
      } catch {
        settle({ ok: false, error: `receiver url '${receiver.url}' is not a URL` });
        return;
      }
      const timeoutMs = receiver.timeoutMs;
      const signal = AbortSignal.timeout(timeoutMs);
      const failure = (e: unknown): DeliveryOutcome => ({
        ok: false,
        error: signal.aborted
          ? `no answer from ${url.host} within ${timeoutMs} ms`
          : `${url.host}: ${describeError(e).message}`,
      });
      const headers: Record<string, string | number> = {
        ...receiver.headers,
        'Content-Type': 'application/json',
        'Content-Length': Buffer.byteLength(body),
        'Idempotency-Key': req.notificationId,
        'User-Agent': userAgent,
        ...(receiver.secret !== undefined ? signatureHeaders(receiver.secret, body, clock.now()) : {}),
      };
      const secure = url.protocol === 'https:';
      try {
        const request = (secure ? https : http).request(
          url,
          { method: 'POST', headers, agent: secure ? agents.https : agents.http, signal },
          (res) => {
            const status = res.statusCode ?? 0;
            const ok = status >= 200 && status < 300;
            let text = '';
            res.setEncoding('utf8');
            res.on('data', (chunk: string) => {
              if (!ok && text.length < ERROR_BODY_CHARS) text += chunk;
            });
            res.on('error', (e) => settle(failure(e)));
            res.on('aborted', () => settle(failure(new Error('the answer was cut off'))));
            res.on('end', () => {
              if (ok) settle({ ok: true, status });
              else {
                const reason = res.statusMessage ? ` ${res.statusMessage}` : '';
                const detail = oneLine(text).slice(0, ERROR_BODY_CHARS);
                settle({ ok: false, status, error: `HTTP ${status}${reason}${detail ? `: ${detail}` : ''}` });
              }
            });
          },
        );
        request.on('error', (e) => settle(failure(e)));
        request.end(body);
      } catch (e) {
        settle(failure(e));
      }
    });

  return {
    deliver,
    close: () => {
      agents.http.destroy();
      agents.https.destroy();
    },
  };
};
