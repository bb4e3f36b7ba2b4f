import type { Benchmark } from './common.ts';

export const benchmark: Benchmark = {
  name: 'host-memory',
  summary: 'being written',
  defaultRounds: 1,
  run: async () => {
    throw new Error('host-memory: not written yet');
  },
};
