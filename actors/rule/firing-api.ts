/**
 * The firing alerts on the node's HTTP endpoint (docs/API.md, "Inspector" → "Alerts"):
 *
 *   GET /api/v1/alerts?severity=&rule=&host=   the alerts firing now, cluster-wide
 *
 * Gathered: every member answers the node query `alerts.firing` with the alerts of the firing-index
 * buckets whose shards it holds (firing.ts), filtered; this node merges them (the newer seq of an alert
 * seen twice while its bucket moves), hides alerts of rules no longer in force, and sorts them most
 * severe first, then oldest first. Members that do not answer in time are in `missing`, and the answer
 * is `partial`.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { HttpRoute } from '../../runtime/http.ts';
import { failure, problem, Refusal, type Reply, reply, writeJson } from '../../runtime/json-api.ts';
import type { Runtime } from '../../runtime/runtime.ts';
import {
  FIRING_KIND,
  FIRING_QUERY,
  type FiringAlert,
  type FiringFilter,
  type FiringState,
  firingBuckets,
  listFiring,
} from './firing.ts';

const PATH = '/api/v1/alerts';

/** The query string as a filter; a bad severity is refused naming the field. */
export const firingFilterOf = (params: URLSearchParams): FiringFilter => {
  const severity = params.get('severity');
  const rule = params.get('rule');
  const host = params.get('host');
  if (severity !== null && severity !== '' && !/^[1-5]$/.test(severity))
    throw new Refusal(400, `severity: must be an integer 1-5, got '${severity}'`);
  return {
    ...(severity !== null && severity !== '' ? { severity: Number(severity) } : {}),
    ...(rule !== null && rule !== '' ? { rule } : {}),
    ...(host !== null && host !== '' ? { host } : {}),
  };
};

/** A filter from another member (msgpack): only the known fields, of the right types. */
const filterFrom = (params: unknown): FiringFilter => {
  const p = (typeof params === 'object' && params !== null ? params : {}) as Record<string, unknown>;
  return {
    ...(typeof p.severity === 'number' ? { severity: p.severity } : {}),
    ...(typeof p.rule === 'string' ? { rule: p.rule } : {}),
    ...(typeof p.host === 'string' ? { host: p.host } : {}),
  };
};

/** What a member answers: the firing-index shards it holds, and their alerts matching the filter. */
export interface FiringAnswer {
  readonly shards: readonly number[];
  readonly alerts: readonly FiringAlert[];
}

/** This node's half: the alerts of the index buckets whose shards run here, matching the filter. */
export const localFiring = async (rt: Runtime, params: unknown): Promise<FiringAnswer> => {
  const shards = rt.runningShards(FIRING_KIND);
  const held = new Set(shards);
  const states = await Promise.all(
    firingBuckets()
      .filter((b) => held.has(rt.shardOf(FIRING_KIND, b)))
      .map(async (b) => Object.values(((await rt.entityState(FIRING_KIND, b)).state as FiringState).alerts)),
  );
  return { shards, alerts: listFiring(states, filterFrom(params), () => true) };
};

/**
 * The index shards no answering member holds (the dead member's, until their new owner has them):
 * their alerts are missing from the answer even when every member that is still a member answered.
 */
const unanswered = (rt: Runtime, answers: readonly FiringAnswer[]): number[] => {
  const held = new Set(answers.flatMap((a) => a.shards));
  const needed = new Set(firingBuckets().map((b) => rt.shardOf(FIRING_KIND, b)));
  return [...needed].filter((s) => !held.has(s)).sort((a, b) => a - b);
};

const serve = async (rt: Runtime, inForce: (rule: string) => boolean, url: URL): Promise<Reply> => {
  const filter = firingFilterOf(url.searchParams);
  const { answers, missing } = await rt.gather(FIRING_QUERY, filter);
  const answered = answers.map((a) => a.value as FiringAnswer);
  const items = listFiring(
    answered.map((a) => a.alerts),
    filter,
    inForce,
  );
  const moving = unanswered(rt, answered);
  return reply(200, {
    partial: missing.length > 0 || moving.length > 0,
    missing,
    unanswered: moving.map((shard) => `${FIRING_KIND}/${shard}`),
    total: items.length,
    items,
  });
};

export const firingApi =
  (runtime: () => Runtime | undefined, inForce: (rule: string) => boolean): HttpRoute =>
  async (req: IncomingMessage, res: ServerResponse, url: URL): Promise<boolean> => {
    if (url.pathname !== PATH && url.pathname !== `${PATH}/`) return false;
    if ((req.method ?? 'GET') !== 'GET') {
      writeJson(res, problem(405, `${PATH} answers GET only`));
      return true;
    }
    const rt = runtime();
    let r: Reply;
    try {
      r = rt ? await serve(rt, inForce, url) : problem(503, 'alerting is not running yet');
    } catch (e) {
      r = failure(e, []);
    }
    writeJson(res, r);
    return true;
  };
