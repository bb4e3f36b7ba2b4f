/**
 * Docs are part of the work: these checks keep them true. The embedding example runs; the error
 * codes and configuration fields listed in docs/ match the code; the README starts with its two
 * commands; every top-level folder has a README.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { configSchema } from '../runtime/config.ts';
import { ErrorCodes } from '../runtime/errors.ts';

const read = (p: string) => readFileSync(new URL(`../${p}`, import.meta.url), 'utf8');

describe('docs/EMBEDDING.md', () => {
  it('shows the example file unchanged', () => {
    expect(read('docs/EMBEDDING.md')).toContain(`\`\`\`ts\n${read('docs/examples/embedding.ts')}\`\`\``);
  });

  it('runs the example and prints what the page says', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', 'docs/examples/embedding.ts'], {
      encoding: 'utf8',
      timeout: 60_000,
    });
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    const printed = /It prints:\n\n```\n([\s\S]*?)```/.exec(read('docs/EMBEDDING.md'))?.[1];
    expect(r.stdout).toBe(printed);
  }, 60_000);
});

describe('docs/ERRORS.md', () => {
  it('lists exactly the error codes of runtime/errors.ts', () => {
    const documented = [...read('docs/ERRORS.md').matchAll(/^\| `(ARGUS_ERR_[A-Z_]+)` \|/gm)].map(
      (m) => m[1],
    );
    expect(documented.sort()).toEqual(Object.keys(ErrorCodes).sort());
  });
});

/** Every leaf field path of the config schema: `supervision.shard.backoff.minMs`, … */
const fieldPaths = (schema: z.ZodType, prefix = ''): string[] => {
  let s: z.ZodType = schema;
  for (;;) {
    const def = (
      s as unknown as { def: { type: string; innerType?: z.ZodType; in?: z.ZodType; options?: z.ZodType[] } }
    ).def;
    if (def.type === 'default' || def.type === 'prefault' || def.type === 'optional') s = def.innerType!;
    else if (def.type === 'pipe') s = def.in!;
    else if (def.type === 'union') {
      const obj = def.options!.find((o) => (o as unknown as { def: { type: string } }).def.type === 'object');
      if (!obj) return [prefix];
      return [prefix, ...fieldPaths(obj, prefix)];
    } else break;
  }
  if (s instanceof z.ZodObject) {
    return Object.entries(s.shape).flatMap(([k, v]) =>
      fieldPaths(v as z.ZodType, prefix ? `${prefix}.${k}` : k),
    );
  }
  return [prefix];
};

describe('docs/CONFIGURATION.md', () => {
  it('documents every configuration field', () => {
    const doc = read('docs/CONFIGURATION.md');
    const missing = [...new Set(fieldPaths(configSchema))].filter((p) => {
      const leaf = p.split('.').pop()!;
      const parent = p.split('.').slice(0, -1).join('.');
      return (
        !doc.includes(`\`${p}\``) && !doc.includes(`\`${parent}.${leaf}\``) && !doc.includes(`.${leaf}\``)
      );
    });
    expect(missing).toEqual([]);
  });
});

describe('README.md', () => {
  it('starts with exactly two commands: start embedded, and run the whole suite', () => {
    const readme = read('README.md');
    const first = readme.split(/\n## /)[0]!;
    const blocks = [...first.matchAll(/```(?:sh|bash)\n([\s\S]*?)```/g)].map((m) => m[1]!.trim());
    expect(blocks).toEqual(['npm install && npm start', 'npm run test:all']);
  });

  it.each(['runtime', 'actors', 'supervisors', 'cluster', 'test', 'bench', 'scripts', 'docs'])(
    '%s/ has a README',
    (folder) => {
      expect(existsSync(new URL(`../${folder}/README.md`, import.meta.url))).toBe(true);
    },
  );
});
