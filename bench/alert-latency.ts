/**
 * Alert latency: from a sample's arrival (the push request leaving the client) to the webhook request
 * arriving at the receiver, p50/p99, with the embedded journal and through Kafka.
 *
 * Setup per mode: one node, `hostMetrics()` (push-only) with the alerting extension's host observer,
 * `startHttp`, one host rule (`lat.v > 0.5`, no `for`), a route with group_wait 0 that groups by every
 * label (each alert its own notification), and a webhook receiver — a plain HTTP server in this
 * process that notes when each request arrives. Each round pushes ROUND samples, one at a time, each
 * for a new host (so each fires a new alert), and waits for its notification before the next: latency,
 * not throughput. The path measured: HTTP push → host mailbox (journal or Kafka) → host entity (derive,
 * evaluate, route) → checkpoint with the `receiver.alert` message → receiver mailbox → receiver entity
 * (group, flush) → HTTP POST.
 *
 * Context (not measured): Prometheus + Alertmanager with their defaults need a scrape (1 min
 * scrape_interval), a rule evaluation (1 min evaluation_interval) and group_wait (30 s) before the
 * first notification: up to 2.5 minutes, 30 s at best.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { hostMetrics } from '../actors/host/host-metrics.ts';
import { alerting } from '../actors/rule/alerting.ts';
import { startHttp } from '../runtime/http.ts';
import { MemoryConfigSource } from '../runtime/memory-config.ts';
import { createRuntime, type Runtime } from '../runtime/runtime.ts';
import { benchPrefix, clusterServices } from './cluster-common.ts';
import {
  type Benchmark,
  type BenchOptions,
  type Figures,
  fmt,
  header,
  Latency,
  log,
  Samples,
  tidy,
  withRuns,
} from './common.ts';

const ROUND = 200;

interface Receiver {
  readonly url: string;
  /** Resolves when the notification for `host` arrives, with its arrival time (performance.now()). */
  arrival(host: string): Promise<number>;
  close(): Promise<void>;
}

const startReceiver = async (): Promise<Receiver> => {
  const waiting = new Map<string, (at: number) => void>();
  const arrived = new Map<string, number>();
  const server: Server = createServer((req, res) => {
    const at = performance.now();
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      res.writeHead(200).end();
      try {
        const body = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          status: string;
          alerts: { labels: Record<string, string> }[];
        };
        if (body.status !== 'firing') return;
        for (const a of body.alerts) {
          const host = a.labels.host ?? '';
          const w = waiting.get(host);
          if (w) {
            waiting.delete(host);
            w(at);
          } else arrived.set(host, at);
        }
      } catch {
        // not ours
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/hook`,
    arrival: (host) => {
      const at = arrived.get(host);
      if (at !== undefined) return Promise.resolve(at);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`no notification for ${host} within 30 s`)), 30_000);
        waiting.set(host, (v) => {
          clearTimeout(t);
          resolve(v);
        });
      });
    },
    close: () => new Promise((r) => server.close(() => r())),
  };
};

const seeds = (hookUrl: string) => ({
  rules: { lat: JSON.stringify({ metric: 'lat.v', condition: '> 0.5', severity: 3 }) },
  receivers: { hook: JSON.stringify({ kind: 'webhook', url: hookUrl, timeout: '5s' }) },
  routes: {
    tree: JSON.stringify({ receiver: 'hook', group_by: ['...'], group_wait: '0s', group_interval: '1s' }),
  },
});

const measure = async (
  mode: 'embedded' | 'kafka',
  config: Record<string, unknown>,
  rounds: number,
  warmup: number,
): Promise<Latency[]> => {
  const receiver = await startReceiver();
  const configSource = new MemoryConfigSource(seeds(receiver.url));
  const rt: Runtime = createRuntime({ ...config, http: false }, { configSource });
  const alerts = alerting({ tickMs: 100 });
  rt.use(alerts).use(hostMetrics({ observer: alerts.observer }));
  await rt.start();
  const http = await startHttp(rt, '127.0.0.1', 0);
  const results: Latency[] = [];
  try {
    for (let round = -warmup; round < rounds; round++) {
      const latency = new Latency();
      for (let i = 0; i < ROUND; i++) {
        const host = `${mode}-${round + warmup}-${i}`;
        const started = performance.now();
        const res = await fetch(`${http.url}/write?precision=ms`, {
          method: 'POST',
          body: `lat,host=${host} v=1 ${Date.now()}\n`,
        });
        if (res.status !== 204) throw new Error(`push answered ${res.status}: ${await res.text()}`);
        latency.recordMs((await receiver.arrival(host)) - started);
      }
      if (round >= 0) results.push(latency);
      log(
        `${mode} round ${round < 0 ? 'warm-up' : round + 1}: p50 ${fmt(latency.percentileMs(50))} ms, p99 ${fmt(latency.percentileMs(99))} ms, max ${fmt(latency.maxMs)} ms`,
      );
    }
  } finally {
    await http.close();
    await rt.stop();
    await receiver.close();
  }
  return results;
};

export const benchmark: Benchmark = {
  name: 'alert-latency',
  summary: 'sample arrival → webhook request, p50/p99, embedded and through Kafka',
  defaultRounds: 3,
  async run(options: BenchOptions & { rounds: number }): Promise<Figures> {
    header(
      'alert-latency',
      `${ROUND} alerts a round, one at a time (push → rule → receiver → webhook)`,
      options,
    );
    const samples = new Samples();
    const dir = mkdtempSync(join(tmpdir(), 'argus-bench-alert-'));
    try {
      for (const l of await measure(
        'embedded',
        { mode: 'embedded', dataDir: dir, shards: 4 },
        options.rounds,
        1,
      )) {
        samples.add('embedded_p50_ms', l.percentileMs(50));
        samples.add('embedded_p99_ms', l.percentileMs(99));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
    const services = await clusterServices();
    try {
      log(`# Kafka ${services.origin}`);
      const config = {
        mode: 'kafka',
        shards: 4,
        kafka: { brokers: services.brokers, topicPrefix: benchPrefix('alert') },
      };
      for (const l of await measure('kafka', config, options.rounds, 1)) {
        samples.add('kafka_p50_ms', l.percentileMs(50));
        samples.add('kafka_p99_ms', l.percentileMs(99));
      }
    } finally {
      await services.stop();
    }
    const names = ['embedded_p50_ms', 'embedded_p99_ms', 'kafka_p50_ms', 'kafka_p99_ms'];
    const figures: Figures = Object.fromEntries(names.map((n) => [n, tidy(samples.median(n))]));
    log();
    for (const name of names) log(`${name.padEnd(16)} ${withRuns(samples.of(name))}`);
    log('targets: p99 < 50 ms embedded, < 500 ms through Kafka');
    log(
      'peer (defaults, not measured): Prometheus scrape 60 s + evaluation 60 s + Alertmanager group_wait 30 s = 30-150 s; ' +
        `ratio to its best case (30 s): embedded p99 ${fmt(figures.embedded_p99_ms! / 30_000)}, Kafka p99 ${fmt(figures.kafka_p99_ms! / 30_000)}`,
    );
    return figures;
  },
};
