/**
 * Camera tiles, side by side (one column on a phone). A camera that is streaming plays live, its
 * view kept going by `LiveView` (retries with a backoff); one that is not shows its last image and
 * says it is offline. The list is asked again every `CAMERAS_REFRESH_MS` and when a snapshot
 * arrives, so a camera that starts streaming appears. Without camera routes on the cloud (404) the
 * section says there is no camera; it never shows an error for that, nor a fake video.
 */
import { useEffect, useMemo, useReducer, useRef, useState } from 'react';
import type { ApiClient } from '../api/client';
import { useI18n } from '../i18n';
import type { CameraView, SnapshotView } from '../types/protocol';
import { CAMERAS_REFRESH_MS, listCameras, tileView } from '../video/cameras';
import { LiveView, type LiveViewStatus } from '../video/liveView';
import { hlsAttach } from '../video/player';

export function CameraTiles({
  api,
  guard,
  refreshKey,
}: {
  api: ApiClient;
  guard: <T>(call: Promise<T>) => Promise<T>;
  /** Changes when a snapshot arrived: the list (and each camera's last image) is asked again. */
  refreshKey: number;
}) {
  const { t } = useI18n();
  const [cameras, setCameras] = useState<CameraView[] | null>(null);
  // A live view that fails asks for the list again: the camera may have stopped streaming.
  const [reload, relist] = useReducer((n: number) => n + 1, 0);
  useEffect(() => {
    let live = true;
    const load = () =>
      guard(listCameras(api)).then(
        (c) => live && setCameras(c),
        // A failed refresh keeps the tiles as they are; the next one may work.
        () => live && setCameras((c) => c ?? []),
      );
    void load();
    const timer = setInterval(load, CAMERAS_REFRESH_MS);
    return () => {
      live = false;
      clearInterval(timer);
    };
  }, [api, guard, refreshKey, reload]);
  return (
    <section aria-labelledby="cameras-title">
      <h2 id="cameras-title">{t('cameras.title')}</h2>
      {cameras !== null && cameras.length === 0 && (
        <p className="placeholder" data-testid="no-camera">
          {t('cameras.none')}
        </p>
      )}
      <div className="cameras">
        {(cameras ?? []).map((c) => (
          <CameraTile key={c.id} camera={c} api={api} onTrouble={relist} />
        ))}
      </div>
    </section>
  );
}

function CameraTile({ camera, api, onTrouble }: { camera: CameraView; api: ApiClient; onTrouble: () => void }) {
  const { t } = useI18n();
  const view = tileView(camera);
  return (
    <figure className="card camera" data-camera={camera.id} data-live={view.kind === 'live'}>
      {view.kind === 'live' ? <LiveTile camera={camera} api={api} poster={view.poster} onTrouble={onTrouble} /> : <OfflineTile camera={camera} snapshot={view.snapshot} />}
      <figcaption>
        {camera.id}{' '}
        <span className={`badge ${view.kind === 'live' ? 'ok' : 'bad'}`}>{view.kind === 'live' ? t('cameras.liveBadge') : t('cameras.offlineBadge')}</span>
      </figcaption>
    </figure>
  );
}

/**
 * A signed link changes at every listing while it names the same image: keep the first link of
 * each image, so the browser does not fetch it again every 15 s.
 */
function useStableUrl(snapshot: SnapshotView | null): string | undefined {
  const id = snapshot?.id;
  const url = snapshot?.url;
  // eslint-disable-next-line react-hooks/exhaustive-deps
  return useMemo(() => url, [id]);
}

function LiveTile({
  camera,
  api,
  poster,
  onTrouble,
}: {
  camera: CameraView;
  api: ApiClient;
  poster: SnapshotView | null;
  onTrouble: () => void;
}) {
  const { t } = useI18n();
  const video = useRef<HTMLVideoElement>(null);
  const url = useRef(camera.stream_url);
  url.current = camera.stream_url;
  const [status, setStatus] = useState<LiveViewStatus>({ state: 'starting', attempt: 0 });
  const posterUrl = useStableUrl(poster);
  const trouble = useRef(onTrouble);
  trouble.current = onTrouble;
  useEffect(() => {
    const element = video.current;
    if (!element) return;
    const onStatus = (s: LiveViewStatus) => {
      setStatus(s);
      if (s.state === 'retrying') trouble.current();
    };
    const view = new LiveView({ url: () => url.current, attach: hlsAttach(element, () => api.bearer, () => url.current), onStatus });
    view.start();
    return () => view.stop();
  }, [api, camera.id]);
  if (status.state === 'unsupported') {
    return <p className="placeholder">{t('cameras.error', { camera: camera.id })}</p>;
  }
  return (
    <div className="screen">
      <video ref={video} muted autoPlay playsInline poster={posterUrl} aria-label={t('cameras.live', { camera: camera.id })} data-testid="live-video" />
      {status.state !== 'playing' && (
        <p className="overlay" role="status">
          {status.state === 'retrying' ? t('cameras.retrying', { seconds: Math.ceil(status.retryInMs / 1000) }) : t('cameras.starting')}
        </p>
      )}
    </div>
  );
}

function OfflineTile({ camera, snapshot }: { camera: CameraView; snapshot: SnapshotView | null }) {
  const i18n = useI18n();
  const { t } = i18n;
  const src = useStableUrl(snapshot);
  const time = snapshot ? i18n.time(snapshot.taken_at) : '';
  return (
    <div className="screen offline">
      {snapshot && src && (
        <img src={src} alt={t('cameras.lastImageAlt', { camera: camera.id, time })} width={snapshot.width} height={snapshot.height} data-testid="last-image" />
      )}
      <p className="overlay" data-testid="camera-offline">
        {snapshot ? t('cameras.offlineSince', { time }) : t('cameras.offlineNoImage')}
      </p>
    </div>
  );
}
