/**
 * Alertmanager label matchers: the four operators, quoted and unquoted values, escapes, anchored
 * regular expressions, absent labels as the empty string, and errors that say what is wrong.
 */
import { describe, expect, it } from 'vitest';
import { formatMatcher, matchesAll, parseMatcher, parseMatchers } from './matchers.ts';

describe('parseMatcher', () => {
  it.each([
    ['team="infra"', { name: 'team', op: '=', value: 'infra' }],
    ['env!="dev"', { name: 'env', op: '!=', value: 'dev' }],
    ['service=~"pay.*"', { name: 'service', op: '=~', value: 'pay.*' }],
    ['x!~"y"', { name: 'x', op: '!~', value: 'y' }],
    ['team=infra', { name: 'team', op: '=', value: 'infra' }],
    ['  team = "infra"  ', { name: 'team', op: '=', value: 'infra' }],
    ['service=~pay|web', { name: 'service', op: '=~', value: 'pay|web' }],
    ['msg="say \\"hi\\" \\\\ there"', { name: 'msg', op: '=', value: 'say "hi" \\ there' }],
    ['env=""', { name: 'env', op: '=', value: '' }],
    ['env=', { name: 'env', op: '=', value: '' }],
  ])('%s', (text, expected) => {
    const r = parseMatcher(text);
    expect(r.ok).toBe(true);
    if (r.ok) expect({ name: r.matcher.name, op: r.matcher.op, value: r.matcher.value }).toEqual(expected);
  });

  it.each([
    [
      '"team"="infra"',
      'must be a matcher like team="infra", env!="dev", service=~"pay.*" or x!~"y", got "\\"team\\"=\\"infra\\"" (no label name)',
    ],
    [
      'team',
      'must be a matcher like team="infra", env!="dev", service=~"pay.*" or x!~"y", got "team" (no operator after \'team\')',
    ],
    [
      'team>"a"',
      'must be a matcher like team="infra", env!="dev", service=~"pay.*" or x!~"y", got "team>\\"a\\"" (no operator after \'team\')',
    ],
    ['team="infra', '"team=\\"infra" has an unterminated quoted value'],
    [
      'team="a"b',
      'must be a matcher like team="infra", env!="dev", service=~"pay.*" or x!~"y", got "team=\\"a\\"b" (text after the closing quote)',
    ],
    [
      'team=a"b',
      'must be a matcher like team="infra", env!="dev", service=~"pay.*" or x!~"y", got "team=a\\"b" (a value with quotes must be quoted as a whole)',
    ],
  ])('refuses %s', (text, error) => {
    expect(parseMatcher(text)).toEqual({ ok: false, error });
  });

  it('refuses an invalid regular expression, naming it', () => {
    const r = parseMatcher('x=~"("');
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(/^has an invalid regular expression "\(": /);
  });

  it('formats matchers canonically (always quoted)', () => {
    const r = parseMatcher('service=~pay.*');
    expect(r.ok && formatMatcher(r.matcher)).toBe('service=~"pay.*"');
  });
});

describe('parseMatchers', () => {
  it('reads a braced list with commas inside quotes', () => {
    const r = parseMatchers('{team="infra", msg="a,b", env!=dev}');
    expect(r.ok && r.matchers.map(formatMatcher)).toEqual(['team="infra"', 'msg="a,b"', 'env!="dev"']);
  });

  it('reads an unbraced list and an empty one', () => {
    const r = parseMatchers('a=1,b=~"2|3"');
    expect(r.ok && r.matchers.map(formatMatcher)).toEqual(['a="1"', 'b=~"2|3"']);
    expect(parseMatchers('{}')).toEqual({ ok: true, matchers: [] });
  });

  it('reports the first bad matcher', () => {
    expect(parseMatchers('{a="1", b}').ok).toBe(false);
    expect(parseMatchers('{a="1"')).toEqual({
      ok: false,
      error: '"{a=\\"1\\"" opens \'{\' but does not close it',
    });
  });
});

describe('matchesAll', () => {
  const m = (...texts: string[]) => {
    const r = parseMatchers(texts.join(','));
    if (!r.ok) throw new Error(r.error);
    return r.matchers;
  };
  it.each([
    [['team="infra"'], { team: 'infra' }, true],
    [['team="infra"'], { team: 'web' }, false],
    [['env!="dev"'], { env: 'prod' }, true],
    [['env!="dev"'], {}, true],
    [['env!="dev"'], { env: 'dev' }, false],
    [['env=""'], {}, true],
    [['env=""'], { env: 'x' }, false],
    [['service=~"pay.*"'], { service: 'payments' }, true],
    [['service=~"pay.*"'], { service: 'prepay' }, false],
    [['service=~"pay|web"'], { service: 'web' }, true],
    [['x!~"y"'], { x: 'y' }, false],
    [['x!~"y"'], { x: 'yy' }, true],
    [['x=~".*"'], {}, true],
    [['team="infra"', 'env!="dev"'], { team: 'infra', env: 'dev' }, false],
    [['team="infra"', 'env!="dev"'], { team: 'infra', env: 'prod' }, true],
    [[], { anything: 'at all' }, true],
  ])('%j against %j → %s', (texts, labels, expected) => {
    expect(matchesAll(m(...texts), labels)).toBe(expected);
  });
});
