/**
 * The one way cluster/ makes an etcd client: bounded calls, our own retry loops instead of etcd3's
 * circuit breaker (which would keep a recovered etcd "open" for 5 s), quick watch reconnects.
 */
import { ExponentialBackoff, noop } from 'cockatiel';
import { Etcd3 } from 'etcd3';

export const createEtcdClient = (endpoints: readonly string[], callTimeoutMs: number): Etcd3 =>
  new Etcd3({
    hosts: [...endpoints],
    dialTimeout: callTimeoutMs,
    faultHandling: {
      host: () => noop,
      global: noop,
      // etcd3 declares an IBackoff but calls next() on it as on this factory (namespace.js does the same).
      watchBackoff: new ExponentialBackoff({ initialDelay: 100, maxDelay: 1_000 }) as never,
    },
    defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + callTimeoutMs }),
  });
