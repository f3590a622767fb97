/**
 * Media as the console shows it, pure: what an event's detail shows of its clip and snapshot
 * (`GET /api/events/{id}/media`), when to ask again, and the `media_ready` frames that say a clip or
 * snapshot has just arrived in the cloud (a version per event, which the open detail watches).
 */
import type { ClipView, EventMedia, MediaReady, SnapshotView } from '../types/protocol';

/** The clip of an event: none known, announced but still uploading, or playable at `url`. */
export type ClipShown = { state: 'none' } | { state: 'uploading'; clip: ClipView } | { state: 'ready'; clip: ClipView; url: string };

export function clipShown(clip: ClipView | null | undefined): ClipShown {
  if (!clip) return { state: 'none' };
  if (clip.available && clip.url) return { state: 'ready', clip, url: clip.url };
  return { state: 'uploading', clip };
}

/** The event detail's media: loading (first answer not there yet), loaded, or failed. */
export interface EventMediaState {
  status: 'loading' | 'loaded' | 'failed';
  snapshot: SnapshotView | null;
  clip: ClipShown;
  /** The last failure; shown only while nothing was loaded (a failed refresh keeps what is shown). */
  error: unknown;
}

export const initialEventMedia: EventMediaState = { status: 'loading', snapshot: null, clip: { state: 'none' }, error: null };

export type EventMediaAction = { type: 'loaded'; media: EventMedia | null } | { type: 'failed'; error: unknown };

export function eventMediaReducer(state: EventMediaState, action: EventMediaAction): EventMediaState {
  switch (action.type) {
    case 'loaded': {
      const snapshot = action.media?.snapshot ?? null;
      const clip = clipShown(action.media?.clip);
      return {
        status: 'loaded',
        // A refresh signs the links anew: the same media keeps its link, so a clip being watched
        // is not reloaded from the start.
        snapshot: snapshot && state.snapshot?.id === snapshot.id ? state.snapshot : snapshot,
        clip: clip.state === 'ready' && state.clip.state === 'ready' && state.clip.clip.id === clip.clip.id ? state.clip : clip,
        error: null,
      };
    }
    case 'failed':
      return state.status === 'loaded' ? state : { ...state, status: 'failed', error: action.error };
  }
}

/** Nothing to show: no snapshot and no clip, not even announced. */
export function hasNoMedia(s: EventMediaState): boolean {
  return s.status === 'loaded' && s.snapshot === null && s.clip.state === 'none';
}

/** How long after an event its media may still come (a clip is recorded, then uploaded). */
export const MEDIA_EXPECTED_MS = 3 * 60_000;

/**
 * Whether the open detail should ask again even without a `media_ready` frame (one may be missed
 * across a reconnect): while a clip is announced but not uploaded, and while a recent event has
 * no snapshot or no clip yet.
 */
export function shouldPollMedia(s: EventMediaState, eventReceivedAt: string, now: number): boolean {
  if (s.status === 'loading') return false;
  if (s.clip.state === 'uploading') return true;
  const complete = s.snapshot !== null && s.clip.state === 'ready';
  return !complete && now - Date.parse(eventReceivedAt) < MEDIA_EXPECTED_MS;
}

/** `media_ready` frames as versions: per event, and one for the cameras (a new last snapshot). */
export interface MediaSignals {
  events: ReadonlyMap<string, number>;
  cameras: number;
}

export const initialMediaSignals: MediaSignals = { events: new Map(), cameras: 0 };

/** Events remembered (the oldest are forgotten: their detail is long closed). */
export const MEDIA_SIGNALS_KEPT = 500;

export function mediaReadyReducer(state: MediaSignals, ready: MediaReady): MediaSignals {
  const events = new Map(state.events);
  for (const id of ready.event_ids) {
    const version = (events.get(id) ?? 0) + 1;
    events.delete(id);
    events.set(id, version);
  }
  for (const id of events.keys()) {
    if (events.size <= MEDIA_SIGNALS_KEPT) break;
    events.delete(id);
  }
  return { events, cameras: ready.kind === 'snapshot' ? state.cameras + 1 : state.cameras };
}
