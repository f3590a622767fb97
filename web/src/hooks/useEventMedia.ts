/**
 * An open event's clip and snapshot: fetched when the detail opens, again whenever a `media_ready`
 * frame names the event (`version`), and every `MEDIA_POLL_MS` while some may still come (a frame
 * can be missed across a reconnect). The state itself is the pure `eventMediaReducer`.
 */
import { useEffect, useReducer, useRef } from 'react';
import type { ApiClient } from '../api/client';
import { eventMediaReducer, initialEventMedia, shouldPollMedia, type EventMediaState } from '../state/media';
import type { EventItem } from '../types/protocol';

export const MEDIA_POLL_MS = 5_000;

export function useEventMedia(
  api: ApiClient,
  guard: <T>(call: Promise<T>) => Promise<T>,
  event: EventItem,
  version: number,
): EventMediaState {
  const [state, dispatch] = useReducer(eventMediaReducer, initialEventMedia);
  const [tick, bump] = useReducer((n: number) => n + 1, 0);
  const latest = useRef(0);

  useEffect(() => {
    const call = ++latest.current;
    guard(api.eventMedia(event.id)).then(
      (media) => call === latest.current && dispatch({ type: 'loaded', media }),
      (error: unknown) => call === latest.current && dispatch({ type: 'failed', error }),
    );
  }, [api, guard, event.id, version, tick]);

  const poll = shouldPollMedia(state, event.received_at, Date.now());
  useEffect(() => {
    if (!poll) return;
    const timer = setTimeout(bump, MEDIA_POLL_MS);
    return () => clearTimeout(timer);
  }, [poll, state, tick]);

  return state;
}
