/**
 * Everything a signed-in console holds: the API client with the session's token, the devices, the
 * alerts, the `media_ready` signals, the live connection and its status. Wires `LiveStream` to the
 * reducers. Any 401 ends the
 * session (`onSessionEnd`): renewing it before expiry is the App's job, so a 401 means it is over.
 */
import { useCallback, useEffect, useMemo, useReducer, useRef, useState } from 'react';
import { ApiClient } from '../api/client';
import { UnauthorizedError } from '../api/errors';
import type { Session } from '../auth/session';
import { browserSocket, LiveStream, type LiveStatus } from '../live/stream';
import { alertsReducer, initialAlerts, type AlertsAction, type AlertsState } from '../state/alerts';
import { upsertDevice, type DevicesState } from '../state/devices';
import { initialMediaSignals, mediaReadyReducer, type MediaSignals } from '../state/media';
import type { EventItem } from '../types/protocol';

/** Pages read at most in one catch-up (1,000 events each); the rest shows in the history. */
const CATCH_UP_PAGES = 20;
const RECENT_KEPT = 50;
/** Acknowledged copies kept for the lists (the oldest are forgotten: their lists reload them). */
const ACKS_KEPT = 1000;

export interface ConsoleState {
  api: ApiClient;
  devices: DevicesState;
  devicesError: unknown;
  alerts: AlertsState;
  dispatchAlerts: (action: AlertsAction) => void;
  live: LiveStatus;
  /** The latest events from the stream and its catch-ups, oldest first (at most `RECENT_KEPT`). */
  recent: readonly EventItem[];
  /** Acknowledged copies of events, by id: lists show these over what they loaded. */
  acks: ReadonlyMap<string, EventItem>;
  /** `media_ready` frames: a version per event (the open detail refetches its media) and cameras. */
  media: MediaSignals;
  acknowledge: (id: string) => Promise<void>;
  /** Runs an API call; a 401 ends the session, other errors are returned to the caller. */
  guard: <T>(call: Promise<T>) => Promise<T>;
  /** Ends the session on the cloud (best effort: the console forgets it either way). */
  logout: () => Promise<void>;
}

/** How long a timing mark is kept: long enough to be read, never piling up over days of alerts. */
const MARK_KEPT_MS = 60_000;

/** A User Timing mark (`vigie-ws:{id}`, `vigie-alert:{id}`), cleared a minute later. */
export function timingMark(name: string): void {
  performance.mark(name);
  setTimeout(() => performance.clearMarks(name), MARK_KEPT_MS);
}

export function streamUrl(location: Pick<Location, 'protocol' | 'host'>, token: string): string {
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${scheme}//${location.host}/api/stream?access_token=${encodeURIComponent(token)}`;
}

export function useConsole(session: Session, onSessionEnd: (reason: 'unauthorized') => void): ConsoleState {
  // One client per login; a refresh only changes its token (the live stream keeps going).
  // eslint-disable-next-line react-hooks/exhaustive-deps
  const api = useMemo(() => new ApiClient(undefined, '', session.token), [session.key]);
  api.setToken(session.token);
  const token = useRef(session.token);
  token.current = session.token;
  const [devices, setDevices] = useState<DevicesState>([]);
  const [devicesError, setDevicesError] = useState<unknown>(null);
  const [alerts, dispatchAlerts] = useReducer(alertsReducer, initialAlerts);
  const [media, dispatchMedia] = useReducer(mediaReadyReducer, initialMediaSignals);
  const [live, setLive] = useState<LiveStatus>({ state: 'connecting', attempt: 0 });
  const [acks, setAcks] = useState<ReadonlyMap<string, EventItem>>(new Map());
  const [recent, setRecent] = useState<readonly EventItem[]>([]);
  const arrivals = useRef(0);
  arrivals.current = alerts.arrivals;
  const endRef = useRef(onSessionEnd);
  endRef.current = onSessionEnd;

  const guard = useCallback(<T,>(call: Promise<T>): Promise<T> => {
    return call.catch((e: unknown) => {
      if (e instanceof UnauthorizedError) {
        console.warn('vigie: the cloud refused the session', e.message);
        endRef.current('unauthorized');
      }
      throw e;
    });
  }, []);

  const noteAck = useCallback((item: EventItem) => {
    setAcks((m) => {
      const next = new Map(m).set(item.id, item);
      for (const id of next.keys()) {
        if (next.size <= ACKS_KEPT) break;
        next.delete(id);
      }
      return next;
    });
    dispatchAlerts({ type: 'acknowledged', event: item });
  }, []);

  const refresh = useCallback(async () => {
    try {
      setDevices(await guard(api.devices()));
      setDevicesError(null);
    } catch (e) {
      setDevicesError(e);
    }
    const startedAt = arrivals.current;
    try {
      const page = await guard(api.listEvents({ acknowledged: false, limit: 1000 }));
      dispatchAlerts({ type: 'unacked', items: page.items, more: Boolean(page.next_cursor), startedAt });
    } catch {
      // the live stream's retry brings the next refresh
    }
  }, [api, guard]);

  useEffect(() => {
    const stream = new LiveStream({
      url: () => streamUrl(window.location, token.current),
      connect: browserSocket,
      cloudTime: () => guard(api.cloudTime()),
      catchUp: async (since) => {
        const items: EventItem[] = [];
        let cursor: string | undefined;
        for (let i = 0; i < CATCH_UP_PAGES; i++) {
          const page = await guard(api.listEvents({ received_since: since, limit: 1000, cursor }));
          items.push(...page.items);
          if (!page.next_cursor) break;
          cursor = page.next_cursor;
        }
        return items;
      },
      onFrame: (frame, source) => {
        switch (frame.type) {
          case 'event':
            if (source === 'live') timingMark(`vigie-ws:${frame.data.id}`);
            dispatchAlerts({ type: 'event', event: frame.data });
            setRecent((r) => [...r, frame.data].slice(-RECENT_KEPT));
            break;
          case 'acknowledged':
            noteAck(frame.data);
            break;
          case 'device_status':
            setDevices((d) => upsertDevice(d, frame.data));
            break;
          case 'gap':
            dispatchAlerts({ type: 'gap', gap: frame.data });
            void api.devices().then(setDevices, () => {});
            break;
          case 'media_ready':
            dispatchMedia(frame.data);
            break;
        }
      },
      onStatus: setLive,
      onSynced: () => void refresh(),
      probe: async () => {
        await api.cloudTime();
      },
      onFatal: () => endRef.current('unauthorized'),
    });
    void refresh();
    void stream.start();
    return () => stream.stop();
  }, [api, guard, noteAck, refresh]);

  const acknowledge = useCallback(
    async (id: string) => {
      noteAck(await guard(api.acknowledge(id)));
    },
    [api, guard, noteAck],
  );

  const logout = useCallback(async () => {
    await api.logout().catch(() => {});
  }, [api]);

  return { api, devices, devicesError, alerts, dispatchAlerts, live, recent, acks, media, acknowledge, guard, logout };
}
