import { describe, expect, it } from 'vitest';
import { Backoff } from '../live/backoff';
import type { Timers } from '../live/stream';
import { LiveView, UnsupportedError, type Attach, type LiveViewStatus, type PlayerEvents } from './liveView';

class FakeTimers implements Timers {
  pending: { fn: () => void; ms: number; id: number }[] = [];
  private next = 1;
  setTimeout(fn: () => void, ms: number): unknown {
    const id = this.next++;
    this.pending.push({ fn, ms, id });
    return id;
  }
  clearTimeout(handle: unknown): void {
    this.pending = this.pending.filter((t) => t.id !== handle);
  }
  /** Fires the pending timer of `ms`. */
  fire(ms: number): void {
    const t = this.pending.find((p) => p.ms === ms);
    if (!t) throw new Error(`no ${ms} ms timer pending (${this.pending.map((p) => p.ms).join(', ')})`);
    this.pending = this.pending.filter((p) => p !== t);
    t.fn();
  }
}

/** A player that records its attachments; the test says when each plays or fails. */
function fakePlayers() {
  const attached: { url: string; events: PlayerEvents; stopped: boolean }[] = [];
  const attach: Attach = async (url, events) => {
    const a = { url, events, stopped: false };
    attached.push(a);
    return { stop: () => void (a.stopped = true) };
  };
  return { attached, attach };
}

const tick = () => new Promise((r) => setTimeout(r, 0));

function setup(url = () => '/api/cameras/pi-1/stream?sig=1') {
  const timers = new FakeTimers();
  const players = fakePlayers();
  const statuses: LiveViewStatus[] = [];
  const view = new LiveView({
    url,
    attach: players.attach,
    onStatus: (s) => statuses.push(s),
    timers,
    backoff: new Backoff({ baseMs: 1000, capMs: 8000, random: () => 1 }),
    startTimeoutMs: 20_000,
  });
  return { timers, players, statuses, view };
}

describe('LiveView', () => {
  it('plays the stream and says so', async () => {
    const { players, statuses, view } = setup();
    view.start();
    await tick();
    players.attached[0]!.events.onPlaying();
    expect(statuses).toEqual([{ state: 'starting', attempt: 0 }, { state: 'playing' }]);
    view.stop();
    expect(players.attached[0]!.stopped).toBe(true);
  });

  it('a failed stream is retried after a growing backoff, with the camera’s current (re-signed) url', async () => {
    let sig = 1;
    const { timers, players, statuses, view } = setup(() => `/api/cameras/pi-1/stream?sig=${sig}`);
    view.start();
    await tick();
    players.attached[0]!.events.onFailed('networkError: manifestLoadError');
    expect(players.attached[0]!.stopped).toBe(true);
    expect(statuses.at(-1)).toEqual({ state: 'retrying', retryInMs: 1000, attempt: 1, reason: 'networkError: manifestLoadError' });
    sig = 2;
    timers.fire(1000);
    await tick();
    expect(players.attached[1]!.url).toBe('/api/cameras/pi-1/stream?sig=2');
    players.attached[1]!.events.onFailed('again');
    expect(statuses.at(-1)).toMatchObject({ state: 'retrying', retryInMs: 2000, attempt: 2 });
  });

  it('a stream that plays again resets the backoff', async () => {
    const { timers, players, statuses, view } = setup();
    view.start();
    await tick();
    players.attached[0]!.events.onFailed('x');
    timers.fire(1000);
    await tick();
    players.attached[1]!.events.onPlaying();
    players.attached[1]!.events.onFailed('dropped');
    expect(statuses.at(-1)).toMatchObject({ state: 'retrying', retryInMs: 1000, attempt: 1 });
  });

  it('a stream that shows no frame in time counts as failed', async () => {
    const { timers, players, statuses, view } = setup();
    view.start();
    await tick();
    timers.fire(20_000);
    expect(players.attached[0]!.stopped).toBe(true);
    expect(statuses.at(-1)).toMatchObject({ state: 'retrying', reason: 'the stream did not start in time' });
  });

  it('a player that cannot even start is retried too', async () => {
    const timers = new FakeTimers();
    const statuses: LiveViewStatus[] = [];
    const view = new LiveView({ url: () => 'u', attach: () => Promise.reject(new Error('import failed')), onStatus: (s) => statuses.push(s), timers });
    view.start();
    await tick();
    expect(statuses.at(-1)).toMatchObject({ state: 'retrying', reason: 'import failed' });
  });

  it('a browser without HLS stops at once, without retrying', async () => {
    const timers = new FakeTimers();
    const statuses: LiveViewStatus[] = [];
    const view = new LiveView({ url: () => 'u', attach: () => Promise.reject(new UnsupportedError()), onStatus: (s) => statuses.push(s), timers });
    view.start();
    await tick();
    expect(statuses.at(-1)).toEqual({ state: 'unsupported' });
    expect(timers.pending).toEqual([]);
  });

  it('events from a player already replaced or stopped change nothing', async () => {
    const { timers, players, statuses, view } = setup();
    view.start();
    await tick();
    const first = players.attached[0]!;
    first.events.onFailed('x');
    timers.fire(1000);
    await tick();
    const count = statuses.length;
    first.events.onPlaying();
    first.events.onFailed('late');
    expect(statuses.length).toBe(count);
    view.stop();
    players.attached[1]!.events.onFailed('after stop');
    expect(statuses.length).toBe(count);
    expect(timers.pending).toEqual([]);
  });

  it('a player that finishes starting after stop is stopped at once', async () => {
    const timers = new FakeTimers();
    let resolve: (p: { stop(): void }) => void = () => {};
    let stopped = false;
    const view = new LiveView({ url: () => 'u', attach: () => new Promise((r) => (resolve = r)), onStatus: () => {}, timers });
    view.start();
    view.stop();
    resolve({ stop: () => void (stopped = true) });
    await tick();
    expect(stopped).toBe(true);
  });
});
