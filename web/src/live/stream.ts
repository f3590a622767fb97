/**
 * The live connection to `WS /api/stream`: opens it, reconnects with `Backoff` when it drops, and
 * after every open fetches what was stored since the last event it saw (`received_since`, on the
 * cloud's clock) so that nothing stored while it was away is lost. Frames from the socket and from
 * the catch-up both go to `onFrame`; the state layer deduplicates them by event id.
 *
 * The cloud closes a socket with its own codes (ARCHITECTURE.md, "WebSocket close codes"):
 * `CLOSE_TOKEN_EXPIRED` (4002) at the `exp` of the token it was opened with, answered by reopening at
 * once with the current (renewed) token, the catch-up covering the gap; `CLOSE_SESSION_ENDED` (4001)
 * when the login session ended (logout, an admin, the user disabled), answered by asking `probe`
 * first, which stops the stream when the session is gone. Any other close reconnects with `Backoff`.
 *
 * The watermark only moves once a catch-up has succeeded: an event seen live right after a reopen
 * must not move it past events the catch-up has not brought yet. Sockets, timers and the catch-up
 * query are injected, so the tests drive every path without a server or real time.
 */
import type { EventItem, StreamFrame } from '../types/protocol';
import { FRAME_TYPES } from '../types/protocol';
import { Backoff } from './backoff';

export interface SocketLike {
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code?: number; reason?: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
  close(code?: number, reason?: string): void;
}

/** A browser WebSocket behind `SocketLike`. */
export function browserSocket(url: string): SocketLike {
  const ws = new WebSocket(url);
  const s: SocketLike = { onopen: null, onmessage: null, onclose: null, onerror: null, close: (code, reason) => ws.close(code, reason) };
  ws.onopen = (e) => s.onopen?.(e);
  ws.onmessage = (e) => s.onmessage?.(e);
  ws.onclose = (e) => s.onclose?.(e);
  ws.onerror = (e) => s.onerror?.(e);
  return s;
}

/** The cloud closed the socket because its login session ended: do not reconnect blindly. */
export const CLOSE_SESSION_ENDED = 4001;
/** The cloud closed the socket at its token's expiry: reconnect with the renewed token. */
export const CLOSE_TOKEN_EXPIRED = 4002;

export interface Timers {
  setTimeout(fn: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export type LiveStatus =
  | { state: 'connecting'; attempt: number }
  | { state: 'open' }
  | { state: 'waiting'; retryInMs: number; attempt: number }
  | { state: 'stopped' };

export interface LiveOptions {
  /** The socket's URL (with `?access_token=`), asked anew at each attempt. */
  url: () => string;
  connect: (url: string) => SocketLike;
  /** Every event stored at or after `since` (cloud time), all pages. */
  catchUp: (since: string) => Promise<EventItem[]>;
  /** The cloud's clock now: the watermark before any event was seen. */
  cloudTime: () => Promise<string>;
  onFrame: (frame: StreamFrame, source: 'live' | 'catch-up') => void;
  onStatus?: (status: LiveStatus) => void;
  /** After each successful catch-up (refresh what a frame may have been missed for). */
  onSynced?: () => void;
  /**
   * Asked when a socket failed; a rejection with an auth error stops the stream (the browser
   * does not say why a WebSocket handshake failed, so the REST API is asked instead).
   */
  probe?: () => Promise<void>;
  onFatal?: (error: unknown) => void;
  backoff?: Backoff;
  timers?: Timers;
  /** How far before the watermark to ask from: covers commits that finish out of order. */
  overlapMs?: number;
}

export class LiveStream {
  private socket: SocketLike | null = null;
  private timer: unknown = null;
  private stopped = false;
  private watermark: string | null = null;
  private synced = false;
  private sessionMax: string | null = null;
  private generation = 0;
  private readonly backoff: Backoff;
  private readonly timers: Timers;

  constructor(private readonly o: LiveOptions) {
    this.backoff = o.backoff ?? new Backoff();
    this.timers = o.timers ?? {
      setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
      clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
    };
  }

  /** Starts from the cloud's current time (or `since`, when known). */
  async start(since?: string): Promise<void> {
    this.watermark = since ?? (await this.o.cloudTime().catch(() => null));
    if (!this.stopped) this.open();
  }

  stop(): void {
    this.stopped = true;
    this.generation += 1;
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
    this.socket?.close(1000, 'logout');
    this.socket = null;
    this.o.onStatus?.({ state: 'stopped' });
  }

  /** The cloud time from which the next catch-up asks (for tests and diagnostics). */
  get since(): string | null {
    return this.watermark;
  }

  private open(): void {
    const generation = ++this.generation;
    this.synced = false;
    this.sessionMax = null;
    this.o.onStatus?.({ state: 'connecting', attempt: this.backoff.failures });
    let opened = false;
    const socket = this.o.connect(this.o.url());
    this.socket = socket;
    socket.onopen = () => {
      if (generation !== this.generation) return;
      opened = true;
      this.o.onStatus?.({ state: 'open' });
      void this.catchUp(generation);
    };
    socket.onmessage = (ev) => {
      if (generation !== this.generation) return;
      const frame = parseFrame(ev.data);
      if (!frame) return;
      if (frame.type === 'event') this.advance(frame.data.received_at);
      this.o.onFrame(frame, 'live');
    };
    socket.onerror = () => {
      // Always followed by onclose, which decides what to do.
    };
    socket.onclose = (ev) => {
      if (generation !== this.generation || this.stopped) return;
      this.socket = null;
      if (ev.code === CLOSE_TOKEN_EXPIRED) {
        // Not a failure: the session goes on with the token the console renewed meanwhile.
        this.o.onStatus?.({ state: 'waiting', retryInMs: 0, attempt: this.backoff.failures });
        this.timer = this.timers.setTimeout(() => {
          this.timer = null;
          if (!this.stopped) this.open();
        }, 0);
        return;
      }
      // A session that ended is checked with the probe before any reconnect.
      void this.retry(opened && ev.code !== CLOSE_SESSION_ENDED);
    };
  }

  private async catchUp(generation: number): Promise<void> {
    try {
      const items = this.watermark ? await this.o.catchUp(shift(this.watermark, -(this.o.overlapMs ?? 5000))) : [];
      if (generation !== this.generation) return;
      // Oldest first, so that alerts arrive in the order they were stored.
      const ordered = [...items].sort((a, b) => a.received_at.localeCompare(b.received_at));
      for (const item of ordered) {
        this.advance(item.received_at);
        this.o.onFrame({ type: 'event', data: item }, 'catch-up');
      }
      this.synced = true;
      this.watermark = later(this.watermark, this.sessionMax);
      this.backoff.reset();
      this.o.onSynced?.();
    } catch {
      // Could not catch up: drop this socket and try again; the watermark has not moved.
      if (generation === this.generation) this.socket?.close(4000, 'catch-up failed');
    }
  }

  private advance(receivedAt: string): void {
    if (this.synced) this.watermark = later(this.watermark, receivedAt);
    else this.sessionMax = later(this.sessionMax, receivedAt);
  }

  private async retry(hadOpened: boolean): Promise<void> {
    if (!hadOpened && this.o.probe) {
      try {
        await this.o.probe();
      } catch (e) {
        if (isFatal(e)) {
          this.stopped = true;
          this.o.onStatus?.({ state: 'stopped' });
          this.o.onFatal?.(e);
          return;
        }
      }
    }
    if (this.stopped) return;
    const delay = this.backoff.next();
    this.o.onStatus?.({ state: 'waiting', retryInMs: delay, attempt: this.backoff.failures });
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      if (!this.stopped) this.open();
    }, delay);
  }
}

function isFatal(e: unknown): boolean {
  return e instanceof Error && e.name === 'UnauthorizedError';
}

/** A frame from the socket, or null for anything the console does not know (ignored). */
export function parseFrame(data: unknown): StreamFrame | null {
  if (typeof data !== 'string') return null;
  try {
    const v = JSON.parse(data) as { type?: unknown; data?: unknown };
    if (typeof v.type !== 'string' || !(FRAME_TYPES as readonly string[]).includes(v.type)) return null;
    if (typeof v.data !== 'object' || v.data === null) return null;
    if (v.type === 'media_ready' && !Array.isArray((v.data as { event_ids?: unknown }).event_ids)) return null;
    return v as StreamFrame;
  } catch {
    return null;
  }
}

function later(a: string | null, b: string | null): string | null {
  if (a === null) return b;
  if (b === null) return a;
  return Date.parse(b) > Date.parse(a) ? b : a;
}

function shift(t: string, ms: number): string {
  return new Date(Date.parse(t) + ms).toISOString();
}
