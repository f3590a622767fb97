/**
 * Devices as the dashboard shows them: the listing from `GET /api/devices`, kept current by
 * `device_status` frames, and the warnings each one deserves (offline, events missing or lost, clock
 * not synchronised, API unreachable, a queue building up, something refused in its name).
 */
import type { DeviceView } from '../types/protocol';

export type DevicesState = DeviceView[];

/** Replaces the device with the same id, or adds it; sorted by id. */
export function upsertDevice(devices: DevicesState, view: DeviceView): DevicesState {
  const rest = devices.filter((d) => d.id !== view.id);
  return [...rest, view].sort((a, b) => a.id.localeCompare(b.id));
}

export type Warning =
  | { kind: 'offline' }
  | { kind: 'missing'; count: number }
  | { kind: 'lost'; count: number }
  | { kind: 'clock' }
  | { kind: 'api_unreachable' }
  | { kind: 'queue'; depth: number }
  | { kind: 'security'; refusedAcks: number; invalidMessages: number; refusedLiveLogins: number; lastAt: string | null };

/** A queue deeper than this means the device is not getting its events out. */
export const QUEUE_WARNING = 100;

export function deviceWarnings(d: DeviceView): Warning[] {
  const w: Warning[] = [];
  if (d.state !== 'online') w.push({ kind: 'offline' });
  if ((d.missing_events ?? 0) > 0) w.push({ kind: 'missing', count: d.missing_events ?? 0 });
  if ((d.lost_events ?? 0) > 0) w.push({ kind: 'lost', count: d.lost_events ?? 0 });
  if (!d.clock_synced) w.push({ kind: 'clock' });
  if (d.api_reachable === false) w.push({ kind: 'api_unreachable' });
  if (d.queue_depth > QUEUE_WARNING) w.push({ kind: 'queue', depth: d.queue_depth });
  const s = d.security;
  const refusedAcks = s?.refused_acks ?? 0;
  const invalidMessages = s?.invalid_messages ?? 0;
  const refusedLiveLogins = s?.refused_live_logins ?? 0;
  if (refusedAcks + invalidMessages + refusedLiveLogins > 0) {
    w.push({ kind: 'security', refusedAcks, invalidMessages, refusedLiveLogins, lastAt: s?.last_at ?? null });
  }
  return w;
}
