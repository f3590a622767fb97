/**
 * Live camera tiles, side by side. Without camera routes on the cloud (404) the section says there
 * is no camera yet; it never shows an error for that, nor a fake video.
 */
import { useEffect, useRef, useState } from 'react';
import type { ApiClient } from '../api/client';
import { useI18n } from '../i18n';
import { listCameras, playLive, type Camera } from '../video/cameras';

export function CameraTiles({ api }: { api: ApiClient }) {
  const { t } = useI18n();
  const [cameras, setCameras] = useState<Camera[] | null>(null);
  useEffect(() => {
    let live = true;
    listCameras(api).then(
      (c) => live && setCameras(c),
      () => live && setCameras([]),
    );
    return () => {
      live = false;
    };
  }, [api]);
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
          <CameraTile key={c.id} camera={c} api={api} />
        ))}
      </div>
    </section>
  );
}

function CameraTile({ camera, api }: { camera: Camera; api: ApiClient }) {
  const { t } = useI18n();
  const video = useRef<HTMLVideoElement>(null);
  const [failed, setFailed] = useState(false);
  useEffect(() => {
    let stop: (() => void) | null = null;
    let live = true;
    if (video.current) {
      playLive(video.current, api, camera.id).then(
        (s) => (live ? (stop = s) : s()),
        () => live && setFailed(true),
      );
    }
    return () => {
      live = false;
      stop?.();
    };
  }, [api, camera.id]);
  const name = camera.name ?? camera.id;
  return (
    <figure className="card camera">
      {failed ? (
        <p className="placeholder">{t('cameras.error', { camera: name })}</p>
      ) : (
        <video ref={video} muted autoPlay playsInline aria-label={t('cameras.live', { camera: name })} />
      )}
      <figcaption>{name}</figcaption>
    </figure>
  );
}
