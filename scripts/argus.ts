/**
 * `argus` — a small CLI over a node's HTTP API (docs/API.md), for the changes people make by hand:
 *
 *   npm run argus -- rules apply <file>        POST /api/v1/rules: all the file's rules, or none
 *   npm run argus -- rules list                GET /api/v1/rules
 *   npm run argus -- rules delete <id>         DELETE /api/v1/rules/:id
 *   npm run argus -- silences add --matcher 'host="web-1"' [--matcher …] --for 2h --comment '…' [--by name]
 *   npm run argus -- silences list             GET /api/v1/silences
 *
 * Every command takes `--url http://host:port` (default: $ARGUS_URL, else http://127.0.0.1:7070 — the
 * node's default `http` address, runtime/config.ts) and a bearer token, `--token <token>` or (better:
 * a command line is visible to every user of the machine) $ARGUS_TOKEN — `list` needs the `read` scope,
 * the others `admin`. `npm start` prints its token and keeps it in `<dataDir>/admin.token`. A 401 or 403
 * says which of the two is wrong; the token itself is never printed.
 * It only talks HTTP — validation is the node's, so the CLI and the API can never disagree. A refused
 * request prints the node's error and each problem on stderr; the exit code is 1 for a failure, 2 for
 * a command line that is wrong.
 */
import { readFile } from 'node:fs/promises';
import { userInfo } from 'node:os';
import { parseArgs } from 'node:util';
import { formatDuration, parseDuration } from '../actors/notify/document.ts';

const DEFAULT_URL = 'http://127.0.0.1:7070';

const USAGE = `usage: argus <command> [--url http://host:port] [--token <token>]

  rules apply <file>              apply a rules file (YAML or JSON): every rule is written, or none
  rules list                      the rules in force, and documents the node refused
  rules delete <id>               remove one rule
  silences add --matcher 'name="value"' [--matcher …] --for <duration> --comment <text> [--by <name>]
                                  silence matching alerts from now for <duration> (30m, 2h, 1d)
  silences list                   every silence with its state

--url defaults to $ARGUS_URL, else ${DEFAULT_URL}.
--token defaults to $ARGUS_TOKEN (prefer it: a command line is visible to other users); list needs
a token with the read scope, the other commands admin. npm start prints its admin token and keeps it
in <dataDir>/admin.token.`;

/** A command line that cannot run (exit 2, with the usage). */
class UsageError extends Error {}

/** The node refused or could not be reached (exit 1). */
class RequestError extends Error {
  constructor(
    message: string,
    readonly problems: readonly string[] = [],
  ) {
    super(message);
  }
}

interface Answer {
  readonly status: number;
  readonly body: unknown;
}

const isObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v);

const field = (v: unknown, key: string): unknown => (isObject(v) ? v[key] : undefined);
const text = (v: unknown): string => (v === undefined || v === null ? '' : String(v));

/** The node a command talks to: its base URL and the bearer token to send (none: no header). */
interface Target {
  readonly url: string;
  readonly token: string | undefined;
}

/** What to do about a 401 or 403, after the node's own error. */
const authHint = (status: number, token: string | undefined): string | undefined => {
  if (status === 401)
    return token === undefined
      ? 'no token was sent: set $ARGUS_TOKEN or pass --token (npm start prints one and keeps it in <dataDir>/admin.token)'
      : 'the node does not accept this token: check $ARGUS_TOKEN / --token against its auth.tokens';
  if (status === 403)
    return 'the token is valid but lacks the scope this command needs (list: read; the rest: admin)';
  return undefined;
};

const call = async (target: Target, method: string, path: string, body?: string): Promise<Answer> => {
  const url = new URL(path, target.url);
  const headers: Record<string, string> = {};
  if (target.token !== undefined) headers.authorization = `Bearer ${target.token}`;
  if (body !== undefined) headers['content-type'] = 'text/plain; charset=utf-8';
  let res: globalThis.Response;
  try {
    res = await fetch(url, { method, headers, ...(body !== undefined ? { body } : {}) });
  } catch (e) {
    const cause = (e as { cause?: { message?: string } }).cause?.message ?? (e as Error).message;
    throw new RequestError(`cannot reach ${url.origin}: ${cause}`);
  }
  const raw = await res.text();
  let parsed: unknown = raw;
  try {
    parsed = JSON.parse(raw);
  } catch {
    // Not JSON (a proxy's error page): reported as text below.
  }
  if (res.status >= 400) {
    const error = isObject(parsed) && typeof parsed.error === 'string' ? parsed.error : raw.slice(0, 500);
    const hint = authHint(res.status, target.token);
    throw new RequestError(
      `${method} ${url.pathname}: HTTP ${res.status}: ${error}`,
      hint === undefined ? problemsOf(parsed) : [hint],
    );
  }
  return { status: res.status, body: parsed };
};

/** Every problem of a refusal: `problems` (strings or `{ path, message }`), and each refused rule's `errors`. */
const problemsOf = (body: unknown): string[] => {
  if (!isObject(body)) return [];
  const problem = (p: unknown): string =>
    isObject(p) && typeof p.message === 'string'
      ? `${typeof p.path === 'string' && p.path !== '' ? `${p.path}: ` : ''}${p.message}`
      : String(p);
  const own = Array.isArray(body.problems) ? body.problems.map(problem) : [];
  const perRule = Array.isArray(body.errors) ? body.errors.map((e) => text(field(e, 'message'))) : [];
  return [...own, ...perRule];
};

const table = (rows: readonly (readonly string[])[]): string => {
  const widths = rows[0]?.map((_, i) => Math.max(...rows.map((r) => r[i]?.length ?? 0))) ?? [];
  return rows
    .map((r) =>
      r
        .map((c, i) => c.padEnd(widths[i] ?? 0))
        .join('  ')
        .trimEnd(),
    )
    .join('\n');
};

const rulesApply = async (target: Target, file: string): Promise<string> => {
  let body: string;
  try {
    body = await readFile(file, 'utf8');
  } catch (e) {
    throw new RequestError(`cannot read ${file}: ${(e as Error).message}`);
  }
  const r = await call(target, 'POST', '/api/v1/rules', body);
  const ids = field(r.body, 'written');
  const written = Array.isArray(ids) ? ids.map(String) : [];
  return `applied ${written.length} rule(s) from ${file}: ${written.join(', ')}`;
};

const rulesList = async (target: Target): Promise<string> => {
  const r = await call(target, 'GET', '/api/v1/rules');
  const rules = field(r.body, 'rules');
  const rejected = field(r.body, 'rejected');
  const rows = (Array.isArray(rules) ? rules : []).map((entry) => {
    const rule = field(entry, 'rule');
    const forMs = field(rule, 'forMs');
    return [
      text(field(entry, 'id')),
      text(field(rule, 'scope')),
      text(field(rule, 'metric')),
      `${text(field(rule, 'op'))} ${text(field(rule, 'threshold'))}`,
      typeof forMs === 'number' ? formatDuration(forMs) : '',
      text(field(rule, 'severity')),
    ];
  });
  const out =
    rows.length > 0
      ? [table([['ID', 'SCOPE', 'METRIC', 'CONDITION', 'FOR', 'SEVERITY'], ...rows])]
      : ['no rules'];
  for (const bad of Array.isArray(rejected) ? rejected : [])
    out.push(`refused ${text(field(bad, 'id'))}: ${text(field(bad, 'error'))}`);
  return out.join('\n');
};

const rulesDelete = async (target: Target, id: string): Promise<string> => {
  await call(target, 'DELETE', `/api/v1/rules/${encodeURIComponent(id)}`);
  return `deleted rule ${id}`;
};

const silencesAdd = async (
  target: Target,
  options: { matcher?: string[]; for?: string; comment?: string; by?: string },
  now: number,
): Promise<string> => {
  if (!options.matcher || options.matcher.length === 0)
    throw new UsageError('silences add needs at least one --matcher \'name="value"\'');
  if (!options.for) throw new UsageError('silences add needs --for <duration> (30m, 2h, 1d)');
  const ms = parseDuration(options.for);
  if (ms === undefined || ms === 0)
    throw new UsageError(`--for must be a duration like 30m, 2h or 1d, got '${options.for}'`);
  if (!options.comment) throw new UsageError('silences add needs --comment <why>');
  const by = options.by ?? process.env.USER ?? userInfo().username;
  // starts_at is left to the node (its now), so a client clock ahead of it cannot leave the silence pending.
  const silence = {
    matchers: options.matcher,
    ends_at: new Date(now + ms).toISOString(),
    created_by: by,
    comment: options.comment,
  };
  const r = await call(target, 'POST', '/api/v1/silences', JSON.stringify(silence));
  return `silence ${text(field(r.body, 'id'))} added for ${formatDuration(ms)} (until ${silence.ends_at})`;
};

const silencesList = async (target: Target): Promise<string> => {
  const r = await call(target, 'GET', '/api/v1/silences');
  const silences = field(r.body, 'silences');
  const rows = (Array.isArray(silences) ? silences : []).map((s) => {
    const matchers = field(s, 'matchers');
    return [
      text(field(s, 'id')),
      text(field(s, 'state')),
      Array.isArray(matchers) ? matchers.join(',') : '',
      text(field(s, 'starts_at')),
      text(field(s, 'ends_at')),
      text(field(s, 'created_by')),
      text(field(s, 'comment')),
    ];
  });
  if (rows.length === 0) return 'no silences';
  return table([['ID', 'STATE', 'MATCHERS', 'STARTS', 'ENDS', 'BY', 'COMMENT'], ...rows]);
};

/** Runs one command line; answers what to print. Throws UsageError or RequestError. */
const run = async (argv: readonly string[], env: NodeJS.ProcessEnv, now: number): Promise<string> => {
  let parsed: ReturnType<typeof parseCommandLine>;
  try {
    parsed = parseCommandLine(argv);
  } catch (e) {
    throw new UsageError((e as Error).message);
  }
  const { values, positionals } = parsed;
  const url = values.url ?? (env.ARGUS_URL || DEFAULT_URL);
  try {
    new URL(url);
  } catch {
    throw new UsageError(`--url must be a URL like ${DEFAULT_URL}, got '${url}'`);
  }
  const token = values.token ?? (env.ARGUS_TOKEN || undefined);
  if (token !== undefined && !/^[\x21-\x7e]+$/.test(token))
    throw new UsageError('--token / $ARGUS_TOKEN must be printable ASCII without spaces');
  const target: Target = { url, token };
  const [group, command, arg] = positionals;
  const arity = (n: number, what: string): void => {
    const got = positionals.length - 2;
    if (got !== n) throw new UsageError(`${group} ${command} takes ${what}, got ${got} argument(s)`);
  };
  if (group === 'rules' && command === 'apply') {
    arity(1, 'one file');
    return rulesApply(target, arg!);
  }
  if (group === 'rules' && command === 'list') {
    arity(0, 'no arguments');
    return rulesList(target);
  }
  if (group === 'rules' && command === 'delete') {
    arity(1, 'one rule id');
    return rulesDelete(target, arg!);
  }
  if (group === 'silences' && command === 'add') {
    arity(0, 'only options');
    return silencesAdd(target, values, now);
  }
  if (group === 'silences' && command === 'list') {
    arity(0, 'no arguments');
    return silencesList(target);
  }
  throw new UsageError(
    group === undefined
      ? 'no command given'
      : `unknown command '${[group, command].filter(Boolean).join(' ')}'`,
  );
};

const parseCommandLine = (argv: readonly string[]) =>
  parseArgs({
    args: [...argv],
    allowPositionals: true,
    strict: true,
    options: {
      url: { type: 'string' },
      token: { type: 'string' },
      matcher: { type: 'string', multiple: true },
      for: { type: 'string' },
      comment: { type: 'string' },
      by: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });

const main = async (): Promise<void> => {
  const argv = process.argv.slice(2);
  if (argv.includes('--help') || argv.includes('-h') || argv[0] === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return;
  }
  try {
    process.stdout.write(`${await run(argv, process.env, Date.now())}\n`);
  } catch (e) {
    if (e instanceof UsageError) {
      process.stderr.write(`argus: ${e.message}\n\n${USAGE}\n`);
      process.exitCode = 2;
    } else if (e instanceof RequestError) {
      process.stderr.write(`argus: ${e.message}\n${e.problems.map((p) => `  - ${p}\n`).join('')}`);
      process.exitCode = 1;
    } else {
      process.stderr.write(`argus: ${(e as Error).stack ?? String(e)}\n`);
      process.exitCode = 1;
    }
  }
};

await main();
