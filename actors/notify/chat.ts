/**
 * The chat webhook body: Slack's incoming-webhook shape (`text` plus `blocks`), which Mattermost,
 * Rocket.Chat and most chat tools accept too. `text` is the one-line summary (the notification text
 * and the fallback where blocks are not shown), in Alertmanager's Slack title style:
 * `[FIRING:2] cpu-high payments`. Blocks: a header with that title, then one section per alert
 * (status, severity, alert name, host or service, its summary or description, its labels), then a
 * context line when alerts were left out.
 *
 * Slack's limits are kept so a big group is never refused: header text ≤ 150 characters, section
 * text ≤ 3000, ≤ 50 blocks (alerts beyond that are counted in the last line, like `max_alerts`).
 */
import type { AlertEvent, Labels } from '../rule/types.ts';
import { type GroupNotice, sortAlerts, truncate } from './alertmanager.ts';

export interface ChatText {
  readonly type: 'plain_text' | 'mrkdwn';
  readonly text: string;
}

export type ChatBlock =
  | { readonly type: 'header'; readonly text: ChatText }
  | { readonly type: 'section'; readonly text: ChatText }
  | { readonly type: 'context'; readonly elements: readonly ChatText[] };

export interface ChatMessage {
  readonly text: string;
  readonly blocks: readonly ChatBlock[];
}

const HEADER_MAX = 150;
const SECTION_MAX = 3000;
/** Header + sections + the "more" context line. */
const MAX_SECTIONS = 48;

const clip = (s: string, max: number): string => (s.length <= max ? s : `${s.slice(0, max - 1)}…`);

/** Slack's mrkdwn needs &, < and > escaped (they start links and entities). */
const escapeMrkdwn = (s: string): string =>
  s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

const firingCount = (alerts: readonly AlertEvent[]) => alerts.filter((a) => a.status === 'firing').length;

/** `[FIRING:2] cpu-high payments` / `[RESOLVED] cpu-high payments`. */
export const chatTitle = (alerts: readonly AlertEvent[], groupLabels: Labels): string => {
  const firing = firingCount(alerts);
  const status = firing > 0 ? `FIRING:${firing}` : 'RESOLVED';
  const names = Object.keys(groupLabels).sort();
  const values = names.length > 0 ? names.map((n) => groupLabels[n]) : [alerts[0]?.labels.alertname ?? ''];
  return `[${status}] ${values.join(' ')}`.trim();
};

const labelList = (labels: Labels): string =>
  Object.keys(labels)
    .sort()
    .map((k) => `${k}=${labels[k]}`)
    .join(', ');

const section = (a: AlertEvent): ChatBlock => {
  const icon = a.status === 'firing' ? ':red_circle:' : ':large_green_circle:';
  const where = a.host ?? a.labels.host ?? a.service ?? a.labels.service;
  const name = a.labels.alertname ?? a.rule;
  const lines = [
    `${icon} *${a.status.toUpperCase()}* · severity ${a.severity} · *${escapeMrkdwn(name)}*${where ? ` on ${escapeMrkdwn(where)}` : ''}`,
  ];
  const about = a.annotations.summary ?? a.annotations.description;
  if (about) lines.push(escapeMrkdwn(about));
  lines.push(`\`${escapeMrkdwn(labelList(a.labels))}\``);
  return { type: 'section', text: { type: 'mrkdwn', text: clip(lines.join('\n'), SECTION_MAX) } };
};

export const chatMessage = (n: GroupNotice): ChatMessage => {
  const sorted = sortAlerts(n.alerts);
  const limit = n.maxAlerts > 0 ? Math.min(n.maxAlerts, MAX_SECTIONS) : MAX_SECTIONS;
  const { kept, truncated } = truncate(sorted, limit);
  const title = chatTitle(sorted, n.groupLabels);
  const blocks: ChatBlock[] = [
    { type: 'header', text: { type: 'plain_text', text: clip(title, HEADER_MAX) } },
    ...kept.map(section),
  ];
  if (truncated > 0)
    blocks.push({
      type: 'context',
      elements: [{ type: 'mrkdwn', text: `…and ${truncated} more alert${truncated === 1 ? '' : 's'}` }],
    });
  return { text: title, blocks };
};

/** The request body of a chat notification. */
export const chatBody = (n: GroupNotice): string => JSON.stringify(chatMessage(n));
