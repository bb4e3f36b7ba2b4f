/** What the feed tests share: a refused upgrade's status and body. */
import { request } from 'node:http';

/** Status and JSON body of an upgrade request the server refuses (plain HTTP, no handshake). */
export const refusal = (url: string, headers: Record<string, string>): Promise<[number, unknown]> =>
  new Promise((resolve, reject) => {
    const req = request(url.replace(/^ws:/, 'http:'), {
      headers: {
        connection: 'Upgrade',
        upgrade: 'websocket',
        'sec-websocket-version': '13',
        'sec-websocket-key': 'dGhlIHNhbXBsZSBub25jZQ==',
        ...headers,
      },
    });
    req.on('upgrade', () => reject(new Error('upgraded')));
    req.on('response', (res) => {
      let text = '';
      res.on('data', (d: Buffer) => {
        text += d.toString();
      });
      res.on('end', () => resolve([res.statusCode ?? 0, JSON.parse(text)]));
    });
    req.on('error', reject);
    req.end();
  });
