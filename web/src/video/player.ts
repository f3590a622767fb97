/**
 * The HLS player of a live tile, the one place in the console where the browser fetches video from
 * the cloud. The playlist URL is the camera's signed `stream_url` (its segments carry the same
 * signature), so no header is needed; the playlist's reloads take the camera's latest signed link
 * (re-signed at every listing), so a view outlives the link it started with. Same-origin requests
 * also carry the bearer token (harmless: the cloud takes either). hls.js (its light build) is
 * imported lazily, in its own chunk: a console without a live camera never loads it.
 */
import type { Attach, Playback, PlayerEvents } from './liveView';
import { UnsupportedError } from './liveView';
import { choosePlayer, freshStreamUrl, sameOrigin } from './cameras';

/** hls.js tuned for a live view: close to the live edge, catching up by playing faster. */
export const HLS_LIVE_CONFIG = {
  lowLatencyMode: true,
  /** Play two segments (about 2 s with the edge's 1 s GOP) from the live edge... */
  liveSyncDurationCount: 2,
  /** ...and jump back there when more than five behind. */
  liveMaxLatencyDurationCount: 5,
  /** Up to 1.5× to catch up between the two. */
  maxLiveSyncPlaybackRate: 1.5,
  backBufferLength: 10,
  maxBufferLength: 6,
} as const;

/** A live view whose picture has not moved for this long has stalled (a stale playlist). */
export const STALL_MS = 12_000;

/** Calls `onStalled` once when `video`, not paused by the user, shows no progress for `STALL_MS`. */
function watchStall(video: HTMLVideoElement, onStalled: () => void): () => void {
  let last = video.currentTime;
  let since = Date.now();
  const timer = setInterval(() => {
    if (video.currentTime !== last || video.paused) {
      last = video.currentTime;
      since = Date.now();
    } else if (Date.now() - since > STALL_MS) {
      clearInterval(timer);
      onStalled();
    }
  }, 1000);
  return () => clearInterval(timer);
}

function capabilities(video: HTMLVideoElement): { mse: boolean; nativeHls: boolean } {
  const w = globalThis as { MediaSource?: { isTypeSupported(t: string): boolean }; ManagedMediaSource?: { isTypeSupported(t: string): boolean } };
  const source = w.MediaSource ?? w.ManagedMediaSource;
  return {
    mse: Boolean(source?.isTypeSupported('video/mp4; codecs="avc1.42E01E"')),
    nativeHls: video.canPlayType('application/vnd.apple.mpegurl') !== '',
  };
}

/**
 * An `Attach` for `LiveView` that plays into `video`; `bearer` gives the current access token,
 * `latest` the camera's latest signed stream link (for the playlist's reloads).
 */
export function hlsAttach(video: HTMLVideoElement, bearer: () => string | null, latest: () => string): Attach {
  return async (url: string, events: PlayerEvents): Promise<Playback> => {
    let unwatch = () => {};
    const onPlaying = () => {
      unwatch();
      unwatch = watchStall(video, () => events.onFailed('the live picture stalled'));
      events.onPlaying();
    };
    video.addEventListener('playing', onPlaying);
    const unlisten = () => {
      unwatch();
      video.removeEventListener('playing', onPlaying);
    };
    const player = choosePlayer(capabilities(video));
    if (player === null) {
      unlisten();
      throw new UnsupportedError();
    }
    if (player === 'native') {
      const onError = () => events.onFailed(video.error?.message || `media error ${video.error?.code ?? ''}`.trim());
      video.addEventListener('error', onError);
      video.src = url;
      void video.play().catch(() => {});
      return {
        stop: () => {
          unlisten();
          video.removeEventListener('error', onError);
          video.removeAttribute('src');
          video.load();
        },
      };
    }
    const { default: Hls } = await import('hls.js/light');
    if (!Hls.isSupported()) {
      unlisten();
      throw new UnsupportedError();
    }
    const hls = new Hls({
      ...HLS_LIVE_CONFIG,
      xhrSetup: (xhr, requestUrl) => {
        // Opened here (hls.js opens it only if we do not), so the playlist can take a fresh link.
        xhr.open('GET', freshStreamUrl(requestUrl, latest(), location.origin), true);
        const token = bearer();
        if (token && sameOrigin(requestUrl, location.origin)) xhr.setRequestHeader('Authorization', `Bearer ${token}`);
      },
    });
    hls.on(Hls.Events.ERROR, (_event, data) => {
      if (data.fatal) events.onFailed(`${data.type}: ${data.details}`);
    });
    hls.on(Hls.Events.MANIFEST_PARSED, () => void video.play().catch(() => {}));
    hls.loadSource(url);
    hls.attachMedia(video);
    return {
      stop: () => {
        unlisten();
        hls.destroy();
      },
    };
  };
}
