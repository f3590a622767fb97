import { describe, expect, it } from 'vitest';
import { makeI18n } from '../i18n';
import { deviceWarnings } from '../state/devices';
import type { DeviceView } from '../types/protocol';
import { warningText } from './warnings';

const healthy: DeviceView = {
  id: 'pi-1',
  state: 'online',
  last_seen: '2026-12-04T10:00:00.000Z',
  queue_depth: 0,
  uptime_s: 5,
  clock_synced: true,
  acked_seq: 3,
};

describe('device warnings as text', () => {
  it('the attack telemetry names only the counts above zero, with the time of the last one', () => {
    const en = makeI18n('en', () => {});
    const [w] = deviceWarnings({
      ...healthy,
      security: { refused_acks: 2, invalid_messages: 0, refused_live_logins: 5, last_at: '2026-12-04T10:00:00.000Z' },
    });
    const text = warningText(w!, en);
    expect(text).toContain('2 forged acks');
    expect(text).toContain('5 live-view logins');
    expect(text).not.toContain('invalid messages');
    expect(text).toContain(en.time('2026-12-04T10:00:00.000Z'));
  });

  it('the same warning in French', () => {
    const fr = makeI18n('fr', () => {});
    const [w] = deviceWarnings({ ...healthy, security: { invalid_messages: 1, last_at: null } });
    expect(warningText(w!, fr)).toContain('1 messages invalides');
  });
});
