/**
 * Tests of the mailbox transports consume the way the runtime does: start a consumption, then assign
 * partitions to it explicitly, each from its committed offset.
 */
import type { Consumption, MailboxTransport, PartitionRef } from '../../runtime/boundaries.ts';

export interface Assignment {
  readonly ref: PartitionRef;
  readonly startOffset: number;
}

/** Assigns every partition of `kinds` that `owns` accepts (default: all), from its committed offset. */
export const assignAll = async (
  mailbox: MailboxTransport,
  consumption: Consumption,
  kinds: readonly string[],
  owns: (ref: PartitionRef) => boolean = () => true,
): Promise<Assignment[]> => {
  const assigned: Assignment[] = [];
  for (const kind of kinds) {
    const count = await mailbox.partitionCount(kind);
    for (let partition = 0; partition < count; partition++) {
      const ref = { kind, partition };
      if (!owns(ref)) continue;
      const startOffset = await mailbox.committed(kind, partition);
      consumption.assign(ref, startOffset);
      assigned.push({ ref, startOffset });
    }
  }
  return assigned;
};
