import { describe, expect, it } from 'vitest';
import type { ClipView, EventMedia, MediaReady, SnapshotView } from '../types/protocol';
import {
  clipShown,
  eventMediaReducer,
  hasNoMedia,
  initialEventMedia,
  initialMediaSignals,
  MEDIA_EXPECTED_MS,
  MEDIA_SIGNALS_KEPT,
  mediaReadyReducer,
  shouldPollMedia,
  type EventMediaState,
} from './media';

const EVENT = '0190a6f0-0000-7000-8000-0000000000e1';

const snapshot = (url = '/api/snapshots/s1?sig=1'): SnapshotView => ({
  id: 's1',
  camera: 'pi-1',
  event_id: EVENT,
  taken_at: '2026-11-27T10:00:00.000Z',
  width: 320,
  height: 240,
  size_bytes: 9000,
  url,
});

const clip = (available: boolean, url: string | null = available ? '/api/clips/c1?sig=1' : null): ClipView => ({
  id: 'c1',
  camera: 'pi-1',
  event_ids: [EVENT],
  started_at: '2026-11-27T09:59:58.000Z',
  ended_at: '2026-11-27T10:00:02.000Z',
  duration_ms: 4000,
  trigger_offsets_ms: [2000],
  size_bytes: 120_000,
  sha256: 'ab'.repeat(32),
  codec: 'h264',
  width: 320,
  height: 240,
  available,
  url,
});

const loaded = (media: EventMedia | null, from: EventMediaState = initialEventMedia) => eventMediaReducer(from, { type: 'loaded', media });

describe('an event’s media', () => {
  it('a clip is none, uploading while announced, and ready once available with its link', () => {
    expect(clipShown(null)).toEqual({ state: 'none' });
    expect(clipShown(clip(false))).toMatchObject({ state: 'uploading' });
    expect(clipShown(clip(true))).toMatchObject({ state: 'ready', url: '/api/clips/c1?sig=1' });
    // Available but without a link (should not happen): not playable, so still waiting.
    expect(clipShown(clip(true, null))).toMatchObject({ state: 'uploading' });
  });

  it('shows the snapshot and the playable clip the cloud answers', () => {
    const s = loaded({ event_id: EVENT, snapshot: snapshot(), clip: clip(true) });
    expect(s.status).toBe('loaded');
    expect(s.snapshot?.url).toBe('/api/snapshots/s1?sig=1');
    expect(s.clip).toMatchObject({ state: 'ready', url: '/api/clips/c1?sig=1' });
    expect(hasNoMedia(s)).toBe(false);
  });

  it('no clip and no snapshot, or no media route at all (404), is "no video", not an error', () => {
    expect(hasNoMedia(loaded({ event_id: EVENT }))).toBe(true);
    expect(hasNoMedia(loaded({ event_id: EVENT, clip: null, snapshot: null }))).toBe(true);
    expect(hasNoMedia(loaded(null))).toBe(true);
    expect(hasNoMedia(initialEventMedia)).toBe(false);
  });

  it('an announced clip is uploading, then plays once a refresh finds it available', () => {
    const uploading = loaded({ event_id: EVENT, snapshot: snapshot(), clip: clip(false) });
    expect(uploading.clip.state).toBe('uploading');
    expect(loaded({ event_id: EVENT, snapshot: snapshot(), clip: clip(true) }, uploading).clip.state).toBe('ready');
  });

  it('a refresh keeps the links of media already shown, so a clip being watched is not reloaded', () => {
    const first = loaded({ event_id: EVENT, snapshot: snapshot(), clip: clip(true) });
    const again = loaded({ event_id: EVENT, snapshot: snapshot('/api/snapshots/s1?sig=2'), clip: clip(true, '/api/clips/c1?sig=2') }, first);
    expect(again.snapshot).toBe(first.snapshot);
    expect(again.clip).toBe(first.clip);
  });

  it('a failure shows only when nothing was loaded; a failed refresh keeps what is shown', () => {
    const failed = eventMediaReducer(initialEventMedia, { type: 'failed', error: new Error('down') });
    expect(failed.status).toBe('failed');
    const shown = loaded({ event_id: EVENT, snapshot: snapshot() });
    expect(eventMediaReducer(shown, { type: 'failed', error: new Error('down') })).toBe(shown);
    expect(loaded({ event_id: EVENT, snapshot: snapshot() }, failed)).toMatchObject({ status: 'loaded', error: null });
  });

  it('asks again while a clip uploads, or while a recent event lacks its media, and not for old complete ones', () => {
    const received = '2026-11-27T10:00:00.000Z';
    const t0 = Date.parse(received);
    expect(shouldPollMedia(initialEventMedia, received, t0)).toBe(false);
    expect(shouldPollMedia(loaded({ event_id: EVENT, clip: clip(false) }), received, t0 + 60 * 60_000)).toBe(true);
    expect(shouldPollMedia(loaded({ event_id: EVENT }), received, t0 + 1000)).toBe(true);
    expect(shouldPollMedia(loaded({ event_id: EVENT }), received, t0 + MEDIA_EXPECTED_MS + 1)).toBe(false);
    expect(shouldPollMedia(loaded({ event_id: EVENT, snapshot: snapshot(), clip: clip(true) }), received, t0 + 1000)).toBe(false);
  });
});

describe('media_ready signals', () => {
  const ready = (kind: string, ids: string[]): MediaReady => ({ kind, id: 'm', camera: 'pi-1', event_ids: ids });

  it('bump the version of every event they name, and the cameras for a snapshot', () => {
    let s = mediaReadyReducer(initialMediaSignals, ready('snapshot', [EVENT]));
    expect(s.events.get(EVENT)).toBe(1);
    expect(s.cameras).toBe(1);
    s = mediaReadyReducer(s, ready('clip', [EVENT, 'other']));
    expect(s.events.get(EVENT)).toBe(2);
    expect(s.events.get('other')).toBe(1);
    expect(s.cameras).toBe(1);
  });

  it('an unknown kind still names its events, and the state is never changed in place', () => {
    const before = initialMediaSignals;
    const after = mediaReadyReducer(before, ready('thumbnail', [EVENT]));
    expect(after.events.get(EVENT)).toBe(1);
    expect(before.events.size).toBe(0);
  });

  it('remember a bounded number of events, forgetting the oldest', () => {
    let s = initialMediaSignals;
    for (let i = 0; i < MEDIA_SIGNALS_KEPT + 10; i++) s = mediaReadyReducer(s, ready('clip', [`e${i}`]));
    expect(s.events.size).toBe(MEDIA_SIGNALS_KEPT);
    expect(s.events.has('e0')).toBe(false);
    expect(s.events.has(`e${MEDIA_SIGNALS_KEPT + 9}`)).toBe(true);
  });
});
