/**
 * The edge check of `receiver/<id>`'s mailbox: `parseReceiverMessage` turns a payload into a
 * `ReceiverMessage` or throws an error naming the message type and the field (`receiver.alert:
 * alert.seq: must be a whole number ≥ 0, got 'x'`), which dead-letters the record with that text
 * instead of crashing the entity. The payload itself is returned (not a stripped copy), so fields an
 * alert event gains later travel on untouched.
 */
import { z } from 'zod';
import { Problems, show } from './document.ts';
import type { ReceiverMessage } from './types.ts';

export const RECEIVER_MESSAGE_TYPES = [
  'receiver.alert',
  'receiver.tick',
  'receiver.result',
  'receiver.replay',
  'receiver.discard',
] as const satisfies readonly ReceiverMessage['type'][];

const time = z
  .number({
    error: (iss) => (iss.input === undefined ? 'is required' : `must be epoch ms, got ${show(iss.input)}`),
  })
  .finite('must be a finite number');
const whole = (min: number) =>
  z
    .number({
      error: (iss) =>
        iss.input === undefined ? 'is required' : `must be a whole number, got ${show(iss.input)}`,
    })
    .int({ error: (iss) => `must be a whole number ≥ ${min}, got ${show(iss.input)}` })
    .min(min, { error: (iss) => `must be a whole number ≥ ${min}, got ${show(iss.input)}` });
const labels = z.record(z.string(), z.string());
const nonEmpty = z.string().min(1, 'must not be empty');

const alertEvent = z.looseObject({
  type: z.literal('@argus.alert', { error: (iss) => `must be '@argus.alert', got ${show(iss.input)}` }),
  fingerprint: nonEmpty,
  seq: whole(0),
  rule: nonEmpty,
  status: z.enum(['pending', 'firing', 'resolved', 'inactive'], {
    error: (iss) => `must be 'pending', 'firing', 'resolved' or 'inactive', got ${show(iss.input)}`,
  }),
  severity: whole(1).max(5, { error: (iss) => `must be 1 to 5, got ${show(iss.input)}` }),
  labels,
  annotations: labels,
  value: z.number().nullable(),
  startsAt: time,
  endsAt: time.optional(),
  at: time,
  host: z.string().optional(),
  service: z.string().optional(),
});

const timing = z.object({
  groupBy: z.array(z.string()),
  groupWaitMs: whole(0),
  groupIntervalMs: whole(1),
  repeatIntervalMs: whole(1),
});

const schemas: Record<ReceiverMessage['type'], z.ZodType> = {
  'receiver.alert': z.object({
    type: z.literal('receiver.alert'),
    alert: alertEvent,
    routeId: nonEmpty,
    groupKey: nonEmpty,
    groupLabels: labels,
    timing,
    at: time,
  }),
  'receiver.tick': z.object({ type: z.literal('receiver.tick'), at: time }),
  'receiver.result': z.object({
    type: z.literal('receiver.result'),
    id: nonEmpty,
    attempt: whole(1),
    ok: z.boolean(),
    status: whole(100).max(999).optional(),
    error: z.string().optional(),
    at: time,
  }),
  'receiver.replay': z.object({ type: z.literal('receiver.replay'), id: nonEmpty.optional(), at: time }),
  'receiver.discard': z.object({ type: z.literal('receiver.discard'), id: nonEmpty.optional(), at: time }),
};

const isType = (t: unknown): t is ReceiverMessage['type'] =>
  typeof t === 'string' && (RECEIVER_MESSAGE_TYPES as readonly string[]).includes(t);

/** Checks a mailbox payload; throws an Error naming the type and every wrong field. */
export const parseReceiverMessage = (payload: unknown): ReceiverMessage => {
  if (typeof payload !== 'object' || payload === null || Array.isArray(payload))
    throw new Error(`receiver message must be an object with a 'type', got ${show(payload)}`);
  const type = (payload as { type?: unknown }).type;
  if (!isType(type))
    throw new Error(
      `unknown receiver message type ${show(type)} (expected ${RECEIVER_MESSAGE_TYPES.join(', ')})`,
    );
  const problems = new Problems();
  problems.parse(schemas[type], payload, []);
  if (problems.list.length > 0) throw new Error(`${type}: ${problems.list.join('; ')}`);
  return payload as ReceiverMessage;
};
