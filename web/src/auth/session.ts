/**
 * The signed-in session: the access token from `POST /api/auth/login`, who it names, when it
 * expires, and the refresh token that renews it (`POST /api/auth/refresh`, each refresh token works
 * once). Kept in sessionStorage (it survives a reload, not the closing of the tab). It is renewed a
 * little before the access token expires; it ends when renewal is refused, at expiry without a
 * refresh token, on any 401, or at logout, and the login screen then says why.
 */
import type { TokenResponse } from '../types/protocol';

export interface Session {
  token: string;
  username: string;
  role: string;
  /** When this access token was issued and expires, in ms since the epoch by this browser's clock. */
  issuedAt: number;
  expiresAt: number;
  refreshToken?: string;
  /** Names the login this session came from; a refresh keeps it (the console is not restarted). */
  key: string;
}

/** Why the login screen is shown: a message key for the screen to explain. */
export type LogoutReason = 'logout' | 'expired' | 'unauthorized';

const KEY = 'vigie.session';

/** Reads `sub` and `role` from the token (display only: the cloud checks the signature). */
export function claims(token: string): { sub?: string; role?: string } {
  try {
    const part = token.split('.')[1] ?? '';
    const json = atob(part.replace(/-/g, '+').replace(/_/g, '/'));
    const v = JSON.parse(json) as { sub?: unknown; role?: unknown };
    return {
      sub: typeof v.sub === 'string' ? v.sub : undefined,
      role: typeof v.role === 'string' ? v.role : undefined,
    };
  } catch {
    return {};
  }
}

export function sessionFromLogin(answer: TokenResponse, username: string, now: number): Session {
  const c = claims(answer.access_token);
  return {
    token: answer.access_token,
    username: c.sub ?? username,
    role: c.role ?? '',
    issuedAt: now,
    expiresAt: now + answer.expires_in * 1000,
    refreshToken: answer.refresh_token ?? undefined,
    key: `${now}-${Math.random().toString(36).slice(2)}`,
  };
}

/** The session after a refresh: new tokens, same login. */
export function sessionFromRefresh(answer: TokenResponse, previous: Session, now: number): Session {
  return {
    ...previous,
    token: answer.access_token,
    issuedAt: now,
    expiresAt: now + answer.expires_in * 1000,
    refreshToken: answer.refresh_token ?? undefined,
  };
}

/**
 * When to renew: a third of the token's lifetime before it expires, at most a minute before (time
 * for a retry or two); null without a refresh token (the session then simply ends at expiry).
 */
export function refreshAt(s: Session): number | null {
  if (!s.refreshToken) return null;
  const margin = Math.min(60_000, (s.expiresAt - s.issuedAt) / 3);
  return s.expiresAt - margin;
}

/** Milliseconds left, never negative. */
export function remaining(s: Session, now: number): number {
  return Math.max(0, s.expiresAt - now);
}

export function isExpired(s: Session, now: number): boolean {
  return remaining(s, now) === 0;
}

export interface KeyValueStore {
  getItem(key: string): string | null;
  setItem(key: string, value: string): void;
  removeItem(key: string): void;
}

export function loadSession(store: KeyValueStore, now: number): Session | null {
  try {
    const raw = store.getItem(KEY);
    if (!raw) return null;
    const s = JSON.parse(raw) as Session;
    if (typeof s.token !== 'string' || typeof s.expiresAt !== 'number' || typeof s.key !== 'string' || isExpired(s, now)) {
      store.removeItem(KEY);
      return null;
    }
    return s;
  } catch {
    return null;
  }
}

export function saveSession(store: KeyValueStore, s: Session | null): void {
  if (s) store.setItem(KEY, JSON.stringify(s));
  else store.removeItem(KEY);
}
