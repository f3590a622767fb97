import { describe, expect, it } from 'vitest';
import { ApiClient } from '../api/client';
import { listCameras, playlistUrl } from './cameras';

const answering = (status: number, body: unknown) =>
  new ApiClient(async () => new Response(JSON.stringify(body), { status }));

describe('cameras', () => {
  it('a cloud without camera routes (404) has no camera, and that is no error', async () => {
    expect(await listCameras(answering(404, { error: 'no such API route' }))).toEqual([]);
  });

  it('lists the cameras the cloud answers, ignoring entries without an id', async () => {
    expect(await listCameras(answering(200, [{ id: 'pi-1' }, { name: 'x' }]))).toEqual([{ id: 'pi-1' }]);
  });

  it('other failures are still errors', async () => {
    await expect(listCameras(answering(500, { error: 'boom' }))).rejects.toThrow('boom');
  });

  it('reads the playlist URL from the stream answer', () => {
    expect(playlistUrl({ url: '/hls/pi-1/index.m3u8' })).toBe('/hls/pi-1/index.m3u8');
    expect(playlistUrl({ hls_url: '/x.m3u8' })).toBe('/x.m3u8');
    expect(playlistUrl({})).toBeNull();
  });
});
