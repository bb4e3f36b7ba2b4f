/**
 * The shared vocabulary of rules and alerts (issue 5). A rule is data (etcd `/<prefix>/rules/<id>`,
 * YAML or JSON), validated on write (schema.ts) and hot-applied (rules.ts). Evaluation is split by
 * scope, as DESIGN.md's tree says (`rule/<id>@<shard>`):
 *
 * - `host` rules are evaluated inside the host entity that produced the samples, in the same delivery
 *   (the host part of the rule lives next to the host's shard — literally in its snapshot): no sample
 *   crosses a mailbox to be evaluated, and the per-series alert state is durable with the host state.
 * - `service` rules: each host sends only its partial aggregate (sum/count/min/max of its matching
 *   samples) to the rule entity `rule/<id>`, which combines the hosts of a service and keeps the
 *   service series' alert state in its snapshot.
 *
 * Every transition of a series (inactive → pending → firing → resolved) is an `AlertEvent` with a
 * stable fingerprint (rule id + series labels) and a per-series transition sequence number; it is
 * written to the `events` stream and routed to receivers (actors/notify) in the same checkpoint.
 */

export type Operator = '>' | '>=' | '<' | '<=' | '==' | '!=';
export type Scope = 'host' | 'service';
export type Aggregate = 'avg' | 'min' | 'max' | 'sum' | 'count';
export type Severity = 1 | 2 | 3 | 4 | 5;
export type Labels = Readonly<Record<string, string>>;

/** One tag matcher of a selector: `ifDescr="eth0"`, `mount!="/boot"`, `ifDescr=~"eth.*"`, `x!~"y"`. */
export interface TagMatcher {
  readonly tag: string;
  readonly op: '=' | '!=' | '=~' | '!~';
  readonly value: string;
  /** Compiled, anchored (`^(?:value)$`), for `=~` and `!~`. */
  readonly regex?: RegExp;
}

/** Which samples a rule looks at: `cpu.busy`, `if.in.octets{ifDescr=~"eth.*"}`. */
export interface Selector {
  readonly metric: string;
  readonly matchers: readonly TagMatcher[];
}

export type NoDataPolicy =
  | { readonly policy: 'ignore' }
  /** Alert (series value null, annotation `nodata`) when no sample came for `after` × interval. */
  | { readonly policy: 'alert'; readonly after: number };

/** A validated rule (schema.ts turns the document into this). Durations are ms. */
export interface Rule {
  readonly id: string;
  /** The document's text hash: a changed rule has a new version. */
  readonly version: string;
  readonly selector: Selector;
  readonly scope: Scope;
  /** Service scope only (required there). */
  readonly aggregate?: Aggregate;
  /** Restricts the rule to hosts of these services; empty = all. */
  readonly services: readonly string[];
  readonly op: Operator;
  readonly threshold: number;
  /**
   * Hysteresis: once pending or firing, the condition keeps holding while `value op clear` (the same
   * operator against clear: `> 90, clear 80` ends at 80 or below, `>= 90, clear 80` below 80; for `<`/`<=`
   * the other way round). Equal to `threshold` when not given (then no hysteresis). Not allowed with
   * `==`/`!=`. For `>`/`>=` it is <= threshold, for `<`/`<=` >= threshold (schema.ts).
   */
  readonly clear: number;
  readonly forMs: number;
  readonly keepFiringForMs: number;
  readonly noData: NoDataPolicy;
  /** The expected sample interval (no-data, service staleness). Default 60,000. */
  readonly intervalMs: number;
  readonly severity: Severity;
  readonly labels: Labels;
  /** Templates: `{{host}}`, `{{service}}`, `{{value}}`, `{{rule}}`, `{{threshold}}`, `{{labels.x}}`. */
  readonly annotations: Labels;
}

export type AlertPhase = 'inactive' | 'pending' | 'firing';

/** The alert state of one series of one rule: pure data, kept in a snapshot (host or rule entity). */
export interface SeriesAlert {
  readonly phase: AlertPhase;
  /**
   * Transition sequence number of the series: +1 on every transition, never reset while the series lives.
   * A series that resolved or went inactive is kept as phase 'inactive' carrying its seq, so its next
   * alert goes on counting (machine.ts); it is forgotten only after a long time unseen (evaluate.ts).
   */
  readonly seq: number;
  /** When the condition began to hold (pending start); 0 when inactive. */
  readonly activeSince: number;
  /** When it fired (firing only). */
  readonly firedAt: number;
  /** The last time the condition held (keep_firing_for counts from here). */
  readonly lastActiveAt: number;
  /** The last time a sample of the series came (no-data counts from here). */
  readonly lastSeenAt: number;
  /** The last value evaluated; null for no-data. */
  readonly value: number | null;
  /** True while the series is alerting because of no-data. */
  readonly noData: boolean;
}

/** What the evaluation of one series at one instant gives: its next state, and a transition if any. */
export interface SeriesStep {
  /**
   * The series after the step. undefined: nothing to keep (a series that never had a transition, of a
   * rule without no-data alerting). A resolved or inactive series is an 'inactive' SeriesAlert with its seq.
   */
  readonly next: SeriesAlert | undefined;
  readonly transition?: AlertStatus;
}

/** The transition an alert event reports. `inactive`: a pending alert whose condition stopped before `for`. */
export type AlertStatus = 'pending' | 'firing' | 'resolved' | 'inactive';

/** One transition of one series: written to the `events` stream and routed to receivers. */
export interface AlertEvent {
  readonly type: '@argus.alert';
  /** Stable: hex hash of rule id + series labels (fingerprint.ts). */
  readonly fingerprint: string;
  /** The series' transition sequence number (with the fingerprint: the idempotency key). */
  readonly seq: number;
  readonly rule: string;
  readonly status: AlertStatus;
  readonly severity: Severity;
  /** alertname (= rule id), severity, host (host scope), service, the sample's tags, the rule's labels. */
  readonly labels: Labels;
  readonly annotations: Labels;
  readonly value: number | null;
  /** When the alert began (pending start for pending, fire time for firing and resolved). */
  readonly startsAt: number;
  /** Resolved only. */
  readonly endsAt?: number;
  /** When the transition happened (the evaluated sample's time). */
  readonly at: number;
  readonly host?: string;
  readonly service?: string;
}

/**
 * The host part of the rules of one host, kept in the host's snapshot: rule id → (series key → alert),
 * and the rule version it was evaluated with (a changed rule re-evaluates its series consistently).
 * Two more entries are not rules (they start with `@`, rule ids cannot; host-state.ts): `'@host'` holds
 * no series, its version is the host and service the alerts are labelled with (so a no-data check
 * without a record labels them the same); `'@seen'` maps series keys to when they were last seen, for
 * the series of no-data rules that never had a transition (kept once per host, not once per rule).
 */
export interface HostRuleState {
  readonly [ruleId: string]: {
    readonly version: string;
    readonly series: Readonly<Record<string, SeriesAlert>>;
  };
}

/** A host's partial aggregate for a service rule, sent to `rule/<id>`. */
export interface ServicePartial {
  readonly host: string;
  readonly service: string;
  readonly ts: number;
  readonly sum: number;
  readonly count: number;
  readonly min: number;
  readonly max: number;
}
