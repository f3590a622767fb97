/**
 * Alerts: the unacknowledged events, the toasts on screen and the gap alerts, as a pure reducer.
 * Events reach it from the socket, from a catch-up after a reconnect and from the unacknowledged
 * listing; each id counts once whatever path brought it, so the counter is never inflated by a
 * catch-up that overlaps the live stream.
 */
import type { EventItem, GapRecord } from '../types/protocol';

export type Toast =
  | { key: string; kind: 'event'; event: EventItem }
  | { key: string; kind: 'gap'; gap: GapRecord };

export interface AlertsState {
  /** Unacknowledged events, newest stored first, each with the order it reached this console. */
  unacked: { event: EventItem; arrival: number }[];
  /** The unacknowledged listing had more pages than were read: the counter shows `N+`. */
  more: boolean;
  /** Ids already handled (bounded: the oldest are forgotten past `SEEN_LIMIT`). */
  seen: string[];
  toasts: Toast[];
  /** Bumped for each new alert: the trigger for a sound and a notification. */
  alertCount: number;
  lastAlert: Toast | null;
  /** How many events reached this console: the `arrival` of the next one. */
  arrivals: number;
}

export const SEEN_LIMIT = 5000;
export const TOAST_LIMIT = 4;

export const initialAlerts: AlertsState = {
  unacked: [],
  more: false,
  seen: [],
  toasts: [],
  alertCount: 0,
  lastAlert: null,
  arrivals: 0,
};

export type AlertsAction =
  /** A new or repeated event (socket or catch-up). */
  | { type: 'event'; event: EventItem }
  /** Someone acknowledged an event (socket frame or our own API answer). */
  | { type: 'acknowledged'; event: EventItem }
  | { type: 'gap'; gap: GapRecord }
  /**
   * The unacknowledged listing, requested when `arrivals` was `startedAt`: it replaces what this
   * console held then (acknowledgements missed while away drop out), and keeps what arrived since.
   */
  | { type: 'unacked'; items: EventItem[]; more: boolean; startedAt: number }
  | { type: 'dismiss'; key: string }
  | { type: 'reset' };

export function alertsReducer(state: AlertsState, action: AlertsAction): AlertsState {
  switch (action.type) {
    case 'event': {
      const e = action.event;
      if (state.seen.includes(e.id)) {
        return e.acknowledged_at ? removeUnacked(state, e.id) : state;
      }
      const seen = remember(state.seen, e.id);
      const arrivals = state.arrivals + 1;
      if (e.acknowledged_at) return { ...state, seen, arrivals };
      const toast: Toast = { key: e.id, kind: 'event', event: e };
      return {
        ...state,
        seen,
        arrivals,
        unacked: sortNewest([{ event: e, arrival: state.arrivals }, ...state.unacked]),
        toasts: [toast, ...state.toasts].slice(0, TOAST_LIMIT),
        alertCount: state.alertCount + 1,
        lastAlert: toast,
      };
    }
    case 'acknowledged':
      return removeUnacked({ ...state, seen: remember(state.seen, action.event.id) }, action.event.id);
    case 'gap': {
      const g = action.gap;
      const toast: Toast = { key: `gap:${g.device}:${g.first_seq}:${g.last_seq}`, kind: 'gap', gap: g };
      if (state.toasts.some((t) => t.key === toast.key)) return state;
      return {
        ...state,
        toasts: [toast, ...state.toasts].slice(0, TOAST_LIMIT),
        alertCount: state.alertCount + 1,
        lastAlert: toast,
      };
    }
    case 'unacked': {
      const listed = new Set(action.items.map((e) => e.id));
      const kept = state.unacked.filter((u) => u.arrival >= action.startedAt && !listed.has(u.event.id));
      let seen = state.seen;
      for (const e of action.items) if (!seen.includes(e.id)) seen = remember(seen, e.id);
      const fromListing = action.items.map((event) => ({ event, arrival: -1 }));
      const unacked = sortNewest([...kept, ...fromListing]);
      const ids = new Set(unacked.map((u) => u.event.id));
      return {
        ...state,
        seen,
        unacked,
        more: action.more,
        toasts: state.toasts.filter((t) => t.kind !== 'event' || ids.has(t.event.id)),
      };
    }
    case 'dismiss':
      return { ...state, toasts: state.toasts.filter((t) => t.key !== action.key) };
    case 'reset':
      return initialAlerts;
  }
}

/** What the counter shows. */
export function unackedLabel(state: AlertsState): string {
  return `${state.unacked.length}${state.more ? '+' : ''}`;
}

function removeUnacked(state: AlertsState, id: string): AlertsState {
  return {
    ...state,
    unacked: state.unacked.filter((u) => u.event.id !== id),
    toasts: state.toasts.filter((t) => t.key !== id),
  };
}

function remember(seen: string[], id: string): string[] {
  const next = [...seen, id];
  return next.length > SEEN_LIMIT ? next.slice(next.length - SEEN_LIMIT) : next;
}

function sortNewest<T extends { event: EventItem }>(items: T[]): T[] {
  return [...items].sort((a, b) => b.event.received_at.localeCompare(a.event.received_at));
}
