import { describe, expect, it } from 'vitest';
import { ApiClient, eventQueryString, type Fetch } from './client';
import { ApiHttpError, UnauthorizedError, UnreachableError } from './errors';

function answering(status: number, body: unknown, seen: { url?: string; init?: RequestInit } = {}): Fetch {
  return async (url, init) => {
    seen.url = url;
    seen.init = init;
    const text = typeof body === 'string' ? body : JSON.stringify(body);
    return new Response(text, { status, headers: { 'Content-Type': 'application/json' } });
  };
}

describe('ApiClient', () => {
  it('sends the bearer token and the filters it was given, leaving empty ones out', async () => {
    const seen: { url?: string; init?: RequestInit } = {};
    const api = new ApiClient(answering(200, { items: [], next_cursor: null }, seen), '', 'T0K');
    await api.listEvents({ device: 'pi-1', kind: '', acknowledged: false, limit: 50 });
    expect(seen.url).toBe('/api/events?device=pi-1&acknowledged=false&limit=50');
    expect((seen.init?.headers as Record<string, string>).Authorization).toBe('Bearer T0K');
  });

  it('does not send a token to the login route', async () => {
    const seen: { url?: string; init?: RequestInit } = {};
    const api = new ApiClient(answering(200, { access_token: 'a', token_type: 'Bearer', expires_in: 60 }, seen), '', 'old');
    await api.login('admin', 'pw');
    expect((seen.init?.headers as Record<string, string>).Authorization).toBeUndefined();
    expect(JSON.parse(String(seen.init?.body))).toEqual({ username: 'admin', password: 'pw' });
  });

  it('a 401 becomes an UnauthorizedError with the cloud’s message', async () => {
    const api = new ApiClient(answering(401, { error: 'token expired' }));
    await expect(api.devices()).rejects.toEqual(new UnauthorizedError('token expired'));
  });

  it('a network failure becomes an UnreachableError', async () => {
    const api = new ApiClient(async () => {
      throw new TypeError('Failed to fetch');
    });
    await expect(api.devices()).rejects.toBeInstanceOf(UnreachableError);
  });

  it('a proxy’s 502 with an HTML page is unreachable, not an API error', async () => {
    const api = new ApiClient(answering(502, '<html>Bad Gateway</html>'));
    await expect(api.devices()).rejects.toBeInstanceOf(UnreachableError);
  });

  it('a database outage (503 from the cloud itself) keeps the cloud’s message', async () => {
    const api = new ApiClient(answering(503, { error: 'database unavailable: timeout' }));
    const error = await api.devices().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ApiHttpError);
    expect((error as ApiHttpError).message).toBe('database unavailable: timeout');
  });

  it('a 400 keeps the status and the message that names the parameter', async () => {
    const api = new ApiClient(answering(400, { error: 'query parameter `since`: bad' }));
    const error = (await api.listEvents({ since: 'x' }).catch((e: unknown) => e)) as ApiHttpError;
    expect(error.status).toBe(400);
    expect(error.message).toContain('since');
  });

  it('an optional route answering 404 is null, not an error', async () => {
    const api = new ApiClient(answering(404, { error: 'no such API route' }));
    expect(await api.getOptional('/api/cameras')).toBeNull();
  });

  it('asks for an event’s media with the bearer token; a 404 means no media, not an error', async () => {
    const seen: { url?: string; init?: RequestInit } = {};
    const media = { event_id: 'e 1', snapshot: null, clip: null };
    expect(await new ApiClient(answering(200, media, seen), '', 't').eventMedia('e 1')).toEqual(media);
    expect(seen.url).toBe('/api/events/e%201/media');
    expect((seen.init?.headers as Record<string, string>).Authorization).toBe('Bearer t');
    expect(await new ApiClient(answering(404, { error: 'no such API route' })).eventMedia('e1')).toBeNull();
    await expect(new ApiClient(answering(500, { error: 'media store unavailable' })).eventMedia('e1')).rejects.toThrow('media store unavailable');
  });

  it('lists cameras (null on a cloud without them) and a camera’s snapshots from a cursor', async () => {
    expect(await new ApiClient(answering(404, { error: 'no such API route' })).cameras()).toBeNull();
    const seen: { url?: string; init?: RequestInit } = {};
    const page = { items: [], next_cursor: null };
    expect(await new ApiClient(answering(200, page, seen), '', 't').snapshots('pi-1', 'c/1')).toEqual(page);
    expect(seen.url).toBe('/api/cameras/pi-1/snapshots?cursor=c%2F1');
  });

  it('acknowledges by posting to the event’s ack route', async () => {
    const seen: { url?: string; init?: RequestInit } = {};
    const api = new ApiClient(answering(200, { id: 'e1' }, seen), 'http://cloud', 't');
    await api.acknowledge('e1');
    expect(seen.url).toBe('http://cloud/api/events/e1/ack');
    expect(seen.init?.method).toBe('POST');
  });
});

describe('ApiClient sessions', () => {
  it('refreshes with the refresh token and no bearer', async () => {
    const seen: { url?: string; init?: RequestInit } = {};
    const api = new ApiClient(answering(200, { access_token: 'n', token_type: 'Bearer', expires_in: 60, refresh_token: 'r2' }, seen), '', 'old');
    expect((await api.refresh('r1')).refresh_token).toBe('r2');
    expect(seen.url).toBe('/api/auth/refresh');
    expect(JSON.parse(String(seen.init?.body))).toEqual({ refresh_token: 'r1' });
    expect((seen.init?.headers as Record<string, string>).Authorization).toBeUndefined();
  });

  it('logs out with the bearer token, and an empty 204 is success', async () => {
    const seen: { url?: string; init?: RequestInit } = {};
    const api = new ApiClient(
      async (url, init) => {
        seen.url = url;
        seen.init = init;
        return new Response(null, { status: 204 });
      },
      '',
      'tok',
    );
    await expect(api.logout()).resolves.toBeUndefined();
    expect(seen.url).toBe('/api/auth/logout');
    expect((seen.init?.headers as Record<string, string>).Authorization).toBe('Bearer tok');
  });

  it('a throttled login (429) keeps the cloud’s message', async () => {
    const api = new ApiClient(answering(429, { error: 'too many failed logins: try again in 60 s' }));
    const error = (await api.login('a', 'b').catch((e: unknown) => e)) as ApiHttpError;
    expect(error.status).toBe(429);
    expect(error.message).toContain('try again');
  });
});

describe('eventQueryString', () => {
  it('is empty with no filter', () => {
    expect(eventQueryString({})).toBe('');
  });
  it('encodes times', () => {
    expect(eventQueryString({ since: '2026-11-27T10:00:00.000Z' })).toBe('?since=2026-11-27T10%3A00%3A00.000Z');
  });
});
