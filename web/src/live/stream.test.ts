import { beforeEach, describe, expect, it } from 'vitest';
import type { EventItem, StreamFrame } from '../types/protocol';
import { Backoff } from './backoff';
import {
  CLOSE_SESSION_ENDED,
  CLOSE_TOKEN_EXPIRED,
  LiveStream,
  parseFrame,
  type LiveStatus,
  type SocketLike,
  type Timers,
} from './stream';

class FakeSocket implements SocketLike {
  onopen: SocketLike['onopen'] = null;
  onmessage: SocketLike['onmessage'] = null;
  onclose: SocketLike['onclose'] = null;
  onerror: SocketLike['onerror'] = null;
  closed = false;
  constructor(readonly url: string) {}
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onclose?.({ code: 1000 });
  }
  open(): void {
    this.onopen?.({});
  }
  send(frame: StreamFrame): void {
    this.onmessage?.({ data: JSON.stringify(frame) });
  }
  drop(code = 1006): void {
    this.closed = true;
    this.onclose?.({ code });
  }
}

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
  fire(): number {
    const t = this.pending.shift();
    if (!t) throw new Error('no timer pending');
    t.fn();
    return t.ms;
  }
}

function event(id: string, receivedAt: string): EventItem {
  return {
    id,
    device: 'pi-1',
    seq: 1,
    sensor: 'mat-1',
    kind: 'button_pressed',
    occurred_at: receivedAt,
    corrected_at: receivedAt,
    received_at: receivedAt,
  };
}

const flush = () => new Promise((r) => setTimeout(r, 0));

describe('LiveStream', () => {
  let sockets: FakeSocket[];
  let timers: FakeTimers;
  let frames: [StreamFrame, string][];
  let statuses: LiveStatus[];
  let catchUps: string[];
  let catchUpAnswer: EventItem[] | Error;

  function stream(extra: Partial<ConstructorParameters<typeof LiveStream>[0]> = {}): LiveStream {
    return new LiveStream({
      url: () => 'ws://cloud/api/stream?access_token=t',
      connect: (url) => {
        const s = new FakeSocket(url);
        sockets.push(s);
        return s;
      },
      catchUp: async (since) => {
        catchUps.push(since);
        if (catchUpAnswer instanceof Error) throw catchUpAnswer;
        return catchUpAnswer;
      },
      cloudTime: async () => '2026-11-27T10:00:00.000Z',
      onFrame: (f, source) => frames.push([f, source]),
      onStatus: (s) => statuses.push(s),
      backoff: new Backoff({ baseMs: 1000, capMs: 8000, random: () => 1 }),
      timers,
      overlapMs: 0,
      ...extra,
    });
  }

  beforeEach(() => {
    sockets = [];
    timers = new FakeTimers();
    frames = [];
    statuses = [];
    catchUps = [];
    catchUpAnswer = [];
  });

  it('catches up from the cloud’s time on the first open, then passes live frames on', async () => {
    const live = stream();
    await live.start();
    sockets[0]!.open();
    await flush();
    expect(catchUps).toEqual(['2026-11-27T10:00:00.000Z']);
    sockets[0]!.send({ type: 'event', data: event('a', '2026-11-27T10:00:01.000Z') });
    expect(frames.map(([f, s]) => [f.type, s])).toEqual([['event', 'live']]);
    expect(live.since).toBe('2026-11-27T10:00:01.000Z');
  });

  it('passes media_ready frames on without moving the watermark (they are not events)', async () => {
    const live = stream();
    await live.start();
    sockets[0]!.open();
    await flush();
    sockets[0]!.send({ type: 'media_ready', data: { kind: 'snapshot', id: 's1', camera: 'pi-1', event_ids: ['e1'] } });
    expect(frames.map(([f, s]) => [f.type, s])).toEqual([['media_ready', 'live']]);
    expect(live.since).toBe('2026-11-27T10:00:00.000Z');
  });

  it('reconnects with capped exponential delays, and a working connection resets them', async () => {
    const live = stream();
    await live.start();
    const delays: number[] = [];
    for (let i = 0; i < 5; i++) {
      sockets.at(-1)!.drop();
      await flush();
      delays.push(timers.fire());
    }
    expect(delays).toEqual([1000, 2000, 4000, 8000, 8000]);
    sockets.at(-1)!.open();
    await flush();
    sockets.at(-1)!.drop();
    await flush();
    expect(timers.fire()).toBe(1000);
    expect(statuses.some((s) => s.state === 'waiting')).toBe(true);
  });

  it('after a reconnect asks for what was stored since the last event seen, and delivers it', async () => {
    const live = stream();
    await live.start();
    sockets[0]!.open();
    await flush();
    sockets[0]!.send({ type: 'event', data: event('a', '2026-11-27T10:00:05.000Z') });
    sockets[0]!.drop();
    await flush();
    catchUpAnswer = [event('c', '2026-11-27T10:00:09.000Z'), event('b', '2026-11-27T10:00:07.000Z')];
    timers.fire();
    sockets[1]!.open();
    await flush();
    expect(catchUps.at(-1)).toBe('2026-11-27T10:00:05.000Z');
    expect(frames.map(([f, s]) => [(f.data as EventItem).id, s])).toEqual([
      ['a', 'live'],
      ['b', 'catch-up'],
      ['c', 'catch-up'],
    ]);
    expect(live.since).toBe('2026-11-27T10:00:09.000Z');
  });

  it('a live event seen before the catch-up answers does not move the watermark past a failed catch-up', async () => {
    const live = stream();
    await live.start('2026-11-27T10:00:00.000Z');
    catchUpAnswer = new Error('network');
    sockets[0]!.open();
    sockets[0]!.send({ type: 'event', data: event('late', '2026-11-27T10:05:00.000Z') });
    await flush();
    expect(sockets[0]!.closed).toBe(true);
    expect(live.since).toBe('2026-11-27T10:00:00.000Z');
    catchUpAnswer = [];
    timers.fire();
    sockets[1]!.open();
    await flush();
    expect(catchUps.at(-1)).toBe('2026-11-27T10:00:00.000Z');
  });

  it('asks from a little before the watermark, so out-of-order commits are caught too', async () => {
    const live = stream({ overlapMs: 5000 });
    await live.start('2026-11-27T10:00:10.000Z');
    sockets[0]!.open();
    await flush();
    expect(catchUps).toEqual(['2026-11-27T10:00:05.000Z']);
  });

  it('stops for good when the probe says the session is no longer valid', async () => {
    const unauthorized = Object.assign(new Error('token expired'), { name: 'UnauthorizedError' });
    let fatal: unknown = null;
    const live = stream({
      probe: async () => {
        throw unauthorized;
      },
      onFatal: (e) => (fatal = e),
    });
    await live.start();
    sockets[0]!.drop();
    await flush();
    await flush();
    expect(fatal).toBe(unauthorized);
    expect(timers.pending).toHaveLength(0);
    expect(statuses.at(-1)).toEqual({ state: 'stopped' });
  });

  it('keeps retrying when the probe finds the cloud unreachable', async () => {
    const live = stream({
      probe: async () => {
        throw Object.assign(new Error('down'), { name: 'UnreachableError' });
      },
    });
    await live.start();
    sockets[0]!.drop();
    await flush();
    await flush();
    expect(timers.pending).toHaveLength(1);
  });

  it('stop() closes the socket and cancels the pending retry', async () => {
    const live = stream();
    await live.start();
    sockets[0]!.drop();
    await flush();
    live.stop();
    expect(timers.pending).toHaveLength(0);
    expect(sockets).toHaveLength(1);
  });

  it('reopens at once with the renewed token when the cloud closes for token expiry, and catches up', async () => {
    let token = 'first';
    const live = stream({ url: () => `ws://cloud/api/stream?access_token=${token}` });
    await live.start();
    sockets[0]!.open();
    await flush();
    sockets[0]!.send({ type: 'event', data: event('a', '2026-11-27T10:00:05.000Z') });
    token = 'renewed';
    sockets[0]!.drop(CLOSE_TOKEN_EXPIRED);
    await flush();
    expect(timers.fire()).toBe(0);
    expect(sockets[1]!.url).toBe('ws://cloud/api/stream?access_token=renewed');
    catchUpAnswer = [event('b', '2026-11-27T10:00:07.000Z')];
    sockets[1]!.open();
    await flush();
    expect(catchUps.at(-1)).toBe('2026-11-27T10:00:05.000Z');
    expect(frames.map(([f, s]) => [(f.data as EventItem).id, s])).toEqual([
      ['a', 'live'],
      ['b', 'catch-up'],
    ]);
  });

  it('asks the probe before reconnecting when the cloud says the session ended, and stops if it is gone', async () => {
    const unauthorized = Object.assign(new Error('session ended'), { name: 'UnauthorizedError' });
    let probes = 0;
    let fatal: unknown = null;
    const live = stream({
      probe: async () => {
        probes += 1;
        throw unauthorized;
      },
      onFatal: (e) => (fatal = e),
    });
    await live.start();
    sockets[0]!.open();
    await flush();
    sockets[0]!.drop(CLOSE_SESSION_ENDED);
    await flush();
    await flush();
    expect(probes).toBe(1);
    expect(fatal).toBe(unauthorized);
    expect(sockets).toHaveLength(1);
    expect(timers.pending).toHaveLength(0);
  });

  it('frames from a replaced socket are ignored', async () => {
    const live = stream();
    await live.start();
    const old = sockets[0]!;
    old.drop();
    await flush();
    timers.fire();
    old.send({ type: 'event', data: event('ghost', '2026-11-27T10:00:01.000Z') });
    expect(frames).toHaveLength(0);
    void live;
  });
});

describe('parseFrame', () => {
  it('keeps known frames and ignores unknown types and junk', () => {
    expect(parseFrame('{"type":"gap","data":{"device":"pi-1"}}')?.type).toBe('gap');
    expect(parseFrame('{"type":"video_clip","data":{}}')).toBeNull();
    expect(parseFrame('not json')).toBeNull();
    expect(parseFrame(new ArrayBuffer(2))).toBeNull();
  });

  it('reads media_ready frames, keeping unknown media kinds, and refuses one without its events', () => {
    const frame = parseFrame('{"type":"media_ready","data":{"kind":"clip","id":"c1","camera":"pi-1","event_ids":["e1"],"extra":1}}');
    expect(frame).toMatchObject({ type: 'media_ready', data: { kind: 'clip', event_ids: ['e1'] } });
    expect(parseFrame('{"type":"media_ready","data":{"kind":"hologram","id":"h","camera":"pi-1","event_ids":[]}}')?.type).toBe('media_ready');
    expect(parseFrame('{"type":"media_ready","data":{"kind":"clip","id":"c1","camera":"pi-1"}}')).toBeNull();
  });
});
