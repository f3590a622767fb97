/**
 * The signed-in session: the access token from `POST /api/auth/login`, who it names and when it
 * expires. Kept in sessionStorage (it survives a reload, not the closing of the tab) and dropped at
 * expiry, on a 401 or at logout; there is no refresh yet, so the console then asks to log in again.
 */
import type { TokenResponse } from '../types/protocol';

export interface Session {
  token: string;
  username: string;
  role: string;
  /** Milliseconds since the epoch, by this browser's clock. */
  expiresAt: number;
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
    expiresAt: now + answer.expires_in * 1000,
  };
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
    if (typeof s.token !== 'string' || typeof s.expiresAt !== 'number' || isExpired(s, now)) {
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
