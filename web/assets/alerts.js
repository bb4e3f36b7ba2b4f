/** Firing alerts (`/api/v1/alerts`), most severe first, with filters; refreshed every 5 s while shown. */
import { apiGet, query } from './api.js';
import { fill, h } from './dom.js';
import { dateTime, labels, metric, SEVERITY_NAMES } from './format.js';
import { partialBanner } from './partial.js';

const REFRESH_MS = 5000;

export class AlertsView {
  constructor() {
    this.timer = 0;
    this.seq = 0;
    this.severity = h(
      'select',
      { testid: 'alerts-severity', 'aria-label': 'severity', onchange: () => this.load() },
      h('option', { value: '' }, 'any severity'),
      [1, 2, 3, 4, 5].map((s) => h('option', { value: String(s) }, `${s} ${SEVERITY_NAMES[s]}`)),
    );
    this.rule = h('input', { testid: 'alerts-rule', placeholder: 'rule', 'aria-label': 'rule' });
    this.host = h('input', { testid: 'alerts-host', placeholder: 'host', 'aria-label': 'host' });
    this.total = h('span', { class: 'muted', testid: 'alerts-total' });
    this.body = h('div', { testid: 'alerts-body' });
    this.el = h(
      'section',
      { class: 'view', testid: 'view-alerts' },
      h('h2', {}, 'Firing alerts'),
      h(
        'form',
        {
          class: 'toolbar',
          onsubmit: (ev) => {
            ev.preventDefault();
            this.load();
          },
        },
        this.severity,
        this.rule,
        this.host,
        h('button', { type: 'submit', testid: 'alerts-apply' }, 'Apply'),
        this.total,
      ),
      this.body,
    );
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
    const seq = ++this.seq;
    let answer;
    try {
      answer = await apiGet(
        query('/api/v1/alerts', {
          severity: this.severity.value,
          rule: this.rule.value.trim(),
          host: this.host.value.trim(),
        }),
      );
    } catch (e) {
      if (seq === this.seq)
        fill(this.body, h('div', { class: 'problem', testid: 'alerts-error' }, e.message));
      return;
    }
    if (seq !== this.seq) return;
    const items = answer.items ?? [];
    this.total.textContent = `${items.length} firing`;
    fill(
      this.body,
      partialBanner(answer),
      items.length === 0
        ? h('p', { class: 'muted', testid: 'alerts-empty' }, 'nothing is firing')
        : h(
            'table',
            { testid: 'alerts-table' },
            h(
              'thead',
              {},
              h(
                'tr',
                {},
                ['severity', 'rule', 'labels', 'summary', 'value', 'since'].map((c) => h('th', {}, c)),
              ),
            ),
            h(
              'tbody',
              {},
              items.map((a) =>
                h(
                  'tr',
                  { testid: 'alert-row', class: `sev-${a.severity}`, 'data-fingerprint': a.fingerprint },
                  h('td', { testid: 'alert-severity' }, `${a.severity} ${SEVERITY_NAMES[a.severity] ?? ''}`),
                  h('td', { testid: 'alert-rule' }, a.rule),
                  h('td', { class: 'labels' }, labels(a.labels)),
                  h('td', {}, a.annotations?.summary ?? a.annotations?.description ?? ''),
                  h('td', { class: 'num', testid: 'alert-value' }, metric(a.value)),
                  h('td', {}, dateTime(a.since)),
                ),
              ),
            ),
          ),
    );
  }
}
