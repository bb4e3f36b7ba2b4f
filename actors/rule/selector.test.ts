import { describe, expect, it } from 'vitest';
import { isArgusError } from '../../runtime/errors.ts';
import { formatSelector, matchesSelector, parseSelector, readSelector } from './selector.ts';

const plain = (text: string) => {
  const s = parseSelector(text);
  return { metric: s.metric, matchers: s.matchers.map((m) => [m.tag, m.op, m.value]) };
};

describe('parseSelector: valid selectors', () => {
  it.each([
    ['cpu.busy_pct', 'cpu.busy_pct', []],
    ['  node:load-1_m  ', 'node:load-1_m', []],
    ['disk.used_pct{}', 'disk.used_pct', []],
    ['disk.used_pct{mount="/"}', 'disk.used_pct', [['mount', '=', '/']]],
    [
      `if.in_octets.rate{ ifDescr =~ "eth.*" , ifDescr!="eth9", kind!~'lo|dummy', }`,
      'if.in_octets.rate',
      [
        ['ifDescr', '=~', 'eth.*'],
        ['ifDescr', '!=', 'eth9'],
        ['kind', '!~', 'lo|dummy'],
      ],
    ],
    [
      'm{a="say \\"hi\\"\\n", b=\'it\\\'s\'}',
      'm',
      [
        ['a', '=', 'say "hi"\n'],
        ['b', '=', "it's"],
      ],
    ],
    ['m{_x.y-z:w="1"}', 'm', [['_x.y-z:w', '=', '1']]],
  ] as const)('%s', (text, metric, matchers) => {
    expect(plain(text)).toEqual({ metric, matchers });
  });

  it('formats back to a selector that parses the same', () => {
    for (const text of ['cpu', 'm{a="x",b!~"y.*"}', 'm{a="q\\"uo\\\\te"}']) {
      const s = parseSelector(text);
      expect(plain(formatSelector(s))).toEqual(plain(text));
    }
  });
});

describe('parseSelector: errors name the column and the problem', () => {
  it.each([
    ['', 1, "expected a metric name (letters, digits, '.', '_', '-', ':'), found the end"],
    ['{a="b"}', 1, "expected a metric name (letters, digits, '.', '_', '-', ':'), found '{'"],
    ['cpu busy', 5, "unexpected 'b' after the selector"],
    ['cpu{', 5, "expected a tag name or '}', found the end"],
    ['cpu{1a="x"}', 5, "expected a tag name or '}', found '1'"],
    ['cpu{x~"a"}', 6, "expected '=', '!=', '=~' or '!~' after tag 'x', found '~'"],
    ['cpu{x==a}', 7, "expected a quoted value for tag 'x', found '='"],
    ['cpu{x=a}', 7, "expected a quoted value for tag 'x', found 'a'"],
    ['cpu{x="a"', 10, "expected ',' or '}' after a matcher, found the end"],
    ['cpu{x="a" y="b"}', 11, "expected ',' or '}' after a matcher, found 'y'"],
    ['cpu{x="abc', 7, 'unterminated string (opened at column 7)'],
    ['cpu{x="a\\q"}', 9, "unknown escape '\\q' in the value of tag 'x'"],
    ['cpu{}x', 6, "unexpected 'x' after the selector"],
  ] as const)('%s → column %i', (text, column, message) => {
    expect(readSelector(text)).toEqual({ ok: false, column, message });
  });

  it('refuses an invalid regex, and one that would escape its anchors', () => {
    const bad = readSelector('m{x=~"a("}');
    expect(bad.ok).toBe(false);
    if (!bad.ok) {
      expect(bad.column).toBe(6);
      expect(bad.message).toMatch(/^the value of tag 'x' is not a valid regular expression: /);
    }
    expect(readSelector('m{x=~"a)|(b"}').ok).toBe(false);
  });

  it('throws ARGUS_ERR_INVALID_RULE with the selector and the column as detail', () => {
    try {
      parseSelector('cpu{x~"a"}');
      expect.unreachable();
    } catch (e) {
      expect(isArgusError(e, 'ARGUS_ERR_INVALID_RULE')).toBe(true);
      expect((e as Error).message).toBe(
        `ARGUS_ERR_INVALID_RULE: selector 'cpu{x~"a"}' at column 6: expected '=', '!=', '=~' or '!~' after tag 'x', found '~'`,
      );
      expect((e as { detail: unknown }).detail).toMatchObject({ selector: 'cpu{x~"a"}', column: 6 });
    }
  });
});

describe('matchesSelector', () => {
  const sel = parseSelector('if.rate{ifDescr=~"eth.*",ifDescr!="eth9",kind!~"lo|dummy"}');
  it.each([
    ['if.rate', { ifDescr: 'eth0' }, true],
    ['if.rate', { ifDescr: 'eth0', kind: 'phys' }, true],
    ['if.rate', { ifDescr: 'eth9' }, false],
    ['if.rate', { ifDescr: 'xeth0' }, false],
    ['if.rate', { ifDescr: 'eth0', kind: 'lo' }, false],
    ['if.rate', {}, false],
    ['if.other', { ifDescr: 'eth0' }, false],
  ] as const)('%s %j → %s', (metric, tags, expected) => {
    expect(matchesSelector(sel, metric, tags)).toBe(expected);
  });

  it('anchors regexes: =~"eth" matches eth only', () => {
    const s = parseSelector('m{x=~"eth"}');
    expect(matchesSelector(s, 'm', { x: 'eth' })).toBe(true);
    expect(matchesSelector(s, 'm', { x: 'eth0' })).toBe(false);
  });

  it('reads a missing tag as the empty string, as Prometheus does', () => {
    const tags = {};
    expect(matchesSelector(parseSelector('m{mount="/"}'), 'm', tags)).toBe(false);
    expect(matchesSelector(parseSelector('m{mount!="/boot"}'), 'm', tags)).toBe(true);
    expect(matchesSelector(parseSelector('m{mount=~".*"}'), 'm', tags)).toBe(true);
    expect(matchesSelector(parseSelector('m{mount=""}'), 'm', tags)).toBe(true);
  });
});
