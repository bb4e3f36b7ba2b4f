/**
 * The rules in force, from the config source's `rules` section (etcd `/<prefix>/rules/<id>`),
 * hot-applied: added, changed and removed rules take effect at the next evaluation, no restart. Each
 * change rebuilds the RuleIndex once (keeping the versions the previous index knew, so edited and
 * deleted rules' series end with the labels they fired with) and tells the listeners.
 *
 * Writes are validated before they reach the source (`put`, `apply`), so a bad rule is refused to its
 * sender with every wrong field, and nothing of a bad file is written. A bad document written around
 * that check (etcdctl) is reported (`warn`, `rejected`) and ignored: the rule keeps its last good
 * version, or does not exist if it never had one.
 */
import type { ConfigSource } from '../../runtime/boundaries.ts';
import { ArgusError, describeError } from '../../runtime/errors.ts';
import { buildRuleIndex, EMPTY_RULE_INDEX, type RuleIndex } from './evaluate.ts';
import { isRuleId, parseRule, parseRulesFile, ruleErrorMessage } from './schema.ts';
import type { Rule } from './types.ts';

export const RULES_SECTION = 'rules';

export interface ApplyResult {
  /** Whether the file was written (only when every rule in it is valid). */
  readonly applied: boolean;
  /** The ids written, in file order. */
  readonly rules: readonly string[];
  readonly errors: readonly { readonly id: string; readonly message: string }[];
}

type Listener = (rules: RuleSet) => void;

export class RuleSet {
  private rules = new Map<string, Rule>();
  private current: RuleIndex = EMPTY_RULE_INDEX;
  private changes = 0;
  private stopWatch: (() => Promise<void>) | undefined;
  private readonly listeners = new Set<Listener>();
  /** Documents of the source that are ignored, by id, with why (for the inspector and tests). */
  readonly rejected = new Map<string, string>();

  constructor(
    private readonly source: ConfigSource,
    private readonly warn: (message: string) => void = () => undefined,
  ) {}

  async start(): Promise<void> {
    this.stopWatch = await this.source.watch(
      RULES_SECTION,
      (entries) => this.load(entries),
      (e) => this.warn(`rules watch: ${e.message}`),
    );
  }

  async stop(): Promise<void> {
    await this.stopWatch?.();
    this.stopWatch = undefined;
  }

  /** Counts changes of the rules in force (starts at 0; +1 whenever a rule is added, changed or removed). */
  get version(): number {
    return this.changes;
  }

  all(): readonly Rule[] {
    return this.current.rules;
  }

  get(id: string): Rule | undefined {
    return this.rules.get(id);
  }

  /** The index of the rules in force (rebuilt on change; the same object until then). */
  index(): RuleIndex {
    return this.current;
  }

  /** Called after every change; returns the unsubscribe. */
  onChange(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Validates, then stores (the watch applies it). Throws ARGUS_ERR_INVALID_RULE; nothing is written then. */
  async put(id: string, text: string): Promise<Rule> {
    const rule = parseRule(id, text);
    await this.source.put(RULES_SECTION, id, text);
    return rule;
  }

  /** Resolves to whether the rule existed. Its alerts resolve at the next evaluation. */
  delete(id: string): Promise<boolean> {
    if (!isRuleId(id))
      throw new ArgusError('ARGUS_ERR_INVALID_RULE', `rule '${id}': id: is not a rule id`, {
        rule: id,
        problems: [{ path: 'id', message: 'is not a rule id' }],
      });
    return this.source.delete(RULES_SECTION, id);
  }

  /**
   * Applies a rules file (schema.ts, `parseRulesFile`): every rule is checked first; only if all are
   * valid are they written. Rules not in the file are left alone.
   */
  async apply(fileText: string): Promise<ApplyResult> {
    const file = parseRulesFile(fileText);
    const ids = file.rules.map((r) => r.id);
    if (file.errors.length > 0) return { applied: false, rules: [], errors: file.errors };
    for (const id of ids) await this.source.put(RULES_SECTION, id, file.texts.get(id)!);
    return { applied: true, rules: ids, errors: [] };
  }

  private load(entries: ReadonlyMap<string, string>): void {
    const next = new Map<string, Rule>();
    for (const [id, text] of entries) {
      try {
        next.set(id, parseRule(id, text));
        this.rejected.delete(id);
      } catch (e) {
        const why = e instanceof ArgusError ? ruleErrorMessage(e) : describeError(e).message;
        const previous = this.rules.get(id);
        if (this.rejected.get(id) !== why)
          this.warn(
            `rule '${id}' ignored (${previous ? 'its last good version stays' : 'it has none'}): ${why}`,
          );
        this.rejected.set(id, why);
        if (previous) next.set(id, previous);
      }
    }
    for (const id of this.rejected.keys()) if (!entries.has(id)) this.rejected.delete(id);
    if (sameRules(this.rules, next)) return;
    this.rules = next;
    this.current = buildRuleIndex([...next.values()], this.current);
    this.changes++;
    for (const l of this.listeners) {
      try {
        l(this);
      } catch (e) {
        this.warn(`rules listener failed: ${describeError(e).message}`);
      }
    }
  }
}

const sameRules = (a: ReadonlyMap<string, Rule>, b: ReadonlyMap<string, Rule>): boolean => {
  if (a.size !== b.size) return false;
  for (const [id, r] of b) if (a.get(id)?.version !== r.version) return false;
  return true;
};
