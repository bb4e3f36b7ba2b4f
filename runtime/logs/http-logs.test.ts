import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { RecordingSink } from '../../test/helpers/log-sink.ts';
import { sleep, waitFor } from '../../test/helpers/wait.ts';
import { accessFor } from '../auth.ts';
import { logsIngestRoute, parseNdjson } from './http-logs.ts';

const NOW = Date.UTC(2026, 11, 2, 3, 0, 0);
let server: Server | undefined;
afterEach(async () => {
  await new Promise<void>((r) => (server ? server.close(() => r()) : r()));
  server = undefined;
});

/** Serves the route alone on loopback; what it does not take is 404. */
const serve = async (sink: RecordingSink | undefined, maxBodyBytes = 1 << 20): Promise<string> => {
  const route = logsIngestRoute(() => sink, { maxBodyBytes, now: () => NOW });
  server = createServer((req, res) => {
    void route(req, res, new URL(req.url ?? '/', 'http://localhost')).then((taken) => {
      if (!taken) {
        res.writeHead(404);
        res.end();
      }
    });
  });
  await new Promise<void>((r) => server!.listen(0, '127.0.0.1', () => r()));
  return `http://127.0.0.1:${(server!.address() as AddressInfo).port}`;
};

const post = async (url: string, body: string | Buffer, headers: Record<string, string> = {}) => {
  const res = await fetch(url, { method: 'POST', body, headers });
  const text = await res.text();
  return { status: res.status, body: text === '' ? undefined : (JSON.parse(text) as unknown) };
};

const jsonError = (text: string): string => {
  try {
    JSON.parse(text);
  } catch (e) {
    return `not JSON (${(e as Error).message})`;
  }
  throw new Error('valid JSON');
};

describe('POST /api/v1/logs/<stream>', () => {
  it('answers 204 once every line is durable, with time and host read from the record', async () => {
    const sink = new RecordingSink();
    sink.hold();
    const base = await serve(sink);
    const body = [
      '{"msg":"a","time":"2026-12-01T10:00:00.5Z","host":"web1"}',
      '',
      '{"msg":"b","ts":1764583200}',
      '   ',
      '{"msg":"c","@timestamp":1764583200123,"hostname":"web2"}\r',
      '{"msg":"d"}',
    ].join('\n');
    const answer = post(`${base}/api/v1/logs/app.web`, body);
    await waitFor('the append', () => sink.calls.length === 1);
    let answered = false;
    void answer.then(() => {
      answered = true;
    });
    await sleep(50);
    expect(answered).toBe(false);
    sink.release();
    expect(await answer).toEqual({ status: 204, body: undefined });
    expect(sink.records()).toEqual([
      {
        stream: 'app.web',
        log: {
          time: Date.UTC(2026, 11, 1, 10, 0, 0, 500),
          host: 'web1',
          fields: { msg: 'a', time: '2026-12-01T10:00:00.5Z', host: 'web1' },
        },
      },
      {
        stream: 'app.web',
        log: { time: 1_764_583_200_000, host: '127.0.0.1', fields: { msg: 'b', ts: 1764583200 } },
      },
      {
        stream: 'app.web',
        log: {
          time: 1_764_583_200_123,
          host: 'web2',
          fields: { msg: 'c', '@timestamp': 1764583200123, hostname: 'web2' },
        },
      },
      { stream: 'app.web', log: { time: NOW, host: '127.0.0.1', fields: { msg: 'd' } } },
    ]);
  });

  it('keeps the good lines of a mixed body and answers 400 naming each bad line', async () => {
    const sink = new RecordingSink();
    const base = await serve(sink);
    const body = ['{"n":1}', '[1,2]', 'not json', '', '42', 'null', '{"n":2}', '{"n":'].join('\n');
    expect(await post(`${base}/api/v1/logs/mixed`, body)).toEqual({
      status: 400,
      body: {
        error: `partial write: line 2: not a JSON object; line 3: ${jsonError('not json')}; line 5: not a JSON object; line 6: not a JSON object; line 8: ${jsonError('{"n":')}; 2 accepted, 5 rejected`,
        errors: [
          { line: 2, error: 'not a JSON object' },
          { line: 3, error: jsonError('not json') },
          { line: 5, error: 'not a JSON object' },
          { line: 6, error: 'not a JSON object' },
          { line: 8, error: jsonError('{"n":') },
        ],
        accepted: 2,
      },
    });
    expect(sink.records().map((r) => r.log.fields)).toEqual([{ n: 1 }, { n: 2 }]);
  });

  it('lists at most 100 bad lines', async () => {
    const base = await serve(new RecordingSink());
    const { status, body } = await post(`${base}/api/v1/logs/s`, Array(150).fill('[]').join('\n'));
    const b = body as { error: string; errors: unknown[]; accepted: number };
    expect(status).toBe(400);
    expect(b.errors.length).toBe(100);
    expect(b.error.endsWith('line 100: not a JSON object; and 50 more; 0 accepted, 150 rejected')).toBe(true);
    expect(b.accepted).toBe(0);
  });

  it('reads a gzip body', async () => {
    const sink = new RecordingSink();
    const base = await serve(sink);
    const body = gzipSync('{"a":1}\n{"a":2}\n');
    expect(await post(`${base}/api/v1/logs/gz`, body, { 'content-encoding': 'gzip' })).toEqual({
      status: 204,
      body: undefined,
    });
    expect(sink.records().map((r) => r.log.fields)).toEqual([{ a: 1 }, { a: 2 }]);
  });

  it('refuses a body over maxBodyBytes, compressed or inflated, with 413 and takes nothing', async () => {
    const sink = new RecordingSink();
    const base = await serve(sink, 1024);
    expect(await post(`${base}/api/v1/logs/big`, `${'{"a":1}\n'.repeat(200)}`)).toEqual({
      status: 413,
      body: { error: 'body of 1600 bytes is over the limit of 1024' },
    });
    const bomb = gzipSync(Buffer.alloc(100_000, ' ')); // ~130 bytes on the wire
    expect(await post(`${base}/api/v1/logs/big`, bomb, { 'content-encoding': 'gzip' })).toEqual({
      status: 413,
      body: { error: 'decompressed body is over the limit of 1024 bytes' },
    });
    expect(sink.calls).toEqual([]);
  });

  it('refuses a bad stream name with ARGUS_ERR_INVALID_LOG, and a sink that is not there or fails with 503', async () => {
    const sink = new RecordingSink();
    const base = await serve(sink);
    expect(await post(`${base}/api/v1/logs/.hidden`, '{"a":1}')).toEqual({
      status: 400,
      body: {
        error:
          "ARGUS_ERR_INVALID_LOG: stream name \".hidden\" is not 1-128 letters, digits, '.', '_', '-' (not starting with '.' or '-')",
        code: 'ARGUS_ERR_INVALID_LOG',
      },
    });
    expect(sink.calls).toEqual([]);
    sink.fail(new Error('mailbox down'));
    expect(await post(`${base}/api/v1/logs/s`, '{"a":1}')).toEqual({
      status: 503,
      body: { error: 'records not stored: mailbox down' },
    });
    server?.close();
    const none = await serve(undefined);
    expect(await post(`${none}/api/v1/logs/s`, '{"a":1}')).toEqual({
      status: 503,
      body: { error: 'logs are not running on this node' },
    });
  });

  it('takes only POST with one path segment, and is open like the other push ingest paths', async () => {
    const base = await serve(new RecordingSink());
    expect((await fetch(`${base}/api/v1/logs/s`)).status).toBe(404);
    expect((await post(`${base}/api/v1/logs/a/b`, '{}')).status).toBe(404);
    expect(accessFor('POST', '/api/v1/logs/app.web')).toBe('open');
    expect(accessFor('POST', '/api/v1/logs/a/b')).toBe('admin');
    expect(accessFor('POST', '/api/v1/logs')).toBe('admin');
    expect(accessFor('GET', '/api/v1/logs/app.web')).toBe('read');
  });

  it('parseNdjson counts blank lines in line numbers', () => {
    expect(parseNdjson('\n{"a":1}\n\n"x"\n')).toEqual({
      objects: [{ a: 1 }],
      errors: [{ line: 4, error: 'not a JSON object' }],
    });
  });
});
