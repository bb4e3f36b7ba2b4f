import type { Benchmark } from './common.ts';

export const benchmark: Benchmark = {
  name: 'snmp-poll',
  summary: 'being written',
  defaultRounds: 1,
  run: async () => {
    throw new Error('snmp-poll: not written yet');
  },
};
