/**
 * Receiver documents (etcd `/<prefix>/receivers/<id>`, YAML or JSON): where one receiver's
 * notifications go and how hard to try.
 *
 *   kind: webhook              # webhook: Alertmanager webhook v4 body; chat: Slack-compatible text/blocks
 *   url: https://hooks.example.com/alertmanager
 *   secret: s3cr3t             # optional: signs every request (x-argus-signature, x-argus-timestamp)
 *   headers: { X-Team: infra } # optional, sent as they are (Argus' own headers cannot be overridden)
 *   send_resolved: true        # default true: a resolved alert is notified once
 *   max_alerts: 0              # default 0 (all): alerts per notification, the rest counted in truncatedAlerts
 *   timeout: 10s               # default 10s per request
 *   max_attempts: 10           # default 10, then the notification is a dead letter with the last error
 *   backoff: { initial: 1s, max: 5m }  # exponential with full jitter between attempts
 *
 * Validated with one error listing every wrong field (`invalid receiver 'infra': url: must be …`).
 */
import { z } from 'zod';
import { durationSchema, ID, ID_HINT, Problems, readDocument, show } from './document.ts';
import { IDEMPOTENCY_HEADER, type ReceiverConfig, SIGNATURE_HEADER, TIMESTAMP_HEADER } from './types.ts';

export const RECEIVER_DEFAULTS = {
  sendResolved: true,
  maxAlerts: 0,
  timeoutMs: 10_000,
  maxAttempts: 10,
  backoffInitialMs: 1000,
  backoffMaxMs: 300_000,
} as const;

/** Headers the notifier sets itself: a receiver document may not set them. */
export const RESERVED_HEADERS: readonly string[] = [
  'content-type',
  'content-length',
  'host',
  'connection',
  'transfer-encoding',
  IDEMPOTENCY_HEADER,
  SIGNATURE_HEADER,
  TIMESTAMP_HEADER,
];

const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;

const duration = durationSchema(true);

const count = (min: number) =>
  z
    .number({
      error: (iss) =>
        iss.input === undefined ? 'is required' : `must be a whole number, got ${show(iss.input)}`,
    })
    .int({ error: (iss) => `must be a whole number, got ${show(iss.input)}` })
    .min(min, { error: (iss) => `must be ${min} or more, got ${show(iss.input)}` });

const url = z.string().refine(
  (s) => {
    try {
      const u = new URL(s);
      return (u.protocol === 'http:' || u.protocol === 'https:') && u.hostname !== '';
    } catch {
      return false;
    }
  },
  { error: (iss) => `must be an http or https URL, got ${show(iss.input)}` },
);

const headers = z.record(z.string(), z.string()).superRefine((h, ctx) => {
  for (const [name, value] of Object.entries(h)) {
    if (!TOKEN.test(name))
      ctx.addIssue({ code: 'custom', path: [name], message: 'is not a valid HTTP header name' });
    else if (RESERVED_HEADERS.includes(name.toLowerCase()))
      ctx.addIssue({ code: 'custom', path: [name], message: 'is set by Argus and cannot be overridden' });
    if (/[\r\n\0]/.test(value))
      ctx.addIssue({ code: 'custom', path: [name], message: 'must not contain line breaks or NUL' });
  }
});

const receiverSchema = z.strictObject({
  kind: z.enum(['webhook', 'chat'], {
    error: (iss) =>
      iss.input === undefined ? 'is required' : `must be 'webhook' or 'chat', got ${show(iss.input)}`,
  }),
  url,
  secret: z.string().min(1, 'must not be empty (leave it out for no signature)').optional(),
  headers: headers.optional(),
  send_resolved: z.boolean().optional(),
  max_alerts: count(0).optional(),
  timeout: duration.optional(),
  max_attempts: count(1).optional(),
  backoff: z.strictObject({ initial: duration.optional(), max: duration.optional() }).optional(),
});

/**
 * Validates a receiver document (text or object) for receiver `id`. Throws ARGUS_ERR_INVALID_CONFIG
 * listing every problem by field.
 */
export const parseReceiver = (id: string, doc: unknown): ReceiverConfig => {
  const problems = new Problems();
  if (!ID.test(id)) problems.add(['id'], `${ID_HINT}, got ${show(id)}`);
  const value = readDocument(doc, problems);
  const r = problems.list.length === 0 ? problems.parse(receiverSchema, value, []) : undefined;
  const initial = r?.backoff?.initial ?? RECEIVER_DEFAULTS.backoffInitialMs;
  const max = r?.backoff?.max ?? RECEIVER_DEFAULTS.backoffMaxMs;
  if (r && max < initial)
    problems.add(['backoff', 'max'], `must be at least backoff.initial (${initial} ms)`);
  problems.throwIfAny(`invalid receiver ${show(id)}`, { receiver: id });
  const ok = r!;
  return {
    id,
    kind: ok.kind,
    url: ok.url,
    ...(ok.secret !== undefined ? { secret: ok.secret } : {}),
    headers: ok.headers ?? {},
    sendResolved: ok.send_resolved ?? RECEIVER_DEFAULTS.sendResolved,
    maxAlerts: ok.max_alerts ?? RECEIVER_DEFAULTS.maxAlerts,
    timeoutMs: ok.timeout ?? RECEIVER_DEFAULTS.timeoutMs,
    maxAttempts: ok.max_attempts ?? RECEIVER_DEFAULTS.maxAttempts,
    backoffInitialMs: initial,
    backoffMaxMs: max,
  };
};
