/**
 * The console's root: the language, the session, and either the login screen or the console.
 * The session ends at its expiry (a timer), on any 401, or at logout; the login screen then says why.
 */
import { useCallback, useEffect, useMemo, useState } from 'react';
import { loadSession, remaining, saveSession, type LogoutReason, type Session } from './auth/session';
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
    const timer = setTimeout(() => end('expired'), Math.min(remaining(session, Date.now()), 2 ** 31 - 1));
    return () => clearTimeout(timer);
  }, [session, end]);

  return (
    <I18nContext.Provider value={i18n}>
      {session ? <ConsoleView key={session.token} session={session} onEnd={end} /> : <LoginPage reason={reason} onLogin={begin} />}
    </I18nContext.Provider>
  );
}
