/** The console's two pages as paths (`/`, `/history`); the cloud answers index.html for both. */
import { useCallback, useEffect, useState } from 'react';

export type Route = 'dashboard' | 'history';

export function routeOf(pathname: string): Route {
  return pathname.replace(/\/+$/, '') === '/history' ? 'history' : 'dashboard';
}

export function useRoute(): [Route, (r: Route) => void] {
  const [route, setRoute] = useState<Route>(() => routeOf(window.location.pathname));
  useEffect(() => {
    const onPop = () => setRoute(routeOf(window.location.pathname));
    window.addEventListener('popstate', onPop);
    return () => window.removeEventListener('popstate', onPop);
  }, []);
  const go = useCallback((r: Route) => {
    window.history.pushState(null, '', r === 'history' ? '/history' : '/');
    setRoute(r);
  }, []);
  return [route, go];
}
