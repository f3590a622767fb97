import { describe, expect, it } from 'vitest';
import { claims, isExpired, loadSession, refreshAt, saveSession, sessionFromLogin, sessionFromRefresh, type KeyValueStore } from './session';

function memory(): KeyValueStore & { data: Map<string, string> } {
  const data = new Map<string, string>();
  return {
    data,
    getItem: (k) => data.get(k) ?? null,
    setItem: (k, v) => void data.set(k, v),
    removeItem: (k) => void data.delete(k),
  };
}

const b64url = (o: object) => btoa(JSON.stringify(o)).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const jwt = (payload: object) => `${b64url({ alg: 'HS256' })}.${b64url(payload)}.sig`;

describe('session', () => {
  it('reads the user and role from the token and expires after expires_in', () => {
    const s = sessionFromLogin({ access_token: jwt({ sub: 'alice', role: 'viewer' }), token_type: 'Bearer', expires_in: 60 }, 'typed', 1000);
    expect(s).toMatchObject({ username: 'alice', role: 'viewer', expiresAt: 61_000 });
    expect(isExpired(s, 60_999)).toBe(false);
    expect(isExpired(s, 61_000)).toBe(true);
  });

  it('a token it cannot read keeps the typed user name', () => {
    expect(claims('garbage')).toEqual({});
    expect(sessionFromLogin({ access_token: 'garbage', token_type: 'Bearer', expires_in: 1 }, 'bob', 0).username).toBe('bob');
  });

  it('survives a reload until it expires, then is forgotten', () => {
    const store = memory();
    const s = sessionFromLogin({ access_token: jwt({ sub: 'a', role: 'admin' }), token_type: 'Bearer', expires_in: 10 }, 'a', 0);
    saveSession(store, s);
    expect(loadSession(store, 5_000)).toEqual(s);
    expect(loadSession(store, 10_000)).toBeNull();
    expect(store.data.size).toBe(0);
  });

  it('is renewed a third of its lifetime before expiry, at most a minute before, and only with a refresh token', () => {
    const login = (expires_in: number, refresh_token?: string) =>
      sessionFromLogin({ access_token: 'a.b.c', token_type: 'Bearer', expires_in, refresh_token }, 'u', 0);
    expect(refreshAt(login(90, 'r'))).toBe(60_000);
    expect(refreshAt(login(3600, 'r'))).toBe(3_540_000);
    expect(refreshAt(login(3600))).toBeNull();
  });

  it('a refresh keeps the login (same key and user) with the new tokens', () => {
    const first = sessionFromLogin({ access_token: jwt({ sub: 'a', role: 'admin' }), token_type: 'Bearer', expires_in: 60, refresh_token: 'r1' }, 'a', 0);
    const next = sessionFromRefresh({ access_token: 'n', token_type: 'Bearer', expires_in: 60, refresh_token: 'r2' }, first, 50_000);
    expect(next).toMatchObject({ key: first.key, username: 'a', token: 'n', refreshToken: 'r2', expiresAt: 110_000 });
  });

  it('logout removes it; junk in storage is no session', () => {
    const store = memory();
    saveSession(store, { token: 't', username: 'u', role: 'admin', issuedAt: 0, expiresAt: 99, key: 'k' });
    saveSession(store, null);
    expect(loadSession(store, 0)).toBeNull();
    store.setItem('vigie.session', '{not json');
    expect(loadSession(store, 0)).toBeNull();
  });
});
