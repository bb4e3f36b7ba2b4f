/**
 * Helpers for the Kafka integration tests: consume a mailbox until a condition holds, and bytes ↔ text.
 */
import type {
  ConsumeOptions,
  Consumption,
  MailboxBatch,
  MailboxTransport,
  PartitionRef,
} from '../../runtime/boundaries.ts';

import { assignAll } from '../helpers/assign.ts';

export const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);
export const text = (value: Uint8Array): string => new TextDecoder().decode(value);

export interface Recorded {
  readonly batches: MailboxBatch[];
  readonly assigned: { ref: PartitionRef; startOffset: number }[];
  readonly revoked: PartitionRef[];
}

/**
 * Consumes until `done(recorded)` is true (checked after each batch), then stops the consumption and
 * returns what was seen. `onBatch` may reject to test re-delivery; rejected batches are recorded too.
 */
export const consumeUntil = async (
  mailbox: MailboxTransport,
  options: Omit<ConsumeOptions, 'onBatch'> & {
    onBatch?: (batch: MailboxBatch, recorded: Recorded) => Promise<void>;
  },
  done: (recorded: Recorded) => boolean,
  timeoutMs = 20_000,
): Promise<Recorded> => {
  let finish!: () => void;
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const { recorded, stop } = await recordingConsumer(mailbox, options, async (batch, r) => {
    await options.onBatch?.(batch, r);
    if (done(r)) finish();
  });
  let timer: NodeJS.Timeout | undefined;
  try {
    await Promise.race([
      finished,
      new Promise((_, reject) => {
        timer = setTimeout(
          () => reject(new Error(`consumeUntil: condition not met within ${timeoutMs} ms`)),
          timeoutMs,
        );
      }),
    ]);
  } finally {
    clearTimeout(timer);
    await stop();
  }
  return recorded;
};

/** The records of the batches as `partition:offset:key:value` strings, in delivery order. */
export const describeRecords = (batches: readonly MailboxBatch[]): string[] =>
  batches.flatMap((b) => b.records.map((r) => `${r.partition}:${r.offset}:${r.key}:${text(r.value)}`));

/** A consumption that records everything until stopped; `then` runs after each batch is recorded. */
export const recordingConsumer = async (
  mailbox: MailboxTransport,
  options: Omit<ConsumeOptions, 'onBatch'>,
  then?: (batch: MailboxBatch, recorded: Recorded) => Promise<void>,
  owns?: (ref: PartitionRef) => boolean,
): Promise<{ recorded: Recorded; consumption: Consumption; stop(): Promise<void> }> => {
  const recorded: Recorded = { batches: [], assigned: [], revoked: [] };
  const consumption = await mailbox.consume({
    ...options,
    onBatch: async (batch) => {
      recorded.batches.push(batch);
      await then?.(batch, recorded);
    },
  });
  recorded.assigned.push(...(await assignAll(mailbox, consumption, options.kinds, owns)));
  return {
    recorded,
    consumption,
    stop: async () => {
      recorded.revoked.push(...consumption.assigned());
      await consumption.stop();
    },
  };
};

export { waitFor } from '../helpers/wait.ts';
