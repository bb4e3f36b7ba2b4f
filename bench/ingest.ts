import type { Benchmark } from './common.ts';

export const benchmark: Benchmark = {
  name: 'ingest',
  summary: 'being written',
  defaultRounds: 1,
  run: async () => {
    throw new Error('ingest: not written yet');
  },
};
