/**
 * The rule entity (`rule/<id>`): the service-level part of a `service`-scope rule. Each host evaluates
 * its own samples next to its shard and sends only its partial aggregate (sum, count, min, max of its
 * matching samples at one instant) here; this entity keeps the latest partial of every host of each
 * service and the service series' alert state in its snapshot, and combines and steps them with
 * service.ts. A `rule.check` (sent by the node owning the rule's shard every interval, and when the
 * rule is removed) ages hosts out, checks for missing data, and ends every alert of a rule that no
 * longer exists, with the labels of the version they fired with (the index keeps retired versions).
 *
 * Pure apart from `ctx` (events and receiver messages land with the checkpoint, publish.ts).
 */
import { defineEntity } from '../../runtime/entity.ts';
import type { Route } from '../notify/types.ts';
import type { RuleIndex } from './evaluate.ts';
import { EVENTS_STREAM, publishAlerts } from './publish.ts';
import { applyPartial, checkServices, endServices, type ServiceRuleState } from './service.ts';
import type { AlertEvent, ServicePartial } from './types.ts';

export const RULE_KIND = 'rule';

export type RuleMessage =
  | { readonly type: 'rule.partial'; readonly partial: ServicePartial }
  | { readonly type: 'rule.check'; readonly at: number };

export const initialRuleState = (): ServiceRuleState => ({ version: '', services: {} });

/** Applies one message with the rules in force; the events are the transitions it caused. */
export const applyRuleMessage = (
  state: ServiceRuleState,
  message: RuleMessage,
  id: string,
  index: RuleIndex,
): { state: ServiceRuleState; events: AlertEvent[] } => {
  const rule = index.byId.get(id);
  const live = rule?.scope === 'service' ? rule : undefined;
  const before = state.version === '' ? undefined : index.versions.get(state.version);
  const known = state.version === '' ? undefined : state;
  switch (message.type) {
    case 'rule.partial':
      return live ? applyPartial(live, known, message.partial, before) : { state, events: [] };
    case 'rule.check':
      if (live) return checkServices(live, known, message.at, before);
      // The rule is gone (or no longer a service rule): its alerts end.
      if (!before) return { state, events: [] };
      return { state: initialRuleState(), events: endServices(before, known, message.at) };
    default: {
      const never: never = message;
      throw new Error(`unknown rule message ${JSON.stringify(never)}`);
    }
  }
};

export const parseRuleMessage = (payload: unknown): RuleMessage => {
  const m = payload as { type?: unknown; partial?: Partial<ServicePartial>; at?: unknown };
  if (m?.type === 'rule.check' && typeof m.at === 'number') return m as RuleMessage;
  if (m?.type === 'rule.partial' && typeof m.partial === 'object' && m.partial !== null) {
    const p = m.partial;
    if (
      typeof p.host === 'string' &&
      typeof p.service === 'string' &&
      typeof p.ts === 'number' &&
      typeof p.sum === 'number' &&
      typeof p.count === 'number' &&
      typeof p.min === 'number' &&
      typeof p.max === 'number'
    )
      return m as RuleMessage;
    throw new Error(
      'rule.partial needs partial.host and partial.service (strings), ts, sum, count, min, max (numbers)',
    );
  }
  throw new Error(
    `rule message must be rule.partial { partial } or rule.check { at }, got ${JSON.stringify(m?.type)}`,
  );
};

export interface RuleEntityOptions {
  /** The rules in force (with the retired versions older state was evaluated with). */
  readonly index: () => RuleIndex;
  readonly routes: () => Route | undefined;
}

export const ruleEntity = (options: RuleEntityOptions) =>
  defineEntity<ServiceRuleState, RuleMessage>({
    kind: RULE_KIND,
    streams: [EVENTS_STREAM],
    initialState: initialRuleState,
    parse: parseRuleMessage,
    receive: (state, message, ctx) => {
      const result = applyRuleMessage(state, message, ctx.key, options.index());
      publishAlerts(ctx, result.events, options.routes());
      return result.state;
    },
    query: (state, query) =>
      query === 'summary'
        ? {
            version: state.version,
            services: Object.fromEntries(
              Object.entries(state.services).map(([service, s]) => [
                service,
                {
                  hosts: Object.keys(s.hosts).length,
                  phase: s.series?.phase ?? 'inactive',
                  value: s.series?.value ?? null,
                },
              ]),
            ),
          }
        : { state },
  });
