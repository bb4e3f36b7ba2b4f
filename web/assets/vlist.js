/**
 * A virtualized list: however many rows the list has (50,000 entities), only the rows in view (plus a
 * few either side) are in the DOM. Rows have one fixed height; a spacer gives the scroll bar its full
 * length and the visible rows are placed at their offset. Rows come from a `PagedSource`, which fetches
 * the pages the view needs (server-side paging), so neither the DOM nor memory grows with the list.
 */
import { h } from './dom.js';

const OVERSCAN = 6;

/** Items by index, fetched a page at a time on demand; `reset()` starts over (a new query). */
export class PagedSource {
  /** fetchPage(offset, limit, signal) → { total, items } */
  constructor(fetchPage, { pageSize = 100, maxPages = 40 } = {}) {
    this.fetchPage = fetchPage;
    this.pageSize = pageSize;
    this.maxPages = maxPages;
    this.total = 0;
    this.pages = new Map();
    this.inflight = new Map();
    this.generation = 0;
    this.listeners = new Set();
    this.error = null;
    this.loaded = false;
  }

  onChange(listener) {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  changed() {
    for (const l of this.listeners) l();
  }

  reset(fetchPage = this.fetchPage) {
    this.fetchPage = fetchPage;
    this.generation++;
    for (const c of this.inflight.values()) c.abort();
    this.inflight.clear();
    this.pages.clear();
    this.total = 0;
    this.error = null;
    this.loaded = false;
  }

  get(index) {
    const page = this.pages.get(Math.floor(index / this.pageSize));
    return page ? page[index % this.pageSize] : undefined;
  }

  /** Fetches the pages covering [first, last] that are not here yet. */
  ensure(first, last) {
    const from = Math.max(0, Math.floor(first / this.pageSize));
    const to = Math.max(from, Math.floor(Math.max(first, last) / this.pageSize));
    for (let p = from; p <= to; p++) if (!this.pages.has(p) && !this.inflight.has(p)) this.load(p);
  }

  /** The first page; resolves once it is here (or failed). */
  start() {
    return this.load(0);
  }

  async load(page) {
    const generation = this.generation;
    const controller = new AbortController();
    this.inflight.set(page, controller);
    try {
      const answer = await this.fetchPage(page * this.pageSize, this.pageSize, controller.signal);
      if (generation !== this.generation) return;
      this.total = answer.total;
      this.pages.set(page, answer.items);
      this.loaded = true;
      this.error = null;
      // Far pages go first: scrolling through 50,000 rows keeps memory at maxPages pages.
      if (this.pages.size > this.maxPages) {
        const far = [...this.pages.keys()].sort((a, b) => Math.abs(b - page) - Math.abs(a - page));
        for (const p of far.slice(0, this.pages.size - this.maxPages)) this.pages.delete(p);
      }
      this.answer = answer;
    } catch (e) {
      if (generation !== this.generation || e.name === 'AbortError') return;
      this.error = e;
      this.loaded = true;
    } finally {
      if (this.inflight.get(page) === controller) this.inflight.delete(page);
    }
    this.changed();
  }
}

export class VirtualList {
  /**
   * renderRow(item, index) → element (an <li>-like block of `rowHeight` px); item undefined while its
   * page loads. `testid` names the scrolling container.
   */
  constructor({ source, renderRow, rowHeight = 30, testid, empty = 'nothing to show' }) {
    this.source = source;
    this.renderRow = renderRow;
    this.rowHeight = rowHeight;
    this.empty = empty;
    this.spacer = h('div', { class: 'vlist-spacer' });
    this.rows = h('div', { class: 'vlist-rows', role: 'list' });
    this.el = h('div', { class: 'vlist', testid, tabindex: '0' }, this.spacer, this.rows);
    this.frame = 0;
    this.el.addEventListener('scroll', () => this.schedule(), { passive: true });
    source.onChange(() => this.schedule());
    if (typeof ResizeObserver === 'function') new ResizeObserver(() => this.schedule()).observe(this.el);
  }

  schedule() {
    if (this.frame) return;
    this.frame = requestAnimationFrame(() => {
      this.frame = 0;
      this.render();
    });
  }

  /** Back to the top (a new query). */
  rewind() {
    this.el.scrollTop = 0;
    this.schedule();
  }

  render() {
    const { source, rowHeight } = this;
    const total = source.total;
    this.spacer.style.height = `${total * rowHeight}px`;
    if (source.loaded && total === 0) {
      this.rows.replaceChildren(
        h(
          'div',
          { class: 'vlist-empty', testid: 'vlist-empty' },
          source.error ? source.error.message : this.empty,
        ),
      );
      return;
    }
    const height = this.el.clientHeight || rowHeight * 20;
    const first = Math.max(0, Math.floor(this.el.scrollTop / rowHeight) - OVERSCAN);
    const last = Math.min(total - 1, Math.ceil((this.el.scrollTop + height) / rowHeight) + OVERSCAN);
    const nodes = [];
    for (let i = first; i <= last; i++) {
      const row = this.renderRow(source.get(i), i);
      row.style.transform = `translateY(${i * rowHeight}px)`;
      row.style.height = `${rowHeight}px`;
      row.classList.add('vlist-row');
      nodes.push(row);
    }
    this.rows.replaceChildren(...nodes);
    if (total > 0) source.ensure(first, last);
  }
}
