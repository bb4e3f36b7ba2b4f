/**
 * The live tail of log streams on the feed (protocol.ts): which client tails which stream through which
 * filter, the subscription to the node's `LogTap` (held only while at least one tail is open), and the
 * fan-out of each batch the tap delivers — filtered once per distinct filter text and encoded once for
 * every client that takes the whole of it, like events. A client that falls behind is sampled
 * (sample.ts), never closed and never waited on; a stretch's marker that no log frame follows is sent
 * alone once the client is back under the bound (looked at every `flushMs`).
 */
import { matchesFilter } from '../../actors/log/filter.ts';
import type { LogTap, StoredLog } from '../../actors/log/types.ts';
import type { Clock, TimerHandle } from '../boundaries.ts';
import type { ClientTail, FeedClient } from './client.ts';
import { encodeFrame, MAX_TAILS, type ServerFrame, type TailFrame } from './protocol.ts';
import { account, nextRate, pick } from './sample.ts';

export interface LogTailsOptions {
  /** The node's tap; undefined while log streams are off (a tail is then refused). */
  readonly logTap: () => LogTap | undefined;
  /** Bytes waiting to a client past which its records are sampled. */
  readonly bufferBytes: number;
  /** How often clients with a marker still to send are looked at. */
  readonly flushMs: number;
  readonly clock: Clock;
  readonly warn: (message: string) => void;
}

export interface TailStats {
  /** Tails open now (all clients, all streams). */
  readonly tails: number;
  /** Records the tap delivered for tailed streams since start. */
  readonly records: number;
  /** Records left out by sampling since start (each reported in a marker). */
  readonly sampledOut: number;
}

/** One batch through one filter: the records that passed, and their frame once a client took it whole. */
interface Filtered {
  readonly passed: readonly StoredLog[];
  frame: Buffer | undefined;
}

export class LogTails {
  private readonly byStream = new Map<string, Set<FeedClient>>();
  /** Clients with a stretch whose marker waits for them to catch up. */
  private readonly behind = new Set<FeedClient>();
  private open = 0;
  private records = 0;
  private sampledOut = 0;
  private unencodable = 0;
  private unsubscribe: (() => void) | undefined;
  private timer: TimerHandle | undefined;

  constructor(private readonly options: LogTailsOptions) {}

  stats(): TailStats {
    return { tails: this.open, records: this.records, sampledOut: this.sampledOut };
  }

  /** Starts (or replaces) a client's tail of a stream and acks it; refusals are error frames. */
  tail(client: FeedClient, frame: TailFrame): void {
    const { stream } = frame;
    const earlier = client.tails.get(stream);
    if (!earlier && client.tails.size >= MAX_TAILS) {
      this.send(client, {
        type: 'error',
        error: `stream: at most ${MAX_TAILS} streams can be tailed at once on one connection; untail one first`,
      });
      return;
    }
    const problem = this.unsubscribe ? undefined : this.subscribe();
    if (problem) {
      this.send(client, { type: 'error', error: problem });
      return;
    }
    if (earlier) this.closeGap(client, earlier);
    else this.open++;
    client.tails.set(stream, { stream, filter: frame.filter, expr: frame.expr, gap: undefined });
    let clients = this.byStream.get(stream);
    if (!clients) {
      clients = new Set();
      this.byStream.set(stream, clients);
    }
    clients.add(client);
    this.send(client, { type: 'tailing', stream, filter: frame.filter });
  }

  /** Ends a client's tail of a stream (its last marker first) and acks it, also when it was not on. */
  untail(client: FeedClient, stream: string): void {
    const tail = client.tails.get(stream);
    if (tail) {
      this.closeGap(client, tail);
      this.forget(client, stream);
    }
    this.send(client, { type: 'untailed', stream });
  }

  /** A client gone: its tails end without a word. */
  remove(client: FeedClient): void {
    for (const stream of [...client.tails.keys()]) this.forget(client, stream);
    this.behind.delete(client);
  }

  /** Sends a batch of one stream to the clients tailing it (the tap's listener). */
  publish(stream: string, records: readonly StoredLog[]): void {
    const clients = this.byStream.get(stream);
    if (!clients || records.length === 0) return;
    this.records += records.length;
    const byFilter = new Map<string, Filtered>();
    let now: number | undefined;
    for (const client of clients) {
      const tail = client.tails.get(stream);
      if (!tail || !client.open) continue;
      let filtered = byFilter.get(tail.filter);
      if (!filtered) {
        filtered = { passed: passing(records, tail), frame: undefined };
        byFilter.set(tail.filter, filtered);
      }
      if (filtered.passed.length === 0) continue;
      client.sampling = nextRate(client.sampling, client.waiting, this.options.bufferBytes);
      if (client.sampling.every === 1 && client.sampling.skip === 0 && tail.gap === undefined) {
        filtered.frame ??= this.encode({ type: 'log', stream, records: filtered.passed });
        if (filtered.frame) client.sendTail(filtered.frame);
        continue;
      }
      now ??= this.options.clock.now();
      const { kept, state } = pick(filtered.passed, client.sampling);
      client.sampling = state;
      const { gap, marker } = account(tail.gap, filtered.passed.length, kept.length, state.every, now);
      tail.gap = gap;
      this.sampledOut += filtered.passed.length - kept.length;
      if (marker) this.send(client, { type: 'sampled', stream, ...marker });
      if (kept.length === filtered.passed.length) {
        filtered.frame ??= this.encode({ type: 'log', stream, records: filtered.passed });
        if (filtered.frame) client.sendTail(filtered.frame);
      } else if (kept.length > 0) {
        const frame = this.encode({ type: 'log', stream, records: kept });
        if (frame) client.sendTail(frame);
      }
      if (gap && gap.dropped > 0) this.markBehind(client);
    }
  }

  /** Unsubscribes from the tap and forgets every tail (the hub closes the clients). */
  stop(): void {
    if (this.timer) this.options.clock.clearTimeout(this.timer);
    this.timer = undefined;
    this.behind.clear();
    this.byStream.clear();
    this.open = 0;
    this.unsubscribe?.();
    this.unsubscribe = undefined;
  }

  /** Subscribes to the tap; the refusal's text when there is none. */
  private subscribe(): string | undefined {
    let tap: LogTap | undefined;
    try {
      tap = this.options.logTap();
      if (!tap) return 'stream: log streams are not enabled on this node (no log tap)';
      this.unsubscribe = tap.subscribe((stream, records) => this.publish(stream, records));
    } catch (e) {
      return `stream: the log tap could not be subscribed to (${(e as Error).message})`;
    }
    return undefined;
  }

  private forget(client: FeedClient, stream: string): void {
    if (!client.tails.delete(stream)) return;
    this.open--;
    const clients = this.byStream.get(stream);
    clients?.delete(client);
    if (clients?.size === 0) this.byStream.delete(stream);
    if (this.open === 0) {
      this.unsubscribe?.();
      this.unsubscribe = undefined;
    }
  }

  /** Sends a tail's open stretch as a marker, if anything was left out in it. */
  private closeGap(client: FeedClient, tail: ClientTail): void {
    const gap = tail.gap;
    tail.gap = undefined;
    if (gap && gap.dropped > 0) this.send(client, { type: 'sampled', stream: tail.stream, ...gap });
  }

  private markBehind(client: FeedClient): void {
    this.behind.add(client);
    if (this.timer) return;
    this.timer = this.options.clock.setTimeout(() => this.flushBehind(), this.options.flushMs);
  }

  /** Clients back under the bound get their pending markers; the others are looked at again later. */
  private flushBehind(): void {
    this.timer = undefined;
    for (const client of this.behind) {
      if (!client.open) {
        this.behind.delete(client);
        continue;
      }
      if (client.waiting > this.options.bufferBytes) continue;
      for (const tail of client.tails.values()) this.closeGap(client, tail);
      this.behind.delete(client);
    }
    if (this.behind.size > 0)
      this.timer = this.options.clock.setTimeout(() => this.flushBehind(), this.options.flushMs);
  }

  private send(client: FeedClient, frame: ServerFrame): void {
    const bytes = this.encode(frame);
    if (bytes) client.sendTail(bytes);
  }

  private encode(frame: ServerFrame): Buffer | undefined {
    try {
      return encodeFrame(frame);
    } catch (e) {
      if (this.unencodable++ === 0)
        this.options.warn(`a log record is not JSON (${(e as Error).message}); its batch is skipped`);
      return undefined;
    }
  }
}

/** The batch's records that pass the tail's filter, as `{time, fields}` (the wire's shape). */
const passing = (records: readonly StoredLog[], tail: ClientTail): StoredLog[] => {
  const passed: StoredLog[] = [];
  for (const r of records) {
    let match: boolean;
    try {
      match = matchesFilter(tail.expr, r.fields);
    } catch {
      // A filter must not break the fan-out; a record it cannot judge does not pass.
      match = false;
    }
    if (match) passed.push({ time: r.time, fields: r.fields });
  }
  return passed;
};
