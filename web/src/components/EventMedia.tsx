/**
 * The snapshot and clip of one event, in its detail dialog: the JPEG as an image, the MP4 in a
 * `<video>` with its controls (the signed link answers HTTP Range, so seeking works), "uploading"
 * while the Pi is still sending the clip, and a plain sentence when there is no video at all. The
 * region is polite-live: a screen reader hears the media arrive.
 */
import type { ApiClient } from '../api/client';
import { useEventMedia } from '../hooks/useEventMedia';
import { useI18n } from '../i18n';
import { hasNoMedia } from '../state/media';
import type { EventItem } from '../types/protocol';
import { errorText } from './errors';

export function EventMedia({
  api,
  guard,
  event,
  version,
}: {
  api: ApiClient;
  guard: <T>(call: Promise<T>) => Promise<T>;
  event: EventItem;
  version: number;
}) {
  const i18n = useI18n();
  const { t } = i18n;
  const media = useEventMedia(api, guard, event, version);
  const { snapshot, clip } = media;
  const seconds = (ms: number) => (ms / 1000).toFixed(1);
  return (
    <section aria-labelledby="media-title" aria-live="polite" aria-busy={media.status === 'loading'} className="event-media" data-testid="event-media">
      <h3 id="media-title">{t('detail.media')}</h3>
      {media.status === 'loading' && <p className="placeholder">{t('detail.mediaLoading')}</p>}
      {media.status === 'failed' && (
        <p className="error" role="alert">
          {t('detail.mediaFailed', { message: errorText(media.error, t) })}
        </p>
      )}
      {hasNoMedia(media) && (
        <p className="placeholder" data-testid="no-media">
          {t('detail.noMedia')}
        </p>
      )}
      <div className="media-pair">
        {snapshot && (
          <figure className="media">
            <img
              src={snapshot.url}
              alt={t('detail.snapshotAlt', { camera: snapshot.camera, time: i18n.time(snapshot.taken_at) })}
              width={snapshot.width}
              height={snapshot.height}
              data-testid="event-snapshot"
            />
            <figcaption className="muted">{t('detail.snapshotCaption', { time: i18n.time(snapshot.taken_at) })}</figcaption>
          </figure>
        )}
        {clip.state === 'ready' && (
          <figure className="media">
            <video
              key={clip.clip.id}
              src={clip.url}
              controls
              preload="metadata"
              playsInline
              poster={snapshot?.url}
              aria-label={t('detail.clipLabel', { camera: clip.clip.camera, seconds: seconds(clip.clip.duration_ms) })}
              data-testid="event-clip"
            >
              {t('detail.clipUnsupported')} <a href={clip.url}>{t('detail.clipDownload')}</a>
            </video>
            <figcaption className="muted">
              {t('detail.clipCaption', { time: i18n.time(clip.clip.started_at), seconds: seconds(clip.clip.duration_ms) })}
            </figcaption>
          </figure>
        )}
      </div>
      {clip.state === 'uploading' && (
        <p className="placeholder" data-testid="clip-uploading">
          <span className="spinner" aria-hidden="true" /> {t('detail.clipUploading')}
        </p>
      )}
      {media.status === 'loaded' && clip.state === 'none' && snapshot && <p className="muted">{t('detail.noClip')}</p>}
    </section>
  );
}
