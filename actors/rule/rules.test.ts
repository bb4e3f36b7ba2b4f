import { afterEach, describe, expect, it } from 'vitest';
import { stringify } from 'yaml';
import { isArgusError } from '../../runtime/errors.ts';
import { MemoryConfigSource } from '../../runtime/memory-config.ts';
import { evaluateHostRules } from './evaluate.ts';
import { RULES_SECTION, RuleSet } from './rules.ts';

const doc = (fields: Record<string, unknown> = {}) =>
  stringify({ metric: 'cpu.busy_pct', condition: '> 90', severity: 3, ...fields });

const started: RuleSet[] = [];
const start = async (seed: Record<string, string> = {}) => {
  const source = new MemoryConfigSource({ [RULES_SECTION]: seed });
  const warnings: string[] = [];
  const rules = new RuleSet(source, (m) => warnings.push(m));
  await rules.start();
  started.push(rules);
  return { source, rules, warnings };
};

afterEach(async () => {
  for (const r of started.splice(0)) await r.stop();
});

describe('RuleSet', () => {
  it('loads the section at start and indexes the rules by metric', async () => {
    const { rules } = await start({
      'cpu-high': doc(),
      'mem-low': doc({ metric: 'mem.available', condition: '< 1e8' }),
    });
    expect(rules.all().map((r) => r.id)).toEqual(['cpu-high', 'mem-low']);
    expect(rules.get('mem-low')?.op).toBe('<');
    expect([...rules.index().forService('any').keys()]).toEqual(['cpu.busy_pct', 'mem.available']);
    expect(rules.version).toBe(1);
  });

  it('put validates, then writes; the watch applies it with no restart', async () => {
    const { source, rules } = await start();
    const changes: number[] = [];
    rules.onChange((r) => changes.push(r.version));
    const rule = await rules.put('cpu-high', doc());
    expect(rule.threshold).toBe(90);
    expect(await source.list(RULES_SECTION)).toEqual(new Map([['cpu-high', doc()]]));
    expect(rules.get('cpu-high')?.version).toBe(rule.version);
    await rules.put('cpu-high', doc({ condition: '> 95' }));
    expect(rules.get('cpu-high')?.threshold).toBe(95);
    expect(changes).toEqual([1, 2]);
  });

  it('put refuses a bad rule with ARGUS_ERR_INVALID_RULE and writes nothing', async () => {
    const { source, rules } = await start({ 'cpu-high': doc() });
    const before = rules.index();
    await expect(rules.put('cpu-high', doc({ severity: 9 }))).rejects.toSatisfy(
      (e) =>
        isArgusError(e, 'ARGUS_ERR_INVALID_RULE') &&
        e.message === "ARGUS_ERR_INVALID_RULE: rule 'cpu-high': severity: must be an integer 1-5, got 9",
    );
    await expect(rules.put('bad id', doc())).rejects.toSatisfy((e) =>
      isArgusError(e, 'ARGUS_ERR_INVALID_RULE'),
    );
    expect((await source.list(RULES_SECTION)).get('cpu-high')).toBe(doc());
    expect(rules.index()).toBe(before);
  });

  it('delete removes the rule; its firing alerts resolve at the next evaluation', async () => {
    const { rules } = await start({ 'cpu-high': doc() });
    const record = {
      host: 'h',
      service: 's',
      samples: [{ metric: 'cpu.busy_pct', tags: {}, ts: 1000, value: 99 }],
    };
    const fired = evaluateHostRules(rules.index(), undefined, record, 1000);
    expect(fired.events.map((e) => e.status)).toEqual(['firing']);
    expect(await rules.delete('cpu-high')).toBe(true);
    expect(rules.get('cpu-high')).toBeUndefined();
    const after = evaluateHostRules(rules.index(), fired.state, undefined, 2000);
    expect(after.events.map((e) => [e.status, e.fingerprint])).toEqual([
      ['resolved', fired.events[0]!.fingerprint],
    ]);
    expect(await rules.delete('cpu-high')).toBe(false);
  });

  it('ignores a bad document written around put, keeping the last good version, and says why', async () => {
    const { source, rules, warnings } = await start({ 'cpu-high': doc() });
    const good = rules.get('cpu-high')!;
    const version = rules.version;
    await source.put(RULES_SECTION, 'cpu-high', 'metric: cpu\ncondition: > 90\n');
    await source.put(RULES_SECTION, 'never-good', doc({ condition: '=> 1' }));
    expect(rules.get('cpu-high')).toBe(good);
    expect(rules.get('never-good')).toBeUndefined();
    expect(rules.version).toBe(version);
    expect([...rules.rejected.keys()]).toEqual(['cpu-high', 'never-good']);
    expect(warnings).toEqual([
      "rule 'cpu-high' ignored (its last good version stays): rule 'cpu-high': is not valid YAML or JSON: Not a YAML token: 90 at line 2, column 14 (quote the condition in YAML: condition: '> 90')",
      "rule 'never-good' ignored (it has none): rule 'never-good': condition: unknown operator '=>' (use >, >=, <, <=, == or !=)",
    ]);
    // Fixed in the source: accepted, no longer rejected.
    await source.put(RULES_SECTION, 'cpu-high', doc({ condition: '> 80' }));
    expect(rules.get('cpu-high')?.threshold).toBe(80);
    expect(rules.rejected.has('cpu-high')).toBe(false);
    await source.delete(RULES_SECTION, 'never-good');
    expect(rules.rejected.size).toBe(0);
  });

  it('apply writes a file only if every rule in it is valid', async () => {
    const { source, rules } = await start({ keep: doc() });
    const bad = stringify({
      rules: [
        { id: 'a', metric: 'x', condition: '> 1', severity: 2 },
        { id: 'b', metric: 'x', condition: '> 1', severity: 9 },
      ],
    });
    expect(await rules.apply(bad)).toEqual({
      applied: false,
      rules: [],
      errors: [{ id: 'b', message: "rule 'b': severity: must be an integer 1-5, got 9" }],
    });
    expect([...(await source.list(RULES_SECTION)).keys()]).toEqual(['keep']);
    const good = stringify([
      { id: 'a', metric: 'x', condition: '> 1', severity: 2 },
      { id: 'b', metric: 'y', condition: '< 1', severity: 5 },
    ]);
    expect(await rules.apply(good)).toEqual({ applied: true, rules: ['a', 'b'], errors: [] });
    expect(rules.all().map((r) => r.id)).toEqual(['keep', 'a', 'b']);
    expect(rules.get('b')?.severity).toBe(5);
  });

  it('rebuilds the index only when a rule really changes, and remembers retired versions', async () => {
    const { source, rules } = await start({ 'cpu-high': doc() });
    const first = rules.index();
    const v1 = rules.get('cpu-high')!.version;
    await source.put(RULES_SECTION, 'cpu-high', `# only a comment\n${doc()}`);
    expect(rules.index()).toBe(first);
    await source.put(RULES_SECTION, 'cpu-high', doc({ severity: 4 }));
    expect(rules.index()).not.toBe(first);
    expect(rules.index().versions.get(v1)?.severity).toBe(3);
  });

  it('stop ends the watch', async () => {
    const { source, rules } = await start();
    await rules.stop();
    await source.put(RULES_SECTION, 'late', doc());
    expect(rules.get('late')).toBeUndefined();
  });
});
