/**
 * Logs from the runtime configuration's `logs` section (docs/CONFIGURATION.md): what `npm start` uses.
 * On one node the section's `rules` seed the in-memory config source; a cluster reads them from etcd
 * (`/<prefix>/logrules/<id>`).
 */
import type { ArgusConfig } from '../../runtime/config.ts';
import type { Alerting } from '../rule/alerting.ts';
import { type Logs, type LogsOptions, logs } from './extension.ts';
import { LOG_RULES_SECTION } from './rules.ts';

export const logsFromConfig = (
  config: ArgusConfig,
  options: Omit<LogsOptions, 'config'> & { readonly alerting?: Alerting } = {},
): { extension: Logs; seeds: Record<string, Record<string, string>> } | undefined => {
  const section = config.logs;
  if (section === false) return undefined;
  const seeds: Record<string, string> = {};
  for (const [id, doc] of Object.entries(section.rules))
    seeds[id] = typeof doc === 'string' ? doc : JSON.stringify(doc);
  return { extension: logs({ ...options, config: section }), seeds: { [LOG_RULES_SECTION]: seeds } };
};
