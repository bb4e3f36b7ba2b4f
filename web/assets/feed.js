/**
 * The live event feed: one WebSocket to `/api/v1/events/stream` (subprotocols `argus.feed.v1` and
 * `bearer.<token>`), a filter sent as a `subscribe` frame, pause, and a bounded list (the newest
 * MAX_EVENTS; older rows are dropped from the DOM). It reconnects on its own, resubscribing with a
 * replay; a refused handshake is checked with a plain request so a 401 reaches the login view.
 */
import { apiGet, getToken } from './api.js';
import { fill, h } from './dom.js';
import { json, time } from './format.js';
import { severityClass, summarize } from './summary.js';

export const MAX_EVENTS = 500;
const REPLAY = 100;
const FEED_PROTOCOL = 'argus.feed.v1';
/** Letters, digits and -._~+ are safe in a subprotocol (docs/API.md, "Authentication"). */
const SAFE_TOKEN = /^[A-Za-z0-9\-._~+]+$/;

const feedUrl = (token) => {
  const base = `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/api/v1/events/stream`;
  return SAFE_TOKEN.test(token) ? base : `${base}?access_token=${encodeURIComponent(token)}`;
};

const parseTypes = (text) =>
  text
    .split(',')
    .map((t) => t.trim())
    .filter((t) => t !== '');

export class FeedView {
  constructor() {
    this.socket = null;
    this.filter = {};
    this.paused = false;
    this.pending = [];
    this.dropped = 0;
    this.retryMs = 1000;
    this.retryTimer = 0;
    this.running = false;
    this.node = '';
    this.el = this.build();
  }

  build() {
    this.types = h('input', {
      testid: 'feed-types',
      placeholder: '@argus.alert, @argus.admin, @argus.*',
      'aria-label': 'event types',
    });
    this.severity = h(
      'select',
      { testid: 'feed-severity', 'aria-label': 'minimum severity' },
      h('option', { value: '' }, 'any severity'),
      [1, 2, 3, 4, 5].map((s) => h('option', { value: String(s) }, `severity ≥ ${s}`)),
    );
    this.host = h('input', { testid: 'feed-host', placeholder: 'host', 'aria-label': 'host' });
    this.pauseButton = h(
      'button',
      { type: 'button', testid: 'feed-pause', onclick: () => this.togglePause() },
      'Pause',
    );
    this.status = h('span', { class: 'feed-status', testid: 'feed-status' }, 'not connected');
    this.problem = h('div', { class: 'problem', testid: 'feed-error', hidden: true });
    this.list = h('ol', { class: 'feed-list', testid: 'feed-list' });
    this.counter = h('span', { class: 'muted', testid: 'feed-count' }, '0 events');
    const form = h(
      'form',
      {
        class: 'toolbar',
        testid: 'feed-filter',
        onsubmit: (ev) => {
          ev.preventDefault();
          this.applyFilter();
        },
      },
      h('label', {}, 'Types ', this.types),
      h('label', {}, this.severity),
      h('label', {}, 'Host ', this.host),
      h('button', { type: 'submit', testid: 'feed-apply' }, 'Apply'),
      this.pauseButton,
      h('button', { type: 'button', testid: 'feed-clear', onclick: () => this.clear() }, 'Clear'),
      this.status,
      this.counter,
    );
    return h(
      'section',
      { class: 'view', testid: 'view-feed' },
      h('h2', {}, 'Live events'),
      form,
      this.problem,
      this.list,
    );
  }

  start() {
    this.running = true;
    this.connect();
  }

  stop() {
    this.running = false;
    clearTimeout(this.retryTimer);
    if (this.socket) this.socket.close(1000, 'signed out');
    this.socket = null;
    this.clear();
  }

  setStatus(text, cls) {
    this.status.textContent = text;
    this.status.className = `feed-status ${cls}`;
  }

  connect() {
    const token = getToken();
    if (!this.running || !token) return;
    let socket;
    try {
      socket = new WebSocket(
        feedUrl(token),
        SAFE_TOKEN.test(token) ? [FEED_PROTOCOL, `bearer.${token}`] : [FEED_PROTOCOL],
      );
    } catch (e) {
      this.setStatus(`cannot connect: ${e.message}`, 'down');
      return;
    }
    this.socket = socket;
    let greeted = false;
    this.setStatus('connecting…', 'connecting');
    socket.onmessage = (message) => {
      let frame;
      try {
        frame = JSON.parse(message.data);
      } catch {
        return;
      }
      if (frame.type === 'hello') {
        greeted = true;
        this.node = frame.node;
        this.retryMs = 1000;
        this.subscribe(REPLAY);
      } else if (frame.type === 'subscribed') {
        this.setStatus(this.paused ? 'paused' : `live on ${this.node}`, this.paused ? 'paused' : 'live');
      } else if (frame.type === 'event') this.receive(frame.event);
      else if (frame.type === 'error') this.showProblem(frame.error);
    };
    socket.onclose = (ev) => {
      if (this.socket !== socket) return;
      this.socket = null;
      if (!this.running) return;
      if (!greeted) {
        // The handshake was refused: a plain request tells why (a 401 signs the user out).
        apiGet('/api/v1/cluster').catch(() => {});
      }
      const why = ev.code === 4008 ? 'too slow, reconnecting' : `disconnected (${ev.code})`;
      this.setStatus(`${why}; retrying in ${Math.round(this.retryMs / 1000)} s`, 'down');
      this.retryTimer = setTimeout(() => this.connect(), this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 15_000);
    };
  }

  subscribe(replay) {
    if (!this.socket || this.socket.readyState !== WebSocket.OPEN) return;
    this.socket.send(JSON.stringify({ type: 'subscribe', filter: this.filter, replay }));
  }

  applyFilter() {
    const filter = {};
    const types = parseTypes(this.types.value);
    if (types.length > 0) filter.types = types;
    if (this.severity.value !== '') filter.minSeverity = Number(this.severity.value);
    if (this.host.value.trim() !== '') filter.host = this.host.value.trim();
    this.filter = filter;
    this.showProblem(null);
    this.clear();
    this.subscribe(REPLAY);
  }

  showProblem(text) {
    this.problem.hidden = text === null;
    this.problem.textContent = text ?? '';
  }

  togglePause() {
    this.paused = !this.paused;
    this.pauseButton.textContent = this.paused ? 'Resume' : 'Pause';
    if (!this.paused) {
      for (const e of this.pending) this.showEvent(e);
      this.pending = [];
      this.setStatus(this.socket ? `live on ${this.node}` : 'not connected', this.socket ? 'live' : 'down');
    } else this.setStatus('paused', 'paused');
    this.updateCount();
  }

  clear() {
    this.list.replaceChildren();
    this.pending = [];
    this.updateCount();
  }

  receive(event) {
    if (this.paused) {
      this.pending.push(event);
      if (this.pending.length > MAX_EVENTS) this.pending.shift();
      this.updateCount();
      return;
    }
    this.showEvent(event);
  }

  showEvent(event) {
    const detail = h('pre', { class: 'json', hidden: true }, json(event));
    const row = h(
      'li',
      {
        class: `feed-event ${severityClass(event)}`,
        testid: 'feed-event',
        'data-type': event.type,
        onclick: () => {
          detail.hidden = !detail.hidden;
        },
      },
      h('span', { class: 'feed-time', testid: 'feed-event-time' }, time(event.at)),
      h('span', { class: 'feed-type', testid: 'feed-event-type' }, event.type),
      h('span', { class: 'feed-summary', testid: 'feed-event-summary' }, summarize(event)),
      detail,
    );
    this.list.prepend(row);
    while (this.list.childElementCount > MAX_EVENTS) this.list.lastElementChild.remove();
    this.updateCount();
  }

  updateCount() {
    const shown = this.list.childElementCount;
    const held = this.pending.length;
    fill(
      this.counter,
      `${shown} event${shown === 1 ? '' : 's'}${held > 0 ? `, ${held} held while paused` : ''}`,
    );
  }
}
