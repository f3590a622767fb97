/**
 * Keeps one camera's live view going: attaches a player to the stream's URL, and when it fails (the
 * stream stopped, a link expired, the network dropped) or does not start in time, tries again after
 * a `Backoff` delay with the camera's current URL. A playing stream resets the backoff. Players and
 * timers are injected, so the tests drive every path without a browser or real time.
 */
import { Backoff } from '../live/backoff';
import type { Timers } from '../live/stream';

export type LiveViewStatus =
  | { state: 'starting'; attempt: number }
  | { state: 'playing' }
  | { state: 'retrying'; retryInMs: number; attempt: number; reason: string }
  | { state: 'unsupported' };

/** A started player; `stop` detaches it and frees what it holds. */
export interface Playback {
  stop(): void;
}

export interface PlayerEvents {
  /** Frames are being shown. */
  onPlaying(): void;
  /** The player gave up (fatal error); the view retries. */
  onFailed(reason: string): void;
}

/** Starts a player on `url`; rejects when it cannot start at all. */
export type Attach = (url: string, events: PlayerEvents) => Promise<Playback>;

/** This browser cannot play HLS: the view stops instead of retrying. */
export class UnsupportedError extends Error {
  constructor() {
    super('HLS is not supported by this browser');
    this.name = 'UnsupportedError';
  }
}

export interface LiveViewOptions {
  /** The stream's URL now (signed links expire: asked anew at each attempt). */
  url: () => string;
  attach: Attach;
  onStatus: (status: LiveViewStatus) => void;
  backoff?: Backoff;
  timers?: Timers;
  /** An attempt that has not shown a frame by then has failed. */
  startTimeoutMs?: number;
}

export const LIVE_BACKOFF = { baseMs: 1000, capMs: 30_000 };
export const START_TIMEOUT_MS = 20_000;

export class LiveView {
  private generation = 0;
  private playback: Playback | null = null;
  private timer: unknown = null;
  private stopped = false;
  private readonly backoff: Backoff;
  private readonly timers: Timers;

  constructor(private readonly o: LiveViewOptions) {
    this.backoff = o.backoff ?? new Backoff(LIVE_BACKOFF);
    this.timers = o.timers ?? {
      setTimeout: (fn, ms) => globalThis.setTimeout(fn, ms),
      clearTimeout: (h) => globalThis.clearTimeout(h as ReturnType<typeof setTimeout>),
    };
  }

  start(): void {
    this.stopped = false;
    this.attempt();
  }

  stop(): void {
    this.stopped = true;
    this.generation += 1;
    this.clearTimer();
    this.playback?.stop();
    this.playback = null;
  }

  private attempt(): void {
    const generation = ++this.generation;
    this.o.onStatus({ state: 'starting', attempt: this.backoff.failures });
    let playing = false;
    const current = () => generation === this.generation && !this.stopped;
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      if (current() && !playing) this.fail('the stream did not start in time');
    }, this.o.startTimeoutMs ?? START_TIMEOUT_MS);
    this.o
      .attach(this.o.url(), {
        onPlaying: () => {
          if (!current() || playing) return;
          playing = true;
          this.clearTimer();
          this.backoff.reset();
          this.o.onStatus({ state: 'playing' });
        },
        onFailed: (reason) => {
          if (current()) this.fail(reason);
        },
      })
      .then(
        (playback) => {
          if (current()) this.playback = playback;
          else playback.stop();
        },
        (e: unknown) => {
          if (!current()) return;
          if (e instanceof UnsupportedError) {
            this.clearTimer();
            this.stopped = true;
            this.o.onStatus({ state: 'unsupported' });
          } else {
            this.fail(e instanceof Error ? e.message : String(e));
          }
        },
      );
  }

  private fail(reason: string): void {
    this.generation += 1;
    this.clearTimer();
    this.playback?.stop();
    this.playback = null;
    const delay = this.backoff.next();
    this.o.onStatus({ state: 'retrying', retryInMs: delay, attempt: this.backoff.failures, reason });
    this.timer = this.timers.setTimeout(() => {
      this.timer = null;
      if (!this.stopped) this.attempt();
    }, delay);
  }

  private clearTimer(): void {
    if (this.timer !== null) this.timers.clearTimeout(this.timer);
    this.timer = null;
  }
}
