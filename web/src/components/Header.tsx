import { useState } from 'react';
import type { Session } from '../auth/session';
import { askNotifications, canAskNotifications } from '../alerts/notify';
import type { ConsoleState } from '../hooks/useConsole';
import type { Route } from '../hooks/useRoute';
import { useI18n } from '../i18n';
import { unackedLabel } from '../state/alerts';
import { LanguagePicker } from './LanguagePicker';

export function Header({
  session,
  route,
  go,
  state,
  onLogout,
}: {
  session: Session;
  route: Route;
  go: (r: Route) => void;
  state: ConsoleState;
  onLogout: () => void;
}) {
  const { t } = useI18n();
  const [askable, setAskable] = useState(canAskNotifications);
  const count = unackedLabel(state.alerts);
  const live = state.live;
  const liveText =
    live.state === 'open'
      ? t('live.open')
      : live.state === 'waiting'
        ? t('live.waiting', { seconds: Math.ceil(live.retryInMs / 1000) })
        : live.state === 'connecting'
          ? t('live.connecting')
          : t('live.stopped');

  const link = (r: Route, label: string) => (
    <a
      href={r === 'history' ? '/history' : '/'}
      aria-current={route === r ? 'page' : undefined}
      onClick={(e) => {
        e.preventDefault();
        go(r);
      }}
    >
      {label}
    </a>
  );

  return (
    <header className="topbar">
      <span className="brand">{t('app.name')}</span>
      <nav aria-label={t('nav.label')}>
        {link('dashboard', t('nav.dashboard'))}
        {link('history', t('nav.history'))}
      </nav>
      <a
        className={`counter${state.alerts.unacked.length ? ' hot' : ''}`}
        href="/#alerts"
        data-testid="unacked-counter"
        aria-label={t('alerts.counterLabel', { count })}
        onClick={(e) => {
          e.preventDefault();
          go('dashboard');
          setTimeout(() => document.getElementById('alerts')?.focus(), 0);
        }}
      >
        <svg aria-hidden="true" width="14" height="14" viewBox="0 0 24 24" fill="currentColor">
          <path d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3a1.5 1.5 0 0 0-3 0v1.16A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2Z" />
        </svg>
        <span aria-hidden="true"> {count}</span>
      </a>
      <span className={`live live-${live.state}`} role="status" data-testid="live-status">
        {liveText}
      </span>
      <div className="session">
        {askable && (
          <button type="button" onClick={() => void askNotifications().then(() => setAskable(canAskNotifications()))}>
            {t('alerts.enableNotifications')}
          </button>
        )}
        <LanguagePicker />
        <span className="who">{t('nav.signedInAs', { user: session.username, role: session.role || '?' })}</span>
        <button type="button" onClick={onLogout}>
          {t('nav.logout')}
        </button>
      </div>
    </header>
  );
}
