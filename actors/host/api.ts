/**
 * The host-metrics JSON API on the node's HTTP endpoint (docs/HTTP.md):
 *
 *   GET    /api/v1/hosts/:id                 the host entity's summary (from its owning node) + recent samples here
 *   GET    /api/v1/inventory                 the inventory in force: source, host count, rejected hosts
 *   GET    /api/v1/poller                    this node's poller statistics
 *   GET    /api/v1/metricsets/:service       the metric set a host of the service polls now
 *   PUT    /api/v1/metricsets/:service       body: a metric set (YAML or JSON); validated, then stored (etcd)
 *   DELETE /api/v1/metricsets/:service
 *
 * A bad metric set is refused with 400 and every wrong field; nothing is stored.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { readBody } from '../../runtime/body.ts';
import { describeError, isArgusError } from '../../runtime/errors.ts';
import type { HttpRoute } from '../../runtime/http.ts';
import type { Runtime } from '../../runtime/runtime.ts';
import { HOST_KIND } from './host.ts';
import type { HostMetrics } from './host-metrics.ts';

const MAX_BODY = 1 << 20;

const json = (res: ServerResponse, status: number, body: unknown): void => {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
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
