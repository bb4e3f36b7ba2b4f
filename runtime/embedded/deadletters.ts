/**
 * Dead letters in the journal's `dead-letters` database, keyed by a sequence number assigned in the
 * write transaction (last key + 1), so insertion order holds across processes and `list` is a forward
 * scan. Values are msgpack; every field is rebuilt explicitly on read, so what comes back is exactly the
 * DeadLetter that went in (an absent key stays `undefined`, the value is a plain Uint8Array).
 * Dead letters are rare: `list(kind)` filters a full scan rather than keeping a per-kind index, and
 * `discard` deletes the matching entries in one write transaction after such a scan. Deleting (not
 * marking) is safe here because every node of an embedded Argus reads this one journal.
 */
import type { DeadLetter, DeadLetterId, DeadLetterStore } from '../boundaries.ts';
import { ArgusError } from '../errors.ts';
import type { JournalEnv } from './env.ts';

/** The stored shape: msgpack has no `undefined` in maps worth relying on, so a missing key is null. */
interface StoredDeadLetter {
  readonly kind: string;
  readonly partition: number;
  readonly offset: number;
  readonly key: string | null;
  readonly reason: string;
  readonly error: string;
  readonly attempts: number;
  readonly at: number;
  readonly value: Uint8Array;
}

export class EmbeddedDeadLetterStore implements DeadLetterStore {
  constructor(private readonly env: JournalEnv) {}

  async ensure(): Promise<void> {
    this.env.assertOpen('deadLetters');
  }

  async put(letters: readonly DeadLetter[]): Promise<void> {
    const write = this.preparePut(letters);
    if (letters.length > 0) await this.env.write(write);
  }

  /** The body that appends the letters, to run inside a journal write transaction. */
  preparePut(letters: readonly DeadLetter[]): () => void {
    this.env.assertOpen('deadLetters');
    const stored = letters.map(toStored);
    const db = this.env.db.deadLetters;
    return () => {
      if (stored.length === 0) return;
      let next = 0;
      for (const last of db.getKeys({ reverse: true, limit: 1 })) next = last + 1;
      for (const letter of stored) db.putSync(next++, letter);
    };
  }

  async list(kind?: string): Promise<DeadLetter[]> {
    this.env.assertOpen('deadLetters');
    this.env.fresh();
    const letters: DeadLetter[] = [];
    for (const { key: seq, value } of this.env.db.deadLetters.getRange({})) {
      const letter = fromStored(seq, value);
      if (kind === undefined || letter.kind === kind) letters.push(letter);
    }
    return letters;
  }

  async discard(ids: readonly DeadLetterId[]): Promise<number> {
    this.env.assertOpen('deadLetters');
    const wanted = new Set(ids.map(idText));
    if (wanted.size === 0) return 0;
    const db = this.env.db.deadLetters;
    // Scanned inside the write transaction: it holds the journal's writer lock, so a letter another
    // process discards meanwhile is counted once, by whichever of the two commits first.
    return this.env.write(() => {
      const matching: number[] = [];
      for (const { key: seq, value } of db.getRange({})) {
        const id = storedIdText(value);
        if (id !== undefined && wanted.has(id)) matching.push(seq);
      }
      // Removed after the scan: a cursor that deletes under itself is not something to rely on.
      for (const seq of matching) db.removeSync(seq);
      return matching.length;
    });
  }

  async close(): Promise<void> {
    if (this.env.isOpen('deadLetters')) await this.env.release('deadLetters');
  }
}

const toStored = (letter: DeadLetter): StoredDeadLetter => ({
  kind: letter.kind,
  partition: letter.partition,
  offset: letter.offset,
  key: letter.key ?? null,
  reason: letter.reason,
  error: letter.error,
  attempts: letter.attempts,
  at: letter.at,
  value: letter.value,
});

const idText = ({ kind, partition, offset }: DeadLetterId): string => `${kind}:${partition}:${offset}`;

/** The id of a stored entry as text, without checking the rest of it; undefined if it has none. */
const storedIdText = (raw: unknown): string | undefined => {
  if (typeof raw !== 'object' || raw === null) return undefined;
  const { kind, partition, offset } = raw as Record<string, unknown>;
  if (typeof kind !== 'string' || typeof partition !== 'number' || typeof offset !== 'number')
    return undefined;
  return idText({ kind, partition, offset });
};

/** Checks the decoded msgpack against the stored shape; anything else is a damaged entry. */
const fromStored = (seq: number, raw: unknown): DeadLetter => {
  if (typeof raw !== 'object' || raw === null) throw damaged(seq, 'not a map');
  const r = raw as Record<string, unknown>;
  const text = (field: string): string => {
    const v = r[field];
    if (typeof v !== 'string') throw damaged(seq, field);
    return v;
  };
  const num = (field: string): number => {
    const v = r[field];
    if (typeof v !== 'number') throw damaged(seq, field);
    return v;
  };
  const key = r.key;
  const value = r.value;
  if (key !== null && typeof key !== 'string') throw damaged(seq, 'key');
  if (!(value instanceof Uint8Array)) throw damaged(seq, 'value');
  return {
    kind: text('kind'),
    partition: num('partition'),
    offset: num('offset'),
    key: key ?? undefined,
    reason: text('reason'),
    error: text('error'),
    attempts: num('attempts'),
    at: num('at'),
    // msgpackr decodes bytes to a Buffer that may share memory with its input; hand out an own copy.
    value: new Uint8Array(value),
  };
};

const damaged = (seq: number, field: string): ArgusError =>
  new ArgusError('ARGUS_ERR_DECODE', `dead letter #${seq} in the embedded journal is damaged (${field})`, {
    seq,
    field,
  });
