/**
 * One event in a modal dialog (the native `<dialog>`: focus stays inside, Escape closes, and the
 * focus returns to what opened it), with its snapshot and clip (`EventMedia`).
 */
import { useEffect, useRef, useState } from 'react';
import type { ApiClient } from '../api/client';
import { useI18n } from '../i18n';
import type { EventItem } from '../types/protocol';
import { errorText } from './errors';
import { EventMedia } from './EventMedia';

export function EventDetail({
  event: e,
  onClose,
  onAcknowledge,
  api,
  guard,
  mediaVersion,
}: {
  event: EventItem;
  onClose: () => void;
  onAcknowledge: (id: string) => Promise<void>;
  api: ApiClient;
  guard: <T>(call: Promise<T>) => Promise<T>;
  /** Bumped by each `media_ready` frame naming this event: the media are fetched again. */
  mediaVersion: number;
}) {
  const i18n = useI18n();
  const { t } = i18n;
  const dialog = useRef<HTMLDialogElement>(null);
  const [error, setError] = useState<string | null>(null);

  useEffect(() => {
    const d = dialog.current;
    if (d && !d.open) d.showModal?.();
  }, []);

  const rows: [string, string][] = [
    [t('detail.kind'), i18n.kind(e.kind)],
    [t('detail.device'), e.device],
    [t('detail.sensor'), e.sensor],
    [t('detail.seq'), String(e.seq)],
    [t('detail.corrected'), i18n.time(e.corrected_at)],
    [t('detail.occurred'), i18n.time(e.occurred_at)],
    [t('detail.received'), i18n.time(e.received_at)],
    [t('detail.clock'), e.clock_synced ? t('devices.clockSynced') : t('devices.clockNotSynced')],
    [
      t('detail.acknowledged'),
      e.acknowledged_at ? t('detail.ackValue', { when: i18n.time(e.acknowledged_at), user: e.acknowledged_by ?? '?' }) : t('detail.notAcknowledged'),
    ],
    [t('detail.id'), e.id],
  ];

  return (
    <dialog ref={dialog} className="detail" aria-labelledby="detail-title" onClose={onClose} data-testid="event-detail">
      <h2 id="detail-title">{t('detail.title')}</h2>
      <dl>
        {rows.map(([k, v]) => (
          <div key={k}>
            <dt>{k}</dt>
            <dd>{v}</dd>
          </div>
        ))}
      </dl>
      <EventMedia api={api} guard={guard} event={e} version={mediaVersion} />
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <div className="actions">
        {!e.acknowledged_at && (
          <button type="button" className="primary" onClick={() => onAcknowledge(e.id).catch((err: unknown) => setError(errorText(err, t)))}>
            {t('alerts.acknowledge')}
          </button>
        )}
        <button type="button" onClick={() => dialog.current?.close()} autoFocus>
          {t('detail.close')}
        </button>
      </div>
    </dialog>
  );
}
