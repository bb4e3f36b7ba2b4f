/**
 * Hosts (`/api/v1/hosts`, paged, with a search) and, for the hosts on the page, a sparkline of each of
 * their series (`/api/v1/hosts/:id/history`), fetched a few at a time.
 */
import { apiGet, query, seg } from './api.js';
import { debounce, fill, h } from './dom.js';
import { count, metric } from './format.js';
import { partialBanner } from './partial.js';
import { sparkline } from './sparkline.js';

const PAGE = 25;
const MAX_SERIES = 4;
const HISTORY_CONCURRENCY = 4;

export class HostsView {
  constructor() {
    this.offset = 0;
    this.q = '';
    this.seq = 0;
    this.search = h('input', {
      type: 'search',
      testid: 'hosts-search',
      placeholder: 'host id…',
      'aria-label': 'search hosts',
      oninput: debounce(() => {
        this.offset = 0;
        this.load();
      }, 250),
    });
    this.prev = h(
      'button',
      { type: 'button', testid: 'hosts-prev', onclick: () => this.page(-1) },
      '← previous',
    );
    this.next = h('button', { type: 'button', testid: 'hosts-next', onclick: () => this.page(1) }, 'next →');
    this.range = h('span', { class: 'muted', testid: 'hosts-total' });
    this.body = h('div', { testid: 'hosts-body' });
    this.el = h(
      'section',
      { class: 'view', testid: 'view-hosts' },
      h('h2', {}, 'Hosts'),
      h('div', { class: 'toolbar' }, this.search, this.prev, this.next, this.range),
      this.body,
    );
  }

  show() {
    this.load();
  }

  hide() {}

  page(delta) {
    this.offset = Math.max(0, this.offset + delta * PAGE);
    this.load();
  }

  async load() {
    const seq = ++this.seq;
    let answer;
    try {
      answer = await apiGet(
        query('/api/v1/hosts', { q: this.search.value.trim(), offset: this.offset, limit: PAGE }),
      );
    } catch (e) {
      if (seq === this.seq) fill(this.body, h('div', { class: 'problem', testid: 'hosts-error' }, e.message));
      return;
    }
    if (seq !== this.seq) return;
    const items = answer.items ?? [];
    const total = answer.total ?? items.length;
    this.range.textContent =
      total === 0
        ? '0 hosts'
        : `${count(this.offset + 1)}–${count(this.offset + items.length)} of ${count(total)} hosts`;
    this.prev.disabled = this.offset === 0;
    this.next.disabled = this.offset + items.length >= total;
    const charts = new Map();
    fill(
      this.body,
      partialBanner(answer),
      items.length === 0
        ? h('p', { class: 'muted', testid: 'hosts-empty' }, 'no hosts')
        : h(
            'table',
            { testid: 'hosts-table' },
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                ['host', 'node', 'latest', 'history'].map((c) => h('th', {}, c)),
              ),
            ),
            h(
              'tbody',
              {},
              items.map((host) => {
                const cell = h(
                  'td',
                  { class: 'charts', testid: 'host-charts' },
                  h('span', { class: 'muted' }, '…'),
                );
                charts.set(host.id, cell);
                const latest = Object.entries(host.latest ?? {}).sort(([a], [b]) => a.localeCompare(b));
                return h(
                  'tr',
                  { testid: 'host-row', 'data-host': host.id },
                  h('td', { testid: 'host-id' }, host.id),
                  h('td', {}, host.node ?? '—'),
                  h(
                    'td',
                    { class: 'latest' },
                    latest
                      .slice(0, 8)
                      .map(([name, s]) =>
                        h('div', {}, h('span', { class: 'muted' }, `${name} `), metric(s?.value)),
                      ),
                    latest.length > 8 ? h('div', { class: 'muted' }, `+${latest.length - 8} more`) : null,
                  ),
                  cell,
                );
              }),
            ),
          ),
    );
    this.loadHistories(seq, [...charts]);
  }

  async loadHistories(seq, queue) {
    const worker = async () => {
      while (queue.length > 0 && seq === this.seq) {
        const [id, cell] = queue.shift();
        try {
          const history = await apiGet(`/api/v1/hosts/${seg(id)}/history`);
          if (seq !== this.seq) return;
          const series = Object.entries(history.series ?? {})
            .filter(([, points]) => points.length > 0)
            .sort(([a], [b]) => a.localeCompare(b))
            .slice(0, MAX_SERIES);
          fill(
            cell,
            series.length === 0
              ? h('span', { class: 'muted' }, 'no history')
              : series.map(([name, points]) =>
                  h(
                    'div',
                    { class: 'chart' },
                    sparkline(points, { label: `${id} ${name}` }),
                    h('span', { class: 'muted' }, ` ${name} ${metric(points.at(-1)?.[1])}`),
                  ),
                ),
          );
        } catch (e) {
          if (seq === this.seq) fill(cell, h('span', { class: 'problem' }, e.message));
        }
      }
    };
    await Promise.all(Array.from({ length: HISTORY_CONCURRENCY }, worker));
  }
}
