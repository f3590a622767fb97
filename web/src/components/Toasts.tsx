/**
 * New alerts as toasts, in an assertive live region so that a screen reader says them at once.
 * Each toast marks `vigie-alert:{id}` (User Timing) once it is painted: with the `vigie-ws:{id}`
 * mark set when its frame arrived, that is the WebSocket → alert time the end-to-end test prints.
 */
import { useEffect, useState } from 'react';
import { timingMark, type ConsoleState } from '../hooks/useConsole';
import { useI18n, type I18n } from '../i18n';
import type { Toast } from '../state/alerts';
import type { EventItem } from '../types/protocol';
import { errorText } from './errors';

export function toastText(toast: Toast, i18n: I18n): string {
  if (toast.kind === 'event') {
    const e = toast.event;
    return i18n.t('alerts.event', { kind: i18n.kind(e.kind), device: e.device, sensor: e.sensor });
  }
  const g = toast.gap;
  const reason = g.reason === 'max_events' || g.reason === 'max_age' ? i18n.t(g.reason === 'max_events' ? 'gap.max_events' : 'gap.max_age') : g.reason;
  return i18n.t('alerts.gap', { device: g.device, first: g.first_seq, last: g.last_seq, reason });
}

export function Toasts({ state, onOpen }: { state: ConsoleState; onOpen: (e: EventItem) => void }) {
  return (
    <section className="toasts" aria-live="assertive" aria-relevant="additions" data-testid="toasts">
      {state.alerts.toasts.map((toast) => (
        <ToastItem key={toast.key} toast={toast} state={state} onOpen={onOpen} />
      ))}
    </section>
  );
}

function ToastItem({ toast, state, onOpen }: { toast: Toast; state: ConsoleState; onOpen: (e: EventItem) => void }) {
  const i18n = useI18n();
  const [error, setError] = useState<string | null>(null);
  useEffect(() => {
    const id = requestAnimationFrame(() => timingMark(`vigie-alert:${toast.key}`));
    return () => cancelAnimationFrame(id);
  }, [toast.key]);
  const text = toastText(toast, i18n);
  return (
    <div className={`toast toast-${toast.kind}`} data-alert-id={toast.key}>
      <p>
        <strong>{text}</strong>
        {toast.kind === 'event' && <span className="when"> · {i18n.time(toast.event.corrected_at)}</span>}
      </p>
      {error && (
        <p className="error" role="alert">
          {error}
        </p>
      )}
      <div className="actions">
        {toast.kind === 'event' && (
          <>
            <button
              type="button"
              className="primary"
              aria-label={i18n.t('alerts.acknowledgeOne', { what: text })}
              onClick={() => state.acknowledge(toast.event.id).catch((e: unknown) => setError(i18n.t('alerts.ackFailed', { message: errorText(e, i18n.t) })))}
            >
              {i18n.t('alerts.acknowledge')}
            </button>
            <button type="button" onClick={() => onOpen(toast.event)}>
              {i18n.t('alerts.details')}
            </button>
          </>
        )}
        <button type="button" onClick={() => state.dispatchAlerts({ type: 'dismiss', key: toast.key })}>
          {i18n.t('alerts.dismiss')}
        </button>
      </div>
    </div>
  );
}
