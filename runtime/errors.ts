/**
 * The registry of coded errors (fastify style). Every error Argus throws at an API user carries one of
 * these codes; docs/ERRORS.md lists them and a test keeps the two in step.
 */
export const ErrorCodes = {
  ARGUS_ERR_INVALID_CONFIG: 'configuration is invalid',
  ARGUS_ERR_INVALID_TOPIC: 'a topic name is invalid or collides with another',
  ARGUS_ERR_UNKNOWN_KIND: 'no entity kind of that name is registered',
  ARGUS_ERR_DUPLICATE_KIND: 'an entity kind of that name is already registered',
  ARGUS_ERR_INVALID_KEY: 'an entity key is empty, too long or holds control characters',
  ARGUS_ERR_INVALID_MESSAGE: 'a message is not valid for its entity kind',
  ARGUS_ERR_NOT_STARTED: 'the runtime is not running',
  ARGUS_ERR_ALREADY_STARTED: 'the runtime was already started',
  ARGUS_ERR_INVALID_CHILD_SPEC: 'a supervisor child spec is invalid',
  ARGUS_ERR_DUPLICATE_CHILD: 'a supervisor already has a child with that id',
  ARGUS_ERR_SUPERVISOR_STOPPED: 'the supervisor is stopped',
  ARGUS_ERR_DECODE: 'a mailbox record could not be decoded',
  ARGUS_ERR_TIMEOUT: 'an operation did not finish in time',
  ARGUS_ERR_TRANSPORT: 'the mailbox transport failed',
  ARGUS_ERR_STORE_CLOSED: 'the store is closed',
  ARGUS_ERR_FENCED: 'a newer owner of the shard fenced this writer',
  ARGUS_ERR_UNREACHABLE: 'the node that owns the entity did not answer',
  ARGUS_ERR_COORDINATION: 'the cluster coordinator (etcd) failed',
  ARGUS_ERR_UNKNOWN_STREAM: 'an entity emitted to a stream its kind does not declare',
  ARGUS_ERR_INVALID_RULE: 'a rule document (or its id, or a rules file) is invalid',
  ARGUS_ERR_NOT_ACTIVE: 'an admin action needs an active entity and this one is not',
  ARGUS_ERR_INVALID_LOG: 'a log record, stream name or log request is invalid',
  ARGUS_ERR_INVALID_LOG_RULE: 'a log rule (its SQL, its document or its id) is invalid',
} as const;

export type ErrorCode = keyof typeof ErrorCodes;

export class ArgusError extends Error {
  readonly code: ErrorCode;
  /** Structured detail (the field, the value, …) for programs; `message` is for people. */
  readonly detail: Readonly<Record<string, unknown>>;

  constructor(
    code: ErrorCode,
    message: string,
    detail: Record<string, unknown> = {},
    options?: ErrorOptions,
  ) {
    super(`${code}: ${message}`, options);
    this.name = 'ArgusError';
    this.code = code;
    this.detail = detail;
  }
}

export const isArgusError = (e: unknown, code?: ErrorCode): e is ArgusError =>
  e instanceof ArgusError && (code === undefined || e.code === code);

/** Plain data for an unknown thrown value, safe to put in an event or a dead letter. */
export const describeError = (e: unknown): { message: string; stack?: string } => {
  if (e instanceof Error) return e.stack ? { message: e.message, stack: e.stack } : { message: e.message };
  return { message: String(e) };
};
