import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { assetSegments, DEFAULT_WEB_DIR, staticRoute } from './static.ts';

interface Answer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: string;
}

let root: string;
let server: Server;
let port: number;

/** One request with the path sent exactly as given (fetch would normalise `..`). */
const get = (path: string, options: { method?: string; headers?: Record<string, string> } = {}) =>
  new Promise<Answer>((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path, method: options.method ?? 'GET', headers: options.headers },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => {
          body += d;
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
      },
    );
    req.on('error', reject);
    req.end();
  });

beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'argus-static-'));
  const web = join(root, 'web');
  mkdirSync(join(web, 'assets', 'views'), { recursive: true });
  writeFileSync(join(web, 'index.html'), '<!doctype html><title>t</title>');
  writeFileSync(join(web, 'assets', 'app.js'), 'export const x = 1;\n');
  writeFileSync(join(web, 'assets', 'style.css'), 'body{}');
  writeFileSync(join(web, 'assets', 'views', 'feed.js'), 'export {};\n');
  writeFileSync(join(web, 'assets', 'blob.bin'), Buffer.from([1, 2, 3]));
  writeFileSync(join(web, 'assets', '.env'), 'SECRET=1');
  writeFileSync(join(root, 'secret.txt'), 'outside');
  writeFileSync(join(web, 'README.md'), 'not an asset');
  symlinkSync(join(root, 'secret.txt'), join(web, 'assets', 'link.txt'));
  const route = staticRoute(web);
  server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://localhost');
    route(req, res, url).then((taken) => {
      if (!taken) res.writeHead(418).end('next route');
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  await new Promise((r) => server.close(r));
  rmSync(root, { recursive: true, force: true });
});

describe('staticRoute', () => {
  it.each([
    ['/', 'text/html; charset=utf-8', '<!doctype html><title>t</title>'],
    ['/index.html', 'text/html; charset=utf-8', '<!doctype html><title>t</title>'],
    ['/assets/app.js', 'text/javascript; charset=utf-8', 'export const x = 1;\n'],
    ['/assets/style.css', 'text/css; charset=utf-8', 'body{}'],
    ['/assets/views/feed.js', 'text/javascript; charset=utf-8', 'export {};\n'],
    ['/assets/blob.bin', 'application/octet-stream', '\u0001\u0002\u0003'],
  ])('serves %s as %s', async (path, type, body) => {
    const a = await get(path);
    expect(a.status).toBe(200);
    expect(a.headers['content-type']).toBe(type);
    expect(a.body).toBe(body);
    expect(a.headers['cache-control']).toBe('no-cache');
    expect(a.headers['x-content-type-options']).toBe('nosniff');
    expect(a.headers.etag).toMatch(/^"[A-Za-z0-9_-]{22}"$/);
  });

  it('sends the page with a content security policy that allows only its own origin', async () => {
    const a = await get('/');
    expect(a.headers['content-security-policy']).toContain("script-src 'self'");
    expect(a.headers['content-security-policy']).toContain("connect-src 'self'");
    expect(a.headers['referrer-policy']).toBe('no-referrer');
  });

  it('answers 304 with no body when If-None-Match holds the ETag', async () => {
    const first = await get('/assets/app.js');
    const again = await get('/assets/app.js', { headers: { 'if-none-match': String(first.headers.etag) } });
    expect(again.status).toBe(304);
    expect(again.body).toBe('');
    expect(again.headers.etag).toBe(first.headers.etag);
    const weak = await get('/assets/app.js', { headers: { 'if-none-match': `W/${first.headers.etag}` } });
    expect(weak.status).toBe(304);
    const other = await get('/assets/app.js', { headers: { 'if-none-match': '"something-else"' } });
    expect(other.status).toBe(200);
  });

  it('changes the ETag when the file changes', async () => {
    const before = await get('/assets/style.css');
    writeFileSync(join(root, 'web', 'assets', 'style.css'), 'body{color:red}');
    const after = await get('/assets/style.css');
    expect(after.body).toBe('body{color:red}');
    expect(after.headers.etag).not.toBe(before.headers.etag);
  });

  it('answers HEAD with the headers and no body', async () => {
    const a = await get('/assets/app.js', { method: 'HEAD' });
    expect(a.status).toBe(200);
    expect(a.headers['content-length']).toBe(String('export const x = 1;\n'.length));
    expect(a.body).toBe('');
  });

  it('refuses other methods on its paths with 405 and Allow', async () => {
    const a = await get('/assets/app.js', { method: 'POST' });
    expect(a.status).toBe(405);
    expect(a.headers.allow).toBe('GET, HEAD');
    expect(JSON.parse(a.body)).toEqual({ error: 'method POST is not allowed here (allowed: GET, HEAD)' });
  });

  it.each([
    '/assets/..%2fsecret.txt',
    '/assets/..%2F..%2Fsecret.txt',
    '/assets/%2e%2e%2fsecret.txt',
    '/assets/views%2f..%2f..%2f..%2fsecret.txt',
    '/assets/..%5c..%5csecret.txt',
    '/assets/app.js%00.css',
    '/assets/%2Fetc%2Fpasswd',
    '/assets/.env',
    '/assets/link.txt',
    '/assets/views',
    '/assets/views/',
    '/assets/',
    '/assets/%E0%A4%A',
    '/assets/missing.js',
  ])('answers 404 for %s and never serves a file outside web/assets', async (path) => {
    const a = await get(path);
    expect(a.status).toBe(404);
    expect(a.body).not.toContain('outside');
    expect(a.body).not.toContain('SECRET');
    expect(JSON.parse(a.body)).toEqual({ error: `no file ${new URL(path, 'http://x').pathname}` });
  });

  it.each([
    '/assets/../secret.txt',
    '/assets/../../secret.txt',
    '/README.md',
    '/api/v1/cluster',
    '/health',
    '/assetsx',
  ])('leaves %s to the other routes', async (path) => {
    const a = await get(path);
    expect(a.status).toBe(418);
    expect(a.body).toBe('next route');
  });

  it('defaults to web/ at the repository root, whose page loads only files that exist there', () => {
    expect(DEFAULT_WEB_DIR.endsWith('/web/')).toBe(true);
    const page = readFileSync(join(DEFAULT_WEB_DIR, 'index.html'), 'utf8');
    const referenced = [...page.matchAll(/(?:src|href)="(\/[^"]+)"/g)].map((m) => m[1]!);
    const assets = join(DEFAULT_WEB_DIR, 'assets');
    for (const path of referenced) expect(existsSync(join(DEFAULT_WEB_DIR, path)), path).toBe(true);
    // Every module is preloaded (or is the entry point), so none waits for its importer to load.
    const modules = readdirSync(assets).filter((f) => f.endsWith('.js'));
    expect(referenced.filter((p) => p.endsWith('.js')).sort()).toEqual(
      modules.map((m) => `/assets/${m}`).sort(),
    );
    for (const file of modules) {
      const source = readFileSync(join(assets, file), 'utf8');
      for (const [, target] of source.matchAll(/from '(\.[^']+)'/g))
        expect(existsSync(join(assets, target!)), `${file} imports ${target}`).toBe(true);
      // Data goes into the DOM as text only (web/README.md).
      expect(source, file).not.toMatch(/innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
    }
  });
});

describe('assetSegments', () => {
  it.each([
    ['/assets/app.js', ['app.js']],
    ['/assets/views/feed.js', ['views', 'feed.js']],
    ['/assets/a%20b.js', ['a b.js']],
    ['/assets/..%2fx', undefined],
    ['/assets/a//b', undefined],
    ['/assets/.hidden', undefined],
    ['/assets/a\\b', undefined],
    ['/assets/%ZZ', undefined],
  ])('%s → %j', (path, expected) => {
    expect(assetSegments(path)).toEqual(expected);
  });
});
