/**
 * The entity detail panel (`/api/v1/entities/:kind/:key`): status, restarts, last error, processed,
 * mailbox lag, the state summary as JSON, recent lifecycle events, and the admin actions Restart, Stop
 * and Send test message (a JSON message typed in a textarea). Refreshed every 2 s while shown.
 */
import { ApiError, apiGet, apiPost, seg } from './api.js';
import { fill, h } from './dom.js';
import { count, dateTime, json } from './format.js';

const REFRESH_MS = 2000;

const field = (label, testid, value) =>
  h('div', { class: 'field' }, h('dt', {}, label), h('dd', { testid }, value));

const eventText = (e) => {
  if (e.phase === 'admin' || e.action)
    return `${e.action ?? 'admin'}${e.by ? ` by ${e.by}` : ''}${e.messageType ? ` (message '${e.messageType}')` : ''}`;
  let text = e.phase ?? e.type ?? '?';
  if (e.error) text += `: ${e.error}`;
  if (e.reason) text += ` (${e.reason})`;
  return text;
};

/** A test message from the textarea: a JSON object with a string `type`, or the problem. */
export const parseTestMessage = (text) => {
  let message;
  try {
    message = JSON.parse(text);
  } catch (e) {
    return { error: `the message is not JSON: ${e.message}` };
  }
  if (
    typeof message !== 'object' ||
    message === null ||
    Array.isArray(message) ||
    typeof message.type !== 'string'
  )
    return { error: 'the message must be a JSON object with a string "type", like {"type": "inc", "by": 1}' };
  return { message };
};

export class EntityView {
  constructor({ back }) {
    this.back = back;
    this.kind = '';
    this.key = '';
    this.timer = 0;
    this.loadSeq = 0;
    this.title = h('h2', { testid: 'entity-title' });
    this.body = h('div', { testid: 'entity-body' });
    this.result = h('div', { class: 'action-result', testid: 'entity-action-result', role: 'status' });
    this.message = h('textarea', {
      testid: 'entity-message',
      rows: '3',
      spellcheck: 'false',
      'aria-label': 'test message (JSON)',
    });
    this.message.value = '{"type": "inc", "by": 1}';
    const action = (name, label) =>
      h('button', { type: 'button', testid: `entity-${name}`, onclick: () => this.act(name) }, label);
    this.el = h(
      'section',
      { class: 'view', testid: 'view-entity' },
      h(
        'p',
        {},
        h(
          'a',
          {
            href: '#',
            testid: 'entity-back',
            onclick: (ev) => {
              ev.preventDefault();
              this.back();
            },
          },
          '← back',
        ),
      ),
      this.title,
      h(
        'div',
        { class: 'actions toolbar', testid: 'entity-actions' },
        action('restart', 'Restart'),
        action('stop', 'Stop'),
        h('label', { class: 'message' }, 'Test message ', this.message),
        action('send', 'Send test message'),
      ),
      this.result,
      this.body,
    );
  }

  open(kind, key) {
    this.kind = kind;
    this.key = key;
    this.title.textContent = `${kind} / ${key}`;
    this.result.textContent = '';
    fill(this.body, h('p', { class: 'muted' }, 'loading…'));
    this.load();
  }

  show() {
    clearInterval(this.timer);
    this.timer = setInterval(() => this.load(), REFRESH_MS);
  }

  hide() {
    clearInterval(this.timer);
  }

  path(suffix = '') {
    return `/api/v1/entities/${seg(this.kind)}/${seg(this.key)}${suffix}`;
  }

  async load() {
    if (!this.kind) return;
    const seq = ++this.loadSeq;
    const [kind, key] = [this.kind, this.key];
    let e;
    try {
      e = await apiGet(this.path());
    } catch (err) {
      if (seq === this.loadSeq)
        fill(this.body, h('div', { class: 'problem', testid: 'entity-error' }, err.message));
      return;
    }
    if (seq !== this.loadSeq || kind !== this.kind || key !== this.key) return;
    this.render(e);
  }

  render(e) {
    const lag = e.mailbox
      ? `${count(e.mailbox.lag)} (committed ${count(e.mailbox.committed)}, end ${count(e.mailbox.end)})`
      : '—';
    const lastError = e.lastError ? `${e.lastError.message} at ${dateTime(e.lastError.at)}` : 'none';
    const events = e.events ?? [];
    fill(
      this.body,
      h(
        'dl',
        { class: 'fields' },
        field('status', 'entity-status', e.status),
        field('restarts', 'entity-restarts', String(e.restarts ?? 0)),
        field('last error', 'entity-last-error', lastError),
        field('processed', 'entity-processed', count(e.processed)),
        field('mailbox lag', 'entity-lag', lag),
        field('node', 'entity-node', e.node ?? '—'),
        field('shard', 'entity-partition', `${e.partition ?? '—'} (epoch ${e.epoch ?? '—'})`),
        field('offset', 'entity-offset', String(e.offset ?? '—')),
      ),
      h('h3', {}, 'State summary'),
      h('pre', { class: 'json', testid: 'entity-summary' }, json(e.summary)),
      h('h3', {}, `Lifecycle events (${events.length})`),
      events.length === 0
        ? h('p', { class: 'muted' }, 'none')
        : h(
            'ol',
            { class: 'events', testid: 'entity-events' },
            [...events]
              .reverse()
              .map((ev) =>
                h(
                  'li',
                  { testid: 'entity-event' },
                  h('span', { class: 'feed-time' }, dateTime(ev.at)),
                  ' ',
                  h('span', { testid: 'entity-event-text' }, eventText(ev)),
                ),
              ),
          ),
    );
  }

  async act(name) {
    let request;
    if (name === 'send') {
      const parsed = parseTestMessage(this.message.value);
      if (parsed.error) {
        this.showResult(parsed.error, true);
        return;
      }
      request = () => apiPost(this.path('/messages'), parsed.message);
    } else request = () => apiPost(this.path(`/${name}`), {});
    this.showResult(`${name}…`, false);
    try {
      const answer = await request();
      this.showResult(this.describe(name, answer), false);
    } catch (e) {
      this.showResult(
        e instanceof ApiError ? `${name} refused (${e.status}): ${e.message}` : e.message,
        true,
      );
    }
    await this.load();
  }

  describe(name, a) {
    if (name === 'restart') return `restarted on ${a.node}: ${a.restarts} restart(s)`;
    if (name === 'stop') return `stopped on ${a.node}: ${a.status}`;
    return a.accepted ? 'message accepted' : 'message not accepted';
  }

  showResult(text, bad) {
    this.result.textContent = text;
    this.result.className = `action-result ${bad ? 'problem' : 'ok'}`;
  }
}
