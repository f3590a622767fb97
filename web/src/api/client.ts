/**
 * The one place that calls the cloud's REST API: builds each request (bearer token, query), and
 * turns every failure into one of the three errors of `errors.ts`. Holds no state but the token it
 * is given; `fetch` is injected so the tests run without a server.
 */
import type { CameraView, DeviceView, EventItem, EventMedia, EventPage, SnapshotPage, TokenResponse } from '../types/protocol';
import { ApiHttpError, UnauthorizedError, UnreachableError } from './errors';

export type Fetch = (input: string, init?: RequestInit) => Promise<Response>;

/** `GET /api/events` filters, as the API names them; absent ones are left out of the query. */
export interface EventQuery {
  device?: string;
  kind?: string;
  since?: string;
  until?: string;
  limit?: number;
  cursor?: string;
  acknowledged?: boolean;
  received_since?: string;
}

export function eventQueryString(q: EventQuery): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(q)) {
    if (value === undefined || value === null || value === '') continue;
    params.set(key, String(value));
  }
  const s = params.toString();
  return s ? `?${s}` : '';
}

export class ApiClient {
  constructor(
    private readonly fetchImpl: Fetch = (input, init) => fetch(input, init),
    private readonly base = '',
    private token: string | null = null,
  ) {}

  setToken(token: string | null): void {
    this.token = token;
  }

  /** The current access token (it changes at each refresh), for requests made elsewhere (HLS). */
  get bearer(): string | null {
    return this.token;
  }

  async login(username: string, password: string): Promise<TokenResponse> {
    return this.request<TokenResponse>('POST', '/api/auth/login', { username, password }, false);
  }

  /** Trades the refresh token for the next tokens (`POST /api/auth/refresh`). */
  refresh(refreshToken: string): Promise<TokenResponse> {
    return this.request<TokenResponse>('POST', '/api/auth/refresh', { refresh_token: refreshToken }, false);
  }

  /** Ends the session on the cloud: its tokens stop working at once (`POST /api/auth/logout`). */
  async logout(): Promise<void> {
    await this.request<void>('POST', '/api/auth/logout');
  }

  listEvents(q: EventQuery = {}): Promise<EventPage> {
    return this.request<EventPage>('GET', `/api/events${eventQueryString(q)}`);
  }

  acknowledge(id: string): Promise<EventItem> {
    return this.request<EventItem>('POST', `/api/events/${encodeURIComponent(id)}/ack`);
  }

  devices(): Promise<DeviceView[]> {
    return this.request<DeviceView[]>('GET', '/api/devices');
  }

  /** The cameras (`GET /api/cameras`); null from a cloud without camera routes (404). */
  cameras(): Promise<CameraView[] | null> {
    return this.getOptional<CameraView[]>('/api/cameras');
  }

  /** One camera's snapshots, newest first (`GET /api/cameras/{id}/snapshots`). */
  snapshots(cameraId: string, cursor?: string): Promise<SnapshotPage> {
    const q = cursor ? `?cursor=${encodeURIComponent(cursor)}` : '';
    return this.request<SnapshotPage>('GET', `/api/cameras/${encodeURIComponent(cameraId)}/snapshots${q}`);
  }

  /**
   * An event's clip and snapshot (`GET /api/events/{id}/media`); null when the cloud has no media
   * for it at all (404: an older cloud without the route, or an event it does not know).
   */
  eventMedia(eventId: string): Promise<EventMedia | null> {
    return this.getOptional<EventMedia>(`/api/events/${encodeURIComponent(eventId)}/media`);
  }

  /** The cloud's clock (`GET /api/time`), for catching up on its own times after a reconnect. */
  async cloudTime(): Promise<string> {
    return (await this.request<{ now: string }>('GET', '/api/time')).now;
  }

  /**
   * A GET that answers `null` for a 404 instead of failing: for routes a cloud may not have yet
   * (`/api/cameras` and the media routes on a cloud older than the video issue).
   */
  async getOptional<T>(path: string): Promise<T | null> {
    try {
      return await this.request<T>('GET', path);
    } catch (e) {
      if (e instanceof ApiHttpError && e.status === 404) return null;
      throw e;
    }
  }

  private async request<T>(method: string, path: string, body?: unknown, auth = true): Promise<T> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (body !== undefined) headers['Content-Type'] = 'application/json';
    if (auth && this.token) headers.Authorization = `Bearer ${this.token}`;
    let response: Response;
    try {
      response = await this.fetchImpl(`${this.base}${path}`, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    } catch (e) {
      throw new UnreachableError(e instanceof Error ? e.message : String(e));
    }
    if (response.status === 204) return undefined as T;
    if (response.ok) return (await response.json()) as T;
    const message = await errorMessage(response);
    if (response.status === 401) throw new UnauthorizedError(message);
    if ([502, 503, 504].includes(response.status) && !message.startsWith('database')) {
      throw new UnreachableError(`${response.status} ${message}`);
    }
    throw new ApiHttpError(response.status, message);
  }
}

async function errorMessage(response: Response): Promise<string> {
  const text = await response.text().catch(() => '');
  try {
    const parsed = JSON.parse(text) as { error?: unknown };
    if (typeof parsed.error === 'string') return parsed.error;
  } catch {
    // not JSON: a proxy's page, or nothing
  }
  return text.trim().slice(0, 200) || `HTTP ${response.status}`;
}
