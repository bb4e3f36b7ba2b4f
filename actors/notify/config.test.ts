/**
 * NotifyConfig over a config source: writes validated before they are stored, watches applied on the
 * fly, a bad document written around the check reported and ignored (the last good one stays), no
 * route tree meaning "route nowhere", silences added with generated ids and expired.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { MemoryConfigSource } from '../../runtime/memory-config.ts';
import { NotifyConfig, RECEIVERS_SECTION, ROUTES_KEY, ROUTES_SECTION, SILENCES_SECTION } from './config.ts';

const TREE = 'receiver: infra\nroutes:\n  - severity: 4-5\n    receivers: [infra, pay]\n';
const HOOK = 'kind: webhook\nurl: https://alerts.example.com/hook\n';

let config: NotifyConfig | undefined;
afterEach(async () => {
  await config?.stop();
  config = undefined;
});

const open = async (seed: Record<string, Record<string, string>> = {}) => {
  const source = new MemoryConfigSource(seed);
  const warnings: string[] = [];
  let n = 0;
  let now = 1_000_000;
  config = new NotifyConfig(source, {
    warn: (m) => warnings.push(m),
    newId: () => `sil-${++n}`,
    now: () => now,
  });
  await config.start();
  return { source, warnings, config, setNow: (t: number) => (now = t) };
};

describe('NotifyConfig', () => {
  it('routes nowhere while no tree is configured', async () => {
    const { config } = await open({ [RECEIVERS_SECTION]: { infra: HOOK } });
    expect(config.routes()).toBeUndefined();
    expect(config.route({ alertname: 'x' }, 5)).toEqual([]);
  });

  it('applies what is seeded and what is put, and validates before writing', async () => {
    const { config, source } = await open({ [ROUTES_SECTION]: { [ROUTES_KEY]: TREE } });
    expect(config.route({}, 5).map((m) => m.receiver)).toEqual(['infra', 'pay']);
    await config.putReceiver('infra', HOOK);
    expect(config.receiver('infra')?.url).toBe('https://alerts.example.com/hook');
    await expect(config.putReceiver('pay', 'kind: webhook\nurl: ftp://x\n')).rejects.toThrow(
      "ARGUS_ERR_INVALID_CONFIG: invalid receiver 'pay': url: must be an http or https URL, got 'ftp://x'",
    );
    expect((await source.list(RECEIVERS_SECTION)).has('pay')).toBe(false);
    await expect(config.putRoutes('receiver: infra\ngroup_wait: soon\n')).rejects.toThrow(
      "ARGUS_ERR_INVALID_CONFIG: invalid route tree: group_wait: must be a duration like 30s, 5m or 1h30m, got 'soon'",
    );
    expect(config.routes()?.routes).toHaveLength(1);
    await config.putRoutes('receiver: other\n');
    expect(config.route({}, 5).map((m) => m.receiver)).toEqual(['other']);
    expect(await config.deleteReceiver('infra')).toBe(true);
    expect(config.receiver('infra')).toBeUndefined();
    expect(await config.deleteRoutes()).toBe(true);
    expect(config.routes()).toBeUndefined();
  });

  it('keeps the last good document when a bad one is written around the check, and says so', async () => {
    const { config, source, warnings } = await open({ [ROUTES_SECTION]: { [ROUTES_KEY]: TREE } });
    await config.putReceiver('infra', HOOK);
    await source.put(RECEIVERS_SECTION, 'infra', 'kind: webhook\nurl: nope\n');
    await source.put(ROUTES_SECTION, ROUTES_KEY, 'receiver: [');
    await source.put(RECEIVERS_SECTION, 'fresh', 'kind: pager\n');
    expect(config.receiver('infra')?.url).toBe('https://alerts.example.com/hook');
    expect(config.receiver('fresh')).toBeUndefined();
    expect(config.route({}, 5).map((m) => m.receiver)).toEqual(['infra', 'pay']);
    expect(warnings).toEqual([
      "receivers/infra ignored (the last good one stays): ARGUS_ERR_INVALID_CONFIG: invalid receiver 'infra': url: must be an http or https URL, got 'nope'",
      'routes/tree ignored (the last good one stays): ARGUS_ERR_INVALID_CONFIG: invalid route tree: (root): is not valid YAML or JSON: Flow sequence in block collection must be sufficiently indented and end with a ] at line 1, column 12',
      "receivers/fresh ignored (it had no good version): ARGUS_ERR_INVALID_CONFIG: invalid receiver 'fresh': kind: must be 'webhook' or 'chat', got 'pager'; url: is required",
    ]);
    expect([...config.rejected.keys()].sort()).toEqual(['receivers/fresh', 'receivers/infra', 'routes/tree']);
    // Fixing the document applies it and clears the rejection.
    await source.put(RECEIVERS_SECTION, 'infra', 'kind: chat\nurl: https://chat.example.com/x\n');
    expect(config.receiver('infra')?.kind).toBe('chat');
    expect(config.rejected.has('receivers/infra')).toBe(false);
  });

  it('adds silences with generated ids (starts_at defaulting to now) and expires them', async () => {
    const { config, source, setNow } = await open();
    const id = await config.addSilence({
      matchers: ['service="pay"'],
      ends_at: 2_000_000,
      created_by: 'a',
      comment: 'c',
    });
    expect(id).toBe('sil-1');
    expect(config.silences()).toMatchObject([{ id: 'sil-1', startsAt: 1_000_000, endsAt: 2_000_000 }]);
    const later = await config.addSilence(
      'matchers: [\'host="h"\']\nstarts_at: 3000000\nends_at: 4000000\ncreated_by: b\ncomment: later\n',
    );
    await expect(
      config.addSilence({ matchers: [], ends_at: 1, created_by: 'a', comment: 'c' }),
    ).rejects.toThrow(
      "ARGUS_ERR_INVALID_CONFIG: invalid silence 'sil-3': matchers: must list at least one matcher; ends_at: must be after starts_at",
    );
    setNow(1_500_000);
    expect(await config.expireSilence(id)).toBe(true);
    expect(config.silences().find((s) => s.id === id)?.endsAt).toBe(1_500_000);
    expect(await config.expireSilence(id)).toBe(false);
    // A silence that has not started yet is removed: it never applied.
    expect(await config.expireSilence(later)).toBe(true);
    expect((await source.list(SILENCES_SECTION)).has(later)).toBe(false);
    expect(await config.expireSilence('nope')).toBe(false);
    // Expired at the very instant it starts: removed too (an end equal to the start is no silence).
    const instant = await config.addSilence({
      matchers: ['a="b"'],
      ends_at: 9_000_000,
      created_by: 'a',
      comment: 'c',
    });
    expect(await config.expireSilence(instant)).toBe(true);
    expect(config.silences().map((s) => s.id)).toEqual([id]);
  });
});
