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
import { WatchedDocuments } from '../../runtime/watched-documents.ts';
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
  private current: RuleIndex = EMPTY_RULE_INDEX;
  private readonly docs: WatchedDocuments<Rule>;

  constructor(
    private readonly source: ConfigSource,
    warn: (message: string) => void = () => undefined,
  ) {
    this.docs = new WatchedDocuments<Rule>(
      source,
      {
        section: RULES_SECTION,
        noun: 'rule',
        parse: parseRule,
        why: (e) => (e instanceof ArgusError ? ruleErrorMessage(e) : describeError(e).message),
        same: (a, b) => a.version === b.version,
      },
      warn,
      // Keeps the versions the previous index knew: edited and deleted rules' series end with their labels.
      (rules) => {
        this.current = buildRuleIndex([...rules.values()], this.current);
      },
    );
  }

  /** Documents of the source that are ignored, by id, with why (for the inspector and tests). */
  get rejected(): ReadonlyMap<string, string> {
    return this.docs.rejected;
  }

  start(): Promise<void> {
    return this.docs.start();
  }

  stop(): Promise<void> {
    return this.docs.stop();
  }

  /** Counts changes of the rules in force (starts at 0; +1 whenever a rule is added, changed or removed). */
  get version(): number {
    return this.docs.version;
  }

  all(): readonly Rule[] {
    return this.current.rules;
  }

  get(id: string): Rule | undefined {
    return this.docs.get(id);
  }

  /** The index of the rules in force (rebuilt on change; the same object until then). */
  index(): RuleIndex {
    return this.current;
  }

  /** Called after every change; returns the unsubscribe. */
  onChange(listener: Listener): () => void {
    return this.docs.onChange(() => listener(this));
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
}
