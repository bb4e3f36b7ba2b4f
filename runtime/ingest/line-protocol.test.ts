import { describe, expect, it } from 'vitest';
import { type LineProtocolOptions, parseLineProtocol, parsePrecision } from './line-protocol.ts';

const NOW = 1_700_000_999_000;
const ns: LineProtocolOptions = { precision: 'ns', now: NOW };
const one = (line: string, options: LineProtocolOptions = ns) => parseLineProtocol(line, options);
const values = (line: string) => one(line).points.map((p) => [p.point.metric, p.point.value]);

describe('parsePrecision', () => {
  it.each([
    [null, 'v1', 'ns'],
    ['', 'v1', 'ns'],
    ['n', 'v1', 'ns'],
    ['ns', 'v1', 'ns'],
    ['u', 'v1', 'us'],
    ['µ', 'v1', 'us'],
    ['us', 'v1', 'us'],
    ['ms', 'v1', 'ms'],
    ['s', 'v1', 's'],
    ['m', 'v1', 'm'],
    ['h', 'v1', 'h'],
    [null, 'v2', 'ns'],
    ['ns', 'v2', 'ns'],
    ['us', 'v2', 'us'],
    ['ms', 'v2', 'ms'],
    ['s', 'v2', 's'],
  ] as const)('%s on %s is %s', (value, api, precision) => {
    expect(parsePrecision(value, api)).toEqual({ ok: true, precision });
  });

  it('refuses what the API does not accept, saying what it does', () => {
    expect(parsePrecision('m', 'v2')).toEqual({
      ok: false,
      error: 'precision: "m" is not one of ns, us, ms, s (the v2 write API)',
    });
    expect(parsePrecision('rfc3339', 'v1')).toEqual({
      ok: false,
      error: 'precision: "rfc3339" is not one of n, ns, u, us, µ, ms, s, m, h (the v1 write API)',
    });
    expect(parsePrecision('toString', 'v1').ok).toBe(false);
  });
});

describe('parseLineProtocol: values', () => {
  it.each([
    ['m,host=a v=1.5', 1.5],
    ['m,host=a v=-1.5e3', -1500],
    ['m,host=a v=2E-2', 0.02],
    ['m,host=a v=1e+2', 100],
    ['m,host=a v=.5', 0.5],
    ['m,host=a v=5.', 5],
    ['m,host=a v=0.1', 0.1],
    ['m,host=a v=3', 3],
    ['m,host=a v=12345678901234567890.5', Number('12345678901234567890.5')],
    ['m,host=a v=-12i', -12],
    ['m,host=a v=007i', 7],
    ['m,host=a v=9223372036854775807i', 2 ** 63],
    ['m,host=a v=-9223372036854775808i', -(2 ** 63)],
    ['m,host=a v=12u', 12],
    ['m,host=a v=18446744073709551615u', 2 ** 64],
    ['m,host=a v="hello, world = yes"', 'hello, world = yes'],
    ['m,host=a v="say \\"hi\\""', 'say "hi"'],
    ['m,host=a v="C:\\\\dir\\\\"', 'C:\\dir\\'],
    ['m,host=a v="a\\nb"', 'a\\nb'],
    ['m,host=a v=""', ''],
  ])('%s → %s', (line, value) => {
    expect(values(line)).toEqual([['m.v', value]]);
  });

  it.each(['t', 'T', 'true', 'True', 'TRUE'])('boolean %s is 1', (v) => {
    expect(values(`m,host=a v=${v}`)).toEqual([['m.v', 1]]);
  });
  it.each(['f', 'F', 'false', 'False', 'FALSE'])('boolean %s is 0', (v) => {
    expect(values(`m,host=a v=${v}`)).toEqual([['m.v', 0]]);
  });

  it('turns each field into a point sharing the line tags, minus the host tag', () => {
    expect(
      one('cpu,cpu=cpu0,host=web-1,dc=eu usage_user=1.5,usage_idle=98i,up=true 1700000000123456789'),
    ).toEqual({
      points: [
        {
          host: 'web-1',
          point: { metric: 'cpu.usage_user', tags: { cpu: 'cpu0', dc: 'eu' }, ts: 1700000000123, value: 1.5 },
        },
        {
          host: 'web-1',
          point: { metric: 'cpu.usage_idle', tags: { cpu: 'cpu0', dc: 'eu' }, ts: 1700000000123, value: 98 },
        },
        {
          host: 'web-1',
          point: { metric: 'cpu.up', tags: { cpu: 'cpu0', dc: 'eu' }, ts: 1700000000123, value: 1 },
        },
      ],
      errors: [],
    });
  });

  it('unescapes measurement, tag keys and values and field keys; other backslashes stay', () => {
    expect(
      one('my\\ cpu\\,x,my\\ key\\=k=a\\,b\\=c\\ d,host=h\\ 1,unc=\\\\srv\\share used\\ pct\\,x\\=y=1 1'),
    ).toEqual({
      points: [
        {
          host: 'h 1',
          point: {
            metric: 'my cpu,x.used pct,x=y',
            tags: { 'my key=k': 'a,b=c d', unc: '\\\\srv\\share' },
            ts: 0,
            value: 1,
          },
        },
      ],
      errors: [],
    });
    // In a measurement `\=` is not an escape; in a key `\\` is not one either, so `\\ ` is `\` + an escaped space.
    expect(one('m\\=x,host=a\\\\ b v=1 1').points[0]).toEqual({
      host: 'a\\ b',
      point: { metric: 'm\\=x.v', tags: {}, ts: 0, value: 1 },
    });
  });

  it('takes now when there is no timestamp, and allows extra blanks, CRLF and leading whitespace', () => {
    expect(one('  \tm,host=a  v=1   \r\nm,host=b v=2   5000000   \r\n').points).toEqual([
      { host: 'a', point: { metric: 'm.v', tags: {}, ts: NOW, value: 1 } },
      { host: 'b', point: { metric: 'm.v', tags: {}, ts: 5, value: 2 } },
    ]);
  });

  it('reads the host from the tag the options name', () => {
    expect(one('m,host=x,source=db-1 v=1', { precision: 's', now: 0, hostTag: 'source' }).points).toEqual([
      { host: 'db-1', point: { metric: 'm.v', tags: { host: 'x' }, ts: 0, value: 1 } },
    ]);
  });

  it('keeps a __proto__ tag as a plain tag', () => {
    const tags = one('m,host=a,__proto__=x v=1').points[0]?.point.tags;
    expect(Object.getPrototypeOf(tags)).toBe(Object.prototype);
    expect(Object.entries(tags ?? {})).toEqual([['__proto__', 'x']]);
  });
});

describe('parseLineProtocol: timestamps', () => {
  it.each([
    ['ns', '1700000000123999999', 1700000000123], // Number() of the whole value would round up to …124
    ['ns', '9223372036854775806', 9223372036854],
    ['ns', '-1', -1],
    ['ns', '-1500000', -2],
    ['ns', '-9223372036854775806', -9223372036855],
    ['ns', '-0', 0],
    ['us', '1700000000123999', 1700000000123],
    ['ms', '1700000000123', 1700000000123],
    ['s', '1700000000', 1700000000000],
    ['s', '9223372036', 9223372036000],
    ['m', '28333333', 1699999980000],
    ['h', '472222', 1699999200000],
  ] as const)('%s %s → %s ms', (precision, ts, ms) => {
    expect(one(`m,host=a v=1 ${ts}`, { precision, now: 0 }).points[0]?.point.ts).toBe(ms);
  });

  it.each([
    ['ns', '9223372036854775807'],
    ['ns', '-9223372036854775807'],
    ['ns', '99999999999999999999999'],
    ['ms', '9223372036855'],
    ['s', '9223372037'],
    ['h', '2562048'],
  ] as const)('%s %s is out of range', (precision, ts) => {
    expect(one(`m,host=a v=1 ${ts}`, { precision, now: 0 }).errors.map((e) => e.error)).toEqual([
      `timestamp '${ts}' out of range (${precision} precision; InfluxDB stores years 1677 to 2262)`,
    ]);
  });
});

describe('parseLineProtocol: rejected lines', () => {
  it.each([
    [',host=a v=1', 'missing measurement'],
    ['cpu', 'missing fields: the line ends in the measurement'],
    ['cpu,host=a', "missing fields: the line ends in tag 'host'"],
    ['cpu,host=a   ', 'missing fields'],
    ['cpu\\', 'unescaped trailing backslash in the measurement'],
    ['cpu,host=a,\\', "unescaped trailing backslash in tag key '\\'"],
    ['cpu,host=a v\\', "unescaped trailing backslash in field key 'v\\'"],
    ['cpu,=a v=1', 'missing tag key'],
    ['cpu,host=a, v=1', 'missing tag key'],
    ['cpu,host v=1', "tag 'host': missing '=' and value"],
    ['cpu,host= v=1', "tag 'host': missing value"],
    ['cpu,host=a=b v=1', "tag 'host': unescaped '=' in the value"],
    ['cpu,host=a,host=b v=1', "duplicate tag 'host'"],
    ['cpu,host=a,x=1,x=2 v=1', "duplicate tag 'x'"],
    ['cpu,host=a =1', 'missing field key'],
    ['cpu,host=a v', "field 'v': missing '=' and value"],
    ['cpu,host=a v=', "field 'v': missing value"],
    ['cpu,host=a v=,w=1', "field 'v': missing value"],
    ['cpu,host=a v=1,', "missing field key after field 'v'"],
    ['cpu,host=a v=1,=2', "missing field key after field 'v'"],
    ['cpu,host=a v=1,v=2', "duplicate field 'v'"],
    ['cpu,host=a usage=12x', "field 'usage': invalid number '12x'"],
    ['cpu,host=a v=1.2.3', "field 'v': invalid number '1.2.3'"],
    ['cpu,host=a v=1e', "field 'v': invalid number '1e'"],
    ['cpu,host=a v=+1', "field 'v': invalid number '+1'"],
    ['cpu,host=a v=-', "field 'v': invalid number '-'"],
    ['cpu,host=a v=NaN', "field 'v': unsupported value 'NaN' (InfluxDB rejects NaN and Inf)"],
    ['cpu,host=a v=-Inf', "field 'v': unsupported value '-Inf' (InfluxDB rejects NaN and Inf)"],
    ['cpu,host=a v=1e400', "field 'v': float '1e400' out of range"],
    ['cpu,host=a v=1.5i', "field 'v': invalid integer '1.5i'"],
    ['cpu,host=a v=12ii', "field 'v': invalid integer '12ii'"],
    ['cpu,host=a v=-1u', "field 'v': unsigned integer '-1u' is negative"],
    ['cpu,host=a v=9223372036854775808i', "field 'v': integer '9223372036854775808i' out of range (int64)"],
    ['cpu,host=a v=-9223372036854775809i', "field 'v': integer '-9223372036854775809i' out of range (int64)"],
    [
      'cpu,host=a v=18446744073709551616u',
      "field 'v': unsigned integer '18446744073709551616u' out of range (uint64)",
    ],
    ['cpu,host=a v=tru', "field 'v': invalid boolean 'tru'"],
    ['cpu,host=a v=yes', "field 'v': invalid value 'yes' (strings must be double-quoted)"],
    ['cpu,host=a v="abc', "field 'v': unterminated string"],
    ['cpu,host=a v="abc"x', "field 'v': unexpected 'x' after the closing quote"],
    ['cpu,host=a v=1 12a', "invalid timestamp '12a': must be an integer"],
    ['cpu,host=a v=1 1.5', "invalid timestamp '1.5': must be an integer"],
    ['cpu,host=a v=1 1 2', "unexpected text after the timestamp: '2'"],
    ['cpu v=1', "no 'host' tag: cannot tell which host the point belongs to"],
    ['cpu,ho\\=st=a v=1', "no 'host' tag: cannot tell which host the point belongs to"],
  ])('%s: %s', (line, error) => {
    expect(one(line)).toEqual({ points: [], errors: [{ line: 1, error, text: line }] });
  });

  it('rejects a line whole when one of its fields is bad, as InfluxDB does', () => {
    expect(values('cpu,host=a good=1,bad=1x,also_good=2')).toEqual([]);
  });

  it('cuts long lines in errors to 200 characters', () => {
    const line = `cpu,host=a v=1x,${'w'.repeat(500)}=1`;
    expect(one(line).errors).toEqual([
      { line: 1, error: "field 'v': invalid number '1x'", text: `${line.slice(0, 200)}…` },
    ]);
  });
});

describe('parseLineProtocol: string fields across lines', () => {
  it('keeps a raw newline in a string and counts it for the next line numbers', () => {
    const body = ['log,host=a msg="first', 'second" 1000000', 'bad', 'log,host=b n=1 2000000'].join('\n');
    expect(parseLineProtocol(body, ns)).toEqual({
      points: [
        { host: 'a', point: { metric: 'log.msg', tags: {}, ts: 1, value: 'first\nsecond' } },
        { host: 'b', point: { metric: 'log.n', tags: {}, ts: 2, value: 1 } },
      ],
      errors: [{ line: 3, error: 'missing fields: the line ends in the measurement', text: 'bad' }],
    });
  });

  it('skips a rejected line with its multi-line string whole', () => {
    const body = ['log,host=a n=1x,msg="a', 'b,host=c v=1"', 'ok,host=d v=1 0'].join('\n');
    expect(parseLineProtocol(body, ns)).toEqual({
      points: [{ host: 'd', point: { metric: 'ok.v', tags: {}, ts: 0, value: 1 } }],
      errors: [
        { line: 1, error: "field 'n': invalid number '1x'", text: 'log,host=a n=1x,msg="a\nb,host=c v=1"' },
      ],
    });
  });
});

/** What Telegraf's influx serializer writes for one gather (tags sorted, `i`/`u` integers, escaped strings). */
const telegrafBatch = (ts: string): string =>
  [
    `cpu,cpu=cpu-total,host=web-12 usage_guest=0,usage_idle=97.2972972973,usage_iowait=0.1001001001,usage_system=0.7007007007,usage_user=1.8018018018 ${ts}`,
    `mem,host=web-12 available=11744309248i,available_percent=70.51234,total=16655622144i,used=4515389440i ${ts}`,
    `disk,device=sdb1,fstype=ext4,host=web-12,mode=rw,path=/mnt/my\\ disk free=97208803328i,inodes_used=493265i,used_percent=2.372 ${ts}`,
    `net,host=web-12,interface=eth0 bytes_recv=18446744073709551615u,bytes_sent=3123123u,err_in=0i,drop_in=-3i ${ts}`,
    `system,host=web-12 load1=0.42,n_cpus=8i,uptime_format=" 3 days,  4:05" ${ts}`,
    `systemd_units,active=active,host=web-12,load=loaded,name=ssh.service,sub=running active_code=0i,ok=true,masked=false,note="say \\"hi\\", a=b" ${ts}`,
  ].join('\n');

const telegrafPoints = (ts: number) => {
  const at = (metric: string, tags: Record<string, string>, value: number | string) => ({
    host: 'web-12',
    point: { metric, tags, ts, value },
  });
  const cpu = { cpu: 'cpu-total' };
  const disk = { device: 'sdb1', fstype: 'ext4', mode: 'rw', path: '/mnt/my disk' };
  const unit = { active: 'active', load: 'loaded', name: 'ssh.service', sub: 'running' };
  return [
    at('cpu.usage_guest', cpu, 0),
    at('cpu.usage_idle', cpu, 97.2972972973),
    at('cpu.usage_iowait', cpu, 0.1001001001),
    at('cpu.usage_system', cpu, 0.7007007007),
    at('cpu.usage_user', cpu, 1.8018018018),
    at('mem.available', {}, 11744309248),
    at('mem.available_percent', {}, 70.51234),
    at('mem.total', {}, 16655622144),
    at('mem.used', {}, 4515389440),
    at('disk.free', disk, 97208803328),
    at('disk.inodes_used', disk, 493265),
    at('disk.used_percent', disk, 2.372),
    at('net.bytes_recv', { interface: 'eth0' }, 2 ** 64),
    at('net.bytes_sent', { interface: 'eth0' }, 3123123),
    at('net.err_in', { interface: 'eth0' }, 0),
    at('net.drop_in', { interface: 'eth0' }, -3),
    at('system.load1', {}, 0.42),
    at('system.n_cpus', {}, 8),
    at('system.uptime_format', {}, ' 3 days,  4:05'),
    at('systemd_units.active_code', unit, 0),
    at('systemd_units.ok', unit, 1),
    at('systemd_units.masked', unit, 0),
    at('systemd_units.note', unit, 'say "hi", a=b'),
  ];
};

describe('parseLineProtocol: a Telegraf batch', () => {
  it.each([
    ['ns', '1700000000123456789'],
    ['us', '1700000000123456'],
    ['ms', '1700000000123'],
    ['s', '1700000000'],
  ] as const)('reads every point exactly in %s precision', (precision, ts) => {
    const expected = precision === 's' ? 1700000000000 : 1700000000123;
    expect(parseLineProtocol(telegrafBatch(ts), { precision, now: 0 })).toEqual({
      points: telegrafPoints(expected),
      errors: [],
    });
  });

  it('keeps the good lines around malformed ones and reports each bad line by number', () => {
    const good = telegrafBatch('1700000000').split('\n');
    const body = [
      '# telegraf batch',
      good[0],
      'cpu,host=web-12 usage_user=12x 1700000000',
      '',
      good[1],
      'mem,host=web-12 used=1i,total= 1700000000',
      good[2],
      'disk used=1i 1700000000',
      good[3],
      'net,host=web-12 bytes_recv=-1u 1700000000',
      good[4],
      'system,host=web-12 load1=1 17000000OO',
      good[5],
    ].join('\r\n');
    const { points, errors } = parseLineProtocol(body, { precision: 's', now: 0 });
    expect(points).toEqual(telegrafPoints(1700000000000));
    expect(errors).toEqual([
      {
        line: 3,
        error: "field 'usage_user': invalid number '12x'",
        text: 'cpu,host=web-12 usage_user=12x 1700000000',
      },
      { line: 6, error: "field 'total': missing value", text: 'mem,host=web-12 used=1i,total= 1700000000' },
      {
        line: 8,
        error: "no 'host' tag: cannot tell which host the point belongs to",
        text: 'disk used=1i 1700000000',
      },
      {
        line: 10,
        error: "field 'bytes_recv': unsigned integer '-1u' is negative",
        text: 'net,host=web-12 bytes_recv=-1u 1700000000',
      },
      {
        line: 12,
        error: "invalid timestamp '17000000OO': must be an integer",
        text: 'system,host=web-12 load1=1 17000000OO',
      },
    ]);
  });

  it('parses fast enough for a push endpoint (timing printed, not asserted)', () => {
    const lines: string[] = [];
    for (let h = 0; h < 250; h++)
      lines.push(telegrafBatch('1700000000123456789').replaceAll('web-12', `web-${h}`));
    const body = lines.join('\n');
    for (let r = 0; r < 20; r++) parseLineProtocol(body, ns); // warm up
    let points = 0;
    const t0 = performance.now();
    for (let r = 0; r < 100; r++) points += parseLineProtocol(body, ns).points.length;
    const ms = performance.now() - t0;
    console.log(
      `line protocol: ${points} points in ${ms.toFixed(0)} ms = ${Math.round((points / ms) * 1000).toLocaleString('en')} points/s, ` +
        `${((body.length * 100) / ms / 1000).toFixed(1)} MB/s`,
    );
    expect(points).toBe(100 * 250 * 23);
  });
});

describe('parseLineProtocol: fuzz (20,000 inputs)', () => {
  it('never throws; every point is well formed; errors point at real lines; good lines survive', () => {
    let seed = 7;
    const rand = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const alphabet = [
      'a',
      'b',
      '1',
      '0',
      '9',
      ',',
      '=',
      ' ',
      '\\',
      '"',
      '\n',
      '\r',
      '\t',
      '#',
      '-',
      '.',
      'i',
      'u',
      'e',
      't',
      'f',
      'é',
      '\u0000',
    ];
    const seeds = telegrafBatch('1700000000123456789').split('\n');
    const sentinel = 'sentinel,host=z ok=1i 1000000';
    let accepted = 0;
    let rejected = 0;
    for (let n = 0; n < 20_000; n++) {
      let body: string;
      if (n % 3 === 0) {
        body = Array.from({ length: Math.floor(rand() * 80) }, () => pick(alphabet)).join('');
      } else {
        const chars = [...pick(seeds)];
        for (let k = 0; k < 1 + Math.floor(rand() * 4); k++) {
          const at = Math.floor(rand() * chars.length);
          const r = rand();
          if (r < 0.4) chars[at] = pick(alphabet);
          else if (r < 0.7) chars.splice(at, 1);
          else chars.splice(at, 0, pick(alphabet));
        }
        body = chars.join('');
      }
      const mutatedLine = body;
      const withSentinel = n % 2 === 0 && !body.includes('"');
      if (withSentinel) body = `${sentinel}\n${body}\n${sentinel}`;
      const lineCount = body.split('\n').length;
      const { points, errors } = parseLineProtocol(body, ns);
      accepted += points.length;
      rejected += errors.length;
      for (const { host, point } of points) {
        expect(typeof host === 'string' && host.length > 0).toBe(true);
        expect(point.metric).toMatch(/^.+\..+$/s);
        expect(Number.isInteger(point.ts)).toBe(true);
        expect(typeof point.value === 'string' || Number.isFinite(point.value)).toBe(true);
        expect(Object.hasOwn(point.tags, 'host')).toBe(false);
        for (const v of Object.values(point.tags)) expect(typeof v === 'string' && v.length > 0).toBe(true);
      }
      let previous = 0;
      for (const e of errors) {
        expect(e.line).toBeGreaterThan(previous);
        expect(e.line).toBeLessThanOrEqual(lineCount);
        expect(e.error.length).toBeGreaterThan(0);
        expect(e.text.length).toBeLessThanOrEqual(201);
        previous = e.line;
      }
      if (withSentinel) {
        // The good lines around a mutated one are kept, whatever the mutation did to its own line.
        const sentinels = points.filter((p) => p.point.metric === 'sentinel.ok');
        expect(sentinels.length, mutatedLine).toBe(2);
        expect(
          errors.every((e) => e.line !== 1 && e.line !== lineCount),
          mutatedLine,
        ).toBe(true);
      }
    }
    // Both sides were exercised: the fuzz is not all garbage nor all valid.
    expect(accepted).toBeGreaterThan(10_000);
    expect(rejected).toBeGreaterThan(10_000);
  });
});
