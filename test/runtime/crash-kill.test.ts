/**
 * The delivery contract under fire, against both mailboxes: a counter receives 10,000 uniquely
 * numbered increments while it throws on a random 1% of first deliveries and the process running it
 * is SIGKILLed twice and restarted. At the end the counter is exactly 10,000 and the applied numbers
 * are exactly 1..10,000: nothing lost, nothing applied twice.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { unpack } from 'msgpackr';
import { afterAll, describe, expect, it } from 'vitest';
import { parseConfig } from '../../runtime/config.ts';
import { encodeEnvelope, newMessageId, shardOf } from '../../runtime/envelope.ts';
import { openBoundaries } from '../../runtime/open-boundaries.ts';
import { ChildNode } from '../helpers/child.ts';
import { kafkaBrokers, uniquePrefix } from '../helpers/services.ts';

const TOTAL = 10_000;
const SHARDS = 4;
const KEY = 'the-counter';
const FIXTURE = 'test/fixtures/flaky-counter-node.ts';

const dirs: string[] = [];
afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

const modes = {
  embedded: () => {
    const dir = mkdtempSync(join(tmpdir(), 'argus-kill-'));
    dirs.push(dir);
    return { mode: 'embedded', dataDir: dir, shards: SHARDS, passivation: { idleMs: 0 } };
  },
  kafka: () => ({
    mode: 'kafka',
    shards: SHARDS,
    passivation: { idleMs: 0 },
    kafka: { brokers: kafkaBrokers(), topicPrefix: uniquePrefix('kill') },
  }),
};

const progressOf = (node: ChildNode): number => {
  const line = node.last('progress ');
  return line ? Number(line.split(' ')[1]) : 0;
};

describe.each(Object.keys(modes) as (keyof typeof modes)[])('crash and kill (%s mailbox)', (name) => {
  it('applies 10,000 increments exactly once through 1% crashes and two SIGKILLs', async () => {
    const config = modes[name]();
    const boundaries = await openBoundaries(parseConfig(config));
    const nodes: ChildNode[] = [];
    try {
      await boundaries.mailbox.ensureKinds([{ kind: 'counter', partitions: SHARDS }]);
      const partition = shardOf(KEY, SHARDS);
      let node = new ChildNode(FIXTURE, [JSON.stringify(config)]);
      nodes.push(node);
      await node.waitLine('ready', 60_000);

      // The sender keeps at most 1,000 messages ahead of the counter, so both kills land mid-run.
      let sent = 0;
      let base = 0; // progress already made before the current node (its count restarts from the snapshot)
      const sender = (async () => {
        while (sent < TOTAL) {
          if (sent - Math.max(base, progressOf(node)) > 1_000) {
            await new Promise((r) => setTimeout(r, 5));
            continue;
          }
          const n = Math.min(100, TOTAL - sent);
          const now = Date.now();
          const records = Array.from({ length: n }, (_, i) => {
            const seq = sent + i + 1;
            const payload = { type: 'inc', by: 1, seq };
            return {
              partition,
              key: KEY,
              value: encodeEnvelope({
                id: newMessageId(now),
                kind: 'counter',
                key: KEY,
                type: 'inc',
                timestamp: now,
                payload,
              }),
            };
          });
          await boundaries.mailbox.append('counter', records);
          sent += n;
        }
      })();

      for (const threshold of [2_500, 6_000]) {
        const deadline = Date.now() + 120_000;
        while (progressOf(node) < threshold) {
          if (Date.now() > deadline) throw new Error(`no progress to ${threshold}: ${node.errors}`);
          if (node.proc.exitCode !== null) throw new Error(`node died: ${node.errors}`);
          await new Promise((r) => setTimeout(r, 5));
        }
        const at = progressOf(node);
        expect(at).toBeLessThan(TOTAL); // the kill lands mid-run
        base = at;
        const exit = await node.kill9();
        expect(exit).toEqual({ code: null, signal: 'SIGKILL' });
        node = new ChildNode(FIXTURE, [JSON.stringify(config)]);
        nodes.push(node);
        await node.waitLine('ready', 60_000);
      }
      await sender;
      const deadline = Date.now() + 120_000;
      while (progressOf(node) < TOTAL) {
        if (Date.now() > deadline) throw new Error(`stuck at ${progressOf(node)}: ${node.errors}`);
        if (node.proc.exitCode !== null) throw new Error(`node died: ${node.errors}`);
        await new Promise((r) => setTimeout(r, 10));
      }
      node.proc.kill('SIGTERM');
      await node.waitLine('stopped', 30_000);
      expect((await node.exited).code).toBe(0);

      const crashes = nodes.map((n) => Number(/crashes=(\d+)/.exec(n.last('progress ') ?? '')?.[1] ?? 0));
      expect(crashes.reduce((a, b) => a + b, 0)).toBeGreaterThan(0); // the 1% crashes did happen

      const snap = (await boundaries.snapshots.openShard('counter', partition)).get(KEY);
      expect(snap).toBeDefined();
      const state = unpack(snap!.state) as { count: number; applied: number[] };
      expect(state.count).toBe(TOTAL);
      expect(state.applied).toHaveLength(TOTAL);
      const sorted = [...state.applied].sort((a, b) => a - b);
      expect(sorted).toEqual(Array.from({ length: TOTAL }, (_, i) => i + 1));
      expect(await boundaries.deadLetters.list('counter')).toEqual([]);
    } finally {
      for (const n of nodes) if (n.proc.exitCode === null && n.proc.signalCode === null) await n.kill9();
      await boundaries.close();
    }
  }, 300_000);
});
