/**
 * The console's root: the language, the session, and either the login screen or the console.
 * The session is renewed with its refresh token before the access token expires; it ends when that
 * is refused (or at expiry, without one), on any 401, or at logout; the login screen then says why.
 */
import { useCallback, useEffect, useMemo, useState } from 'react';
import { ApiClient } from './api/client';
import { UnauthorizedError } from './api/errors';
import { loadSession, refreshAt, remaining, saveSession, sessionFromRefresh, type LogoutReason, type Session } from './auth/session';
import { ConsoleView } from './components/ConsoleView';
import { LoginPage } from './components/LoginPage';
import { I18nContext, makeI18n, pickLanguage, type Lang } from './i18n';

const LANG_KEY = 'vigie.lang';

export function App() {
  const [lang, setLangState] = useState<Lang>(() => pickLanguage(navigator.languages ?? [navigator.language], localStorage.getItem(LANG_KEY)));
  const setLang = useCallback((l: Lang) => {
    localStorage.setItem(LANG_KEY, l);
    setLangState(l);
  }, []);
  const i18n = useMemo(() => makeI18n(lang, setLang), [lang, setLang]);
  useEffect(() => {
    document.documentElement.lang = lang;
  }, [lang]);

  const [session, setSession] = useState<Session | null>(() => loadSession(sessionStorage, Date.now()));
  const [reason, setReason] = useState<LogoutReason | null>(null);

  const end = useCallback((why: LogoutReason) => {
    saveSession(sessionStorage, null);
    setSession(null);
    setReason(why);
  }, []);

  const begin = useCallback((s: Session) => {
    saveSession(sessionStorage, s);
    setReason(null);
    setSession(s);
  }, []);

  useEffect(() => {
    if (!session) return;
    let timer: ReturnType<typeof setTimeout>;
    const later = (fn: () => void, at: number) => (timer = setTimeout(fn, Math.min(Math.max(0, at - Date.now()), 2 ** 31 - 1)));
    const expire = () => end('expired');
    const renew = () => {
      if (!session.refreshToken) return expire();
      new ApiClient().refresh(session.refreshToken).then(
        (answer) => begin(sessionFromRefresh(answer, session, Date.now())),
        (e: unknown) => {
          // Refused: the session is over. Otherwise try again while the token still works.
          const left = remaining(session, Date.now());
          console.warn('vigie: session renewal failed', e);
          if (e instanceof UnauthorizedError || left < 1_000) expire();
          else later(renew, Date.now() + Math.min(5_000, left / 2));
        },
      );
    };
    const at = refreshAt(session);
    if (at === null) later(expire, session.expiresAt);
    else later(renew, at);
    return () => clearTimeout(timer);
  }, [session, end, begin]);

  return (
    <I18nContext.Provider value={i18n}>
      {session ? <ConsoleView key={session.key} session={session} onEnd={end} /> : <LoginPage reason={reason} onLogin={begin} />}
    </I18nContext.Provider>
  );
}
