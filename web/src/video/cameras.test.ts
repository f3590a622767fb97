import { describe, expect, it } from 'vitest';
import { ApiClient } from '../api/client';
import type { CameraView, SnapshotView } from '../types/protocol';
import { choosePlayer, freshStreamUrl, listCameras, sameOrigin, tileView } from './cameras';

const answering = (status: number, body: unknown, seen: string[] = []) =>
  new ApiClient(async (url) => {
    seen.push(url);
    return new Response(JSON.stringify(body), { status });
  });

const snapshot: SnapshotView = {
  id: '0190a6f0-0000-7000-8000-000000000001',
  camera: 'pi-1',
  taken_at: '2026-11-27T10:00:00.000Z',
  width: 320,
  height: 240,
  size_bytes: 12_345,
  url: '/api/snapshots/0190a6f0-0000-7000-8000-000000000001?exp=1&sig=s',
};

function camera(id: string, live: boolean, last?: SnapshotView): CameraView {
  return { id, device: id, live, stream_url: `/api/cameras/${id}/stream?exp=1&sig=s`, last_snapshot: last ?? null, clips: 0 };
}

describe('listCameras', () => {
  it('a cloud without camera routes (404) has no camera, and that is no error', async () => {
    expect(await listCameras(answering(404, { error: 'no such API route' }))).toEqual([]);
  });

  it('lists the cameras the cloud answers by id, ignoring entries without an id or a stream', async () => {
    const seen: string[] = [];
    const cameras = await listCameras(answering(200, [camera('pi-2', false), { id: 'x' }, { name: 'y' }, camera('pi-1', true)], seen));
    expect(seen).toEqual(['/api/cameras']);
    expect(cameras.map((c) => c.id)).toEqual(['pi-1', 'pi-2']);
  });

  it('other failures are still errors', async () => {
    await expect(listCameras(answering(500, { error: 'boom' }))).rejects.toThrow('boom');
  });
});

describe('tileView', () => {
  it('a streaming camera plays its signed stream, with its last image as the poster', () => {
    expect(tileView(camera('pi-1', true, snapshot))).toEqual({ kind: 'live', url: '/api/cameras/pi-1/stream?exp=1&sig=s', poster: snapshot });
  });

  it('a camera that is not streaming is offline, with its last image when it has one', () => {
    expect(tileView(camera('pi-1', false, snapshot))).toEqual({ kind: 'offline', snapshot });
    expect(tileView(camera('pi-1', false))).toEqual({ kind: 'offline', snapshot: null });
    const { last_snapshot: _, ...without } = camera('pi-1', false);
    expect(tileView(without)).toEqual({ kind: 'offline', snapshot: null });
  });
});

describe('choosePlayer', () => {
  it('prefers hls.js wherever MSE exists, the native player elsewhere, and says when neither exists', () => {
    expect(choosePlayer({ mse: true, nativeHls: true })).toBe('hls.js');
    expect(choosePlayer({ mse: true, nativeHls: false })).toBe('hls.js');
    expect(choosePlayer({ mse: false, nativeHls: true })).toBe('native');
    expect(choosePlayer({ mse: false, nativeHls: false })).toBeNull();
  });
});

describe('sameOrigin', () => {
  it('sends the bearer token only to the console’s own origin', () => {
    const origin = 'https://vigie.example';
    expect(sameOrigin('/api/cameras/pi-1/stream?sig=x', origin)).toBe(true);
    expect(sameOrigin('https://vigie.example/api/x/seg1.ts', origin)).toBe(true);
    expect(sameOrigin('https://cdn.example/seg1.ts', origin)).toBe(false);
    expect(sameOrigin('http://vigie.example/seg1.ts', origin)).toBe(false);
  });
});

describe('freshStreamUrl', () => {
  const latest = '/api/cameras/pi-1/stream?exp=2000&sig=new';
  it('a playlist reload takes the latest signed link, so an expired one does not end the view', () => {
    // hls.js asks with absolute URLs; the API's links are relative to the console's origin.
    expect(freshStreamUrl('http://h/api/cameras/pi-1/stream?exp=1000&sig=old', latest, 'http://h')).toBe(latest);
    expect(freshStreamUrl('/api/cameras/pi-1/stream?exp=1000&sig=old', latest, 'http://h')).toBe(latest);
    expect(freshStreamUrl('http://other/api/cameras/pi-1/stream?sig=old', latest, 'http://h')).toBe('http://other/api/cameras/pi-1/stream?sig=old');
  });

  it('segments and other cameras keep their own links', () => {
    const segment = '/api/cameras/pi-1/stream/seg12.ts?exp=1000&sig=old';
    expect(freshStreamUrl(segment, latest, 'http://h')).toBe(segment);
    expect(freshStreamUrl('/api/cameras/pi-2/stream?sig=x', latest, 'http://h')).toBe('/api/cameras/pi-2/stream?sig=x');
  });
});
