/**
 * A node's supervisor tree, started from one spec (the tree is described in one place per node:
 * runtime/node-tree.ts). Owns the nact actor system underneath.
 */
import nact from 'nact';
import type { EventBus } from '../runtime/events.ts';
import type { ChildSpec, SupervisorSpec } from './spec.ts';
import { validateChildSpec } from './spec.ts';
import { type ChildInfo, type ChildObserver, Supervisor, type SupervisorEnv } from './supervisor.ts';

export interface RunningTree {
  readonly root: Supervisor;
  readonly system: nact.Ref<unknown>;
  /** Set when the root gave up (its intensity was exceeded); the tree is then stopped. */
  readonly failure: Error | undefined;
  describe(): ChildInfo;
  /** Stops the tree in reverse start order, then the actor system. */
  stop(): Promise<void>;
}

const validateTree = (spec: ChildSpec): void => {
  validateChildSpec(spec);
  if (spec.type === 'supervisor') for (const c of spec.children) validateTree(c);
};

export const startTree = (
  spec: SupervisorSpec,
  env: SupervisorEnv & { readonly events: EventBus },
  onRootFailure: (error: Error) => void = () => {},
  observer?: ChildObserver,
): RunningTree => {
  validateTree(spec);
  const system = nact.start() as nact.Ref<unknown>;
  let failure: Error | undefined;
  const root = new Supervisor(
    spec,
    system,
    spec.id,
    env,
    (_crashed, error) => {
      failure = error instanceof Error ? error : new Error(String(error));
      onRootFailure(failure);
    },
    observer,
  );
  return {
    root,
    system,
    get failure() {
      return failure;
    },
    describe: () => ({
      id: spec.id,
      type: 'supervisor',
      restart: spec.restart,
      status: failure ? 'stopping' : 'running',
      restarts: 0,
      children: root.describe(),
    }),
    stop: async () => {
      await root.shutdown();
      nact.stop(system);
    },
  };
};
