/**
 * Cameras and their live view. The cloud has no camera routes yet (they come with the video issue):
 * `GET /api/cameras` answering 404 means "no camera", never an error. When it exists, each camera's
 * `GET /api/cameras/{id}/stream` gives the HLS playlist, played natively where the browser can
 * (Safari) and through hls.js elsewhere. hls.js is loaded only then, in its own chunk, so it costs
 * nothing to a console without cameras.
 */
import type { ApiClient } from '../api/client';

/** Provisional until the video issue defines the payload: only what the tiles need. */
export interface Camera {
  id: string;
  name?: string;
}

export async function listCameras(api: ApiClient): Promise<Camera[]> {
  const answer = await api.getOptional<unknown>('/api/cameras');
  if (!Array.isArray(answer)) return [];
  return answer.filter((c): c is Camera => typeof c === 'object' && c !== null && typeof (c as Camera).id === 'string');
}

/** The playlist URL from a stream answer: `{url}` or `{hls_url}`; null when it has neither. */
export function playlistUrl(answer: unknown): string | null {
  if (typeof answer !== 'object' || answer === null) return null;
  const a = answer as { url?: unknown; hls_url?: unknown };
  if (typeof a.url === 'string') return a.url;
  if (typeof a.hls_url === 'string') return a.hls_url;
  return null;
}

/** Starts the live view of `cameraId` in `video`; resolves to a function that stops it. */
export async function playLive(video: HTMLVideoElement, api: ApiClient, cameraId: string): Promise<() => void> {
  const answer = await api.getOptional<unknown>(`/api/cameras/${encodeURIComponent(cameraId)}/stream`);
  const url = playlistUrl(answer);
  if (!url) throw new Error('no stream');
  if (video.canPlayType('application/vnd.apple.mpegurl')) {
    video.src = url;
    return () => video.removeAttribute('src');
  }
  const { default: Hls } = await import('hls.js');
  if (!Hls.isSupported()) throw new Error('HLS is not supported by this browser');
  const hls = new Hls({
    lowLatencyMode: true,
    xhrSetup: (xhr) => xhr.setRequestHeader('Authorization', `Bearer ${api.bearer ?? ''}`),
  });
  hls.loadSource(url);
  hls.attachMedia(video);
  return () => hls.destroy();
}
