/**
 * The log rules in force, from the config source's `logrules` section (etcd `/<prefix>/logrules/<id>`),
 * hot-applied as actors/rule/rules.ts does for metric rules: added, changed and removed rules are seen
 * by `onChange` listeners and `byStream` at once, no restart.
 *
 * A document is either the SQL alone (its first token, after blanks and SQL comments, is SELECT) or a
 * YAML/JSON mapping:
 *
 *   sql: SELECT host, count(*) AS errors FROM nginx WHERE status >= 500
 *        GROUP BY host, TUMBLE(1 minute) HAVING count(*) > 10      # required (sql.ts)
 *   severity: 4                       # 1..5, 5 the most severe; default 3
 *   labels: { team: web }             # names [A-Za-z_][A-Za-z0-9_]*, not alertname or severity
 *   annotations: { summary: '{{value}} errors on {{group.host}} in {{stream}}' }
 *   description: why the rule exists  # optional
 *
 * `{{group.<field>}}` in an annotation must name a GROUP BY field; `{{stream}}`, `{{value}}`, `{{rule}}`
 * and the metric rules' placeholders are filled when the alert is sent. A document that is YAML but no
 * mapping (`hello world` is a YAML string) is read as SQL, so a mistyped statement gets the SQL parser's
 * error and position rather than "not a mapping".
 *
 * Writes are validated before they reach the source (`put`), so a bad rule is refused to its sender and
 * nothing is written. A bad document written around that check (etcdctl) is reported (`warn`,
 * `rejected`) and ignored: the rule keeps its last good version, or does not exist if it never had one.
 */
import { createHash } from 'node:crypto';
import type { ConfigSource } from '../../runtime/boundaries.ts';
import { ArgusError, describeError } from '../../runtime/errors.ts';
import { WatchedDocuments } from '../../runtime/watched-documents.ts';
import { isRuleId } from '../rule/schema.ts';
import { readYaml, show } from '../rule/syntax.ts';
import type { Labels, Severity } from '../rule/types.ts';
import { type LogRulePlan, type Pos, parseLogRule } from './sql.ts';
import { isStreamName } from './types.ts';

export const LOG_RULES_SECTION = 'logrules';

export const LOG_RULE_DEFAULTS = { severity: 3 as Severity } as const;

export interface LogRule {
  readonly id: string;
  /** A short hash of the id and the document text: any edit is a new version. */
  readonly version: string;
  /** The document as stored. */
  readonly text: string;
  readonly sql: string;
  readonly plan: LogRulePlan;
  readonly severity: Severity;
  readonly labels: Labels;
  readonly annotations: Labels;
  readonly description?: string;
}

export interface LogRuleProblem {
  /** The document field (`sql`, `severity`, `labels.team`); '' for the whole document or plain SQL. */
  readonly path: string;
  readonly message: string;
  /** Where in the SQL, for SQL problems the parser located. */
  readonly position?: Pos;
}

export const isLogRuleId = (id: string): boolean => isRuleId(id);

const FIELDS = ['sql', 'severity', 'labels', 'annotations', 'description'] as const;
const LABEL_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const RESERVED_LABELS = new Set(['alertname', 'severity']);
const GROUP_PLACEHOLDER = /\{\{\s*group\.([^\s}]*)\s*\}\}/g;

const invalid = (id: string, problems: readonly LogRuleProblem[]): ArgusError => {
  const position = problems.find((p) => p.position)?.position;
  return new ArgusError(
    'ARGUS_ERR_INVALID_LOG_RULE',
    `log rule ${show(id)}: ${problems.map((p) => (p.path ? `${p.path}: ${p.message}` : p.message)).join('; ')}`,
    { rule: id, ...(position ? { position } : {}), problems },
  );
};

/** True when the first token after blanks and SQL comments is SELECT. */
export const looksLikeSql = (text: string): boolean => {
  let rest = text;
  for (;;) {
    const trimmed = rest.trimStart();
    if (trimmed.startsWith('--')) {
      const eol = trimmed.indexOf('\n');
      rest = eol < 0 ? '' : trimmed.slice(eol + 1);
    } else if (trimmed.startsWith('/*')) {
      const close = trimmed.indexOf('*/', 2);
      rest = close < 0 ? '' : trimmed.slice(close + 2);
    } else return /^select\b/i.test(trimmed);
  }
};

/** The SQL checked into a plan, or its problems (paths under `path`). */
const sqlProblems = (
  id: string,
  sql: string,
  path: string,
): { plan: LogRulePlan } | { problems: LogRuleProblem[] } => {
  const r = parseLogRule(id, sql);
  if (!r.ok) {
    const message = r.error.slice(`log rule '${id}': `.length);
    return { problems: [{ path, message, ...(r.position ? { position: r.position } : {}) }] };
  }
  if (!isStreamName(r.rule.stream))
    return {
      problems: [
        {
          path,
          message: `FROM names ${show(r.rule.stream)}, not a stream name (1-128 letters, digits, '.', '_' or '-')`,
        },
      ],
    };
  return { plan: r.rule };
};

/** A mapping of names to strings; every bad name and every bad value is its own problem. */
const stringMap = (
  field: 'labels' | 'annotations',
  v: unknown,
  add: (path: string, message: string) => void,
): Labels => {
  const what = field === 'labels' ? 'label' : 'annotation';
  if (v === undefined) return {};
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    add(field, `must be a mapping of ${what} names to strings, got ${show(v)}`);
    return {};
  }
  const out: Record<string, string> = {};
  for (const k of Object.keys(v).sort()) {
    const value = (v as Record<string, unknown>)[k];
    if (!LABEL_NAME.test(k))
      add(`${field}.${k}`, `is not a valid ${what} name (letters, digits and _, not starting with a digit)`);
    else if (field === 'labels' && RESERVED_LABELS.has(k))
      add(
        `${field}.${k}`,
        'is set by Argus (alertname is the rule id, severity comes from the severity field)',
      );
    if (typeof value !== 'string') add(`${field}.${k}`, `must be a string, got ${show(value)}`);
    else out[k] = value;
  }
  return out;
};

/**
 * Parses and checks one log rule document (the etcd value); throws ARGUS_ERR_INVALID_LOG_RULE with a
 * message naming the rule and every problem (SQL problems with line and column in the SQL), and
 * `detail` `{ rule, position?, problems }`.
 */
export const parseLogRuleDocument = (id: string, text: string): LogRule => {
  if (!isLogRuleId(id))
    throw invalid(id, [
      {
        path: 'id',
        message: `${show(id)} is not a rule id (1-128 letters, digits, '.', '_' or '-', starting with a letter or digit)`,
      },
    ]);
  if (typeof text !== 'string' || text.trim() === '') throw invalid(id, [{ path: '', message: 'is empty' }]);
  const version = createHash('sha256')
    .update(JSON.stringify([id, text]))
    .digest('hex')
    .slice(0, 12);
  let doc: unknown = text;
  if (!looksLikeSql(text)) {
    const y = readYaml(text);
    if (!y.ok) throw invalid(id, [{ path: '', message: y.message }]);
    if (typeof y.value === 'object' && y.value !== null && !Array.isArray(y.value)) doc = y.value;
    else if (typeof y.value !== 'string')
      throw invalid(id, [
        {
          path: '',
          message: `must be a SELECT statement or a mapping of rule fields (sql, severity, labels, annotations, description), got ${show(y.value)}`,
        },
      ]);
  }
  if (typeof doc === 'string') {
    const checked = sqlProblems(id, text, '');
    if ('problems' in checked) throw invalid(id, checked.problems);
    const { severity } = LOG_RULE_DEFAULTS;
    return { id, version, text, sql: text, plan: checked.plan, severity, labels: {}, annotations: {} };
  }
  const d = doc as Record<string, unknown>;
  const problems: LogRuleProblem[] = [];
  const add = (path: string, message: string) => problems.push({ path, message });
  for (const k of Object.keys(d)) if (!(FIELDS as readonly string[]).includes(k)) add(k, 'unknown field');
  let plan: LogRulePlan | undefined;
  if (d.sql === undefined) add('sql', 'is required');
  else if (typeof d.sql !== 'string')
    add('sql', `must be a SELECT statement as a string, got ${show(d.sql)}`);
  else {
    const checked = sqlProblems(id, d.sql, 'sql');
    if ('problems' in checked) problems.push(...checked.problems);
    else plan = checked.plan;
  }
  const severity = d.severity ?? LOG_RULE_DEFAULTS.severity;
  if (typeof severity !== 'number' || !Number.isInteger(severity) || severity < 1 || severity > 5)
    add('severity', `must be an integer 1-5, got ${show(severity)}`);
  const labels = stringMap('labels', d.labels, add);
  const annotations = stringMap('annotations', d.annotations, add);
  if (plan)
    for (const [k, template] of Object.entries(annotations))
      for (const m of template.matchAll(GROUP_PLACEHOLDER))
        if (!plan.groupBy.includes(m[1]!))
          add(
            `annotations.${k}`,
            `${m[0]} names no GROUP BY field (${plan.groupBy.length > 0 ? plan.groupBy.join(', ') : 'the rule has none'})`,
          );
  if (d.description !== undefined && typeof d.description !== 'string')
    add('description', `must be a string, got ${show(d.description)}`);
  if (problems.length > 0 || !plan) throw invalid(id, inFieldOrder(problems));
  return {
    id,
    version,
    text,
    sql: d.sql as string,
    plan,
    severity: severity as Severity,
    labels,
    annotations,
    ...(typeof d.description === 'string' ? { description: d.description } : {}),
  };
};

/** Unknown fields first (in document order), then the known ones in FIELDS order. */
const inFieldOrder = (problems: readonly LogRuleProblem[]): LogRuleProblem[] => {
  const rank = (p: LogRuleProblem) => FIELDS.indexOf(/^[^.]*/.exec(p.path)![0] as (typeof FIELDS)[number]);
  return problems
    .map((p, i) => ({ p, i, r: rank(p) }))
    .sort((a, b) => a.r - b.r || a.i - b.i)
    .map((x) => x.p);
};

/** The message of a log rule error without its code (for API answers and warnings). */
export const logRuleErrorMessage = (e: unknown): string =>
  e instanceof ArgusError ? e.message.slice(`${e.code}: `.length) : describeError(e).message;

type Listener = (rules: LogRuleSet) => void;

export class LogRuleSet {
  private streams = new Map<string, readonly LogRule[]>();
  private readonly docs: WatchedDocuments<LogRule>;

  constructor(
    private readonly source: ConfigSource,
    warn: (message: string) => void = () => undefined,
  ) {
    this.docs = new WatchedDocuments<LogRule>(
      source,
      {
        section: LOG_RULES_SECTION,
        noun: 'log rule',
        parse: parseLogRuleDocument,
        why: logRuleErrorMessage,
        same: (a, b) => a.version === b.version,
      },
      warn,
      (rules) => {
        this.streams = indexByStream(rules);
      },
    );
  }

  /** Documents of the source that are ignored, by id, with why (for the API and tests). */
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

  /** Every rule in force, by id. */
  all(): readonly LogRule[] {
    return this.docs.values().sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  get(id: string): LogRule | undefined {
    return this.docs.get(id);
  }

  /** The rules on a stream, by id (the same array until the next change). */
  byStream(stream: string): readonly LogRule[] {
    return this.streams.get(stream) ?? [];
  }

  /** Called after every change; returns the unsubscribe. */
  onChange(listener: Listener): () => void {
    return this.docs.onChange(() => listener(this));
  }

  /** Validates, then stores (the watch applies it). Throws ARGUS_ERR_INVALID_LOG_RULE; nothing is written then. */
  async put(id: string, text: string): Promise<LogRule> {
    const rule = parseLogRuleDocument(id, text);
    await this.source.put(LOG_RULES_SECTION, id, text);
    return rule;
  }

  /** Resolves to whether the rule existed. Its alerts resolve at the stream's next tick. */
  delete(id: string): Promise<boolean> {
    if (!isLogRuleId(id))
      throw new ArgusError('ARGUS_ERR_INVALID_LOG_RULE', `log rule ${show(id)}: id: is not a rule id`, {
        rule: id,
        problems: [{ path: 'id', message: 'is not a rule id' }],
      });
    return this.source.delete(LOG_RULES_SECTION, id);
  }
}

/** The rules on each stream, by id. */
const indexByStream = (rules: ReadonlyMap<string, LogRule>): Map<string, readonly LogRule[]> => {
  const index = new Map<string, LogRule[]>();
  for (const id of [...rules.keys()].sort()) {
    const r = rules.get(id)!;
    const list = index.get(r.plan.stream) ?? [];
    list.push(r);
    index.set(r.plan.stream, list);
  }
  return index;
};
