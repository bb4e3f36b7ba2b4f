/** The chat (Slack-compatible) body: title, one section per alert, Slack's limits kept. */
import { describe, expect, it } from 'vitest';
import type { AlertEvent } from '../rule/types.ts';
import { chatBody, chatMessage, chatTitle } from './chat.ts';

const alert = (fp: string, status: 'firing' | 'resolved', host: string): AlertEvent => ({
  type: '@argus.alert',
  fingerprint: fp,
  seq: 1,
  rule: 'cpu-high',
  status,
  severity: 5,
  labels: { alertname: 'cpu-high', host, service: 'payments' },
  annotations: { summary: `CPU <busy> & hot on ${host}` },
  value: 99,
  startsAt: 0,
  at: 0,
  host,
});

describe('chatMessage', () => {
  it('is text plus a header and a section per alert', () => {
    const body = chatBody({
      receiver: 'pay',
      groupKey: 'k',
      groupLabels: { alertname: 'cpu-high', service: 'payments' },
      alerts: [alert('2', 'resolved', 'p-2'), alert('1', 'firing', 'p-1')],
      maxAlerts: 0,
    });
    expect(JSON.parse(body)).toEqual({
      text: '[FIRING:1] cpu-high payments',
      blocks: [
        { type: 'header', text: { type: 'plain_text', text: '[FIRING:1] cpu-high payments' } },
        {
          type: 'section',
          text: {
            type: 'mrkdwn',
            text: ':red_circle: *FIRING* · severity 5 · *cpu-high* on p-1\nCPU &lt;busy&gt; &amp; hot on p-1\n`alertname=cpu-high, host=p-1, service=payments`',
          },
        },
        {
          type: 'section',
          text: {
            type: 'mrkdwn',
            text: ':large_green_circle: *RESOLVED* · severity 5 · *cpu-high* on p-2\nCPU &lt;busy&gt; &amp; hot on p-2\n`alertname=cpu-high, host=p-2, service=payments`',
          },
        },
      ],
    });
  });

  it.each([
    [[alert('1', 'resolved', 'a')], {}, '[RESOLVED] cpu-high'],
    [[alert('1', 'firing', 'a'), alert('2', 'firing', 'b')], { service: 'payments' }, '[FIRING:2] payments'],
  ])('title %#', (alerts, groupLabels, title) => {
    expect(chatTitle(alerts, groupLabels)).toBe(title);
  });

  it('keeps within 50 blocks and counts the alerts left out', () => {
    const many = Array.from({ length: 60 }, (_, i) =>
      alert(String(i).padStart(2, '0'), 'firing', `h-${String(i).padStart(2, '0')}`),
    );
    const m = chatMessage({ receiver: 'r', groupKey: 'k', groupLabels: {}, alerts: many, maxAlerts: 0 });
    expect(m.blocks).toHaveLength(50);
    expect(m.blocks[49]).toEqual({
      type: 'context',
      elements: [{ type: 'mrkdwn', text: '…and 12 more alerts' }],
    });
    const few = chatMessage({ receiver: 'r', groupKey: 'k', groupLabels: {}, alerts: many, maxAlerts: 3 });
    expect(few.blocks).toHaveLength(5);
  });
});
