import { describe, expect, it } from 'vitest';
import type { EventItem, GapRecord } from '../types/protocol';
import { alertsReducer, initialAlerts, SEEN_LIMIT, TOAST_LIMIT, unackedLabel, type AlertsAction, type AlertsState } from './alerts';

function ev(id: string, second: number, ack = false): EventItem {
  const t = `2026-11-27T10:00:${String(second).padStart(2, '0')}.000Z`;
  return {
    id,
    device: 'pi-1',
    seq: second,
    sensor: 'mat-1',
    kind: 'motion',
    occurred_at: t,
    corrected_at: t,
    received_at: t,
    acknowledged_at: ack ? t : null,
    acknowledged_by: ack ? 'admin' : null,
  };
}

const run = (actions: AlertsAction[], from: AlertsState = initialAlerts) => actions.reduce(alertsReducer, from);

describe('alertsReducer', () => {
  it('a new event is an alert: counted, toasted, announced', () => {
    const s = run([{ type: 'event', event: ev('a', 1) }]);
    expect(unackedLabel(s)).toBe('1');
    expect(s.toasts.map((t) => t.key)).toEqual(['a']);
    expect(s.alertCount).toBe(1);
  });

  it('the same event from the socket and from a catch-up counts once', () => {
    const s = run([
      { type: 'event', event: ev('a', 1) },
      { type: 'event', event: ev('b', 2) },
      { type: 'event', event: ev('a', 1) },
      { type: 'event', event: ev('b', 2) },
    ]);
    expect(s.unacked.map((u) => u.event.id)).toEqual(['b', 'a']);
    expect(s.alertCount).toBe(2);
  });

  it('an acknowledgement takes the event off the counter and its toast off the screen', () => {
    const s = run([
      { type: 'event', event: ev('a', 1) },
      { type: 'event', event: ev('b', 2) },
      { type: 'acknowledged', event: ev('a', 1, true) },
    ]);
    expect(unackedLabel(s)).toBe('1');
    expect(s.toasts.map((t) => t.key)).toEqual(['b']);
  });

  it('an acknowledgement that arrives before its event keeps the event from alerting later', () => {
    const s = run([
      { type: 'acknowledged', event: ev('a', 1, true) },
      { type: 'event', event: ev('a', 1) },
    ]);
    expect(s.unacked).toHaveLength(0);
    expect(s.alertCount).toBe(0);
  });

  it('a caught-up event that was acknowledged elsewhere meanwhile is no alert', () => {
    const s = run([{ type: 'event', event: ev('a', 1, true) }]);
    expect(s.unacked).toHaveLength(0);
    expect(s.toasts).toHaveLength(0);
  });

  it('the unacknowledged listing replaces what was held, but keeps events that arrived after it was asked', () => {
    let s = run([
      { type: 'event', event: ev('old-acked-elsewhere', 1) },
      { type: 'event', event: ev('still-open', 2) },
    ]);
    const startedAt = s.arrivals;
    s = run([{ type: 'event', event: ev('just-now', 9) }], s);
    s = run([{ type: 'unacked', items: [ev('still-open', 2), ev('from-before', 0)], more: false, startedAt }], s);
    expect(s.unacked.map((u) => u.event.id)).toEqual(['just-now', 'still-open', 'from-before']);
    expect(s.toasts.map((t) => t.key)).not.toContain('old-acked-elsewhere');
  });

  it('a listing with more pages shows N+', () => {
    const s = run([{ type: 'unacked', items: [ev('a', 1)], more: true, startedAt: 0 }]);
    expect(unackedLabel(s)).toBe('1+');
    expect(s.alertCount).toBe(0);
  });

  it('keeps at most a few toasts, newest first, and forgets the oldest ids past its bound', () => {
    let s = initialAlerts;
    for (let i = 0; i < 10; i++) s = alertsReducer(s, { type: 'event', event: ev(`e${i}`, i) });
    expect(s.toasts).toHaveLength(TOAST_LIMIT);
    expect(s.toasts[0]!.key).toBe('e9');
    s = { ...s, seen: Array.from({ length: SEEN_LIMIT }, (_, i) => `x${i}`) };
    s = alertsReducer(s, { type: 'event', event: ev('new', 30) });
    expect(s.seen).toHaveLength(SEEN_LIMIT);
    expect(s.seen.at(-1)).toBe('new');
  });

  it('a gap is an alert of its own, once per record', () => {
    const gap: GapRecord = {
      schema_version: 1,
      device: 'pi-2',
      first_seq: 4,
      last_seq: 9,
      reason: 'max_events',
      oldest_at: '2026-11-27T09:00:00.000Z',
      newest_at: '2026-11-27T09:10:00.000Z',
      dropped_at: '2026-11-27T09:20:00.000Z',
    };
    const s = run([
      { type: 'gap', gap },
      { type: 'gap', gap },
    ]);
    expect(s.toasts.map((t) => t.key)).toEqual(['gap:pi-2:4:9']);
    expect(s.alertCount).toBe(1);
    expect(s.unacked).toHaveLength(0);
  });

  it('dismissing a toast keeps the alert counted; reset forgets everything', () => {
    let s = run([{ type: 'event', event: ev('a', 1) }, { type: 'dismiss', key: 'a' }]);
    expect(s.toasts).toHaveLength(0);
    expect(unackedLabel(s)).toBe('1');
    s = alertsReducer(s, { type: 'reset' });
    expect(s).toEqual(initialAlerts);
  });
});
