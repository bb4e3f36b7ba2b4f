/**
 * Runtime configuration: validated once at the edge (zod), typed inside. Defaults live here and only
 * here; docs/CONFIGURATION.md describes each field and a test keeps the two in step.
 */
import { hostname } from 'node:os';
import { z } from 'zod';
import { ArgusError } from './errors.ts';

const nodeIdPattern = /^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/;
const brokerPattern = /^[A-Za-z0-9.-]+:\d{1,5}$|^\[[0-9a-fA-F:]+\]:\d{1,5}$/;
const prefixPattern = /^[A-Za-z0-9][A-Za-z0-9-]{0,99}$/;
const etcdEndpointPattern = /^https?:\/\/[A-Za-z0-9.-]+:\d{1,5}$|^https?:\/\/\[[0-9a-fA-F:]+\]:\d{1,5}$/;

const backoffSchema = z
  .object({
    minMs: z.number().int().min(0).default(10),
    maxMs: z.number().int().min(0).default(10_000),
    jitter: z.number().min(0).max(1).default(0.2),
  })
  .strict();

const intensitySchema = (intensity: number, periodMs: number) =>
  z
    .object({
      intensity: z.number().int().min(0).default(intensity),
      periodMs: z.number().int().min(1).default(periodMs),
      backoff: backoffSchema.prefault({}),
    })
    .strict();

export const configSchema = z
  .object({
    /** This node's name: in paths, events and (later) cluster membership. */
    nodeId: z
      .string()
      .regex(nodeIdPattern, 'must be 1-64 letters, digits, . _ - (starting with a letter or digit)')
      .default(
        () =>
          `${
            hostname()
              .replace(/[^A-Za-z0-9._-]/g, '-')
              .slice(0, 40) || 'node'
          }-${process.pid}`,
      ),
    /** 'embedded': one node, LMDB journal in dataDir. 'kafka': mailboxes and snapshots in Kafka. */
    mode: z.enum(['embedded', 'kafka']).default('embedded'),
    dataDir: z.string().min(1).default('./data'),
    kafka: z
      .object({
        brokers: z.array(z.string().regex(brokerPattern, 'must be host:port')).min(1),
        clientId: z.string().min(1).default('argus'),
        topicPrefix: z
          .string()
          .regex(prefixPattern, 'must be letters, digits and - (1-100)')
          .default('argus'),
      })
      .strict()
      .optional(),
    embedded: z
      .object({
        /** How often to look for records appended by another process. */
        pollMs: z.number().int().min(1).default(10),
        /** fsync every commit (survives power loss, slower); off still survives kill -9. */
        sync: z.boolean().default(false),
        /** Records each output stream partition (metrics, host events) keeps in the journal. */
        streamRetention: z.number().int().min(1).default(20_000),
      })
      .strict()
      .prefault({}),
    /** Default shard (mailbox partition) count of a kind; fixed once its mailbox exists. */
    shards: z.number().int().min(1).max(1024).default(8),
    delivery: z
      .object({
        /** Largest batch of records a shard takes at once. */
        maxBatch: z.number().int().min(1).max(100_000).default(1000),
        /** How long an entity may take over one batch before the batch is retried. */
        timeoutMs: z.number().int().min(1).default(30_000),
      })
      .strict()
      .prefault({}),
    passivation: z
      .object({ idleMs: z.number().int().min(0).default(120_000) })
      .strict()
      .prefault({}),
    deadLetter: z
      .object({ maxAttempts: z.number().int().min(1).max(1000).default(3) })
      .strict()
      .prefault({}),
    supervision: z
      .object({
        /** A shard's supervisor over its entities. */
        shard: intensitySchema(100, 10_000).prefault({}),
        /** The supervisor of all shards. */
        shards: intensitySchema(10, 60_000).prefault({}),
        /** The node's root. Past it the runtime fails. */
        root: intensitySchema(3, 60_000).prefault({}),
      })
      .strict()
      .prefault({}),
    /**
     * Cluster mode (with mode 'kafka'): membership, leader election and shard placement in etcd.
     * Without it a Kafka-mode node owns every shard alone.
     */
    cluster: z
      .object({
        etcd: z
          .object({
            endpoints: z.array(z.string().regex(etcdEndpointPattern, 'must be http(s)://host:port')).min(1),
            /** Key prefix: keys live under `/<prefix>/`. Default: kafka.topicPrefix. */
            prefix: z.string().regex(prefixPattern, 'must be letters, digits and - (1-100)').optional(),
            /** How long one etcd call may take before it counts as failed. */
            callTimeoutMs: z.number().int().min(100).max(60_000).default(1_500),
          })
          .strict(),
        /** Membership lease TTL in seconds: how soon a dead node's shards move. etcd's minimum is 2. */
        leaseTtlS: z.number().int().min(2).max(600).default(5),
        /** A node that cannot renew its lease stops its shards this long before the lease could expire. */
        fenceMarginMs: z.number().int().min(100).default(1_000),
        /**
         * Capacity weight: a node with weight 2 gets about twice the shards of one with weight 1. Weight 0
         * makes a member that owns no shards (it still sends, asks and serves the API).
         */
        weight: z.number().min(0).max(1_000).default(1),
        /** Where the peer endpoint (ask, inspector) listens; port 0 picks a free one. */
        listen: z
          .object({
            host: z.string().default('127.0.0.1'),
            port: z.number().int().min(0).max(65_535).default(0),
          })
          .strict()
          .prefault({}),
        /** host:port other nodes reach the peer endpoint at; default the listen address. */
        advertise: z.string().regex(brokerPattern, 'must be host:port').optional(),
        /** The leader waits this long for membership to settle before it writes a new placement. */
        settleMs: z.number().int().min(0).max(60_000).default(200),
        /** How long `ask` waits for the owning node. */
        askTimeoutMs: z.number().int().min(1).default(5_000),
      })
      .strict()
      .optional(),
    /**
     * Host metrics (`npm start`, and `hostMetricsFromConfig` for embedders): where the inventory comes
     * from, the poller's bounds, the local SNMP agent of embedded mode, push-ingest limits.
     */
    hosts: z
      .union([
        z.literal(false),
        z
          .object({
            /** Exactly one source; none: the local agent's `localhost` in embedded mode, else push-only. */
            inventory: z
              .object({
                file: z.string().min(1).optional(),
                url: z
                  .string()
                  .regex(/^https?:\/\/\S+$/, 'must be an http(s) URL')
                  .optional(),
                /** Read the config source's `inventory` section (etcd `/<prefix>/inventory/<id>`). */
                config: z.literal(true).optional(),
                /** Hosts written inline, as in an inventory file. */
                hosts: z.array(z.unknown()).optional(),
              })
              .strict()
              .refine((i) => [i.file, i.url, i.config, i.hosts].filter((v) => v !== undefined).length === 1, {
                message: 'give exactly one of file, url, config or hosts',
              })
              .optional(),
            /** How often the inventory is re-read. */
            cycleMs: z.number().int().min(100).default(60_000),
            /** Serve this machine's figures over SNMP on loopback and poll it as `localhost`. Default: embedded mode without an inventory. */
            localAgent: z.boolean().optional(),
            /** Polls in flight at most on this node. */
            concurrency: z.number().int().min(1).max(100_000).default(512),
            /** Random spread added to each host's poll slot (ms); the hash phase already spreads hosts. */
            jitterMs: z.number().int().min(0).default(0),
            /** A poll starting this long after its slot counts as late. */
            lateAfterMs: z.number().int().min(1).default(5_000),
            /** Samples kept per series for the inspector. */
            historyPoints: z.number().int().min(0).max(10_000).default(12),
            /** Largest push body, compressed or not (413 past it). */
            maxBodyBytes: z
              .number()
              .int()
              .min(1_024)
              .default(32 << 20),
            /** Metric sets by service, seeding the in-memory config source (one node; etcd holds them in a cluster). */
            metricSets: z.record(z.string(), z.unknown()).optional(),
          })
          .strict(),
      ])
      .default(false),
    http: z
      .union([
        z.literal(false),
        z
          .object({
            host: z.string().default('127.0.0.1'),
            port: z.number().int().min(0).max(65_535).default(7070),
          })
          .strict(),
      ])
      .default({ host: '127.0.0.1', port: 7070 }),
    /** Bearer tokens of the user-facing endpoints (runtime/auth.ts); hashed at rest. None: nobody gets in. */
    auth: z
      .object({
        tokens: z
          .array(
            z
              .object({
                name: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/, 'must be 1-64 letters, digits, . _ -'),
                sha256: z
                  .string()
                  .regex(/^[0-9a-fA-F]{64}$/, "must be the 64 hex digits of the token's SHA-256"),
                /** Empty: a token that is known (its name shows in errors) and grants nothing (suspended). */
                scopes: z.array(z.enum(['read', 'admin'])).default(['read']),
              })
              .strict(),
          )
          .default([])
          .refine((tokens) => new Set(tokens.map((t) => t.name)).size === tokens.length, {
            message: 'token names must be unique',
          }),
      })
      .strict()
      .prefault({}),
    /**
     * Alert rules, routing and receivers (actors/rule, actors/notify; `npm start` turns it on with
     * `{}`). In a cluster the documents live in etcd (`/<prefix>/rules/<id>`, `/<prefix>/receivers/<id>`,
     * `/<prefix>/routes/tree`, `/<prefix>/silences/<id>`); on one node `rules`, `receivers` and
     * `routes` here seed the in-memory config source, and the API changes them while it runs.
     */
    alerts: z
      .union([
        z.literal(false),
        z
          .object({
            /** How often due receivers and service rules are looked at (ms). */
            tickMs: z.number().int().min(10).max(60_000).default(250),
            /** Rule documents by id (YAML/JSON text or an object), embedded mode. */
            rules: z.record(z.string(), z.union([z.string(), z.record(z.string(), z.unknown())])).default({}),
            /** Receiver documents by id, embedded mode. */
            receivers: z
              .record(z.string(), z.union([z.string(), z.record(z.string(), z.unknown())]))
              .default({}),
            /** The route tree document, embedded mode. */
            routes: z.union([z.string(), z.record(z.string(), z.unknown())]).optional(),
          })
          .strict(),
      ])
      .default(false),
    /**
     * Log streams (actors/log, listeners in runtime/logs; `npm start` turns it on with `{}` in embedded
     * mode). Each listener is `host:port` or false (off); loopback by default. Log rules live in the
     * config source's `logrules` section (etcd `/<prefix>/logrules/<id>`); `rules` here seeds it on one node.
     */
    logs: z
      .union([
        z.literal(false),
        z
          .object({
            syslog: z
              .object({
                /** RFC 5424 / RFC 3164 datagrams. */
                udp: z
                  .union([z.literal(false), z.string().regex(brokerPattern, 'must be host:port')])
                  .default('127.0.0.1:5514'),
                /** RFC 6587: octet counting and LF/CRLF/NUL framing, detected per frame. */
                tcp: z
                  .union([z.literal(false), z.string().regex(brokerPattern, 'must be host:port')])
                  .default('127.0.0.1:5514'),
                /** Longest syslog message (UDP datagram or TCP frame); longer ones are refused and skipped. */
                maxFrameBytes: z
                  .number()
                  .int()
                  .min(480)
                  .max(16 << 20)
                  .default(64 * 1024),
                /** The stream of a message without an APP-NAME (or 3164 TAG). */
                defaultStream: z
                  .string()
                  .regex(/^[A-Za-z0-9_][A-Za-z0-9._-]{0,127}$/, 'must be a stream name')
                  .default('syslog'),
              })
              .strict()
              .prefault({}),
            forward: z
              .object({
                /** The Fluentd forward protocol v1 (Fluentd's and Fluent Bit's `forward` outputs). */
                address: z
                  .union([z.literal(false), z.string().regex(brokerPattern, 'must be host:port')])
                  .default('127.0.0.1:24224'),
                /** Largest forward message (msgpack, and a CompressedPackedForward after gunzip). */
                maxMessageBytes: z
                  .number()
                  .int()
                  .min(1024)
                  .max(256 << 20)
                  .default(16 << 20),
                /** Most entries in one Forward / PackedForward message. */
                maxEntries: z.number().int().min(1).max(10_000_000).default(100_000),
              })
              .strict()
              .prefault({}),
            /** Largest `POST /api/v1/logs/<stream>` NDJSON body, compressed or not (413 past it). */
            maxBodyBytes: z
              .number()
              .int()
              .min(1024)
              .default(32 << 20),
            /** Sub-streams per stream, by a hash of the source host: a hot stream is worked on by several entities. */
            subStreams: z.number().int().min(1).max(256).default(1),
            /** Records per mailbox message at most (listeners' records are batched per sub-stream). */
            batchRecords: z.number().int().min(1).max(100_000).default(1_000),
            /** How long a batch may wait for more records before it is appended (ms). */
            lingerMs: z.number().int().min(0).max(1_000).default(2),
            /** A window closes this long after its end (ms): records up to that late still count. */
            windowGraceMs: z.number().int().min(0).max(600_000).default(500),
            /** How often windows due to close are looked for (ms). */
            tickMs: z.number().int().min(10).max(60_000).default(100),
            /** Embedded mode: mailbox records each log shard keeps for search (older ones are trimmed once applied). */
            retainRecords: z.number().int().min(1).max(100_000_000).default(200_000),
            /** Bytes a live-tail client may have waiting before its records are sampled. */
            tailBufferBytes: z
              .number()
              .int()
              .min(1024)
              .default(256 * 1024),
            /** Log rule documents by id (SQL text, or YAML/JSON with `sql`), embedded mode. */
            rules: z.record(z.string(), z.union([z.string(), z.record(z.string(), z.unknown())])).default({}),
          })
          .strict(),
      ])
      .default(false),
    /** The WebSocket live event feed (runtime/feed/). */
    feed: z
      .object({
        /** Events kept for clients that ask for a replay. */
        replayMax: z.number().int().min(0).max(1_000_000).default(1_000),
        /** Bytes a client may have waiting to be sent before it is dropped as a slow consumer. */
        bufferBytes: z
          .number()
          .int()
          .min(1_024)
          .default(1 << 20),
      })
      .strict()
      .prefault({}),
    /** The inspector (runtime/inspector/): cluster-wide answers gathered from every member. */
    inspector: z
      .object({
        /** How long a member may take to answer before the answer is marked partial without it. */
        gatherTimeoutMs: z.number().int().min(1).max(60_000).default(2_000),
      })
      .strict()
      .prefault({}),
  })
  .strict()
  .superRefine((c, ctx) => {
    if (c.mode === 'kafka' && !c.kafka)
      ctx.addIssue({ code: 'custom', path: ['kafka'], message: "is required when mode is 'kafka'" });
    if (c.cluster && c.mode !== 'kafka')
      ctx.addIssue({
        code: 'custom',
        path: ['cluster'],
        message: "needs mode 'kafka' (the mailbox must be shared)",
      });
    if (c.cluster && c.cluster.fenceMarginMs >= (c.cluster.leaseTtlS * 1000 * 2) / 3)
      ctx.addIssue({
        code: 'custom',
        path: ['cluster', 'fenceMarginMs'],
        message: `must be under two thirds of the lease TTL (${Math.floor((c.cluster.leaseTtlS * 2000) / 3)} ms): the lease is renewed every third of it`,
      });
  });

export type ArgusConfig = z.output<typeof configSchema>;
export type ArgusConfigInput = z.input<typeof configSchema>;

/** Validates and fills defaults; the error names every wrong field (`kafka.brokers[0]: must be host:port`). */
export const parseConfig = (input: unknown): ArgusConfig => {
  const r = configSchema.safeParse(input ?? {});
  if (r.success) return r.data;
  const problems = r.error.issues.map((i) => {
    const path = i.path.reduce<string>(
      (acc, p) => (typeof p === 'number' ? `${acc}[${p}]` : acc ? `${acc}.${String(p)}` : String(p)),
      '',
    );
    return `${path || '(root)'}: ${i.message}`;
  });
  throw new ArgusError('ARGUS_ERR_INVALID_CONFIG', `invalid configuration: ${problems.join('; ')}`, {
    problems,
  });
};
