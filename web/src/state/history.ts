/**
 * Event history: the filters as the form holds them, turned into `GET /api/events` queries, and the
 * pages read so far (cursor pages appended as the list scrolls; a repeated id is kept once).
 */
import type { EventQuery } from '../api/client';
import type { EventItem, EventPage } from '../types/protocol';

export interface HistoryFilters {
  device: string;
  kind: string;
  /** `datetime-local` values (the browser's local time), empty when unset. */
  from: string;
  to: string;
  /** Only the events nobody has acknowledged yet. */
  unacknowledged: boolean;
}

export const emptyFilters: HistoryFilters = { device: '', kind: '', from: '', to: '', unacknowledged: false };
export const PAGE_SIZE = 50;

/** The query for the first page; throws a message key when the time range is backwards. */
export function filtersToQuery(f: HistoryFilters): EventQuery {
  const since = localToRfc3339(f.from);
  const until = localToRfc3339(f.to);
  if (since && until && since > until) throw new Error('history.rangeBackwards');
  return {
    device: f.device || undefined,
    kind: f.kind || undefined,
    since,
    until,
    acknowledged: f.unacknowledged ? false : undefined,
    limit: PAGE_SIZE,
  };
}

/** `2026-11-27T10:30` in the browser's zone → RFC 3339 UTC; undefined when empty or invalid. */
export function localToRfc3339(value: string): string | undefined {
  if (!value) return undefined;
  const t = new Date(value);
  return Number.isNaN(t.getTime()) ? undefined : t.toISOString();
}

export interface HistoryState {
  items: EventItem[];
  cursor: string | null;
  done: boolean;
}

export const emptyHistory: HistoryState = { items: [], cursor: null, done: false };

export function appendPage(state: HistoryState, page: EventPage): HistoryState {
  const ids = new Set(state.items.map((e) => e.id));
  const fresh = page.items.filter((e) => !ids.has(e.id));
  const cursor = page.next_cursor ?? null;
  return { items: [...state.items, ...fresh], cursor, done: cursor === null };
}

/**
 * A new event from the live stream goes on top when it matches the filters and is newer than the
 * first listed one (an older one will come with its page, in order).
 */
export function prependLive(state: HistoryState, item: EventItem, f: HistoryFilters): HistoryState {
  if (state.items.some((e) => e.id === item.id)) return state;
  if (f.device && item.device !== f.device) return state;
  if (f.kind && item.kind !== f.kind) return state;
  if (f.unacknowledged && item.acknowledged_at) return state;
  const since = localToRfc3339(f.from);
  const until = localToRfc3339(f.to);
  const t = Date.parse(item.corrected_at);
  if ((since && t < Date.parse(since)) || (until && t > Date.parse(until))) return state;
  const top = state.items[0];
  if (top && Date.parse(top.corrected_at) > t) return state;
  return { ...state, items: [item, ...state.items] };
}

/** An acknowledgement or a newer copy of an event already listed replaces it in place. */
export function replaceItem(state: HistoryState, item: EventItem): HistoryState {
  if (!state.items.some((e) => e.id === item.id)) return state;
  return { ...state, items: state.items.map((e) => (e.id === item.id ? item : e)) };
}
