/** Shared pieces of the embedded journal tests: temp folders, deterministic records, a recording consumer, children. */

import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type {
  ConsumeOptions,
  Consumption,
  MailboxBatch,
  MailboxRecord,
  MailboxTransport,
  PartitionRef,
} from '../../runtime/boundaries.ts';
import { type EmbeddedJournal, openJournal } from '../../runtime/embedded/journal.ts';
import { assignAll } from '../helpers/assign.ts';

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, '../..');

/** Temp folders made by a test file; `removeTempDirs` in afterEach/afterAll deletes them. */
const made: string[] = [];
export const tempDir = (): string => {
  const dir = mkdtempSync(join(tmpdir(), 'argus-journal-'));
  made.push(dir);
  return dir;
};
export const removeTempDirs = (): void => {
  for (const dir of made.splice(0)) rmSync(dir, { recursive: true, force: true });
};

/** The key of record `seq` written by `writer`. */
export const keyFor = (writer: string, seq: number): string => `${writer}-${seq}`;

/** 100 bytes that differ for every (writer, seq): the identity as text, then a seq-dependent pattern. */
export const valueFor = (writer: string, seq: number, size = 100): Uint8Array => {
  const bytes = new Uint8Array(size);
  const head = Buffer.from(`${writer}:${seq}:`);
  bytes.set(head.subarray(0, size));
  for (let i = head.length; i < size; i++) bytes[i] = (seq * 31 + i * 7) % 256;
  return bytes;
};

/**
 * Indexes where two lists of byte arrays differ (a missing entry counts), for `toEqual([])`: much faster
 * than deep-equality over thousands of typed arrays, and the failure still says where.
 */
export const byteMismatches = (actual: readonly Uint8Array[], expected: readonly Uint8Array[]): number[] => {
  const bad: number[] = [];
  for (let i = 0; i < Math.max(actual.length, expected.length); i++) {
    const a = actual[i];
    const e = expected[i];
    if (!a || !e || Buffer.compare(a, e) !== 0) bad.push(i);
  }
  return bad;
};

/** A consumer that keeps every delivery, in order, and lets a test wait for a number of records. */
export class Recorder {
  readonly batches: MailboxBatch[] = [];
  readonly assigned: { ref: PartitionRef; start: number }[] = [];
  readonly revoked: PartitionRef[] = [];
  consumption: Consumption | undefined;

  /** Every delivered record of a partition, in delivery order (re-deliveries included). */
  delivered(partition: number): MailboxRecord[] {
    return this.batches.filter((b) => b.partition === partition).flatMap((b) => b.records);
  }

  get count(): number {
    return this.batches.reduce((n, b) => n + b.records.length, 0);
  }

  async start(
    mailbox: MailboxTransport,
    kinds: readonly string[],
    options: Partial<Pick<ConsumeOptions, 'maxBatch' | 'onBatch'>> & {
      owns?: (ref: PartitionRef) => boolean;
    } = {},
  ): Promise<this> {
    this.consumption = await mailbox.consume({
      kinds,
      ...(options.maxBatch === undefined ? {} : { maxBatch: options.maxBatch }),
      onBatch: async (batch) => {
        this.batches.push(batch);
        await options.onBatch?.(batch);
      },
    });
    for (const a of await assignAll(mailbox, this.consumption, kinds, options.owns)) {
      this.assigned.push({ ref: a.ref, start: a.startOffset });
    }
    return this;
  }

  async stop(): Promise<void> {
    const consumption = this.consumption;
    if (!consumption) return;
    this.revoked.push(...consumption.assigned());
    await consumption.stop();
  }
}

/** A child process running one of ./children/*.ts through tsx, with its stdout as lines. */
export class Child {
  readonly process: ChildProcess;
  readonly lines: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  /** Resolves once every line the child printed has been read. */
  readonly drained: Promise<void>;
  private readonly listeners = new Set<(line: string) => void>();
  private stderr = '';

  constructor(script: string, args: readonly string[]) {
    this.process = spawn(process.execPath, ['--import', 'tsx', join(here, 'children', script), ...args], {
      cwd: repoRoot,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const stdout = createInterface({ input: this.process.stdout! });
    stdout.on('line', (line) => {
      this.lines.push(line);
      for (const listener of this.listeners) listener(line);
    });
    this.drained = new Promise((done) => stdout.once('close', done));
    this.process.stderr!.on('data', (chunk: Buffer) => {
      this.stderr += chunk.toString();
    });
    this.exited = new Promise((done) => {
      this.process.on('exit', (code, signal) => done({ code, signal }));
    });
  }

  /** Resolves with the first line (already printed or to come) that `match` accepts. */
  waitForLine(match: (line: string) => boolean, timeoutMs = 20_000): Promise<string> {
    const seen = this.lines.find(match);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise((done, fail) => {
      const timer = setTimeout(() => {
        this.listeners.delete(listener);
        fail(new Error(`child printed no matching line in ${timeoutMs} ms; stderr: ${this.stderr}`));
      }, timeoutMs);
      const listener = (line: string) => {
        if (!match(line)) return;
        clearTimeout(timer);
        this.listeners.delete(listener);
        done(line);
      };
      this.listeners.add(listener);
    });
  }

  send(line: string): void {
    this.process.stdin!.write(`${line}\n`);
  }

  /** Waits for a clean exit; fails with the child's stderr otherwise. */
  async succeeded(): Promise<void> {
    const { code, signal } = await this.exited;
    if (code !== 0) throw new Error(`child exited with ${code ?? signal}; stderr: ${this.stderr}`);
  }
}

const opened: EmbeddedJournal[] = [];

/** Opens a journal that closeJournals() closes (call it in afterEach). */
export const journalAt = (dir: string = tempDir()): EmbeddedJournal => {
  const journal = openJournal(dir);
  opened.push(journal);
  return journal;
};

/** Closes every journal opened by journalAt, then removes the temp folders. */
export const closeJournals = async (): Promise<void> => {
  for (const journal of opened.splice(0)) await journal.close();
  removeTempDirs();
};
