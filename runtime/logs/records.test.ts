import { describe, expect, it } from 'vitest';
import { parseSyslog } from '../../actors/log/syslog.ts';
import { fromForward, fromNdjson, fromSyslog, peerAddress, timeOf } from './records.ts';

const NOW = Date.UTC(2026, 11, 2, 3, 0, 0);
const syslog = (line: string | Buffer) => {
  const parsed = parseSyslog(line, { now: NOW });
  if (!parsed.ok) throw new Error(parsed.error);
  return fromSyslog(parsed.record, { peer: '10.1.2.3', now: NOW, defaultStream: 'syslog' });
};

describe('fromSyslog', () => {
  it('keeps every RFC 5424 header field, the structured data and the message; stream from APP-NAME', () => {
    expect(
      syslog(
        '<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 42 ID47 [exampleSDID@32473 iut="3" eventSource="Application"] An application event',
      ),
    ).toEqual({
      stream: 'evntslog',
      log: {
        time: Date.UTC(2003, 9, 11, 22, 14, 15, 3),
        host: 'mymachine.example.com',
        fields: {
          facility: 20,
          severity: 5,
          host: 'mymachine.example.com',
          app: 'evntslog',
          procid: '42',
          msgid: 'ID47',
          message: 'An application event',
          structuredData: { 'exampleSDID@32473': { iut: '3', eventSource: 'Application' } },
          format: '5424',
        },
      },
    });
  });

  it('leaves NILVALUE fields out, and takes arrival time, the peer and the default stream for them', () => {
    expect(syslog('<13>1 - - - - - - hi')).toEqual({
      stream: 'syslog',
      log: {
        time: NOW,
        host: '10.1.2.3',
        fields: { facility: 1, severity: 5, message: 'hi', format: '5424' },
      },
    });
  });

  it('reads RFC 3164 with its tag and pid; an APP-NAME that is no stream name is cleaned', () => {
    expect(syslog('<34>Oct 11 22:14:15 mymachine su/x[77]: failed')).toEqual({
      stream: 'su_x',
      log: {
        time: Date.UTC(2026, 9, 11, 22, 14, 15),
        host: 'mymachine',
        fields: {
          facility: 4,
          severity: 2,
          host: 'mymachine',
          app: 'su/x',
          procid: '77',
          message: 'failed',
          format: '3164',
        },
      },
    });
  });

  it('flags invalid UTF-8 and keeps the message with U+FFFD', () => {
    const r = syslog(Buffer.concat([Buffer.from('<13>1 - - app - - - caf'), Buffer.from([0xff])]));
    expect(r.log.fields).toEqual({
      facility: 1,
      severity: 5,
      app: 'app',
      message: 'caf\uFFFD',
      format: '5424',
      invalidUtf8: true,
    });
  });
});

describe('fromForward', () => {
  const entry = (record: Record<string, unknown>) => ({
    time: 1_700_000_000_123,
    nanos: 123_456_789,
    record,
  });

  it.each([
    ['app.web', { host: 'h1', hostname: 'h2', a: 1 }, 'app.web', 'h1'],
    ['app.web', { hostname: 'h2' }, 'app.web', 'h2'],
    ['docker/abc', { host: 7 }, 'docker_abc', '10.0.0.9'],
    ['', {}, 'forward', '10.0.0.9'],
  ])('tag %j, record %j → stream %s, host %s', (tag, record, stream, host) => {
    expect(fromForward(tag, entry(record), '10.0.0.9')).toEqual({
      stream,
      log: { time: 1_700_000_000_123, host, fields: record },
    });
  });
});

describe('fromNdjson and timeOf', () => {
  it.each([
    [{ time: '2026-12-01T10:00:00.5Z' }, Date.UTC(2026, 11, 1, 10, 0, 0, 500)],
    [{ timestamp: '2026-12-01T10:00:00+01:00' }, Date.UTC(2026, 11, 1, 9, 0, 0)],
    [{ '@timestamp': '2026-12-01 10:00:00.123456' }, Date.UTC(2026, 11, 1, 10, 0, 0, 123)],
    [{ ts: 1_764_583_200 }, 1_764_583_200_000],
    [{ ts: 1_764_583_200.25 }, 1_764_583_200_250],
    [{ ts: 1_764_583_200_123 }, 1_764_583_200_123],
    [{ time: 'yesterday', ts: 5 }, 5_000],
    [{ time: '2026-02-30T00:00:00Z' }, NOW],
    [{ time: -1 }, NOW],
    [{ msg: 'no time' }, NOW],
  ])('%j → %d', (object, time) => {
    expect(fromNdjson(object, '::1', NOW).time).toBe(time);
  });

  it('takes host, then hostname, then the peer', () => {
    expect(fromNdjson({ host: 'a', hostname: 'b' }, 'p', NOW).host).toBe('a');
    expect(fromNdjson({ hostname: 'b' }, 'p', NOW).host).toBe('b');
    expect(fromNdjson({ host: 3 }, 'p', NOW)).toEqual({ time: NOW, host: 'p', fields: { host: 3 } });
  });

  it('reads a date alone as UTC midnight and refuses text that is not ISO 8601', () => {
    expect(timeOf('2026-12-01')).toBe(Date.UTC(2026, 11, 1));
    expect(timeOf('Dec 1 2026')).toBeUndefined();
    expect(timeOf(Number.NaN)).toBeUndefined();
  });

  it('strips the IPv4-mapped prefix of a peer address', () => {
    expect(peerAddress('::ffff:127.0.0.1')).toBe('127.0.0.1');
    expect(peerAddress('::1')).toBe('::1');
    expect(peerAddress(undefined)).toBe('');
  });
});
