import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import {
  accessFor,
  authorize,
  bearerFromHeader,
  grants,
  hashToken,
  principalOf,
  setPrincipal,
  type TokenEntry,
  tokenFromProtocols,
  tokenFromQuery,
  tokenOf,
} from './auth.ts';
import { parseConfig } from './config.ts';

const tokens: TokenEntry[] = [
  { name: 'viewer', sha256: hashToken('view-secret'), scopes: ['read'] },
  { name: 'ops', sha256: hashToken('ops-secret').toUpperCase(), scopes: ['admin'] },
  { name: 'pusher', sha256: hashToken('push-secret'), scopes: [] },
];

describe('hashToken', () => {
  it('is the hex SHA-256 of the UTF-8 bytes', () => {
    expect(hashToken('abc')).toBe('ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
  });
});

describe('grants', () => {
  it.each([
    [['read'], 'read', true],
    [['read'], 'admin', false],
    [['admin'], 'read', true],
    [['admin'], 'admin', true],
    [[], 'read', false],
  ] as const)('%j grants %s: %s', (scopes, wanted, expected) => {
    expect(grants(scopes, wanted)).toBe(expected);
  });
});

describe('authorize', () => {
  it.each([
    ['view-secret', 'read', { ok: true, name: 'viewer' }],
    ['ops-secret', 'read', { ok: true, name: 'ops' }],
    ['ops-secret', 'admin', { ok: true, name: 'ops' }],
    [
      'view-secret',
      'admin',
      { ok: false, status: 403, error: "token 'viewer' does not have the 'admin' scope" },
    ],
    [
      'push-secret',
      'read',
      { ok: false, status: 403, error: "token 'pusher' does not have the 'read' scope" },
    ],
    ['wrong', 'read', { ok: false, status: 401, error: 'the bearer token is not valid' }],
  ] as const)('%s for %s', (presented, scope, expected) => {
    expect(authorize(tokens, presented, scope)).toEqual(expected);
  });

  it('asks for a token when none is presented', () => {
    for (const presented of [undefined, '']) {
      const r = authorize(tokens, presented, 'read');
      expect(r).toMatchObject({ ok: false, status: 401 });
      expect(r.ok ? '' : r.error).toMatch(/bearer token is required/);
    }
  });

  it('refuses everyone, saying so, when no tokens are configured', () => {
    const r = authorize([], 'view-secret', 'read');
    expect(r).toEqual({
      ok: false,
      status: 401,
      error: 'no tokens are configured (auth.tokens): every client is refused until one is',
    });
  });

  it('never puts the presented token in an error', () => {
    for (const presented of ['wrong-secret-123', 'view-secret']) {
      const r = authorize(tokens, presented, 'admin');
      expect(JSON.stringify(r)).not.toContain(presented);
    }
  });
});

describe('reading a token', () => {
  it.each([
    ['Bearer abc.def', 'abc.def'],
    ['bearer   abc', 'abc'],
    ['BEARER abc ', 'abc'],
    ['Basic abc', undefined],
    ['Bearer', undefined],
    ['Bearer a b', undefined],
    [undefined, undefined],
  ])('Authorization %j → %j', (header, expected) => {
    expect(bearerFromHeader(header)).toBe(expected);
  });

  it.each([
    ['argus.feed.v1, bearer.tok-1', 'tok-1'],
    ['bearer.tok-2', 'tok-2'],
    [['argus.feed.v1', 'bearer.tok-3'], 'tok-3'],
    ['bearer.', undefined],
    ['argus.feed.v1', undefined],
    [undefined, undefined],
  ])('Sec-WebSocket-Protocol %j → %j', (header, expected) => {
    expect(tokenFromProtocols(header)).toBe(expected);
  });

  it('reads access_token from the query', () => {
    expect(tokenFromQuery(new URL('http://x/s?access_token=q-1'))).toBe('q-1');
    expect(tokenFromQuery(new URL('http://x/s'))).toBeUndefined();
  });

  it('prefers the header, then the subprotocol, then the query', () => {
    const req = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;
    const url = new URL('http://x/s?access_token=from-query');
    expect(
      tokenOf(
        req({ authorization: 'Bearer from-header', 'sec-websocket-protocol': 'bearer.from-proto' }),
        url,
      ),
    ).toBe('from-header');
    expect(tokenOf(req({ 'sec-websocket-protocol': 'bearer.from-proto' }), url)).toBe('from-proto');
    expect(tokenOf(req({}), url)).toBe('from-query');
  });
});

describe('accessFor', () => {
  it.each([
    ['GET', '/health', 'open'],
    ['HEAD', '/health', 'open'],
    ['GET', '/', 'open'],
    ['GET', '/index.html', 'open'],
    ['HEAD', '/favicon.ico', 'open'],
    ['GET', '/assets/app.js', 'open'],
    ['GET', '/assets/', 'read'],
    ['POST', '/write', 'open'],
    ['POST', '/api/v2/write', 'open'],
    ['POST', '/api/v1/push', 'open'],
    ['GET', '/ping', 'open'],
    ['POST', '/query', 'open'],
    ['POST', '/health', 'admin'],
    ['PUT', '/write', 'admin'],
    ['DELETE', '/assets/app.js', 'admin'],
    ['GET', '/metrics', 'read'],
    ['HEAD', '/metrics', 'read'],
    ['GET', '/inspect', 'read'],
    ['GET', '/api/v1/push', 'read'],
    ['GET', '/api/v1/rules', 'read'],
    ['POST', '/api/v1/rules', 'admin'],
    ['PUT', '/api/v1/rules/x', 'admin'],
    ['DELETE', '/api/v1/silences/x', 'admin'],
    ['PATCH', '/api/v1/rules/x', 'admin'],
    ['OPTIONS', '/api/v1/rules', 'admin'],
    ['GET', '/health/', 'read'],
    ['GET', '//health', 'read'],
    ['GET', '/api/v1/not-written-yet', 'read'],
    ['POST', '/entities/counter/x', 'admin'],
  ] as const)('%s %s: %s', (method, path, expected) => {
    expect(accessFor(method, path)).toBe(expected);
  });

  it('judges the parsed path, so dot segments cannot reach a protected route through an open one', () => {
    for (const path of ['/assets/../api/v1/rules', '/assets/%2e%2e/api/v1/rules', '/health/../metrics'])
      expect(accessFor('GET', new URL(path, 'http://x').pathname)).toBe('read');
  });
});

describe('principalOf', () => {
  it('gives the name of the token the gate let the request in with, and nothing for another request', () => {
    const req = { headers: {} } as IncomingMessage;
    expect(principalOf(req)).toBeUndefined();
    setPrincipal(req, 'ops');
    expect(principalOf(req)).toBe('ops');
    expect(principalOf({ headers: {} } as IncomingMessage)).toBeUndefined();
  });
});

describe('auth configuration', () => {
  it('defaults to no tokens, and read scope for a token without scopes', () => {
    expect(parseConfig({}).auth).toEqual({ tokens: [] });
    expect(parseConfig({ auth: { tokens: [{ name: 'a', sha256: hashToken('x') }] } }).auth.tokens).toEqual([
      { name: 'a', sha256: hashToken('x'), scopes: ['read'] },
    ]);
  });

  it('names the wrong field', () => {
    expect(() => parseConfig({ auth: { tokens: [{ name: 'a', sha256: 'abc' }] } })).toThrow(
      /auth\.tokens\[0\]\.sha256: must be the 64 hex digits/,
    );
    expect(() =>
      parseConfig({ auth: { tokens: [{ name: 'a', sha256: hashToken('x'), scopes: ['write'] }] } }),
    ).toThrow(/auth\.tokens\[0\]\.scopes\[0\]/);
    expect(() =>
      parseConfig({
        auth: {
          tokens: [
            { name: 'a', sha256: hashToken('x') },
            { name: 'a', sha256: hashToken('y') },
          ],
        },
      }),
    ).toThrow(/auth\.tokens: token names must be unique/);
  });
});
