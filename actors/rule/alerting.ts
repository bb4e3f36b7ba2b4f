/**
 * Alerting as one runtime extension (`runtime.use(alerting(options))`), the second half of the
 * metrics pipeline: the rules watched from the config source (`rules`), the notification config
 * (`routes`, `receivers`, `silences`), the `rule` kind (service-level aggregation) and the `receiver`
 * kind (delivery), the host observer that evaluates host rules inside each host's delivery, and the
 * ticks that wake receivers and service rules when they have something due.
 *
 * Ticks are sent only by the node that owns the entity's shard, and only when the entity says it has
 * something due (`ask … 'due'`), so an idle cluster sends nothing; they go through the mailbox like any
 * message, so a tick's effects (a flush, a retry) are durable before anything depends on them.
 *
 * The `firing` kind (firing.ts) indexes the alerts firing now; this node answers the node query
 * `alerts.firing` for the index buckets it holds, and `GET /api/v1/alerts` gathers them (firing-api.ts).
 */
import type { Clock } from '../../runtime/boundaries.ts';
import { realClock } from '../../runtime/clock.ts';
import { describeError } from '../../runtime/errors.ts';
import type { HttpRoute } from '../../runtime/http.ts';
import type { Runtime, RuntimeExtension } from '../../runtime/runtime.ts';
import { Ticker } from '../../runtime/ticker.ts';
import type { HostObserver } from '../host/host.ts';
import { notifyApi } from '../notify/api.ts';
import { NotifyConfig } from '../notify/config.ts';
import { createHttpNotifier } from '../notify/http-notifier.ts';
import { receiverEntity } from '../notify/receiver.ts';
import type { Notifier, ReceiverMessage } from '../notify/types.ts';
import { ruleApi } from './api.ts';
import { EMPTY_RULE_INDEX, endHostRules, evaluateHostRules } from './evaluate.ts';
import { FIRING_QUERY, firingEntity } from './firing.ts';
import { firingApi, localFiring } from './firing-api.ts';
import { EVENTS_STREAM, publishAlerts, RECEIVER_KIND } from './publish.ts';
import { RULE_KIND, type RuleMessage, ruleEntity } from './rule.ts';
import { RuleSet } from './rules.ts';
import type { HostRuleState } from './types.ts';

export interface AlertingOptions {
  /** How often due receivers and service rules are looked at (default 250 ms). */
  readonly tickMs?: number;
  /** The HTTP boundary (default: the real one, http-notifier.ts). */
  readonly notifier?: Notifier;
  readonly clock?: Clock;
  readonly warn?: (message: string) => void;
}

export class Alerting implements RuntimeExtension {
  readonly name = 'alerting';
  readonly routes: readonly HttpRoute[];
  /** Give it to hostMetrics({ observer }): host rules run inside each host's delivery. */
  readonly observer: HostObserver;
  private runtime: Runtime | undefined;
  private ruleSet: RuleSet | undefined;
  private notifyConfig: NotifyConfig | undefined;
  private readonly ticker: Ticker;
  private ticking = false;
  private readonly clock: Clock;
  private readonly notifier: Notifier;
  private readonly warn: (message: string) => void;
  /** When each local service rule was last checked. */
  private readonly checkedAt = new Map<string, number>();
  private knownServiceRules = new Set<string>();
  /** Service rules removed since the last tick (their alerts are to resolve). */
  private readonly removedRules = new Set<string>();
  private unregisterQuery: (() => void) | undefined;
  private readonly ruleSources: ((rule: string) => boolean)[] = [];

  constructor(options: AlertingOptions = {}) {
    this.clock = options.clock ?? realClock;
    this.warn = options.warn ?? ((m: string) => process.emitWarning(`argus alerting: ${m}`));
    this.notifier = options.notifier ?? createHttpNotifier({ clock: this.clock });
    this.ticker = new Ticker(options.tickMs ?? 250, () => this.tick());
    this.observer = {
      streams: [EVENTS_STREAM],
      observe: (observed, record, at, ctx) => {
        const rules = this.ruleSet;
        if (!rules) return observed;
        const state = observed as HostRuleState | undefined;
        // A removed host (an empty record) lets go of every series: its alerts end.
        if (record !== undefined && record.samples.length === 0) {
          publishAlerts(ctx, endHostRules(rules.index(), state, at), this.notifyConfig?.routes());
          return undefined;
        }
        const result = evaluateHostRules(rules.index(), state, record, at);
        publishAlerts(ctx, result.events, this.notifyConfig?.routes());
        for (const p of result.partials) {
          const message: RuleMessage = { type: 'rule.partial', partial: p.partial };
          ctx.send(RULE_KIND, p.rule, message);
        }
        return result.state;
      },
    };
    this.routes = [
      ruleApi(() => this.rules),
      firingApi(
        () => this.runtime,
        (rule) => this.inForce(rule),
      ),
      notifyApi(
        () => this.notify,
        () => this.runtime,
      ),
    ];
  }

  get rules(): RuleSet | undefined {
    return this.ruleSet;
  }

  /**
   * Another source of rules whose alerts go through this alerting (the log rules): `GET /api/v1/alerts`
   * lists a firing alert only while its rule is in force in one of the sources.
   */
  addRuleSource(has: (rule: string) => boolean): void {
    this.ruleSources.push(has);
  }

  private inForce(rule: string): boolean {
    return this.ruleSet?.get(rule) !== undefined || this.ruleSources.some((has) => has(rule));
  }

  get notify(): NotifyConfig | undefined {
    return this.notifyConfig;
  }

  register(runtime: Runtime): void {
    runtime.register(
      ruleEntity({
        index: () => this.ruleSet?.index() ?? EMPTY_RULE_INDEX,
        routes: () => this.notifyConfig?.routes(),
      }),
    );
    runtime.register(firingEntity());
    runtime.register(
      receiverEntity({
        config: (id) => this.notifyConfig?.receiver(id),
        silences: () => this.notifyConfig?.silences() ?? [],
        notifier: () => this.notifier,
        send: (id, message) => runtime.send(RECEIVER_KIND, id, message),
      }),
    );
  }

  async start(runtime: Runtime): Promise<void> {
    this.runtime = runtime;
    const rules = new RuleSet(runtime.configSource, this.warn);
    const notify = new NotifyConfig(runtime.configSource, { warn: this.warn });
    await rules.start();
    try {
      await notify.start();
    } catch (e) {
      await rules.stop();
      throw e;
    }
    this.ruleSet = rules;
    this.notifyConfig = notify;
    this.knownServiceRules = this.serviceRuleIds();
    rules.onChange(() => this.rulesChanged());
    this.unregisterQuery = runtime.onNodeQuery(FIRING_QUERY, (params) => localFiring(runtime, params));
    this.ticker.start();
  }

  async stop(): Promise<void> {
    this.ticker.stop();
    this.unregisterQuery?.();
    this.unregisterQuery = undefined;
    await this.notifyConfig?.stop();
    await this.ruleSet?.stop();
    this.runtime = undefined;
  }

  private serviceRuleIds(): Set<string> {
    return new Set((this.ruleSet?.all() ?? []).filter((r) => r.scope === 'service').map((r) => r.id));
  }

  /** A removed service rule resolves its alerts: its entity is told, by the node owning it. */
  private rulesChanged(): void {
    const now = this.serviceRuleIds();
    for (const id of this.knownServiceRules) if (!now.has(id)) this.removedRules.add(id);
    this.knownServiceRules = now;
  }

  private local(kind: string, key: string): boolean {
    const rt = this.runtime;
    return rt?.runningShards(kind).includes(rt.shardOf(kind, key)) ?? false;
  }

  private async tick(): Promise<void> {
    const rt = this.runtime;
    if (!rt || this.ticking || rt.status !== 'running') return;
    this.ticking = true;
    try {
      const at = this.clock.now();
      const sends: Promise<void>[] = [];
      for (const r of this.notifyConfig?.receivers() ?? []) {
        if (!this.local(RECEIVER_KIND, r.id)) continue;
        const due = (await rt.ask(RECEIVER_KIND, r.id, 'due').catch(() => null)) as number | null;
        if (due === null || due > at) continue;
        const tick: ReceiverMessage = { type: 'receiver.tick', at };
        sends.push(rt.send(RECEIVER_KIND, r.id, tick));
      }
      for (const id of this.removedRules) {
        this.removedRules.delete(id);
        const check: RuleMessage = { type: 'rule.check', at };
        if (this.local(RULE_KIND, id)) sends.push(rt.send(RULE_KIND, id, check));
      }
      // Service rules are checked every interval: hosts that stopped reporting age out of the aggregate.
      for (const rule of this.ruleSet?.all() ?? []) {
        if (rule.scope !== 'service' || !this.local(RULE_KIND, rule.id)) continue;
        const last = this.checkedAt.get(rule.id);
        if (last === undefined) this.checkedAt.set(rule.id, at);
        if (last === undefined || at - last < rule.intervalMs) continue;
        this.checkedAt.set(rule.id, at);
        const check: RuleMessage = { type: 'rule.check', at };
        sends.push(rt.send(RULE_KIND, rule.id, check));
      }
      await Promise.all(sends);
    } catch (e) {
      if (this.runtime?.status === 'running') this.warn(`tick: ${describeError(e).message}`);
    } finally {
      this.ticking = false;
    }
  }
}

export const alerting = (options?: AlertingOptions): Alerting => new Alerting(options);
