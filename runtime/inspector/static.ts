/**
 * The web inspector's files (web/, see web/README.md) on the node's HTTP endpoint:
 *
 *   GET|HEAD /  and  /index.html   web/index.html
 *   GET|HEAD /assets/<file>        a file under web/assets, with its content type
 *
 * Every answer carries a strong ETag (a hash of the bytes) and `Cache-Control: no-cache`: the files are
 * not fingerprinted, so a browser must revalidate each time, and a 304 makes that one round trip with no
 * body. Any other method on these paths is 405. A path that leaves web/assets (`..`, encoded slashes,
 * backslashes, NUL), names a dotfile or a folder, or does not exist is 404, and the file system is never
 * asked about anything outside web/. Paths it does not own resolve false, so the other routes run.
 *
 * The page needs no token to load (the login form is part of it); every API call it makes does.
 */
import { createHash } from 'node:crypto';
import { readFile, realpath, stat } from 'node:fs/promises';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { extname, join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { HttpRoute } from '../http.ts';

/** web/ at the repository's root. */
export const DEFAULT_WEB_DIR = fileURLToPath(new URL('../../web/', import.meta.url));

export const CONTENT_TYPES: Readonly<Record<string, string>> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json; charset=utf-8',
  '.map': 'application/json; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.woff2': 'font/woff2',
  '.txt': 'text/plain; charset=utf-8',
};

/**
 * The page loads only its own scripts and styles, and talks only to its own origin (the API and the
 * feed's WebSocket). The token lives in the URL fragment at most, never in a Referer.
 */
const PAGE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy':
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; " +
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'",
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
};

const COMMON_HEADERS: Readonly<Record<string, string>> = {
  'cache-control': 'no-cache',
  'x-content-type-options': 'nosniff',
};

/** A path under /assets/ as safe path segments, or undefined when it is not one we may serve. */
export const assetSegments = (pathname: string): readonly string[] | undefined => {
  let rest: string;
  try {
    rest = decodeURIComponent(pathname.slice('/assets/'.length));
  } catch {
    return undefined; // malformed percent-encoding
  }
  if (rest === '' || rest.includes('\0') || rest.includes('\\')) return undefined;
  const segments = rest.split('/');
  // No empty segment (//, trailing /), no `.`/`..`, no dotfiles.
  if (segments.some((s) => s === '' || s.startsWith('.'))) return undefined;
  return segments;
};

interface CachedFile {
  readonly mtimeMs: number;
  readonly size: number;
  readonly body: Buffer;
  readonly etag: string;
}

const notFound = (res: ServerResponse, pathname: string): void => {
  const text = JSON.stringify({ error: `no file ${pathname}` });
  res.writeHead(404, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
};

const etagMatches = (header: string | undefined, etag: string): boolean =>
  header?.split(',').some((t) => t.trim().replace(/^W\//, '') === etag || t.trim() === '*') === true;

export const staticRoute = (dir: string = DEFAULT_WEB_DIR): HttpRoute => {
  const cache = new Map<string, CachedFile>();
  const assetsDir = join(dir, 'assets');
  let realAssets: string | undefined;

  /** The file's bytes and ETag, read again only when its mtime or size changed; undefined: no such file. */
  const load = async (file: string): Promise<CachedFile | undefined> => {
    let info: Awaited<ReturnType<typeof stat>>;
    try {
      info = await stat(file);
    } catch {
      return undefined;
    }
    if (!info.isFile()) return undefined;
    const hit = cache.get(file);
    if (hit && hit.mtimeMs === info.mtimeMs && hit.size === info.size) return hit;
    const body = await readFile(file);
    const etag = `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
    const entry = { mtimeMs: info.mtimeMs, size: info.size, body, etag };
    cache.set(file, entry);
    return entry;
  };

  /** A file under web/assets, refusing one a symlink would take elsewhere. */
  const assetFile = async (segments: readonly string[]): Promise<string | undefined> => {
    const file = join(assetsDir, ...segments);
    if (!file.startsWith(assetsDir + sep)) return undefined;
    try {
      realAssets ??= await realpath(assetsDir);
      const real = await realpath(file);
      return real.startsWith(realAssets + sep) ? file : undefined;
    } catch {
      return undefined;
    }
  };

  const serve = async (
    req: IncomingMessage,
    res: ServerResponse,
    pathname: string,
    file: string | undefined,
    headers: Readonly<Record<string, string>>,
  ): Promise<void> => {
    const found = file === undefined ? undefined : await load(file);
    if (!found || file === undefined) return notFound(res, pathname);
    const type = CONTENT_TYPES[extname(file).toLowerCase()] ?? 'application/octet-stream';
    const common = { ...COMMON_HEADERS, ...headers, etag: found.etag };
    if (etagMatches(req.headers['if-none-match'], found.etag)) {
      res.writeHead(304, common);
      res.end();
      return;
    }
    res.writeHead(200, { ...common, 'content-type': type, 'content-length': found.body.length });
    res.end(req.method === 'HEAD' ? undefined : found.body);
  };

  return async (req, res, url) => {
    const { pathname } = url;
    const page = pathname === '/' || pathname === '/index.html';
    if (!page && !pathname.startsWith('/assets/')) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      const text = JSON.stringify({
        error: `method ${req.method} is not allowed here (allowed: GET, HEAD)`,
      });
      res.writeHead(405, {
        allow: 'GET, HEAD',
        'content-type': 'application/json; charset=utf-8',
        'content-length': Buffer.byteLength(text),
      });
      res.end(text);
      return true;
    }
    if (page) {
      await serve(req, res, pathname, join(dir, 'index.html'), PAGE_HEADERS);
      return true;
    }
    const segments = assetSegments(pathname);
    await serve(req, res, pathname, segments && (await assetFile(segments)), {});
    return true;
  };
};
