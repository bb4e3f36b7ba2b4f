/**
 * A fake `LogSink` (the listeners' boundary) that records every append, for exact assertions. By default
 * each append resolves at once; `hold()` makes the next appends wait until `resolve(i)` / `release()`,
 * and `fail(error)` makes them reject — so a test controls when records are "durable".
 */
import type { IncomingLog, LogSink } from '../../actors/log/types.ts';

export interface SinkCall {
  readonly stream: string;
  readonly records: readonly IncomingLog[];
  /** 'pending' while held; then how it ended. */
  state: 'pending' | 'resolved' | 'rejected';
}

export class RecordingSink implements LogSink {
  readonly calls: SinkCall[] = [];
  private mode: 'resolve' | 'hold' | 'fail' = 'resolve';
  private error: Error = new Error('sink failed');
  private readonly waiting = new Map<SinkCall, { resolve: () => void; reject: (e: Error) => void }>();

  append(stream: string, records: readonly IncomingLog[]): Promise<void> {
    const call: SinkCall = { stream, records: [...records], state: 'pending' };
    this.calls.push(call);
    if (this.mode === 'resolve') {
      call.state = 'resolved';
      return Promise.resolve();
    }
    if (this.mode === 'fail') {
      call.state = 'rejected';
      return Promise.reject(this.error);
    }
    return new Promise((resolve, reject) => {
      this.waiting.set(call, {
        resolve: () => {
          call.state = 'resolved';
          resolve();
        },
        reject: (e) => {
          call.state = 'rejected';
          reject(e);
        },
      });
    });
  }

  /** Appends from now on wait for `resolve(i)`, `reject(i)` or `release()`. */
  hold(): void {
    this.mode = 'hold';
  }

  /** Appends from now on reject with `error`. */
  fail(error: Error): void {
    this.mode = 'fail';
    this.error = error;
  }

  /** Resolves held call `i`. */
  resolve(i: number): void {
    const call = this.calls[i]!;
    this.waiting.get(call)?.resolve();
    this.waiting.delete(call);
  }

  /** Rejects held call `i`. */
  reject(i: number, error = new Error('sink failed')): void {
    const call = this.calls[i]!;
    this.waiting.get(call)?.reject(error);
    this.waiting.delete(call);
  }

  /** Resolves every held call, and appends from now on resolve at once. */
  release(): void {
    this.mode = 'resolve';
    for (const [call, w] of this.waiting) {
      this.waiting.delete(call);
      w.resolve();
    }
  }

  /** Every record appended to `stream` (or to any stream), in order, with its stream. */
  records(stream?: string): { stream: string; log: IncomingLog }[] {
    return this.calls
      .filter((c) => stream === undefined || c.stream === stream)
      .flatMap((c) => c.records.map((log) => ({ stream: c.stream, log })));
  }

  get count(): number {
    return this.calls.reduce((n, c) => n + c.records.length, 0);
  }
}
