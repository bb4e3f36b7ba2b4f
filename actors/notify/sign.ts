/**
 * Request signatures (receivers with a `secret`), in the style of Stripe's and Slack's: the sender
 * sends `x-argus-timestamp: <unix seconds>` and `x-argus-signature: v1=<hex HMAC-SHA256 of
 * "<timestamp>.<body>">`. Binding the timestamp into the MAC lets a receiver refuse replays older than
 * its tolerance; the `v1=` scheme prefix leaves room for another algorithm later, and a receiver
 * accepts a header listing several (`v1=…,v1=…`, e.g. while a secret is rotated).
 *
 * Verification compares in constant time (timingSafeEqual) so the MAC cannot be guessed byte by byte.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { SIGNATURE_HEADER, TIMESTAMP_HEADER } from './types.ts';

export const SIGNATURE_SCHEME = 'v1';
/** How far a timestamp may be from the verifier's clock by default (5 minutes, as Stripe and Slack). */
export const DEFAULT_TOLERANCE_MS = 300_000;

/** Hex HMAC-SHA256 of `${timestamp}.${body}` under `secret`. */
export const signature = (secret: string, timestamp: number | string, body: string): string =>
  createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex');

/** The two headers of a signed request sent at `nowMs`. */
export const signatureHeaders = (secret: string, body: string, nowMs: number): Record<string, string> => {
  const timestamp = Math.floor(nowMs / 1000);
  return {
    [TIMESTAMP_HEADER]: String(timestamp),
    [SIGNATURE_HEADER]: `${SIGNATURE_SCHEME}=${signature(secret, timestamp, body)}`,
  };
};

export interface VerifyInput {
  readonly secret: string;
  readonly body: string;
  /** The `x-argus-signature` header as received. */
  readonly signatureHeader: string | undefined;
  /** The `x-argus-timestamp` header as received. */
  readonly timestampHeader: string | undefined;
  /** The verifier's clock, ms. */
  readonly now: number;
  readonly toleranceMs?: number;
}

export type VerifyResult = { readonly ok: true } | { readonly ok: false; readonly reason: string };

const HEX = /^[0-9a-f]{64}$/;

/** Checks a received request's signature; the reason says which part is wrong. */
export const verifySignature = (v: VerifyInput): VerifyResult => {
  if (v.timestampHeader === undefined) return { ok: false, reason: `missing ${TIMESTAMP_HEADER} header` };
  if (v.signatureHeader === undefined) return { ok: false, reason: `missing ${SIGNATURE_HEADER} header` };
  if (!/^\d{1,15}$/.test(v.timestampHeader))
    return { ok: false, reason: `${TIMESTAMP_HEADER} must be unix seconds, got '${v.timestampHeader}'` };
  const skew = Math.abs(v.now - Number(v.timestampHeader) * 1000);
  const tolerance = v.toleranceMs ?? DEFAULT_TOLERANCE_MS;
  if (skew > tolerance)
    return {
      ok: false,
      reason: `${TIMESTAMP_HEADER} is ${Math.round(skew / 1000)} s away (tolerance ${tolerance / 1000} s)`,
    };
  const expected = Buffer.from(signature(v.secret, v.timestampHeader, v.body), 'hex');
  const candidates = v.signatureHeader
    .split(',')
    .map((p) => p.trim())
    .filter((p) => p.startsWith(`${SIGNATURE_SCHEME}=`))
    .map((p) => p.slice(SIGNATURE_SCHEME.length + 1).toLowerCase())
    .filter((hex) => HEX.test(hex));
  if (candidates.length === 0)
    return { ok: false, reason: `${SIGNATURE_HEADER} has no ${SIGNATURE_SCHEME}=<64 hex digits> signature` };
  let match = false;
  // Every candidate is compared (no early exit), so timing does not tell which one matched.
  for (const hex of candidates) if (timingSafeEqual(Buffer.from(hex, 'hex'), expected)) match = true;
  return match ? { ok: true } : { ok: false, reason: 'signature does not match the body and timestamp' };
};
