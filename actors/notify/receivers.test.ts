/**
 * Receiver and silence documents: defaults, and every wrong field named with the reason; silences
 * mute matching alerts only while active.
 */
import { describe, expect, it } from 'vitest';
import { parseReceiver } from './receivers.ts';
import { isSilenced, parseSilence, silenceDocument, silenceState } from './silences.ts';

const message = (f: () => unknown) => {
  try {
    f();
  } catch (e) {
    return (e as Error).message;
  }
  throw new Error('expected a failure');
};

describe('parseReceiver', () => {
  it('applies the defaults', () => {
    expect(parseReceiver('infra', 'kind: webhook\nurl: https://alerts.example.com/hook\n')).toEqual({
      id: 'infra',
      kind: 'webhook',
      url: 'https://alerts.example.com/hook',
      headers: {},
      sendResolved: true,
      maxAlerts: 0,
      timeoutMs: 10_000,
      maxAttempts: 10,
      backoffInitialMs: 1000,
      backoffMaxMs: 300_000,
    });
  });

  it('takes every field', () => {
    expect(
      parseReceiver('pay', {
        kind: 'chat',
        url: 'http://127.0.0.1:9/x',
        secret: 's',
        headers: { 'X-Team': 'pay' },
        send_resolved: false,
        max_alerts: 5,
        timeout: '2s',
        max_attempts: 3,
        backoff: { initial: '100ms', max: '1m' },
      }),
    ).toEqual({
      id: 'pay',
      kind: 'chat',
      url: 'http://127.0.0.1:9/x',
      secret: 's',
      headers: { 'X-Team': 'pay' },
      sendResolved: false,
      maxAlerts: 5,
      timeoutMs: 2000,
      maxAttempts: 3,
      backoffInitialMs: 100,
      backoffMaxMs: 60_000,
    });
  });

  it.each([
    [{ url: 'https://x.example' }, "invalid receiver 'r': kind: is required"],
    [
      { kind: 'email', url: 'ftp://x' },
      "invalid receiver 'r': kind: must be 'webhook' or 'chat', got 'email'; url: must be an http or https URL, got 'ftp://x'",
    ],
    [
      { kind: 'webhook', url: 'not a url', timeout: '0s' },
      "invalid receiver 'r': url: must be an http or https URL, got 'not a url'; timeout: must be longer than 0",
    ],
    [
      { kind: 'webhook', url: 'https://x', max_attempts: 0, max_alerts: -1 },
      "invalid receiver 'r': max_alerts: must be 0 or more, got -1; max_attempts: must be 1 or more, got 0",
    ],
    [
      { kind: 'webhook', url: 'https://x', max_attempts: 2.5 },
      "invalid receiver 'r': max_attempts: must be a whole number, got 2.5",
    ],
    [
      { kind: 'webhook', url: 'https://x', backoff: { initial: '1m', max: '1s' } },
      "invalid receiver 'r': backoff.max: must be at least backoff.initial (60000 ms)",
    ],
    [
      { kind: 'webhook', url: 'https://x', backoff: { initial: 'soon' } },
      "invalid receiver 'r': backoff.initial: must be a duration like 30s, 5m or 1h30m, got 'soon'",
    ],
    [
      {
        kind: 'webhook',
        url: 'https://x',
        headers: { 'Idempotency-Key': 'x', 'bad name': 'y', 'X-Ok': 'a\nb' },
      },
      "invalid receiver 'r': headers.Idempotency-Key: is set by Argus and cannot be overridden; headers.bad name: is not a valid HTTP header name; headers.X-Ok: must not contain line breaks or NUL",
    ],
    [
      { kind: 'webhook', url: 'https://x', sendResolved: true },
      "invalid receiver 'r': (root): unknown field(s) 'sendResolved'",
    ],
    [
      { kind: 'webhook', url: 'https://x', secret: '' },
      "invalid receiver 'r': secret: must not be empty (leave it out for no signature)",
    ],
    [
      'kind: [',
      "invalid receiver 'r': (root): is not valid YAML or JSON: Flow sequence in block collection must be sufficiently indented and end with a ] at line 1, column 8",
    ],
  ])('%j', (doc, expected) => {
    expect(message(() => parseReceiver('r', doc))).toBe(`ARGUS_ERR_INVALID_CONFIG: ${expected}`);
  });

  it('refuses an id that cannot be a key', () => {
    expect(message(() => parseReceiver('a/b', { kind: 'webhook', url: 'https://x' }))).toBe(
      "ARGUS_ERR_INVALID_CONFIG: invalid receiver 'a/b': id: must be 1-128 letters, digits, ., _ or -, starting with a letter or digit, got 'a/b'",
    );
  });
});

describe('parseSilence', () => {
  const ok = {
    matchers: ['service="payments"', 'env!="dev"'],
    starts_at: '2026-05-01T10:00:00Z',
    ends_at: 1_777_640_400_000,
    created_by: 'alice',
    comment: 'maintenance',
  };

  it('reads RFC 3339 times and epoch ms', () => {
    const s = parseSilence('s1', ok);
    expect(s).toMatchObject({
      id: 's1',
      startsAt: Date.parse('2026-05-01T10:00:00Z'),
      endsAt: 1_777_640_400_000,
      createdBy: 'alice',
    });
    expect(s.matchers.map((m) => `${m.name}${m.op}${m.value}`)).toEqual(['service=payments', 'env!=dev']);
  });

  it('reads a matcher list as one string, and round-trips through its stored document', () => {
    const s = parseSilence('s2', { ...ok, matchers: '{service=~"pay.*", env!="dev"}' });
    const again = parseSilence('s2', silenceDocument(s));
    expect(again).toEqual(s);
  });

  it.each([
    [{ ...ok, matchers: [] }, 'matchers: must list at least one matcher'],
    [
      { ...ok, matchers: ['env!="dev"', 'x=~".*"'] },
      'matchers: must have at least one matcher that does not match the empty string (else it silences every alert)',
    ],
    [
      { ...ok, matchers: ['service="a"', 7] },
      'matchers[1]: must be a matcher string like team="infra", got 7',
    ],
    [
      { ...ok, starts_at: '2026-05-01 10:00' },
      "starts_at: must be an RFC 3339 time with a zone (2026-05-01T10:00:00Z) or epoch milliseconds, got '2026-05-01 10:00'",
    ],
    [{ ...ok, ends_at: '2026-05-01T09:00:00Z' }, 'ends_at: must be after starts_at'],
    [
      { matchers: ['a="b"'] },
      'starts_at: is required; ends_at: is required; created_by: is required; comment: is required',
    ],
    [{ ...ok, comment: '  ' }, 'comment: must not be empty'],
    ['- a', '(root): must be an object with matchers, starts_at, ends_at, created_by and comment, got ["a"]'],
  ])('%j', (doc, expected) => {
    expect(message(() => parseSilence('s', doc))).toBe(
      `ARGUS_ERR_INVALID_CONFIG: invalid silence 's': ${expected}`,
    );
  });
});

describe('isSilenced', () => {
  const s = parseSilence('s', {
    matchers: ['service="payments"'],
    starts_at: 1000,
    ends_at: 2000,
    created_by: 'a',
    comment: 'c',
  });
  it.each([
    [{ service: 'payments' }, 999, false, 'pending'],
    [{ service: 'payments' }, 1000, true, 'active'],
    [{ service: 'payments', host: 'x' }, 1999, true, 'active'],
    [{ service: 'payments' }, 2000, false, 'expired'],
    [{ service: 'web' }, 1500, false, 'active'],
  ])('%j at %i → %s (%s)', (labels, at, silenced, state) => {
    expect(isSilenced([s], labels, at)).toBe(silenced);
    expect(silenceState(s, at)).toBe(state);
  });
});
