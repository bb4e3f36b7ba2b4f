/**
 * The linter/formatter (biome) and the type checker are part of the suite: a change that does not
 * pass them fails the run like any other broken test.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';

const run = (cmd: string, args: string[]) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 240_000 });
  return { status: r.status, output: `${r.stdout}\n${r.stderr}`.slice(-6000) };
};

describe('code quality', () => {
  it('passes biome (lint and format) with no errors', () => {
    const r = run('npx', ['biome', 'check', '--error-on-warnings', '.']);
    expect(r.output.includes('Checked') ? '' : r.output).toBe('');
    expect(r.status, r.output).toBe(0);
  }, 240_000);

  it('type-checks with tsc --noEmit (strict)', () => {
    const r = run('npx', ['tsc', '-p', 'tsconfig.json']);
    expect(r.status, r.output).toBe(0);
  }, 240_000);
});
