/**
 * Cameras: the listing (`GET /api/cameras`; a 404 from a cloud without camera routes means "no
 * camera", never an error) and what each tile shows: the live stream of a camera that is streaming,
 * the last snapshot of one that is not. Pure but for `listCameras`; the player is in `player.ts`.
 */
import type { ApiClient } from '../api/client';
import type { CameraView, SnapshotView } from '../types/protocol';

/** How often the tiles ask for the list again, so a camera that starts streaming appears. */
export const CAMERAS_REFRESH_MS = 15_000;

export async function listCameras(api: ApiClient): Promise<CameraView[]> {
  const answer = await api.cameras();
  if (!Array.isArray(answer)) return [];
  return answer
    .filter((c): c is CameraView => typeof c === 'object' && c !== null && typeof c.id === 'string' && typeof c.stream_url === 'string')
    .sort((a, b) => a.id.localeCompare(b.id));
}

/** What a camera's tile shows. */
export type TileView = { kind: 'live'; url: string; poster: SnapshotView | null } | { kind: 'offline'; snapshot: SnapshotView | null };

export function tileView(c: CameraView): TileView {
  const snapshot = c.last_snapshot ?? null;
  return c.live ? { kind: 'live', url: c.stream_url, poster: snapshot } : { kind: 'offline', snapshot };
}

/**
 * Which player plays HLS here: hls.js wherever Media Source Extensions play H.264 (its live sync
 * and catch-up are tuned for low latency, and it reports failures precisely; Chromium now also
 * claims native HLS, untunable), the browser's own HLS where there is no MSE (older iPhones), or
 * none.
 */
export function choosePlayer(caps: { mse: boolean; nativeHls: boolean }): 'hls.js' | 'native' | null {
  if (caps.mse) return 'hls.js';
  if (caps.nativeHls) return 'native';
  return null;
}

/** Whether `url` goes to the page's own origin (only those requests get the bearer header). */
export function sameOrigin(url: string, origin: string): boolean {
  try {
    return new URL(url, origin).origin === origin;
  } catch {
    return false;
  }
}

/**
 * The URL to fetch for a request of the live player: a reload of the playlist takes the camera's
 * latest signed link (re-signed at every listing), so the view outlives the first link's expiry;
 * segments keep theirs (the cloud signs them into each playlist it serves).
 */
export function freshStreamUrl(requestUrl: string, latest: string, origin: string): string {
  try {
    const request = new URL(requestUrl, origin);
    const current = new URL(latest, origin);
    return request.origin === current.origin && request.pathname === current.pathname ? latest : requestUrl;
  } catch {
    return requestUrl;
  }
}
