/**
 * The log sink: what the listeners hand records to. Records are routed to their stream's entity (or a
 * sub-stream by a hash of the source host) and batched per entity — up to `batchRecords` records or
 * 512 KiB per mailbox message, waiting at most `lingerMs` for more — so 100,000 records a second are a
 * few hundred mailbox records, not 100,000. A caller's promise resolves once every batch holding one
 * of its records is durable (runtime.send), which is when a forward `chunk` may be acked.
 */
import { ArgusError } from '../../runtime/errors.ts';
import type { Runtime } from '../../runtime/runtime.ts';
import { LOG_KIND, type LogMessage, subStreamKey } from './entity.ts';
import { type IncomingLog, isStreamName, type LogSink, type StoredLog } from './types.ts';

/** A mailbox message stays under Kafka's default 1 MiB record limit with room for the envelope. */
export const MAX_BATCH_BYTES = 512 * 1024;

export interface SinkOptions {
  readonly subStreams: number;
  readonly batchRecords: number;
  readonly lingerMs: number;
  /** Called with each batch once durable (the live tail of one node). */
  readonly landed?: (stream: string, records: readonly StoredLog[]) => void;
}

interface Batch {
  readonly stream: string;
  readonly records: StoredLog[];
  bytes: number;
  readonly done: Promise<void>;
  resolve(): void;
  reject(e: unknown): void;
  timer: ReturnType<typeof setTimeout> | undefined;
}

/** A cheap upper-ish estimate of a record's encoded size: strings by length, the rest by a constant. */
export const approxBytes = (fields: Readonly<Record<string, unknown>>): number => {
  let n = 16;
  for (const k in fields) {
    const v = fields[k];
    n += k.length + 2;
    if (typeof v === 'string') n += v.length + 2;
    else if (typeof v === 'object' && v !== null) n += v instanceof Uint8Array ? v.length : 64;
    else n += 9;
  }
  return n;
};

export class LogIngest implements LogSink {
  private readonly open = new Map<string, Batch>();
  private appended = 0;
  private failed = 0;

  constructor(
    private readonly runtime: () => Runtime | undefined,
    private readonly options: SinkOptions,
  ) {}

  stats(): { appended: number; failed: number; pending: number } {
    let pending = 0;
    for (const b of this.open.values()) pending += b.records.length;
    return { appended: this.appended, failed: this.failed, pending };
  }

  append(stream: string, records: readonly IncomingLog[]): Promise<void> {
    if (!isStreamName(stream))
      return Promise.reject(
        new ArgusError(
          'ARGUS_ERR_INVALID_LOG',
          `stream name '${String(stream).slice(0, 200)}' must be 1-128 letters, digits, . _ - (not starting with . or -)`,
          { stream },
        ),
      );
    if (records.length === 0) return Promise.resolve();
    const waits = new Set<Promise<void>>();
    for (const r of records) {
      const key = subStreamKey(stream, r.host, this.options.subStreams);
      const bytes = approxBytes(r.fields);
      let batch = this.open.get(key);
      // A record that would take the batch past its bytes goes in the next one.
      if (batch && batch.bytes + bytes > MAX_BATCH_BYTES) {
        this.flush(key, batch);
        batch = undefined;
      }
      if (!batch) {
        batch = this.newBatch(stream);
        this.open.set(key, batch);
        this.schedule(key, batch);
      }
      batch.records.push({ time: r.time, fields: r.fields });
      batch.bytes += bytes;
      waits.add(batch.done);
      if (batch.records.length >= this.options.batchRecords) this.flush(key, batch);
    }
    return waits.size === 1 ? [...waits][0]! : Promise.all(waits).then(() => undefined);
  }

  /** Appends what is waiting now (at stop). */
  async drain(): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const [key, batch] of this.open) {
      waits.push(batch.done.catch(() => undefined));
      this.flush(key, batch);
    }
    await Promise.all(waits);
  }

  private newBatch(stream: string): Batch {
    let resolve!: () => void;
    let reject!: (e: unknown) => void;
    const done = new Promise<void>((res, rej) => {
      resolve = res;
      reject = rej;
    });
    // A caller that stopped listening must not turn a failed append into an unhandled rejection.
    done.catch(() => undefined);
    return { stream, records: [], bytes: 0, done, resolve, reject, timer: undefined };
  }

  private schedule(key: string, batch: Batch): void {
    batch.timer = setTimeout(() => {
      if (this.open.get(key) === batch) this.flush(key, batch);
    }, this.options.lingerMs);
  }

  private flush(key: string, batch: Batch): void {
    if (this.open.get(key) === batch) this.open.delete(key);
    if (batch.timer !== undefined) clearTimeout(batch.timer);
    batch.timer = undefined;
    const rt = this.runtime();
    if (!rt) {
      batch.reject(new ArgusError('ARGUS_ERR_NOT_STARTED', 'log ingest: the runtime is not running'));
      return;
    }
    const message: LogMessage = { type: 'log.records', records: batch.records };
    rt.send(LOG_KIND, key, message).then(
      () => {
        this.appended += batch.records.length;
        batch.resolve();
        this.options.landed?.(batch.stream, batch.records);
      },
      (e) => {
        this.failed += batch.records.length;
        batch.reject(e);
      },
    );
  }
}
