/**
 * The SNMP boundary (`SnmpClientFactory` of DESIGN.md): a host entity asks a `SnmpPoller` to poll one
 * target for one metric set and gets back `RawValue`s, or a coded failure. Nothing throws out of
 * `poll()`: a timeout, a wrong v3 password or an agent that answers nonsense is a status of that one
 * host's poll (Telegraf: per-target failures never abort the tick).
 *
 * A poll is: the set's scalars as GETs of at most 32 varbinds each, then each table walked with
 * GETBULK on the columns it needs only (the tag column and the metric columns, all in one request per
 * round, each column stopping where its subtree ends), rows joined by index and tagged with the tag
 * column's value. Conversion rules are in snmp-values.ts.
 *
 * Sessions and sockets. A net-snmp `Session` matches answers to requests by request id, so one session
 * can carry any number of overlapping requests, also from two overlapping polls; a v3 session also
 * remembers the agent's engine id and time after its first request (a new v3 session pays one more
 * round trip, discovery). By itself a session owns a UDP socket; here every session of a poller sends
 * through one shared socket per transport instead (shared-dgram.ts, through net-snmp's `dgramModule`
 * option), which routes each answer to the sessions of its source. Measured against Debian's snmpd on
 * loopback with a socket per session, 64 polls in flight, 10-OID GETs (test/host/snmpd.test.ts prints
 * them; 2 cores shared with snmpd and other work, so two runs are given):
 *
 *   v2c bare net-snmp session, reused     16,000 · 10,100 GET/s
 *   v2c poller, cached session            11,700 ·  9,000
 *   v2c poller, a session per poll         6,400 ·  4,000   (socket create + bind + close each poll)
 *   v3 authPriv poller, cached session     7,300 ·  3,900
 *   v3 authPriv poller, a session per poll 4,800 ·  1,750   (plus the discovery round trip)
 *
 * A session per poll halved throughput, mostly for its socket. With shared sockets a session is only
 * objects (~1.9 KB of heap, v2c or v3; no fd, no port), so the cache of sessions keyed by target and
 * credentials, LRU, holds `maxSessions` (65,536) entries: a node polling up to that many hosts creates
 * each host's session once, and v3 skips discovery after the first poll. The sockets open are one per
 * transport in use, however many hosts (docs/BENCHMARKS.md, snmp-poll, "Shared sockets"). A session
 * still carrying a request when it is evicted is closed when its last request ends. `maxSessions: 0`
 * creates and closes a session per poll (still on the shared socket). One poll in flight per host is
 * the caller's rule; the poller is nevertheless safe when two overlap.
 *
 * Failure codes: 'timeout' when no answer came in timeoutMs × (retries + 1). A closed UDP port is a
 * timeout too: Node's unconnected UDP sockets never see the ICMP port-unreachable. A wrong v3 priv
 * password is also a timeout (snmpd drops what it cannot decrypt without a report). 'auth' for the
 * agent's USM reports (unknown user, wrong digest, …) and answers we cannot authenticate or decrypt;
 * 'unreachable' for send errors (no route, host down, name not found); 'protocol' for the rest (error
 * status, malformed or non-increasing answers, a table that does not end).
 *
 * net-snmp caches localized v3 keys per (password, engine id) for the life of the process.
 */
import snmp from 'net-snmp';
import { createSharedDgram, type SharedDgram } from './shared-dgram.ts';
import { compareOids, SnmpType, tableValues, toRawValue, type VarbindLike } from './snmp-values.ts';
import type { MetricSet, RawValue, SnmpSettings, TableMetric } from './types.ts';

export type PollErrorCode = 'timeout' | 'auth' | 'unreachable' | 'protocol';

export interface PollTarget {
  readonly address: string;
  readonly snmp: SnmpSettings;
}

export type PollResult =
  | {
      readonly ok: true;
      readonly values: readonly RawValue[];
      /** OIDs that gave no value: noSuchObject/noSuchInstance/endOfMibView, or not a number. */
      readonly missing: readonly string[];
      /** Why each OID of `missing` is missing ('noSuchInstance', "OctetString \"up\" is not a number"). */
      readonly reasons: Readonly<Record<string, string>>;
      readonly latencyMs: number;
      /** SNMP requests the poll sent (GETs and GETBULKs; retries not counted). */
      readonly requests: number;
    }
  | {
      readonly ok: false;
      readonly error: { readonly code: PollErrorCode; readonly message: string };
      readonly latencyMs: number;
    };

export interface PollOptions {
  /** GETBULK max-repetitions for table walks (default: the poller's, 25). */
  readonly maxRepetitions?: number;
}

export interface SnmpPoller {
  poll(target: PollTarget, set: MetricSet, options?: PollOptions): Promise<PollResult>;
  /** Closes every session; polls after close answer ok:false. */
  close(): Promise<void>;
}

/** The boundary: how the runtime gets a poller (net-snmp here, a fake in tests). */
export type SnmpClientFactory = () => SnmpPoller;

export interface NetSnmpPollerOptions {
  /** Sessions kept between polls, LRU by target (default 65,536); 0: a session per poll. */
  readonly maxSessions?: number;
  /** Default GETBULK max-repetitions (25). */
  readonly maxRepetitions?: number;
  /** A table walk gives up (code 'protocol') after this many GETBULKs (default 1,000). */
  readonly maxTableRequests?: number;
  /** Monotonic ms, for latencies (default performance.now). */
  readonly now?: () => number;
}

const DEFAULTS = { maxSessions: 65_536, maxRepetitions: 25, maxTableRequests: 1_000 } as const;
/** Varbinds per GET: small enough for any agent's PDU size, large enough for one request per set. */
export const MAX_GET_VARBINDS = 32;

/** A failure of one request, with the code it maps to. */
class PollFailure extends Error {
  constructor(
    readonly code: PollErrorCode,
    message: string,
  ) {
    super(message);
  }
}

const AUTH_PROTOCOLS = {
  md5: snmp.AuthProtocols.md5,
  sha: snmp.AuthProtocols.sha,
  sha256: snmp.AuthProtocols.sha256,
  sha512: snmp.AuthProtocols.sha512,
} as const;
const PRIV_PROTOCOLS = { des: snmp.PrivProtocols.des, aes: snmp.PrivProtocols.aes } as const;
const UNREACHABLE = new Set([
  'ECONNREFUSED',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EHOSTDOWN',
  'ENOTFOUND',
  'EAI_AGAIN',
]);

/** The agent's USM report (RFC 3414 usmStats*), as net-snmp words it → as we say it. */
const USM_REASONS: Readonly<Record<string, string>> = {
  'Unsupported Security Level': 'unsupported security level',
  'Not In Time Window': 'not in time window',
  'Unknown User Name': 'unknown user name',
  'Unknown Engine ID': 'unknown engine id',
  'Wrong Digest (incorrect password, community or key)': 'wrong digest (wrong auth password)',
  'Decryption Error': 'decryption error (wrong priv password)',
};

const endpointOf = (target: PollTarget): string =>
  target.address.includes(':')
    ? `[${target.address}]:${target.snmp.port}`
    : `${target.address}:${target.snmp.port}`;

const versionOf = (settings: SnmpSettings): string => (settings.version === '3' ? 'snmp v3' : 'snmp v2c');

/** Maps what net-snmp reported for one request to a code and a message naming the host and the request. */
export const classifyError = (error: unknown, target: PollTarget, what: string): PollFailure => {
  if (error instanceof PollFailure) return error;
  const s = target.snmp;
  const at = endpointOf(target);
  const e = error instanceof Error ? error : new Error(String(error));
  const code = (e as { code?: unknown }).code;
  if (e.name === 'RequestTimedOutError') {
    const tries = s.retries + 1;
    return new PollFailure(
      'timeout',
      `${versionOf(s)} ${what} to ${at} timed out: no answer in ${tries} ${tries === 1 ? 'try' : 'tries'} of ${s.timeoutMs} ms`,
    );
  }
  if (
    e.name === 'ResponseInvalidError' &&
    (code === snmp.ResponseInvalidCode.EAuthFailure ||
      code === snmp.ResponseInvalidCode.ECouldNotDecrypt ||
      code === 14) // ENotInTimeWindow, missing from @types/net-snmp
  ) {
    const user = s.version === '3' ? ` for user '${s.user}'` : '';
    return new PollFailure(
      'auth',
      `${versionOf(s)} authentication failed${user} at ${at}: ${USM_REASONS[e.message] ?? e.message}`,
    );
  }
  if (typeof code === 'string' && UNREACHABLE.has(code))
    return new PollFailure(
      'unreachable',
      `${versionOf(s)} ${what}: ${at} is unreachable (${code}: ${e.message})`,
    );
  return new PollFailure('protocol', `${versionOf(s)} ${what} at ${at} failed: ${e.message}`);
};

const createSession = (target: PollTarget, dgram: SharedDgram): snmp.Session => {
  const s = target.snmp;
  const transport = target.address.includes(':') ? 'udp6' : 'udp4';
  const common = {
    port: s.port,
    timeout: s.timeoutMs,
    retries: s.retries,
    transport,
    dgramModule: dgram.module,
  } as const;
  if (s.version === '2c')
    return snmp.createSession(target.address, s.community, { ...common, version: snmp.Version2c });
  const user: snmp.User = { name: s.user, level: snmp.SecurityLevel[s.level] };
  if (s.level !== 'noAuthNoPriv') {
    user.authProtocol = AUTH_PROTOCOLS[s.authProtocol ?? 'sha'];
    user.authKey = s.authKey ?? '';
  }
  if (s.level === 'authPriv') {
    user.privProtocol = PRIV_PROTOCOLS[s.privProtocol ?? 'aes'];
    user.privKey = s.privKey ?? '';
  }
  return snmp.createV3Session(target.address, user, { ...common, version: snmp.Version3 });
};

interface Lease {
  readonly session: snmp.Session;
  release(): void;
}

interface Pooled {
  readonly session: snmp.Session;
  inFlight: number;
  evicted: boolean;
}

/** Settings as part of a cache key; memoized per settings object (an inventory host keeps its own). */
const settingsKeys = new WeakMap<SnmpSettings, string>();
const keyOf = (settings: SnmpSettings): string => {
  let key = settingsKeys.get(settings);
  if (key === undefined) {
    key = JSON.stringify(settings);
    settingsKeys.set(settings, key);
  }
  return key;
};

/** Sessions by target, least recently used first (a Map keeps insertion order). */
const createSessionCache = (maxSessions: number, dgram: SharedDgram) => {
  const sessions = new Map<string, Pooled>();
  const closeQuietly = (session: snmp.Session): void => {
    try {
      session.close();
    } catch {
      // already closed (its socket failed)
    }
  };
  const open = (target: PollTarget, key: string): Pooled => {
    const pooled: Pooled = { session: createSession(target, dgram), inFlight: 0, evicted: maxSessions === 0 };
    // A socket error or an undecodable datagram: net-snmp emits 'error', which would crash the process
    // without a listener. The requests in flight fail on their own (timeout), the session is dropped.
    pooled.session.on('error', () => {
      if (sessions.get(key) === pooled) sessions.delete(key);
      pooled.evicted = true;
    });
    pooled.session.on('close', () => {
      if (sessions.get(key) === pooled) sessions.delete(key);
      pooled.evicted = true;
    });
    return pooled;
  };
  const evictOldest = (): void => {
    for (const [key, pooled] of sessions) {
      if (sessions.size <= maxSessions) return;
      sessions.delete(key);
      pooled.evicted = true;
      if (pooled.inFlight === 0) closeQuietly(pooled.session);
    }
  };
  return {
    acquire(target: PollTarget): Lease {
      const key = `${target.address}\0${keyOf(target.snmp)}`;
      let pooled = sessions.get(key);
      if (pooled) sessions.delete(key);
      pooled ??= open(target, key);
      if (maxSessions > 0 && !pooled.evicted) {
        sessions.set(key, pooled);
        evictOldest();
      }
      pooled.inFlight++;
      const held = pooled;
      let released = false;
      return {
        session: held.session,
        release: () => {
          if (released) return;
          released = true;
          held.inFlight--;
          if (held.evicted && held.inFlight === 0) closeQuietly(held.session);
        },
      };
    },
    closeAll(): void {
      for (const pooled of sessions.values()) {
        pooled.evicted = true;
        if (pooled.inFlight === 0) closeQuietly(pooled.session);
      }
      sessions.clear();
      // The shared sockets close once the sessions still carrying a poll have closed too.
      dgram.close();
    },
  };
};

const get = (session: snmp.Session, oids: string[]): Promise<VarbindLike[]> =>
  new Promise((resolve, reject) => {
    session.get(oids, (error, varbinds) => (error ? reject(error) : resolve(varbinds ?? [])));
  });

const getBulk = (session: snmp.Session, oids: string[], maxRepetitions: number): Promise<VarbindLike[][]> =>
  new Promise((resolve, reject) => {
    session.getBulk(oids, 0, maxRepetitions, (error, varbinds) =>
      error ? reject(error) : resolve((varbinds ?? []).map((v) => (Array.isArray(v) ? v : [v]))),
    );
  });

interface Walk {
  readonly column: number;
  readonly prefix: string;
  next: string;
  last: string | undefined;
  readonly cells: Map<string, VarbindLike>;
}

/** The cells of the given columns of a table, by column then row index. */
const walkColumns = async (
  request: (oids: string[]) => Promise<VarbindLike[][]>,
  table: TableMetric,
  columns: readonly number[],
  maxRequests: number,
): Promise<Map<number, Map<string, VarbindLike>>> => {
  const walks: Walk[] = columns.map((column) => ({
    column,
    prefix: `${table.oid}.${column}.`,
    next: `${table.oid}.${column}`,
    last: undefined,
    cells: new Map(),
  }));
  let open = walks;
  for (let sent = 0; open.length > 0; sent++) {
    if (sent >= maxRequests)
      throw new PollFailure(
        'protocol',
        `table ${table.name} still not at its end after ${maxRequests} GETBULKs`,
      );
    const answer = await request(open.map((w) => w.next));
    let progress = false;
    open = open.filter((walk, i) => {
      const row = answer[i] ?? [];
      for (const vb of row) {
        if (vb.type === snmp.ObjectType.EndOfMibView || !vb.oid.startsWith(walk.prefix)) return false;
        const index = vb.oid.slice(walk.prefix.length);
        if (walk.last !== undefined && compareOids(index, walk.last) <= 0)
          throw new PollFailure(
            'protocol',
            `table ${table.name}: the agent answered ${vb.oid} after ${walk.prefix}${walk.last} (OIDs not increasing)`,
          );
        walk.last = index;
        walk.next = vb.oid;
        walk.cells.set(index, vb);
        progress = true;
      }
      return true;
    });
    if (open.length > 0 && !progress)
      throw new PollFailure(
        'protocol',
        `table ${table.name}: a GETBULK answered no varbind of the open columns`,
      );
  }
  return new Map(walks.map((w) => [w.column, w.cells]));
};

export const createNetSnmpPoller = (options: NetSnmpPollerOptions = {}): SnmpPoller => {
  const maxSessions = options.maxSessions ?? DEFAULTS.maxSessions;
  const defaultRepetitions = options.maxRepetitions ?? DEFAULTS.maxRepetitions;
  const maxTableRequests = options.maxTableRequests ?? DEFAULTS.maxTableRequests;
  const now = options.now ?? (() => performance.now());
  const cache = createSessionCache(maxSessions, createSharedDgram());
  let closed = false;

  const poll = async (
    target: PollTarget,
    set: MetricSet,
    pollOptions: PollOptions = {},
  ): Promise<PollResult> => {
    const started = now();
    const elapsed = (): number => now() - started;
    if (closed)
      return {
        ok: false,
        error: { code: 'protocol', message: `poll of ${endpointOf(target)} after the poller was closed` },
        latencyMs: 0,
      };
    const maxRepetitions = pollOptions.maxRepetitions ?? defaultRepetitions;
    const values: RawValue[] = [];
    const missing: string[] = [];
    const reasons: Record<string, string> = {};
    const miss = (oid: string, reason: string): void => {
      missing.push(oid);
      reasons[oid] = reason;
    };
    let requests = 0;
    let lease: Lease | undefined;
    try {
      lease = cache.acquire(target);
      const session = lease.session;
      for (let i = 0; i < set.scalars.length; i += MAX_GET_VARBINDS) {
        const chunk = set.scalars.slice(i, i + MAX_GET_VARBINDS);
        const what = `GET of ${chunk.length} OID${chunk.length === 1 ? '' : 's'}`;
        requests++;
        const answer = await get(
          session,
          chunk.map((m) => m.oid),
        ).catch((e: unknown) => {
          throw classifyError(e, target, what);
        });
        for (const [j, metric] of chunk.entries()) {
          const converted = toRawValue(
            answer[j] ?? { oid: metric.oid, type: SnmpType.NoSuchInstance },
            metric,
          );
          if (converted.ok) values.push(converted.value);
          else miss(metric.oid, converted.reason);
        }
      }
      for (const table of set.tables) {
        const what = `GETBULK of ${table.name}`;
        const columns = [...new Set([table.tag.column, ...table.columns.map((c) => c.column)])];
        const request = (oids: string[]): Promise<VarbindLike[][]> => {
          requests++;
          return getBulk(session, oids, maxRepetitions).catch((e: unknown) => {
            throw classifyError(e, target, what);
          });
        };
        const cells = await walkColumns(request, table, columns, maxTableRequests).catch((e: unknown) => {
          throw classifyError(e, target, what);
        });
        const rows = tableValues(table, cells);
        values.push(...rows.values);
        for (const m of rows.missing) miss(m.oid, m.reason);
      }
      return { ok: true, values, missing, reasons, latencyMs: elapsed(), requests };
    } catch (e) {
      const failure = classifyError(e, target, 'poll');
      return { ok: false, error: { code: failure.code, message: failure.message }, latencyMs: elapsed() };
    } finally {
      lease?.release();
    }
  };

  return {
    poll,
    close: async () => {
      closed = true;
      cache.closeAll();
    },
  };
};
