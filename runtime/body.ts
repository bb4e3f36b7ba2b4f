import type { IncomingMessage } from 'node:http';

/** Reads a request (or response) body, refusing one larger than `maxBytes` (the socket is destroyed). */
export const readBody = (message: IncomingMessage, maxBytes: number): Promise<Buffer> =>
  new Promise((resolve, reject) => {
    let size = 0;
    const chunks: Buffer[] = [];
    message.on('data', (c: Buffer) => {
      size += c.length;
      if (size > maxBytes) {
        reject(new Error(`body larger than ${maxBytes} bytes`));
        message.destroy();
      } else chunks.push(c);
    });
    message.on('end', () => resolve(Buffer.concat(chunks)));
    message.on('error', reject);
  });
