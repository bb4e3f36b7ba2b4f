/**
 * Syslog over TCP, RFC 6587: a stream of bytes cut into frames, each handed to `onFrame` as it
 * completes. Pure: push chunks in, frames come out; the socket lives elsewhere.
 *
 * - Each frame is told apart on its own, as rsyslog's imtcp does: one that starts with a digit 1–9
 *   followed by more digits and a space is **octet-counted** (`<len> <msg>`, len bytes exactly);
 *   anything else is **non-transparent** (ends at LF, or at NUL; a CR before the LF is dropped). Digits
 *   not followed by a space (a PRI-less line such as `2026-…`) are the start of a non-transparent frame,
 *   kept, not an error. Empty frames (blank lines, a stray LF after an octet-counted frame) are skipped.
 * - Memory is bounded by `maxFrameBytes` (default 64 KiB): an octet-counted frame that declares more
 *   is reported and its bytes skipped as they arrive; a line that grows past it is reported once and
 *   dropped up to the next LF or NUL, where framing starts again. A 100 MB line costs nothing but time.
 * - `end()` (connection closed) hands on a last line with no LF, as rsyslog does, and reports an
 *   octet-counted frame cut short.
 */

import { ArgusError } from '../../runtime/errors.ts';
export interface SyslogFramerOptions {
  /** Largest frame kept, in bytes (the message, without its length prefix or LF). Default 64 KiB. */
  readonly maxFrameBytes?: number;
  readonly onFrame: (frame: Buffer) => void;
  /** A frame that was dropped, and why; the framer carries on with the next one. */
  readonly onError: (message: string) => void;
}

export const DEFAULT_MAX_FRAME_BYTES = 64 * 1024;
/** 10 digits is ~9.3 GiB: more is not a length any sender means. */
const MAX_LENGTH_DIGITS = 10;
const [LF, CR, NUL, SPACE, ZERO, ONE, NINE] = [10, 13, 0, 32, 48, 49, 57];

type State =
  /** Between frames. */
  | { readonly kind: 'start' }
  /** Reading the digits of what may be an octet count. */
  | { readonly kind: 'length'; digits: number; value: number }
  /** Inside an octet-counted frame: `remaining` bytes still to come. */
  | { readonly kind: 'counted'; remaining: number; readonly length: number }
  /** Skipping an octet-counted frame that is too large. */
  | { readonly kind: 'skipCounted'; remaining: number }
  /** Inside a non-transparent frame. */
  | { readonly kind: 'line' }
  /** Dropping a line that grew too large, up to its LF or NUL. */
  | { readonly kind: 'skipLine' };

export class SyslogFramer {
  private readonly maxFrameBytes: number;
  private readonly onFrame: (frame: Buffer) => void;
  private readonly onError: (message: string) => void;
  private state: State = { kind: 'start' };
  /** The current frame's bytes so far (never more than maxFrameBytes in all). */
  private parts: Buffer[] = [];
  private held = 0;

  constructor(options: SyslogFramerOptions) {
    const max = options.maxFrameBytes ?? DEFAULT_MAX_FRAME_BYTES;
    if (!Number.isSafeInteger(max) || max < 1)
      throw new ArgusError(
        'ARGUS_ERR_INVALID_CONFIG',
        `SyslogFramer: maxFrameBytes must be a positive integer, not ${max}`,
        { field: 'maxFrameBytes', value: max },
      );
    this.maxFrameBytes = max;
    this.onFrame = options.onFrame;
    this.onError = options.onError;
  }

  /** Bytes of an unfinished frame held right now (for memory accounting and tests). */
  get bufferedBytes(): number {
    return this.held;
  }

  push(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) pos = this.step(chunk, pos);
  }

  /** The connection closed: a last unterminated line is a frame; a cut octet-counted frame is an error. */
  end(): void {
    const state = this.state;
    switch (state.kind) {
      case 'start':
      case 'skipLine':
        break;
      case 'length':
      case 'line':
        this.emitLine();
        break;
      case 'counted':
        this.onError(
          `connection closed inside an octet-counted frame: ${state.length - state.remaining} of ${state.length} bytes received`,
        );
        break;
      case 'skipCounted':
        this.onError(`connection closed inside a skipped oversized frame (${state.remaining} bytes short)`);
        break;
      default: {
        const never: never = state;
        throw new Error(`unknown framer state ${JSON.stringify(never)}`);
      }
    }
    this.reset();
  }

  /** Consumes bytes of `chunk` from `pos` in the current state; returns where it stopped. */
  private step(chunk: Buffer, pos: number): number {
    const state = this.state;
    switch (state.kind) {
      case 'start': {
        const c = chunk[pos]!;
        if (c === LF || c === CR || c === NUL) return pos + 1;
        this.state = c >= ONE && c <= NINE ? { kind: 'length', digits: 0, value: 0 } : { kind: 'line' };
        return pos;
      }
      case 'length':
        return this.readLength(state, chunk, pos);
      case 'counted': {
        const take = Math.min(state.remaining, chunk.length - pos);
        this.hold(chunk.subarray(pos, pos + take));
        state.remaining -= take;
        if (state.remaining === 0) this.emitCounted();
        return pos + take;
      }
      case 'skipCounted': {
        const take = Math.min(state.remaining, chunk.length - pos);
        state.remaining -= take;
        if (state.remaining === 0) this.state = { kind: 'start' };
        return pos + take;
      }
      case 'line':
      case 'skipLine': {
        const end = delimiter(chunk, pos);
        const stop = end < 0 ? chunk.length : end;
        if (state.kind === 'line') {
          if (this.held + (stop - pos) > this.maxFrameBytes) {
            this.onError(
              `frame longer than maxFrameBytes (${this.maxFrameBytes}) without a newline: dropped up to the next newline`,
            );
            this.reset();
            this.state = { kind: 'skipLine' };
          } else this.hold(chunk.subarray(pos, stop));
        }
        if (end < 0) return chunk.length;
        if (this.state.kind === 'line') this.emitLine();
        this.reset();
        return end + 1;
      }
      default: {
        const never: never = state;
        throw new Error(`unknown framer state ${JSON.stringify(never)}`);
      }
    }
  }

  private readLength(state: State & { kind: 'length' }, chunk: Buffer, pos: number): number {
    let i = pos;
    for (; i < chunk.length; i++) {
      const c = chunk[i]!;
      if (c === SPACE && state.digits > 0) {
        this.held = 0;
        this.parts = [];
        if (state.value > this.maxFrameBytes) {
          this.onError(
            `octet-counted frame of ${state.value} bytes is larger than maxFrameBytes (${this.maxFrameBytes}): skipped`,
          );
          this.state = { kind: 'skipCounted', remaining: state.value };
        } else this.state = { kind: 'counted', remaining: state.value, length: state.value };
        return i + 1;
      }
      if (c < ZERO || c > NINE || state.digits === MAX_LENGTH_DIGITS) {
        // Not an octet count after all: the digits so far (held) open a non-transparent frame.
        this.hold(chunk.subarray(pos, i));
        this.state = { kind: 'line' };
        return i;
      }
      state.digits++;
      state.value = state.value * 10 + (c - ZERO);
    }
    this.hold(chunk.subarray(pos, i));
    return i;
  }

  private hold(bytes: Buffer): void {
    if (bytes.length === 0) return;
    // A copy: the caller may reuse its chunk buffer once push returns.
    this.parts.push(Buffer.from(bytes));
    this.held += bytes.length;
  }

  private emitCounted(): void {
    const frame = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.held);
    this.reset();
    this.onFrame(frame);
  }

  private emitLine(): void {
    let frame = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts, this.held);
    if (frame.length > 0 && frame[frame.length - 1] === CR) frame = frame.subarray(0, frame.length - 1);
    this.reset();
    if (frame.length > 0) this.onFrame(frame);
  }

  private reset(): void {
    this.parts = [];
    this.held = 0;
    this.state = { kind: 'start' };
  }
}

/** The first LF or NUL at or after `pos`, or -1. */
const delimiter = (chunk: Buffer, pos: number): number => {
  const lf = chunk.indexOf(LF, pos);
  // NUL framing is rare: look for it only up to the LF found.
  const nul = chunk.subarray(pos, lf < 0 ? chunk.length : lf).indexOf(NUL);
  return nul < 0 ? lf : pos + nul;
};
