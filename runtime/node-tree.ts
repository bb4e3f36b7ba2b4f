/**
 * The supervisor tree of one node, described in one place. Later issues add `cluster`, `config`,
 * `rules`, `logs`, `notify` and `api` beside `shards` (DESIGN.md, "The shape").
 */

import type { SupervisorSpec } from '../supervisors/spec.ts';
import { supervisor } from '../supervisors/spec.ts';
import type { ArgusConfig } from './config.ts';

export const nodeTree = (config: ArgusConfig): SupervisorSpec =>
  supervisor('node', { strategy: 'one_for_one', ...config.supervision.root }, [
    // One supervisor per owned shard is added here at run time, as shards are assigned.
    supervisor('shards', { strategy: 'one_for_one', ...config.supervision.shards }, []),
  ]);
