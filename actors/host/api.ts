/**
 * The host-metrics JSON API on the node's HTTP endpoint (docs/HTTP.md):
 *
 *   GET    /api/v1/hosts?q=&offset=&limit=   the hosts known cluster-wide with their latest samples (gathered)
 *   GET    /api/v1/hosts/:id                 the host entity's summary (from its owning node) + recent samples here
 *   GET    /api/v1/hosts/:id/history         the recent points of each series, from the node owning the host
 *   GET    /api/v1/inventory                 the inventory in force: source, host count, rejected hosts
 *   GET    /api/v1/poller                    this node's poller statistics
 *   GET    /api/v1/metricsets/:service       the metric set a host of the service polls now
 *   PUT    /api/v1/metricsets/:service       body: a metric set (YAML or JSON); validated, then stored (etcd)
 *   DELETE /api/v1/metricsets/:service
 *
 * A bad metric set is refused with 400 and every wrong field; nothing is stored.
 *
 * The list is gathered (docs/API.md, "Cluster-wide answers"): each member answers the node query
 * `hosts.list` for the host shards it holds (HostMetrics.localHosts); members that do not answer in time
 * are in `missing`. The history is the owning node's (HostHistory is fed where the host's records land),
 * asked of the host entity (`ask(host, id, 'history')`) so it follows placement like any entity ask —
 * no gathering, and one node answers.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBody } from '../../runtime/body.ts';
import { describeError, isArgusError } from '../../runtime/errors.ts';
import type { HttpRoute } from '../../runtime/http.ts';
import { writeJson } from '../../runtime/json-api.ts';
import type { Runtime } from '../../runtime/runtime.ts';
import { HOST_KIND } from './host.ts';
import {
  HISTORY_QUERY,
  HOSTS_QUERY,
  type HostListItem,
  type HostMetrics,
  type HostsAnswer,
} from './host-metrics.ts';

const MAX_BODY = 1 << 20;

const json = (res: ServerResponse, status: number, body: unknown): void => writeJson(res, { status, body });

/** Default and largest page of `GET /api/v1/hosts`. */
const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 1_000;

/** A paging parameter: absent → `fallback`; else an integer in [0, max], or a 400 naming it. */
const intParam = (url: URL, name: string, fallback: number, max: number): number | string => {
  const raw = url.searchParams.get(name);
  if (raw === null || raw === '') return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) > max) return `${name}: must be an integer 0-${max}, got '${raw}'`;
  return Number(raw);
};

const byId = (a: HostListItem, b: HostListItem) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);

const listHosts = async (
  rt: Runtime,
  metrics: HostMetrics,
  url: URL,
): Promise<{ status: number; body: unknown }> => {
  const offset = intParam(url, 'offset', 0, Number.MAX_SAFE_INTEGER);
  const limit = intParam(url, 'limit', DEFAULT_LIMIT, MAX_LIMIT);
  if (typeof offset === 'string') return { status: 400, body: { error: offset } };
  if (typeof limit === 'string') return { status: 400, body: { error: limit } };
  const q = url.searchParams.get('q') ?? '';
  const { answers, missing } = await rt.gather(HOSTS_QUERY, { q, take: offset + limit });
  let total = 0;
  const seen = new Map<string, HostListItem>();
  for (const a of answers) {
    const answer = a.value as HostsAnswer;
    total += answer.total;
    // A host answered twice (its shard moving between the two answers) counts once.
    for (const item of answer.items)
      if (seen.has(item.id)) total--;
      else seen.set(item.id, item);
  }
  const items = [...seen.values()].sort(byId).slice(offset, offset + limit);
  // Host shards no answering member holds (a dead member's, until they move): their hosts are missing.
  const held = new Set(answers.flatMap((a) => (a.value as HostsAnswer).shards));
  const unanswered = Array.from({ length: metrics.shardCount }, (_, i) => i)
    .filter((i) => !held.has(i))
    .map((i) => `${HOST_KIND}/${i}`);
  return {
    status: 200,
    body: {
      partial: missing.length > 0 || unanswered.length > 0,
      missing,
      unanswered,
      total,
      offset,
      limit,
      items,
    },
  };
};

const statusOf = (e: unknown): number =>
  isArgusError(e, 'ARGUS_ERR_INVALID_CONFIG') || isArgusError(e, 'ARGUS_ERR_INVALID_KEY')
    ? 400
    : isArgusError(e, 'ARGUS_ERR_UNREACHABLE')
      ? 503
      : 500;

export const hostApi =
  (metrics: HostMetrics, runtime: () => Runtime | undefined): HttpRoute =>
  async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> => {
    if (!url.pathname.startsWith('/api/v1/')) return false;
    const parts = url.pathname
      .split('/')
      .filter((p) => p !== '')
      .map(decodeURIComponent)
      .slice(2);
    const [what, name] = parts;
    const method = req.method ?? 'GET';
    const rt = runtime();
    try {
      if (what === 'hosts' && parts.length === 1 && method === 'GET') {
        if (!rt) {
          json(res, 503, { error: 'host metrics are not running' });
          return true;
        }
        const r = await listHosts(rt, metrics, url);
        json(res, r.status, r.body);
        return true;
      }
      if (what === 'hosts' && name && parts.length === 3 && parts[2] === 'history' && method === 'GET') {
        if (!rt) {
          json(res, 503, { error: 'host metrics are not running' });
          return true;
        }
        json(res, 200, await rt.ask(HOST_KIND, name, HISTORY_QUERY));
        return true;
      }
      if (what === 'hosts' && name && parts.length === 2 && method === 'GET') {
        if (!rt) {
          json(res, 503, { error: 'host metrics are not running' });
          return true;
        }
        const summary = await rt.ask(HOST_KIND, name, 'summary');
        json(res, 200, { id: name, summary, latest: metrics.latest(name) });
        return true;
      }
      if (what === 'inventory' && parts.length === 1 && method === 'GET') {
        json(res, 200, metrics.inventory());
        return true;
      }
      if (what === 'poller' && parts.length === 1 && method === 'GET') {
        const stats = metrics.pollerStats();
        json(
          res,
          200,
          stats && url.searchParams.has('hosts')
            ? { ...stats, hosts: metrics.polledHosts() }
            : (stats ?? null),
        );
        return true;
      }
      if (what === 'metricsets' && name && parts.length === 2) {
        const sets = metrics.metricSets();
        if (method === 'GET') {
          json(res, 200, sets.forService(name));
          return true;
        }
        if (method === 'PUT') {
          const text = (await readBody(req, MAX_BODY)).toString('utf8');
          const set = await sets.put(name, text);
          json(res, 200, { service: name, metricSet: set });
          return true;
        }
        if (method === 'DELETE') {
          json(res, 200, { deleted: await sets.delete(name) });
          return true;
        }
      }
    } catch (e) {
      json(res, statusOf(e), { error: describeError(e).message });
      return true;
    }
    return false;
  };
