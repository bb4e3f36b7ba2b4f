/**
 * Dead letters (`/api/v1/deadletters`, newest first, paged): inspect one (its decoded message),
 * replay it or all of them, discard it. Actions need the admin scope; a refusal is shown, not thrown.
 */
import { apiDelete, apiGet, apiPost, query, seg } from './api.js';
import { fill, h } from './dom.js';
import { count, dateTime, json } from './format.js';

const PAGE = 50;

export class DeadLettersView {
  constructor() {
    this.offset = 0;
    this.seq = 0;
    this.kind = h('input', { testid: 'deadletters-kind', placeholder: 'kind', 'aria-label': 'kind' });
    this.total = h('span', { class: 'muted', testid: 'deadletters-total' });
    this.prev = h(
      'button',
      { type: 'button', testid: 'deadletters-prev', onclick: () => this.page(-1) },
      '← previous',
    );
    this.next = h(
      'button',
      { type: 'button', testid: 'deadletters-next', onclick: () => this.page(1) },
      'next →',
    );
    this.result = h('div', { class: 'action-result', testid: 'deadletters-result', role: 'status' });
    this.body = h('div', { testid: 'deadletters-body' });
    this.detail = h('div', { class: 'detail', testid: 'deadletter-detail' });
    this.el = h(
      'section',
      { class: 'view', testid: 'view-deadletters' },
      h('h2', {}, 'Dead letters'),
      h(
        'form',
        {
          class: 'toolbar',
          onsubmit: (ev) => {
            ev.preventDefault();
            this.offset = 0;
            this.load();
          },
        },
        this.kind,
        h('button', { type: 'submit', testid: 'deadletters-apply' }, 'Apply'),
        this.prev,
        this.next,
        h(
          'button',
          { type: 'button', testid: 'deadletters-replay-all', onclick: () => this.replayAll() },
          'Replay all',
        ),
        this.total,
      ),
      this.result,
      h('div', { class: 'split' }, this.body, this.detail),
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
        query('/api/v1/deadletters', { kind: this.kind.value.trim(), offset: this.offset, limit: PAGE }),
      );
    } catch (e) {
      if (seq === this.seq)
        fill(this.body, h('div', { class: 'problem', testid: 'deadletters-error' }, e.message));
      return;
    }
    if (seq !== this.seq) return;
    const items = answer.items ?? [];
    this.prev.disabled = this.offset === 0;
    this.next.disabled = this.offset + items.length >= (answer.total ?? 0);
    this.total.textContent = `${count(answer.total ?? items.length)} dead letter${answer.total === 1 ? '' : 's'}`;
    fill(
      this.body,
      items.length === 0
        ? h('p', { class: 'muted', testid: 'deadletters-empty' }, 'no dead letters')
        : h(
            'table',
            { testid: 'deadletters-table' },
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                ['at', 'kind', 'key', 'reason', 'error', 'attempts', ''].map((c) => h('th', {}, c)),
              ),
            ),
            h(
              'tbody',
              {},
              items.map((d) =>
                h(
                  'tr',
                  { testid: 'deadletter-row', 'data-id': d.id },
                  h('td', {}, dateTime(d.at)),
                  h('td', {}, d.kind),
                  h('td', { testid: 'deadletter-key' }, d.key ?? '—'),
                  h('td', {}, d.reason),
                  h('td', { class: 'error' }, d.error),
                  h('td', { class: 'num' }, String(d.attempts)),
                  h(
                    'td',
                    { class: 'row-actions' },
                    h(
                      'button',
                      { type: 'button', testid: 'deadletter-inspect', onclick: () => this.inspect(d.id) },
                      'Inspect',
                    ),
                    h(
                      'button',
                      { type: 'button', testid: 'deadletter-replay', onclick: () => this.replay(d.id) },
                      'Replay',
                    ),
                    h(
                      'button',
                      { type: 'button', testid: 'deadletter-discard', onclick: () => this.discard(d.id) },
                      'Discard',
                    ),
                  ),
                ),
              ),
            ),
          ),
    );
  }

  async inspect(id) {
    fill(this.detail, h('p', { class: 'muted' }, 'loading…'));
    try {
      const d = await apiGet(`/api/v1/deadletters/${seg(id)}`);
      fill(
        this.detail,
        h('h3', {}, d.id),
        h(
          'p',
          {},
          `${d.kind}/${d.key ?? '?'} · shard ${d.partition} · offset ${d.offset} · ${count(d.bytes)} bytes`,
        ),
        h('p', { class: 'problem' }, `${d.reason}: ${d.error}`),
        h('h3', {}, 'Message'),
        d.message === null
          ? h('p', { class: 'problem' }, `does not decode: ${d.decodeError ?? 'unknown'}`)
          : h('pre', { class: 'json', testid: 'deadletter-message' }, json(d.message)),
      );
    } catch (e) {
      fill(this.detail, h('div', { class: 'problem' }, e.message));
    }
  }

  async run(what, request) {
    try {
      const answer = await request();
      const done =
        typeof answer?.replayed === 'number'
          ? `${answer.replayed} replayed`
          : typeof answer?.discarded === 'number'
            ? `${answer.discarded} discarded`
            : JSON.stringify(answer);
      this.showResult(`${what}: ${done}`, false);
    } catch (e) {
      this.showResult(`${what} refused (${e.status ?? 'error'}): ${e.message}`, true);
    }
    fill(this.detail);
    await this.load();
  }

  replay(id) {
    return this.run(`replay ${id}`, () => apiPost(`/api/v1/deadletters/${seg(id)}/replay`, {}));
  }

  replayAll() {
    const kind = this.kind.value.trim();
    return this.run(`replay all${kind ? ` of ${kind}` : ''}`, () =>
      apiPost(query('/api/v1/deadletters/replay', { kind }), {}),
    );
  }

  discard(id) {
    return this.run(`discard ${id}`, () => apiDelete(`/api/v1/deadletters/${seg(id)}`));
  }

  showResult(text, bad) {
    this.result.textContent = text;
    this.result.className = `action-result ${bad ? 'problem' : 'ok'}`;
  }
}
