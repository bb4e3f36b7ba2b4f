/** Signatures: HMAC-SHA256 over "<timestamp>.<body>", verified in constant time within a tolerance. */
import { createHmac } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { signature, signatureHeaders, verifySignature } from './sign.ts';

const NOW = 1_777_629_600_000;
const body = '{"version":"4"}\n';
const headers = signatureHeaders('s3cret', body, NOW);

describe('signature', () => {
  it('is hex HMAC-SHA256 of "<timestamp>.<body>", with the timestamp in unix seconds', () => {
    expect(headers).toEqual({
      'x-argus-timestamp': '1777629600',
      'x-argus-signature': `v1=${createHmac('sha256', 's3cret').update(`1777629600.${body}`).digest('hex')}`,
    });
    expect(signature('s3cret', 1777629600, body)).toMatch(/^[0-9a-f]{64}$/);
  });
});

describe('verifySignature', () => {
  const base = {
    secret: 's3cret',
    body,
    signatureHeader: headers['x-argus-signature'],
    timestampHeader: headers['x-argus-timestamp'],
    now: NOW,
  };
  it.each([
    ['the request as signed', {}, { ok: true }],
    ['within the tolerance', { now: NOW + 299_000 }, { ok: true }],
    [
      'one of several signatures (rotation)',
      { signatureHeader: `v1=${'0'.repeat(64)},${headers['x-argus-signature']}` },
      { ok: true },
    ],
    [
      'a changed body',
      { body: '{"version":"5"}\n' },
      { ok: false, reason: 'signature does not match the body and timestamp' },
    ],
    [
      'another secret',
      { secret: 'other' },
      { ok: false, reason: 'signature does not match the body and timestamp' },
    ],
    [
      'a changed timestamp',
      { timestampHeader: '1777629601' },
      { ok: false, reason: 'signature does not match the body and timestamp' },
    ],
    [
      'an old timestamp',
      { now: NOW + 301_000 },
      { ok: false, reason: 'x-argus-timestamp is 301 s away (tolerance 300 s)' },
    ],
    [
      'a tighter tolerance',
      { now: NOW + 11_000, toleranceMs: 10_000 },
      { ok: false, reason: 'x-argus-timestamp is 11 s away (tolerance 10 s)' },
    ],
    [
      'no signature',
      { signatureHeader: undefined },
      { ok: false, reason: 'missing x-argus-signature header' },
    ],
    [
      'no timestamp',
      { timestampHeader: undefined },
      { ok: false, reason: 'missing x-argus-timestamp header' },
    ],
    [
      'a bad timestamp',
      { timestampHeader: 'soon' },
      { ok: false, reason: "x-argus-timestamp must be unix seconds, got 'soon'" },
    ],
    [
      'another scheme',
      { signatureHeader: `v0=${'a'.repeat(64)}` },
      { ok: false, reason: 'x-argus-signature has no v1=<64 hex digits> signature' },
    ],
    [
      'a short MAC',
      { signatureHeader: 'v1=abcd' },
      { ok: false, reason: 'x-argus-signature has no v1=<64 hex digits> signature' },
    ],
  ])('%s', (_, change, expected) => {
    expect(verifySignature({ ...base, ...change })).toEqual(expected);
  });
});
