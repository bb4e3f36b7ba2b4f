/**
 * The shared vocabulary of notifications (issue 5), after Alertmanager's: a route tree (etcd
 * `/<prefix>/routes`) matches an alert's labels and severity to receivers and groups alerts by labels;
 * each receiver (`/<prefix>/receivers/<id>`) is an entity `receiver/<id>` that keeps its groups, its
 * delivery queue and its dead letters in its snapshot, and delivers one notification at a time, in
 * order, with retries — never blocking other receivers (a delivery is started, not awaited: its
 * outcome comes back as a `receiver.result` message). Silences (`/<prefix>/silences/<id>`) mute alerts
 * at flush time.
 *
 * Flow: rule evaluation (host entity or rule entity) → `routeAlert` (routes.ts, pure) → in the same
 * checkpoint, one `receiver.alert` message per matched (receiver, group) → the receiver entity groups
 * (group_wait, group_interval, repeat_interval) → a `Notification` (Alertmanager webhook v4 body or a
 * chat body) in its queue → `Notifier` (the HTTP boundary) → `receiver.result`.
 */
import type { AlertEvent, Labels } from '../rule/types.ts';

/** Label matchers, Alertmanager syntax: `team="infra"`, `env!="dev"`, `service=~"pay.*"`, `x!~"y"`. */
export interface LabelMatcher {
  readonly name: string;
  readonly op: '=' | '!=' | '=~' | '!~';
  readonly value: string;
  readonly regex?: RegExp;
}

/** Grouping and timing of a route (inherited from the parent when not set). Durations in ms. */
export interface GroupTiming {
  /** Labels alerts are grouped by; `['...']` groups by all labels (each alert alone). */
  readonly groupBy: readonly string[];
  readonly groupWaitMs: number;
  readonly groupIntervalMs: number;
  readonly repeatIntervalMs: number;
}

/** A node of the route tree, validated, defaults and inheritance applied. */
export interface Route extends GroupTiming {
  /** Path in the tree: `root`, `root.0`, `root.0.1` (part of the group key). */
  readonly id: string;
  readonly receivers: readonly string[];
  readonly matchers: readonly LabelMatcher[];
  /** Inclusive severity range this route matches (1..5 when not restricted). */
  readonly minSeverity: number;
  readonly maxSeverity: number;
  /** Keep matching siblings after this route matched. */
  readonly continue: boolean;
  readonly routes: readonly Route[];
}

/** Where one alert goes: one per (matched route, receiver). */
export interface RouteMatch {
  readonly receiver: string;
  readonly routeId: string;
  /** Stable key of the group: route id + the group-by labels' values. */
  readonly groupKey: string;
  readonly groupLabels: Labels;
  readonly timing: GroupTiming;
}

export type ReceiverKind = 'webhook' | 'chat';

/** A receiver, validated (`/<prefix>/receivers/<id>`). Durations in ms. */
export interface ReceiverConfig {
  readonly id: string;
  readonly kind: ReceiverKind;
  readonly url: string;
  /** HMAC-SHA256 key for the signature header; no signature when absent. */
  readonly secret?: string;
  readonly headers: Labels;
  readonly sendResolved: boolean;
  /** Alerts per notification at most (Alertmanager's max_alerts; 0 = all). */
  readonly maxAlerts: number;
  readonly timeoutMs: number;
  readonly maxAttempts: number;
  readonly backoffInitialMs: number;
  readonly backoffMaxMs: number;
}

/** A silence: alerts whose labels match every matcher, between startsAt and endsAt, are not notified. */
export interface Silence {
  readonly id: string;
  readonly matchers: readonly LabelMatcher[];
  readonly startsAt: number;
  readonly endsAt: number;
  readonly createdBy: string;
  readonly comment: string;
}

/** One alert as a receiver's group holds it (the last event of its fingerprint). */
export type GroupAlert = AlertEvent;

/** A notification waiting in a receiver's queue (built at flush; its body is fixed then). */
export interface Notification {
  /** Idempotency key: hash of receiver, group key and the (fingerprint, seq) pairs it carries. */
  readonly id: string;
  readonly groupKey: string;
  /** The request body, exactly as it is sent (JSON text). */
  readonly body: string;
  /** Fingerprint:seq of the alerts it carries, and their statuses (for tests and the inspector). */
  readonly alerts: readonly {
    readonly fingerprint: string;
    readonly seq: number;
    readonly status: 'firing' | 'resolved';
  }[];
  readonly createdAt: number;
  readonly attempts: number;
  readonly lastError?: string;
  /** When the next attempt may start. */
  readonly nextAttemptAt: number;
}

/** A notification given up after max attempts, with the last error (visible through the API). */
export interface DeadNotification extends Notification {
  readonly deadAt: number;
}

/** Messages of `receiver/<id>`. Time comes in the messages (`at`), so replays decide the same. */
export type ReceiverMessage =
  | {
      readonly type: 'receiver.alert';
      readonly alert: AlertEvent;
      readonly routeId: string;
      readonly groupKey: string;
      readonly groupLabels: Labels;
      readonly timing: GroupTiming;
      readonly at: number;
    }
  /** Flush due groups, start due retries (sent by the node owning the receiver's shard, when due). */
  | { readonly type: 'receiver.tick'; readonly at: number }
  /** The outcome of a delivery the entity started. */
  | {
      readonly type: 'receiver.result';
      readonly id: string;
      readonly attempt: number;
      readonly ok: boolean;
      readonly status?: number;
      readonly error?: string;
      readonly at: number;
    }
  | { readonly type: 'receiver.replay'; readonly id?: string; readonly at: number }
  | { readonly type: 'receiver.discard'; readonly id?: string; readonly at: number };

/** One HTTP delivery (the Notifier boundary of DESIGN.md). */
export interface DeliveryRequest {
  readonly receiver: ReceiverConfig;
  readonly notificationId: string;
  readonly body: string;
  readonly attempt: number;
}

export interface DeliveryOutcome {
  readonly ok: boolean;
  readonly status?: number;
  readonly error?: string;
}

/** Sends notifications over HTTP (real: http-notifier.ts; tests may inject one). Never throws. */
export interface Notifier {
  deliver(request: DeliveryRequest): Promise<DeliveryOutcome>;
}

/** Header names every request carries. */
export const IDEMPOTENCY_HEADER = 'idempotency-key';
export const SIGNATURE_HEADER = 'x-argus-signature';
export const TIMESTAMP_HEADER = 'x-argus-timestamp';
