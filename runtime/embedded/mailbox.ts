/**
 * The embedded mailbox: each kind's partitions are logs in the journal's `records` database, with
 * offsets 0, 1, 2, … per partition, the log end in `heads` and the committed offset in `offsets`.
 *
 * Offsets are assigned inside the write transaction that stores the records: read the log end, write
 * the records after it, write the new end. LMDB lets one writer in at a time across every process that
 * opened the folder, so two processes appending to one partition cannot both read the same end. Appends
 * started in the same event turn share that transaction (lmdb-js batching), each as an atomic child, in
 * the order they were called — group commit without giving up per-append atomicity or order.
 */
import type {
  ConsumeOptions,
  Consumption,
  KindTopology,
  MailboxRecord,
  MailboxTransport,
  OutgoingRecord,
  OutputRecord,
} from '../boundaries.ts';
import { ArgusError, isArgusError } from '../errors.ts';
import { decodeRecord, encodeRecord } from './codec.ts';
import { type ConsumerSettings, EmbeddedConsumption, type PartitionSource } from './consumer.ts';
import type { JournalEnv } from './env.ts';
import type { KindRegistry } from './kinds.ts';

export class EmbeddedMailbox implements MailboxTransport, PartitionSource {
  readonly name = 'embedded';
  private readonly consumptions = new Set<EmbeddedConsumption>();
  private closing: Promise<void> | undefined;

  constructor(
    private readonly env: JournalEnv,
    private readonly kinds: KindRegistry,
    private readonly settings: ConsumerSettings,
    /** Records each output stream partition keeps (older ones are trimmed as new ones land). */
    private readonly streamRetention = 20_000,
  ) {}

  async ensureKinds(kinds: readonly KindTopology[]): Promise<void> {
    this.env.assertOpen('mailbox');
    await this.kinds.ensure(kinds);
    for (const k of kinds) if (k.retain !== undefined) this.retention.set(k.kind, k.retain);
  }

  /** Kinds whose applied records are trimmed at commit, and how many each partition keeps. */
  private readonly retention = new Map<string, number>();

  /** Where a trimmed kind's partition log now starts (kept beside the heads, under a key no kind has). */
  private start(kind: string, partition: number): number {
    return this.env.db.heads.get([`@start:${kind}`, partition]) ?? 0;
  }

  async readMailbox(kind: string, partition: number, from: number, max: number): Promise<MailboxRecord[]> {
    this.env.assertOpen('mailbox');
    this.kinds.checkPartition(kind, partition);
    this.env.fresh();
    return this.read(kind, partition, Math.max(from, this.start(kind, partition)), max);
  }

  async append(kind: string, records: readonly OutgoingRecord[]): Promise<void> {
    const append = this.prepareAppend(kind, records);
    if (!append) return;
    await this.env.write(append.body);
    append.done();
  }

  /**
   * Validates and encodes an append and returns the body that makes it, to run inside a journal write
   * transaction (a checkpoint appends its outputs this way), and what to do once it committed. Validate
   * and encode before the transaction: nothing that can throw, and no avoidable work, while every
   * process waits on the write lock. Undefined when there is nothing to append.
   */
  prepareAppend(
    kind: string,
    records: readonly OutgoingRecord[],
    retain?: number,
  ): { body: () => void; done: () => void } | undefined {
    this.env.assertOpen('mailbox');
    this.kinds.partitionsOf(kind);
    const byPartition = new Map<number, Buffer[]>();
    for (const record of records) {
      this.kinds.checkPartition(kind, record.partition);
      const frame = encodeRecord(record.key, record.value);
      const frames = byPartition.get(record.partition);
      if (frames) frames.push(frame);
      else byPartition.set(record.partition, [frame]);
    }
    if (byPartition.size === 0) return undefined;
    const { records: log, heads, changes, offsets } = this.env.db;
    return {
      body: () => {
        for (const [partition, frames] of byPartition) {
          let next = heads.get([kind, partition]) ?? 0;
          for (const frame of frames) log.putSync([kind, partition, next++], frame);
          // The end is written last: readers bound every read by it, so a record is never seen without it.
          heads.putSync([kind, partition], next);
          if (retain !== undefined) {
            // A stream log keeps its last `retain` records; its `offsets` entry is where it now starts
            // (nobody commits a stream log, so the entry is free for that).
            const start = offsets.get([kind, partition]) ?? 0;
            const keep = Math.max(start, next - retain);
            for (let o = start; o < keep; o++) log.removeSync([kind, partition, o]);
            if (keep > start) offsets.putSync([kind, partition], keep);
          }
        }
        changes.putSync(kind, (changes.get(kind) ?? 0) + 1);
      },
      done: () => {
        for (const consumption of this.consumptions) consumption.appended(kind, byPartition.keys());
      },
    };
  }

  /** Output streams are logs beside the mailboxes, under a name no entity kind can have. */
  async ensureStreams(streams: readonly KindTopology[]): Promise<void> {
    this.env.assertOpen('mailbox');
    await this.kinds.ensure(streams.map((s) => ({ kind: streamLog(s.kind), partitions: s.partitions })));
  }

  async appendOutputs(records: readonly OutputRecord[]): Promise<void> {
    const append = this.prepareOutputs(records);
    if (append.length === 0) return;
    await this.env.write(() => {
      for (const a of append) a.body();
    });
    for (const a of append) a.done();
  }

  /** The appends of a checkpoint's outputs, one per stream, to run in the checkpoint's transaction. */
  prepareOutputs(records: readonly OutputRecord[]): { body: () => void; done: () => void }[] {
    const byStream = new Map<string, OutgoingRecord[]>();
    const byKind = new Map<string, OutgoingRecord[]>();
    for (const r of records) {
      const into = r.mailbox ? byKind : byStream;
      const list = into.get(r.stream);
      const record = { partition: r.partition, key: r.key, value: r.value };
      if (list) list.push(record);
      else into.set(r.stream, [record]);
    }
    const appends: { body: () => void; done: () => void }[] = [];
    // Messages to other entities (`ctx.send`): appended to their kind's mailbox in the same write.
    for (const [kind, list] of byKind) {
      const append = this.prepareAppend(kind, list);
      if (append) appends.push(append);
    }
    for (const [stream, list] of byStream) {
      let append: { body: () => void; done: () => void } | undefined;
      try {
        append = this.prepareAppend(streamLog(stream), list, this.streamRetention);
      } catch (e) {
        if (isArgusError(e, 'ARGUS_ERR_UNKNOWN_KIND'))
          throw new ArgusError('ARGUS_ERR_UNKNOWN_STREAM', `output stream '${stream}' was never ensured`, {
            stream,
          });
        throw e;
      }
      if (append) appends.push(append);
    }
    return appends;
  }

  async readStream(stream: string, partition: number, from: number, max: number): Promise<MailboxRecord[]> {
    this.env.assertOpen('mailbox');
    this.kinds.checkPartition(streamLog(stream), partition);
    this.env.fresh();
    // Trimmed records are gone: a read from before the log's start begins at its start.
    const start = this.env.db.offsets.get([streamLog(stream), partition]) ?? 0;
    return this.read(streamLog(stream), partition, Math.max(from, start), max);
  }

  async partitionCount(kind: string): Promise<number> {
    this.env.assertOpen('mailbox');
    return this.kinds.partitionsOf(kind);
  }

  async consume(options: ConsumeOptions): Promise<Consumption> {
    this.env.assertOpen('mailbox');
    for (const kind of options.kinds) this.kinds.partitionsOf(kind);
    const maxBatch = options.maxBatch ?? this.settings.maxBatch;
    if (!Number.isInteger(maxBatch) || maxBatch < 1) {
      throw new ArgusError('ARGUS_ERR_INVALID_CONFIG', `maxBatch ${maxBatch} must be a positive integer`, {
        field: 'maxBatch',
        maxBatch,
      });
    }
    const consumption = new EmbeddedConsumption(this, { ...this.settings, maxBatch }, options, (c) =>
      this.consumptions.delete(c),
    );
    this.consumptions.add(consumption);
    return consumption;
  }

  async commit(kind: string, partition: number, nextOffset: number): Promise<void> {
    await this.env.write(this.prepareCommit(kind, partition, nextOffset));
  }

  /**
   * Validates a commit and returns the body that makes it, to run inside a journal write transaction.
   * A commit past the log end is refused up front (it would silently skip records appended later); the
   * end only grows, so it cannot become wrong before the transaction runs.
   */
  prepareCommit(kind: string, partition: number, nextOffset: number): () => void {
    this.env.assertOpen('mailbox');
    this.kinds.checkPartition(kind, partition);
    if (!Number.isSafeInteger(nextOffset) || nextOffset < 0) {
      throw new ArgusError(
        'ARGUS_ERR_INVALID_CONFIG',
        `cannot commit offset ${nextOffset} of ${kind}/${partition}: an offset is an integer ≥ 0`,
        { kind, partition, offset: nextOffset },
      );
    }
    this.env.fresh();
    const end = this.end(kind, partition);
    if (nextOffset > end) {
      throw new ArgusError(
        'ARGUS_ERR_INVALID_CONFIG',
        `cannot commit offset ${nextOffset} of ${kind}/${partition}: the log ends at ${end}`,
        { kind, partition, offset: nextOffset, end },
      );
    }
    const retain = this.retention.get(kind);
    if (retain === undefined) return () => this.env.db.offsets.putSync([kind, partition], nextOffset);
    const { records: log, heads, offsets } = this.env.db;
    return () => {
      offsets.putSync([kind, partition], nextOffset);
      // Applied records beyond the last `retain` go; unapplied ones always stay.
      const start = this.start(kind, partition);
      const keep = Math.min(nextOffset, Math.max(start, end - retain));
      if (keep <= start) return;
      for (let o = start; o < keep; o++) log.removeSync([kind, partition, o]);
      heads.putSync([`@start:${kind}`, partition], keep);
    };
  }

  async committed(kind: string, partition: number): Promise<number> {
    this.env.assertOpen('mailbox');
    this.kinds.checkPartition(kind, partition);
    return this.committedNow(kind, partition);
  }

  async endOffset(kind: string, partition: number): Promise<number> {
    this.env.assertOpen('mailbox');
    this.kinds.checkPartition(kind, partition);
    this.env.fresh();
    return this.end(kind, partition);
  }

  /**
   * Stops every consumption first — in-flight batches may still commit and save snapshots — then refuses
   * further calls and lets the environment close.
   */
  close(): Promise<void> {
    this.closing ??= (async () => {
      await Promise.allSettled([...this.consumptions].map((c) => c.stop()));
      await this.env.release('mailbox');
    })();
    return this.closing;
  }

  // PartitionSource: synchronous reads for the consumer loops.

  read(kind: string, partition: number, from: number, max: number): MailboxRecord[] {
    const to = Math.min(this.end(kind, partition), from + max);
    const records: MailboxRecord[] = [];
    if (to <= from) return records;
    let offset = from;
    for (const { key, value } of this.env.db.records.getRange({
      start: [kind, partition, from],
      end: [kind, partition, to],
    })) {
      // Offsets are dense by construction; a hole would mean a damaged file, and delivering across it
      // would break "consecutive records", so stop at it and say so.
      if (key[2] !== offset) {
        throw new ArgusError('ARGUS_ERR_DECODE', `record ${offset} of ${kind}/${partition} is missing`, {
          kind,
          partition,
          offset,
        });
      }
      const frame = decodeRecord(value);
      records.push({ partition, offset, key: frame.key, value: frame.value });
      offset++;
    }
    return records;
  }

  end(kind: string, partition: number): number {
    return this.env.db.heads.get([kind, partition]) ?? 0;
  }

  committedNow(kind: string, partition: number): number {
    this.env.fresh();
    return this.env.db.offsets.get([kind, partition]) ?? 0;
  }

  changes(kind: string): number {
    return this.env.db.changes.get(kind) ?? 0;
  }

  fresh(): void {
    this.env.fresh();
  }

  checkPartition(kind: string, partition: number): void {
    this.kinds.checkPartition(kind, partition);
  }
}

/** The journal log of an output stream: '@' starts no entity kind. */
export const streamLog = (stream: string): string => `@stream.${stream}`;
