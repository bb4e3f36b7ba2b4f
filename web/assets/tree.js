/**
 * The supervisor-tree browser: one level of one node's tree at a time (`/api/v1/nodes/:node/tree`,
 * paged into a virtualized list), a breadcrumb back up, and a search by entity key across the cluster
 * (`/api/v1/entities?q=`, debounced, its results in a virtualized list too).
 */
import { apiGet, query, seg } from './api.js';
import { debounce, fill, h } from './dom.js';
import { count } from './format.js';
import { partialBanner } from './partial.js';
import { PagedSource, VirtualList } from './vlist.js';

const PAGE = 100;
const SEARCH_DEBOUNCE_MS = 250;

const loadingRow = () => h('div', { class: 'row loading' }, 'loading…');

export class TreeView {
  /** openEntity(kind, key), navigate(node, path): what a click does. */
  constructor({ openEntity, navigate }) {
    this.openEntity = openEntity;
    this.navigate = navigate;
    this.node = 'self';
    this.path = '';
    this.treeSource = new PagedSource((offset, limit, signal) => this.fetchLevel(offset, limit, signal), {
      pageSize: PAGE,
    });
    this.searchSource = new PagedSource(() => Promise.resolve({ total: 0, items: [] }), { pageSize: PAGE });
    this.treeList = new VirtualList({
      source: this.treeSource,
      testid: 'tree-list',
      renderRow: (child) => this.treeRow(child),
      empty: 'no children',
    });
    this.searchList = new VirtualList({
      source: this.searchSource,
      testid: 'search-list',
      renderRow: (item) => this.searchRow(item),
      empty: 'no entity matches',
    });
    this.treeSource.onChange(() => this.levelChanged());
    this.searchSource.onChange(() => this.searchChanged());
    this.el = this.build();
    this.runSearch = debounce(() => this.search(), SEARCH_DEBOUNCE_MS);
  }

  build() {
    this.nodeSelect = h('select', {
      testid: 'tree-node',
      'aria-label': 'node',
      onchange: () => this.navigate(this.nodeSelect.value, ''),
    });
    this.breadcrumb = h('nav', { class: 'breadcrumb', testid: 'tree-breadcrumb', 'aria-label': 'tree path' });
    this.total = h('span', { class: 'muted', testid: 'tree-total' });
    this.treeProblem = h('div', { class: 'problem', testid: 'tree-error', hidden: true });
    this.searchInput = h('input', {
      type: 'search',
      testid: 'tree-search',
      placeholder: 'search entities by key…',
      'aria-label': 'search entities by key',
      oninput: () => this.runSearch(),
    });
    this.statusSelect = h(
      'select',
      { testid: 'search-status', 'aria-label': 'status', onchange: () => this.search() },
      h('option', { value: '' }, 'any status'),
      ['active', 'restarting', 'passivated', 'stopped'].map((s) => h('option', { value: s }, s)),
    );
    this.searchTotal = h('span', { class: 'muted', testid: 'search-total' });
    this.searchBanner = h('div', {});
    this.searchPanel = h(
      'div',
      { class: 'search-results', testid: 'search-results', hidden: true },
      h('div', { class: 'toolbar' }, this.searchTotal, this.searchBanner),
      this.searchList.el,
    );
    this.levelPanel = h(
      'div',
      { testid: 'tree-level' },
      h('div', { class: 'toolbar' }, this.breadcrumb, this.total),
      this.treeProblem,
      this.treeList.el,
    );
    return h(
      'section',
      { class: 'view', testid: 'view-tree' },
      h('h2', {}, 'Supervisor tree'),
      h(
        'div',
        { class: 'toolbar' },
        h('label', {}, 'Node ', this.nodeSelect),
        this.searchInput,
        this.statusSelect,
      ),
      this.searchPanel,
      this.levelPanel,
    );
  }

  /** The members to choose from (`self` first). */
  setMembers(members, self) {
    const ids = ['self', ...members.filter((m) => m !== self)];
    fill(
      this.nodeSelect,
      ids.map((id) =>
        h(
          'option',
          { value: id, selected: id === this.node },
          id === 'self' ? `${self ?? 'self'} (this node)` : id,
        ),
      ),
    );
  }

  open(node, path) {
    this.node = node || 'self';
    this.path = path || '';
    if (this.nodeSelect.value !== this.node) this.nodeSelect.value = this.node;
    this.treeSource.reset();
    this.treeList.rewind();
    this.treeSource.start();
    this.treeList.schedule();
    this.searchList.schedule();
  }

  fetchLevel(offset, limit, signal) {
    return apiGet(
      query(`/api/v1/nodes/${seg(this.node)}/tree`, { path: this.path, offset, limit }),
      signal,
    ).then((a) => ({ ...a, total: a.total, items: a.children }));
  }

  levelChanged() {
    const s = this.treeSource;
    this.treeProblem.hidden = !s.error;
    this.treeProblem.textContent = s.error ? s.error.message : '';
    const answer = s.answer;
    const path = answer?.path ?? this.path ?? 'node';
    const parts = path.split('/').filter((p) => p !== '');
    fill(
      this.breadcrumb,
      parts.map((part, i) => {
        const to = parts.slice(0, i + 1).join('/');
        const last = i === parts.length - 1;
        return [
          i > 0 ? h('span', { class: 'sep' }, ' / ') : null,
          last
            ? h('span', { class: 'crumb current', testid: 'tree-crumb' }, part)
            : h(
                'a',
                {
                  href: '#',
                  class: 'crumb',
                  testid: 'tree-crumb',
                  onclick: (ev) => {
                    ev.preventDefault();
                    this.navigate(this.node, to);
                  },
                },
                part,
              ),
        ];
      }),
    );
    if (answer)
      this.total.textContent = `${count(s.total)} ${s.total === 1 ? 'child' : 'children'} on ${answer.node}`;
  }

  treeRow(child) {
    if (!child) return loadingRow();
    const isEntity = Boolean(child.entity);
    const opens = isEntity || child.children > 0 || child.type === 'supervisor';
    return h(
      'div',
      {
        class: `row tree-row ${opens ? 'clickable' : ''}`,
        testid: 'tree-row',
        'data-id': child.id,
        role: 'listitem',
        onclick: () => {
          if (isEntity) this.openEntity(child.entity.kind, child.entity.key);
          else if (opens) this.navigate(this.node, child.path);
        },
      },
      h('span', { class: 'icon' }, child.type === 'supervisor' ? '▸' : '•'),
      h('span', { class: 'grow', testid: 'tree-row-id' }, child.id),
      h('span', { class: `status status-${child.status}` }, child.status),
      h('span', { class: 'num', title: 'restarts' }, `↻ ${count(child.restarts)}`),
      h(
        'span',
        { class: 'num muted' },
        isEntity
          ? child.entity.kind
          : `${count(child.children)} ${child.children === 1 ? 'child' : 'children'}`,
      ),
    );
  }

  search() {
    this.runSearch.cancel();
    const q = this.searchInput.value.trim();
    const status = this.statusSelect.value;
    const searching = q !== '' || status !== '';
    this.searchPanel.hidden = !searching;
    this.levelPanel.hidden = searching;
    if (!searching) {
      this.searchSource.reset();
      this.treeList.schedule();
      return;
    }
    this.searchSource.reset((offset, limit, signal) =>
      apiGet(query('/api/v1/entities', { q, status, offset, limit }), signal),
    );
    this.searchTotal.textContent = 'searching…';
    this.searchList.rewind();
    this.searchSource.start();
  }

  searchChanged() {
    const s = this.searchSource;
    if (!s.loaded) return;
    this.searchTotal.textContent = s.error
      ? s.error.message
      : `${count(s.total)} ${s.total === 1 ? 'match' : 'matches'}`;
    fill(this.searchBanner, partialBanner(s.answer));
  }

  searchRow(item) {
    if (!item) return loadingRow();
    return h(
      'div',
      {
        class: 'row search-row clickable',
        testid: 'search-row',
        'data-key': item.key,
        role: 'listitem',
        onclick: () => this.openEntity(item.kind, item.key),
      },
      h('span', { class: 'muted' }, item.kind),
      h('span', { class: 'grow', testid: 'search-row-key' }, item.key),
      h('span', { class: `status status-${item.status}` }, item.status),
      h('span', { class: 'muted' }, `${item.node} · shard ${item.partition}`),
      h('span', { class: 'num', title: 'restarts' }, `↻ ${count(item.restarts)}`),
      h('span', { class: 'num', title: 'messages processed' }, `${count(item.processed)} msgs`),
    );
  }

  show() {
    this.treeList.schedule();
    this.searchList.schedule();
  }

  hide() {}
}
