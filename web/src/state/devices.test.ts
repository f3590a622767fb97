import { describe, expect, it } from 'vitest';
import type { DeviceView } from '../types/protocol';
import { deviceWarnings, upsertDevice } from './devices';
import { appendPage, emptyFilters, emptyHistory, filtersToQuery, localToRfc3339, prependLive, replaceItem } from './history';

const device = (id: string, over: Partial<DeviceView> = {}): DeviceView => ({
  id,
  state: 'online',
  last_seen: '2026-11-27T10:00:00.000Z',
  queue_depth: 0,
  uptime_s: 5,
  clock_synced: true,
  acked_seq: 3,
  missing_events: 0,
  lost_events: 0,
  api_reachable: true,
  clock_offset_ms: 2,
  ...over,
});

describe('devices', () => {
  it('a status frame replaces its device and a new device is added in id order', () => {
    let s = upsertDevice([], device('pi-2'));
    s = upsertDevice(s, device('pi-1'));
    s = upsertDevice(s, device('pi-2', { state: 'offline' }));
    expect(s.map((d) => [d.id, d.state])).toEqual([
      ['pi-1', 'online'],
      ['pi-2', 'offline'],
    ]);
  });

  it('a healthy device has no warning', () => {
    expect(deviceWarnings(device('pi-1'))).toEqual([]);
  });

  it('gaps, lost events, an unsynchronised clock and a long queue are warnings', () => {
    const w = deviceWarnings(
      device('pi-1', { state: 'offline', missing_events: 2, lost_events: 7, clock_synced: false, api_reachable: false, queue_depth: 500 }),
    );
    expect(w.map((x) => x.kind)).toEqual(['offline', 'missing', 'lost', 'clock', 'api_unreachable', 'queue']);
  });

  it('anything refused in the device’s name is a security warning, with every count', () => {
    expect(deviceWarnings(device('pi-1', { security: { refused_acks: 0, invalid_messages: 0, refused_live_logins: 0, last_at: null } }))).toEqual([]);
    const w = deviceWarnings(device('pi-1', { security: { refused_acks: 1, invalid_messages: 4, last_at: '2026-12-04T10:00:00.000Z' } }));
    expect(w).toEqual([
      { kind: 'security', refusedAcks: 1, invalidMessages: 4, refusedLiveLogins: 0, lastAt: '2026-12-04T10:00:00.000Z' },
    ]);
  });

  it('an unknown API reachability (no API configured) is no warning', () => {
    expect(deviceWarnings(device('pi-1', { api_reachable: null }))).toEqual([]);
  });
});

describe('history', () => {
  const item = (id: string) => ({
    id,
    device: 'pi-1',
    seq: 1,
    sensor: 's',
    kind: 'motion',
    occurred_at: 't',
    corrected_at: 't',
    received_at: 't',
  });

  it('filters become a query with only what was set', () => {
    expect(filtersToQuery({ ...emptyFilters, device: 'pi-1' })).toEqual({
      device: 'pi-1',
      kind: undefined,
      since: undefined,
      until: undefined,
      acknowledged: undefined,
      limit: 50,
    });
    expect(filtersToQuery({ ...emptyFilters, unacknowledged: true }).acknowledged).toBe(false);
  });

  it('a time range is sent in UTC, and a backwards one is refused', () => {
    expect(localToRfc3339('2026-11-27T10:30')).toMatch(/^2026-11-2\dT\d\d:30:00\.000Z$/);
    expect(() => filtersToQuery({ ...emptyFilters, from: '2026-11-27T11:00', to: '2026-11-27T10:00' })).toThrow(
      'history.rangeBackwards',
    );
  });

  it('pages append in order, a repeated id once, and the last page has no cursor', () => {
    let s = appendPage(emptyHistory, { items: [item('a'), item('b')], next_cursor: 'c1' });
    expect(s.done).toBe(false);
    s = appendPage(s, { items: [item('b'), item('c')], next_cursor: null });
    expect(s.items.map((e) => e.id)).toEqual(['a', 'b', 'c']);
    expect(s.done).toBe(true);
  });

  it('a live event goes on top only when it matches the filters and is the newest', () => {
    const at = (id: string, t: string, device = 'pi-1') => ({ ...item(id), device, corrected_at: t });
    const s = appendPage(emptyHistory, { items: [at('a', '2026-11-27T10:00:00Z')], next_cursor: null });
    expect(prependLive(s, at('b', '2026-11-27T10:01:00Z'), emptyFilters).items.map((e) => e.id)).toEqual(['b', 'a']);
    expect(prependLive(s, at('b', '2026-11-27T10:01:00Z', 'pi-2'), { ...emptyFilters, device: 'pi-1' })).toBe(s);
    expect(prependLive(s, at('old', '2026-11-27T09:00:00Z'), emptyFilters)).toBe(s);
    expect(prependLive(s, at('a', '2026-11-27T10:05:00Z'), emptyFilters)).toBe(s);
  });

  it('an acknowledged copy replaces the listed event in place', () => {
    const s = appendPage(emptyHistory, { items: [item('a')], next_cursor: null });
    const acked = { ...item('a'), acknowledged_by: 'admin' };
    expect(replaceItem(s, acked).items[0]).toBe(acked);
    expect(replaceItem(s, item('zz'))).toBe(s);
  });
});
