/** The signed-in console: header, alert toasts, the current page and the event detail dialog. */
import { useCallback, useEffect, useRef, useState } from 'react';
import type { LogoutReason, Session } from '../auth/session';
import { beep, notify } from '../alerts/notify';
import { useConsole } from '../hooks/useConsole';
import { useRoute } from '../hooks/useRoute';
import { useI18n } from '../i18n';
import type { EventItem } from '../types/protocol';
import { Dashboard } from './Dashboard';
import { EventDetail } from './EventDetail';
import { Header } from './Header';
import { History } from './History';
import { Toasts, toastText } from './Toasts';

export function ConsoleView({ session, onEnd }: { session: Session; onEnd: (why: LogoutReason) => void }) {
  const i18n = useI18n();
  const state = useConsole(session, onEnd);
  const [route, go] = useRoute();
  const [detail, setDetail] = useState<EventItem | null>(null);
  const heading = useRef<HTMLHeadingElement>(null);
  const firstRoute = useRef(true);

  // A new alert: a beep and, when allowed, a browser notification.
  const { alertCount, lastAlert } = state.alerts;
  useEffect(() => {
    if (alertCount === 0 || !lastAlert) return;
    // After the toast is painted: the sound and the notification never delay it.
    const text = toastText(lastAlert, i18n);
    const title = i18n.t('alerts.notificationTitle');
    const timer = setTimeout(() => {
      beep();
      notify(title, text, lastAlert.key);
    }, 16);
    return () => clearTimeout(timer);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [alertCount]);

  // Moving between pages moves the focus to the new page's heading.
  useEffect(() => {
    if (firstRoute.current) {
      firstRoute.current = false;
      return;
    }
    heading.current?.focus();
  }, [route]);

  const open = useCallback((e: EventItem) => setDetail(e), []);
  const shown = detail ? (state.acks.get(detail.id) ?? detail) : null;

  return (
    <>
      <a className="skip" href="#main">
        {i18n.t('app.skip')}
      </a>
      <Header session={session} route={route} go={go} state={state} onLogout={() => void state.logout().then(() => onEnd('logout'))} />
      <Toasts state={state} onOpen={open} />
      <main id="main" className="page">
        {route === 'dashboard' ? (
          <Dashboard state={state} onOpen={open} headingRef={heading} />
        ) : (
          <History state={state} onOpen={open} headingRef={heading} />
        )}
      </main>
      {shown && (
        <EventDetail
          key={shown.id}
          event={shown}
          onClose={() => setDetail(null)}
          onAcknowledge={state.acknowledge}
          api={state.api}
          guard={state.guard}
          mediaVersion={state.media.events.get(shown.id) ?? 0}
        />
      )}
    </>
  );
}
