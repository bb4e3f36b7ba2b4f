/**
 * Proves the InfluxDB harness (scripts/services/influxdb.ts): a real influxd starts on loopback, keeps
 * exactly what /write was given and gives it back through /query, and is gone after stop() — port
 * closed, temp folder removed.
 */
import { existsSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { type RunningInfluxdb, startInfluxdb } from '../scripts/services/influxdb.ts';

const portIsOpen = (port: number): Promise<boolean> =>
  new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });

const query = async (url: string, q: string, db?: string): Promise<unknown> => {
  const form = new URLSearchParams({ q, epoch: 'ms', ...(db === undefined ? {} : { db }) });
  const response = await fetch(`${url}/query`, { method: 'POST', body: form });
  expect(response.status, await response.clone().text()).toBe(200);
  return response.json();
};

describe('InfluxDB harness', () => {
  let influx: RunningInfluxdb | undefined;
  afterAll(async () => {
    await influx?.stop();
  });

  it('writes three lines, reads them back exactly, and leaves nothing behind after stop', async () => {
    influx = await startInfluxdb();
    expect(influx.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const port = Number(new URL(influx.url).port);

    expect(await query(influx.url, 'CREATE DATABASE argus')).toEqual({ results: [{ statement_id: 0 }] });

    const lines = [
      'cpu,host=web-1,cpu=cpu0 usage_user=1.5,usage_idle=98i 1700000000',
      'cpu,host=web-2,cpu=cpu0 usage_user=2.25,usage_idle=97i 1700000001',
      'cpu,host=web-1,cpu=cpu1 usage_user=-0.5,usage_idle=0i 1700000002',
    ].join('\n');
    const write = await fetch(`${influx.url}/write?db=argus&precision=s`, { method: 'POST', body: lines });
    expect(write.status, await write.text()).toBe(204);

    expect(await query(influx.url, 'SELECT * FROM cpu ORDER BY time', 'argus')).toEqual({
      results: [
        {
          statement_id: 0,
          series: [
            {
              name: 'cpu',
              columns: ['time', 'cpu', 'host', 'usage_idle', 'usage_user'],
              values: [
                [1_700_000_000_000, 'cpu0', 'web-1', 98, 1.5],
                [1_700_000_001_000, 'cpu0', 'web-2', 97, 2.25],
                [1_700_000_002_000, 'cpu1', 'web-1', 0, -0.5],
              ],
            },
          ],
        },
      ],
    });

    const dir = dirname(influx.logFile);
    expect(existsSync(dir)).toBe(true);
    await influx.stop();
    expect(await portIsOpen(port)).toBe(false);
    expect(existsSync(dir)).toBe(false);
    // A second stop is harmless.
    await influx.stop();
  }, 60_000);
});
