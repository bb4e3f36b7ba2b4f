/**
 * Where an alert transition goes, from whichever entity evaluated it (a host for host rules, `rule/<id>`
 * for service rules), inside that entity's delivery: to the `events` stream (the live feed, the
 * inspector), and — firing and resolved only — to each receiver the route tree picks, as a
 * `receiver.alert` message. Both land with the evaluating entity's checkpoint (`ctx.emit`,
 * `ctx.send`), so a crash neither loses a transition nor sends it twice. Firing and resolved
 * transitions also go, as one message per delivery, to the firing index (firing.ts), which is what
 * `GET /api/v1/alerts` lists.
 */
import type { EntityContext } from '../../runtime/entity.ts';
import { EVENTS_STREAM, RECEIVER_KIND } from '../notify/receiver.ts';
import { routeAlert } from '../notify/routes.ts';
import type { ReceiverMessage, Route } from '../notify/types.ts';
import { FIRING_KIND, type FiringMessage, firingBucket, firingChanges } from './firing.ts';
import type { AlertEvent } from './types.ts';

export { EVENTS_STREAM, RECEIVER_KIND };

export const publishAlerts = (
  ctx: EntityContext,
  events: readonly AlertEvent[],
  routes: Route | undefined,
): void => {
  for (const event of events) {
    ctx.emit(EVENTS_STREAM, event);
    if (!routes || (event.status !== 'firing' && event.status !== 'resolved')) continue;
    for (const m of routeAlert(routes, event.labels, event.severity)) {
      const message: ReceiverMessage = {
        type: 'receiver.alert',
        alert: event,
        routeId: m.routeId,
        groupKey: m.groupKey,
        groupLabels: m.groupLabels,
        timing: m.timing,
        at: event.at,
      };
      ctx.send(RECEIVER_KIND, m.receiver, message);
    }
  }
  const changes = firingChanges(events);
  if (changes.length > 0) {
    const message: FiringMessage = { type: 'firing.changes', changes };
    ctx.send(FIRING_KIND, firingBucket(ctx.kind, ctx.key), message);
  }
};
