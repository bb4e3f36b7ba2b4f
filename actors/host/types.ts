/**
 * The shared vocabulary of host metrics (issue 4): what an inventory says of a host, what a metric set
 * asks to collect, what a poll or a push yields, and the final samples a host entity emits.
 *
 * Flow: inventory → poller (local ticks on the node owning the host's shard) → SNMP → `RawValue`s in a
 * `host.poll` message → the host's mailbox → the host entity derives (rates, ratios, CPU %) → `Sample`s
 * on the metrics stream. Pushes (JSON, Influx line protocol) become `PushedPoint`s in `host.push`
 * messages to the same mailbox.
 */

/** Tags of a series: small string maps (`{ ifDescr: 'eth0' }`). */
export type Tags = Readonly<Record<string, string>>;

/** SNMP credentials and transport of one host. */
export type SnmpSettings =
  | {
      readonly version: '2c';
      readonly community: string;
      readonly port: number;
      readonly timeoutMs: number;
      readonly retries: number;
    }
  | {
      readonly version: '3';
      readonly user: string;
      readonly level: 'noAuthNoPriv' | 'authNoPriv' | 'authPriv';
      readonly authProtocol?: 'md5' | 'sha' | 'sha256' | 'sha512';
      readonly authKey?: string;
      readonly privProtocol?: 'des' | 'aes';
      readonly privKey?: string;
      readonly port: number;
      readonly timeoutMs: number;
      readonly retries: number;
    };

/** One host as the inventory describes it. */
export interface InventoryHost {
  readonly id: string;
  /** IP address or name the SNMP agent answers on; absent for push-only hosts. */
  readonly address?: string;
  readonly snmp?: SnmpSettings;
  /** The service (group) the host belongs to: chooses its metric set and scopes service rules. */
  readonly service: string;
  readonly labels: Tags;
  /** Poll interval in ms (default 60,000). */
  readonly intervalMs: number;
}

/** How a collected value is to be read. */
export type MetricType = 'gauge' | 'counter';

/** A scalar OID to GET. */
export interface ScalarMetric {
  readonly name: string;
  /** Numeric OID, dotted, no leading dot: `1.3.6.1.4.1.2021.10.1.3.1`. */
  readonly oid: string;
  readonly type: MetricType;
  readonly unit?: string;
  /** Multiply the raw value (e.g. UCD memory is in kB: 1024 for bytes). */
  readonly scale?: number;
}

/** A table walked with GETBULK: each column becomes a metric per row, tagged by the tag column. */
export interface TableMetric {
  /** Table name, for errors and docs: `ifXTable`. */
  readonly name: string;
  /** The OID of the table's entry (`…1.1`), under which columns are `<oid>.<column>.<index>`. */
  readonly oid: string;
  /** Column whose value becomes the tag: `{ column: 1, tag: 'ifName' }` tags rows by ifName. */
  readonly tag: { readonly column: number; readonly name: string };
  readonly columns: readonly {
    readonly column: number;
    readonly name: string;
    readonly type: MetricType;
    readonly unit?: string;
    readonly scale?: number;
  }[];
}

/**
 * A derived metric computed by the host entity from what the poll collected (the metric-calculator
 * stage): a ratio of two metrics of the same series, or a CPU percentage from tick counters.
 */
export type DerivedMetric =
  | {
      readonly kind: 'ratio';
      readonly name: string;
      /** `used` / `total` × `factor` (100 for a percentage), per series (same tags). */
      readonly numerator: string;
      readonly denominator: string;
      readonly factor: number;
      readonly unit?: string;
    }
  | {
      readonly kind: 'cpu';
      /** Prefix of the emitted percentages: `cpu` → `cpu.user_pct`, `cpu.system_pct`, … `cpu.busy_pct`. */
      readonly name: string;
      /** Metric names of the raw tick counters, by state (`user` → `cpu.raw.user`). */
      readonly ticks: Readonly<Record<string, string>>;
      /** States that count as idle for `busy_pct`. */
      readonly idle: readonly string[];
    };

/** What to collect from the hosts of one service. */
export interface MetricSet {
  readonly scalars: readonly ScalarMetric[];
  readonly tables: readonly TableMetric[];
  readonly derived: readonly DerivedMetric[];
}

/** Which SNMP counter width a raw counter came in (for wrap handling). */
export type CounterWidth = 32 | 64;

/** One value read by a poll, before derivation. */
export interface RawValue {
  readonly metric: string;
  readonly tags: Tags;
  readonly type: MetricType;
  /** Counter32/Counter64 for counters (wrap width); absent for gauges. */
  readonly width?: CounterWidth;
  /** Numbers are exact up to 2^53; Counter64 beyond that loses low bits (rates stay right to ~1e-16). */
  readonly value: number;
}

/** One point pushed by a client (JSON or line protocol), already routed to its host. */
export interface PushedPoint {
  readonly metric: string;
  readonly tags: Tags;
  /** Wall-clock ms. */
  readonly ts: number;
  /** Strings (Influx string fields) are kept as they are: no rate, no rule, shown as latest value. */
  readonly value: number | string;
  /** Set by the client when the value is a monotonic counter (JSON `counters`); else a gauge. */
  readonly type?: MetricType;
}

/** A final sample: what the metrics stream carries and rules read. */
export interface Sample {
  readonly host: string;
  readonly metric: string;
  readonly tags: Tags;
  /** Wall-clock ms. */
  readonly ts: number;
  readonly value: number | string;
}
