/**
 * The inspector's cost, on one embedded node holding 50,000 counter entities (32 shards):
 *
 * - `tree_p99_ms`: p99 of `GET /api/v1/nodes/self/tree?path=node/shards/counter-<p>&offset=&limit=100`
 *   (one page of one shard's ~1,560 entities, random shard and page), one request at a time;
 * - `search_p99_ms`: p99 of `GET /api/v1/entities?q=<substring>&limit=100` (random key prefixes `c-1` …
 *   `c-12345`: 1 to 11,111 matches among the 50,000);
 *   peer for both: `GET /health` on the same server (the HTTP round trip itself), and `GET /inspect`
 *   (the runtime's unpaged tree, every entity in one answer) once a round;
 * - `throughput_loss_pct`: counter messages per second through `rt.send` (a bounded loop: M messages in
 *   chunks of 1,000 to the 50,000 active entities in turn, timed until the last one's checkpoint landed) with a poller hitting the cluster,
 *   tree and search endpoints every second, against the same loop without it; the two alternate, in
 *   turn first, and the loss is the median of the rounds' losses;
 * - `first_render_ms`: headless Chromium (Debian's /usr/bin/chromium through playwright-core), a fresh
 *   context each time (cold cache): from navigation start to the first real row of the tree view of one
 *   shard in the DOM and painted (`#/tree?path=node/shards/counter-0`, read in the page with
 *   `performance.now()`); peer: the same page's DOMContentLoaded (the shell without data).
 *
 * 32 shards, not 4: a nact supervisor copies its children Map on every message it gets, so starting
 * 12,500 children under one shard supervisor is quadratic (minutes); ~1,560 a shard takes ~20 s.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { chromium } from 'playwright-core';
import { type CounterMessage, type CounterState, counter } from '../actors/counter/counter.ts';
import { hashToken } from '../runtime/auth.ts';
import { eventFeed } from '../runtime/feed/feed.ts';
import { type HttpServer, startHttp } from '../runtime/http.ts';
import { inspector } from '../runtime/inspector/index.ts';
import { createRuntime, type EntityClient, type Runtime } from '../runtime/runtime.ts';
import {
  type Benchmark,
  type BenchOptions,
  collect,
  type Figures,
  fmt,
  header,
  Latency,
  log,
  median,
  Samples,
  sleep,
  tidy,
  withRuns,
} from './common.ts';

/**
 * The little of the DOM the page functions below use (this project's tsconfig has no DOM types; the
 * page's CSP forbids evaluating strings, so they are functions).
 */
declare const window: {
  firstRowMs?: number;
  performance: { getEntriesByType(type: string): { domContentLoadedEventEnd: number }[] };
};
declare const document: { querySelectorAll(selector: string): { length: number } };

const SHARDS = 32;
const TOKEN = 'bench-inspector-token';
const CHROMIUM = '/usr/bin/chromium';
const CHUNK = 1_000;

interface Sizes {
  readonly entities: number;
  readonly requests: number;
  readonly messages: number;
  readonly renders: number;
}

const FULL: Sizes = { entities: 50_000, requests: 200, messages: 300_000, renders: 5 };
const QUICK: Sizes = { entities: 5_000, requests: 50, messages: 20_000, renders: 2 };

interface Node {
  readonly rt: Runtime;
  readonly counters: EntityClient<CounterState, CounterMessage>;
  readonly http: HttpServer;
  /** Resolves once `n` more counter records were processed (their checkpoints landed). */
  processed(n: number): Promise<void>;
  stop(): Promise<void>;
}

const get = async (base: string, path: string): Promise<unknown> => {
  const res = await fetch(`${base}${path}`, { headers: { authorization: `Bearer ${TOKEN}` } });
  const body = await res.json();
  if (res.status !== 200) throw new Error(`GET ${path} answered ${res.status}: ${JSON.stringify(body)}`);
  return body;
};

const startNode = async (): Promise<Node> => {
  const dataDir = mkdtempSync(join(tmpdir(), 'argus-bench-inspector-'));
  const rt = createRuntime({
    mode: 'embedded',
    dataDir,
    http: false,
    shards: SHARDS,
    // All 50,000 stay active through the run: what is measured is the inspector next to message
    // processing, not activation (which the supervisor's children Map makes costly, see above).
    passivation: { idleMs: 3_600_000 },
    auth: { tokens: [{ name: 'bench', sha256: hashToken(TOKEN), scopes: ['admin'] }] },
  });
  const counters = rt.register(counter);
  rt.use(eventFeed()).use(inspector());
  await rt.start();
  const http = await startHttp(rt, '127.0.0.1', 0);
  let done = 0;
  const waiters: { at: number; resolve: () => void }[] = [];
  rt.subscribe((e) => {
    if (e.type !== '@argus.batch' || e.kind !== 'counter') return;
    done += e.records;
    for (let i = waiters.length - 1; i >= 0; i--)
      if (done >= waiters[i]!.at) waiters.splice(i, 1)[0]!.resolve();
  });
  return {
    rt,
    counters,
    http,
    processed: (n) => new Promise((resolve) => waiters.push({ at: done + n, resolve })),
    stop: async () => {
      await http.close();
      await rt.stop();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
};

/** Sends `count` increments to keys `c-<i mod entities>` from `first` on, a chunk at a time. */
const sendIncrements = async (counters: Node['counters'], first: number, count: number, entities: number) => {
  for (let from = first; from < first + count; from += CHUNK) {
    const sends: Promise<void>[] = [];
    for (let i = from; i < Math.min(first + count, from + CHUNK); i++)
      sends.push(counters.send(`c-${i % entities}`, { type: 'inc', by: 1 }));
    await Promise.all(sends);
  }
};

const randomInt = (n: number) => Math.floor(Math.random() * n);

const treePath = (entities: number) => {
  const perShard = Math.ceil(entities / SHARDS);
  const offset = randomInt(Math.max(1, Math.floor(perShard / 100))) * 100;
  return `/api/v1/nodes/self/tree?path=node/shards/counter-${randomInt(SHARDS)}&offset=${offset}&limit=100`;
};

const searchPath = (entities: number) => {
  const key = String(randomInt(entities));
  return `/api/v1/entities?q=c-${key.slice(0, 1 + randomInt(key.length))}&limit=100`;
};

const timed = async (latency: Latency, request: () => Promise<unknown>) => {
  const t0 = performance.now();
  await request();
  latency.recordMs(performance.now() - t0);
};

const measureApi = async (node: Node, sizes: Sizes, rounds: number, samples: Samples) => {
  const base = node.http.url;
  for (let round = -1; round < rounds; round++) {
    const tree = new Latency();
    const search = new Latency();
    const health = new Latency();
    for (let i = 0; i < sizes.requests; i++) {
      await timed(tree, () => get(base, treePath(sizes.entities)));
      await timed(search, () => get(base, searchPath(sizes.entities)));
      await timed(health, () => fetch(`${base}/health`).then((r) => r.text()));
    }
    const t0 = performance.now();
    await get(base, '/inspect');
    const inspectMs = performance.now() - t0;
    if (round < 0) continue;
    samples.add('tree_p99_ms', tree.percentileMs(99));
    samples.add('search_p99_ms', search.percentileMs(99));
    samples.add('health_p99_ms', health.percentileMs(99));
    samples.add('inspect_ms', inspectMs);
    log(
      `api round ${round + 1}: tree p50 ${fmt(tree.percentileMs(50))} / p99 ${fmt(tree.percentileMs(99))} ms, ` +
        `search p50 ${fmt(search.percentileMs(50))} / p99 ${fmt(search.percentileMs(99))} ms, ` +
        `health p99 ${fmt(health.percentileMs(99))} ms, unpaged /inspect ${fmt(inspectMs)} ms`,
    );
  }
};

/**
 * Every second: the cluster, one tree page and one search, one after the other. The stop resolves with
 * how long each poll took (its three requests, end to end).
 */
const startPoller = (base: string, entities: number): (() => Promise<number[]>) => {
  const took: number[] = [];
  let running = Promise.resolve();
  const timer = setInterval(() => {
    running = running.then(async () => {
      const t0 = performance.now();
      await get(base, '/api/v1/cluster');
      await get(base, treePath(entities));
      await get(base, searchPath(entities));
      took.push(performance.now() - t0);
    });
  }, 1_000);
  return async () => {
    clearInterval(timer);
    await running;
    return took;
  };
};

const measureThroughput = async (node: Node, sizes: Sizes, rounds: number, samples: Samples) => {
  let next = 0;
  const run = async (polled: boolean): Promise<{ perSecond: number; polls: number[] }> => {
    collect();
    const stop = polled ? startPoller(node.http.url, sizes.entities) : async () => [];
    const landed = node.processed(sizes.messages);
    const t0 = performance.now();
    await sendIncrements(node.counters, next, sizes.messages, sizes.entities);
    await landed;
    const seconds = (performance.now() - t0) / 1000;
    next += sizes.messages;
    return { perSecond: sizes.messages / seconds, polls: await stop() };
  };
  await run(false); // warm-up
  // More pairs than rounds: one pair's loss moves by tens of % with the machine's other work.
  for (let round = 0; round < rounds + 2; round++) {
    const order = round % 2 === 0 ? [false, true] : [true, false];
    const result = new Map<boolean, { perSecond: number; polls: number[] }>();
    for (const polled of order) result.set(polled, await run(polled));
    const without = result.get(false)!.perSecond;
    const withPoller = result.get(true)!.perSecond;
    const loss = (1 - withPoller / without) * 100;
    samples.add('msgs_per_s_without', without);
    samples.add('msgs_per_s_with', withPoller);
    samples.add('throughput_loss_pct', loss);
    samples.add('throughput_ratio', withPoller / without);
    const polls = result.get(true)!.polls;
    for (const ms of polls) samples.add('poll_ms', ms);
    log(
      `throughput round ${round + 1}: without poller ${fmt(without)} msg/s, with poller ${fmt(withPoller)} msg/s ` +
        `(${polls.length} polls, median ${fmt(median(polls))} ms each), loss ${fmt(loss)} %`,
    );
  }
};

const measureFirstRender = async (node: Node, sizes: Sizes, rounds: number, samples: Samples) => {
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args: ['--no-sandbox'] });
  try {
    const once = async () => {
      const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
      // Navigation start → the first real tree row in the DOM, then the frame that paints it (an init
      // script: injected by the browser, not evaluated by the page, so the CSP lets it run).
      await context.addInitScript({
        content: `sessionStorage.setItem('argus.token', ${JSON.stringify(TOKEN)});
          const seen = new MutationObserver(() => {
            if (!document.querySelector('[data-testid="tree-row"]')) return;
            seen.disconnect();
            requestAnimationFrame(() => { window.firstRowMs = performance.now(); });
          });
          seen.observe(document, { childList: true, subtree: true });`,
      });
      const page = await context.newPage();
      const t0 = performance.now();
      await page.goto(`${node.http.url}/#/tree?path=node/shards/counter-0`);
      await page.waitForFunction(() => window.firstRowMs !== undefined);
      const wallMs = performance.now() - t0;
      const [firstRowMs, dclMs, rows] = await page.evaluate(
        () =>
          [
            window.firstRowMs!,
            window.performance.getEntriesByType('navigation')[0]!.domContentLoadedEventEnd,
            document.querySelectorAll('[data-testid="tree-row"]').length,
          ] as const,
      );
      await context.close();
      return { firstRowMs, dclMs, wallMs, rows };
    };
    await once(); // warm-up: the browser's own start
    for (let round = 0; round < rounds; round++) {
      const results = [];
      for (let i = 0; i < sizes.renders; i++) results.push(await once());
      const first = median(results.map((r) => r.firstRowMs));
      const dcl = median(results.map((r) => r.dclMs));
      samples.add('first_render_ms', first);
      samples.add('dom_content_loaded_ms', dcl);
      log(
        `render round ${round + 1}: first tree rows ${fmt(first)} ms after navigation start ` +
          `(runs ${results.map((r) => fmt(r.firstRowMs)).join(' | ')}; wall ${fmt(median(results.map((r) => r.wallMs)))} ms), ` +
          `DOMContentLoaded ${fmt(dcl)} ms, ${results[0]!.rows} rows in the DOM`,
      );
    }
  } finally {
    await browser.close();
  }
};

export const benchmark: Benchmark = {
  name: 'inspector',
  summary: 'tree/search API p99 with 50,000 entities, throughput cost of polling, first render in Chromium',
  defaultRounds: 3,
  async run(options: BenchOptions & { rounds: number }): Promise<Figures> {
    const sizes = options.quick ? QUICK : FULL;
    header(
      'inspector',
      `${sizes.entities.toLocaleString('en-US')} counter entities on ${SHARDS} shards, one embedded node`,
      options,
    );
    const node = await startNode();
    const samples = new Samples();
    try {
      const t0 = performance.now();
      const landed = node.processed(sizes.entities);
      await sendIncrements(node.counters, 0, sizes.entities, sizes.entities);
      await landed;
      while (
        ((await get(node.http.url, '/api/v1/entities?limit=1')) as { total: number }).total < sizes.entities
      )
        await sleep(200);
      log(
        `# ${sizes.entities.toLocaleString('en-US')} entities active in ${fmt((performance.now() - t0) / 1000)} s`,
      );
      await measureApi(node, sizes, options.rounds, samples);
      await measureThroughput(node, sizes, options.rounds, samples);
      await measureFirstRender(node, sizes, options.rounds, samples);
    } finally {
      await node.stop();
    }
    const figures: Figures = Object.fromEntries(
      ['tree_p99_ms', 'search_p99_ms', 'throughput_loss_pct', 'first_render_ms'].map((n) => [
        n,
        tidy(samples.median(n)),
      ]),
    );
    const health = samples.median('health_p99_ms');
    log();
    log(`tree_p99_ms          ${withRuns(samples.of('tree_p99_ms'))}`);
    log(`search_p99_ms        ${withRuns(samples.of('search_p99_ms'))}`);
    log(
      `  peer: GET /health p99 ${withRuns(samples.of('health_p99_ms'))}; ratio tree ${fmt(figures.tree_p99_ms! / health)}, ` +
        `search ${fmt(figures.search_p99_ms! / health)}`,
    );
    log(
      `  peer: unpaged GET /inspect (the whole tree) ${withRuns(samples.of('inspect_ms'))}; ` +
        `ratio tree p99 / inspect ${fmt(figures.tree_p99_ms! / samples.median('inspect_ms'))}`,
    );
    log(`throughput_loss_pct  ${withRuns(samples.of('throughput_loss_pct'))}`);
    log(
      `  with poller ${withRuns(samples.of('msgs_per_s_with'))} msg/s; peer without ${withRuns(samples.of('msgs_per_s_without'))} msg/s; ` +
        `ratio ${fmt(samples.median('throughput_ratio'))} (median of the rounds' ratios)`,
    );
    log(
      `  a poll (cluster + tree page + search) took ${fmt(samples.median('poll_ms'))} ms end to end while messages ` +
        `flowed (median of ${samples.of('poll_ms').length}; waiting behind message batches included)`,
    );
    log(`first_render_ms      ${withRuns(samples.of('first_render_ms'))}`);
    log(
      `  peer: DOMContentLoaded ${withRuns(samples.of('dom_content_loaded_ms'))} ms; ratio ${fmt(figures.first_render_ms! / samples.median('dom_content_loaded_ms'))}`,
    );
    log('targets: tree and search p99 < 200 ms; throughput loss < 5 %');
    return figures;
  },
};
