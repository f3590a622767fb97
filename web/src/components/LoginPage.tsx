import { useState, type FormEvent } from 'react';
import { ApiClient } from '../api/client';
import { UnauthorizedError } from '../api/errors';
import { sessionFromLogin, type LogoutReason, type Session } from '../auth/session';
import { unlockAudio } from '../alerts/notify';
import { useI18n } from '../i18n';
import { errorText } from './errors';
import { LanguagePicker } from './LanguagePicker';

const REASONS = { logout: 'login.loggedOut', expired: 'login.expired', unauthorized: 'login.unauthorized' } as const;

export function LoginPage({ reason, onLogin }: { reason: LogoutReason | null; onLogin: (s: Session) => void }) {
  const { t } = useI18n();
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  async function submit(e: FormEvent) {
    e.preventDefault();
    unlockAudio();
    setBusy(true);
    setError(null);
    try {
      const answer = await new ApiClient().login(username, password);
      onLogin(sessionFromLogin(answer, username, Date.now()));
    } catch (err) {
      setError(err instanceof UnauthorizedError ? t('login.invalid') : errorText(err, t));
      setBusy(false);
    }
  }

  return (
    <main className="login" id="main">
      <form className="card login-card" onSubmit={submit} aria-labelledby="login-title">
        <h1 id="login-title">{t('login.title')}</h1>
        {reason && !error && (
          <p className="notice" role="status">
            {t(REASONS[reason])}
          </p>
        )}
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <label>
          {t('login.username')}
          <input name="username" autoComplete="username" required autoFocus value={username} onChange={(e) => setUsername(e.target.value)} />
        </label>
        <label>
          {t('login.password')}
          <input
            name="password"
            type="password"
            autoComplete="current-password"
            required
            value={password}
            onChange={(e) => setPassword(e.target.value)}
          />
        </label>
        <button type="submit" className="primary" disabled={busy}>
          {busy ? t('login.busy') : t('login.submit')}
        </button>
        <LanguagePicker />
      </form>
    </main>
  );
}
