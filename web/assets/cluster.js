/** The cluster view: members with their health, shards, lag and entities; placement per kind. */
import { apiGet } from './api.js';
import { fill, h } from './dom.js';
import { bytes, count, duration } from './format.js';
import { partialBanner } from './partial.js';

const REFRESH_MS = 5000;

const memberRow = (m, self, leader) =>
  h(
    'tr',
    { testid: 'member-row', 'data-node': m.id },
    h(
      'td',
      { testid: 'member-id' },
      m.id,
      m.id === self ? h('span', { class: 'tag' }, 'this node') : null,
      m.id === leader ? h('span', { class: 'tag' }, 'leader') : null,
    ),
    h('td', {}, h('span', { class: `health health-${m.health}`, testid: 'member-health' }, m.health)),
    h('td', {}, m.address ?? '—'),
    h('td', { class: 'num', testid: 'member-shards' }, count(m.shards)),
    h('td', { class: 'num', testid: 'member-entities' }, count(m.entities)),
    h('td', { class: 'num', testid: 'member-lag' }, count(m.lag)),
    h('td', { class: 'num' }, bytes(m.heapUsedBytes)),
    h(
      'td',
      { class: 'num' },
      typeof m.eventLoopLagMs === 'number' ? `${m.eventLoopLagMs.toFixed(1)} ms` : '—',
    ),
    h('td', { class: 'num' }, duration(m.uptimeMs)),
    h('td', {}, m.version ?? '—'),
  );

const placementTable = (kind, shards) =>
  h(
    'div',
    { class: 'placement', testid: 'placement-kind', 'data-kind': kind },
    h('h3', {}, `${kind} — ${shards.length} shard${shards.length === 1 ? '' : 's'}`),
    h(
      'table',
      {},
      h(
        'thead',
        {},
        h(
          'tr',
          {},
          ['shard', 'node', 'epoch', 'lag', 'entities'].map((c) => h('th', {}, c)),
        ),
      ),
      h(
        'tbody',
        {},
        shards.map((s) =>
          h(
            'tr',
            { testid: 'placement-row' },
            h('td', { class: 'num' }, String(s.shard)),
            h('td', {}, s.node ?? 'unassigned'),
            h('td', { class: 'num' }, String(s.epoch ?? '—')),
            h('td', { class: 'num' }, count(s.lag)),
            h('td', { class: 'num' }, count(s.entities)),
          ),
        ),
      ),
    ),
  );

export class ClusterView {
  constructor({ onSelf } = {}) {
    this.onSelf = onSelf ?? (() => {});
    this.body = h('div', { testid: 'cluster-body' }, h('p', { class: 'muted' }, 'loading…'));
    this.stamp = h('span', { class: 'muted', testid: 'cluster-updated' });
    this.el = h(
      'section',
      { class: 'view', testid: 'view-cluster' },
      h('h2', {}, 'Cluster'),
      h(
        'div',
        { class: 'toolbar' },
        h('button', { type: 'button', testid: 'cluster-refresh', onclick: () => this.load() }, 'Refresh'),
        this.stamp,
      ),
      this.body,
    );
    this.timer = 0;
  }

  show() {
    this.load();
    clearInterval(this.timer);
    this.timer = setInterval(() => this.load(), REFRESH_MS);
  }

  hide() {
    clearInterval(this.timer);
  }

  async load() {
    let answer;
    try {
      answer = await apiGet('/api/v1/cluster');
    } catch (e) {
      fill(this.body, h('div', { class: 'problem', testid: 'cluster-error' }, e.message));
      return;
    }
    this.onSelf(answer.self);
    this.stamp.textContent = `updated ${new Date().toLocaleTimeString()}`;
    const members = answer.members ?? [];
    const kinds = Object.entries(answer.placement ?? {}).sort(([a], [b]) => a.localeCompare(b));
    fill(
      this.body,
      partialBanner(answer),
      h(
        'p',
        { testid: 'cluster-summary' },
        `${members.length} member${members.length === 1 ? '' : 's'} · coordinator ${answer.coordinator ?? '—'} · leader ${answer.leader ?? '—'}`,
      ),
      h(
        'table',
        { testid: 'cluster-members' },
        h(
          'thead',
          {},
          h(
            'tr',
            {},
            [
              'node',
              'health',
              'address',
              'shards',
              'entities',
              'lag',
              'heap',
              'loop lag',
              'uptime',
              'version',
            ].map((c) => h('th', {}, c)),
          ),
        ),
        h(
          'tbody',
          {},
          members.map((m) => memberRow(m, answer.self, answer.leader)),
        ),
      ),
      h('h2', {}, 'Placement'),
      kinds.length === 0 ? h('p', { class: 'muted' }, 'no kinds placed') : null,
      h(
        'div',
        { class: 'placements' },
        kinds.map(([kind, shards]) => placementTable(kind, shards)),
      ),
    );
  }
}
