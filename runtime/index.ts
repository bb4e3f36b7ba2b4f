/**
 * Argus's public API, for platform teams embedding the runtime (docs/EMBEDDING.md).
 */

export {
  type ChildSpec,
  type RestartType,
  type Strategy,
  type SupervisorSpec,
  supervisor,
  worker,
} from '../supervisors/spec.ts';
export { type RunningTree, startTree } from '../supervisors/tree.ts';
export {
  type ActorContext,
  type ActorDefinition,
  type ActorRef,
  defineActor,
  tell,
  tellBatch,
} from './actor.ts';
export type {
  Checkpoint,
  CheckpointStore,
  Clock,
  ClusterView,
  Coordinator,
  DeadLetter,
  DeadLetterId,
  DeadLetterStore,
  MailboxTransport,
  MemberInfo,
  ShardWriter,
  SnapshotStore,
} from './boundaries.ts';
export { SequentialCheckpointStore } from './checkpoints.ts';
export { realClock } from './clock.ts';
export { type ArgusConfig, type ArgusConfigInput, parseConfig } from './config.ts';
export { defineEntity, type EntityContext, type EntityDefinition } from './entity.ts';
export { ArgusError, type ErrorCode, ErrorCodes, isArgusError } from './errors.ts';
export type {
  AdminEvent,
  ArgusEvent,
  BatchEvent,
  ClusterEvent,
  DeadLetterEvent,
  EventObserver,
  LifecycleEvent,
  LifecyclePhase,
} from './events.ts';
export { EventBus } from './events.ts';
export { startHttp } from './http.ts';
export { type Inspector, type InspectorOptions, inspector } from './inspector/index.ts';
export {
  type Boundaries,
  createRuntime,
  type EntityClient,
  type EntityState,
  type Inspection,
  type Runtime,
  type RuntimeOptions,
  type RuntimeStatus,
  type ShardLag,
} from './runtime.ts';
