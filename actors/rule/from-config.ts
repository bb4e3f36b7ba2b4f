/**
 * Alerting from the runtime configuration's `alerts` section (docs/CONFIGURATION.md): what `npm start`
 * uses. On one node the section's `rules`, `receivers` and `routes` seed the in-memory config source;
 * a cluster reads them from etcd.
 */
import type { ArgusConfig } from '../../runtime/config.ts';
import { RECEIVERS_SECTION, ROUTES_KEY, ROUTES_SECTION } from '../notify/config.ts';
import { type Alerting, alerting } from './alerting.ts';
import { RULES_SECTION } from './rules.ts';

const text = (doc: string | Readonly<Record<string, unknown>>): string =>
  typeof doc === 'string' ? doc : JSON.stringify(doc);

const texts = (docs: Readonly<Record<string, string | Readonly<Record<string, unknown>>>>) =>
  Object.fromEntries(Object.entries(docs).map(([k, v]) => [k, text(v)]));

export const alertingFromConfig = (
  config: ArgusConfig,
): { extension: Alerting; seeds: Record<string, Record<string, string>> } | undefined => {
  const alerts = config.alerts;
  if (alerts === false) return undefined;
  return {
    extension: alerting({ tickMs: alerts.tickMs }),
    seeds: {
      [RULES_SECTION]: texts(alerts.rules),
      [RECEIVERS_SECTION]: texts(alerts.receivers),
      ...(alerts.routes ? { [ROUTES_SECTION]: { [ROUTES_KEY]: text(alerts.routes) } } : {}),
    },
  };
};
