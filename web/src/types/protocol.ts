/**
 * The wire types of the cloud API, mirroring `protocol/src/api.rs` and `media.rs` (JSON Schema in
 * `protocol/schema/`). Each type has a `Shape` beside it that says which fields are required; the
 * compiler checks the shape against the type, and `protocol.test.ts` checks it against the schema,
 * so a field added, removed or made optional on either side fails a test.
 *
 * Readers keep what they do not know: an unknown `kind` or `state` is a plain string.
 */

/** Time as the API writes it: RFC 3339 with milliseconds, UTC. */
export type Rfc3339 = string;

/** Known kinds: `button_pressed`, `motion`; readers keep unknown kinds. */
export type EventKind = 'button_pressed' | 'motion' | (string & {});
/** Known states: `online`, `offline`; readers keep unknown states. */
export type DeviceState = 'online' | 'offline' | (string & {});
export type GapReason = 'max_events' | 'max_age';

export const KNOWN_KINDS = ['button_pressed', 'motion'] as const;

/** One stored event as the API lists it (`EventItem`). */
export interface EventItem {
  id: string;
  device: string;
  seq: number;
  sensor: string;
  kind: EventKind;
  /** When it happened, by the device's clock. */
  occurred_at: Rfc3339;
  /** `occurred_at` corrected by the offset the device measured; listings are ordered by it. */
  corrected_at: Rfc3339;
  /** When the cloud stored it. */
  received_at: Rfc3339;
  clock_synced?: boolean;
  acknowledged_at?: Rfc3339 | null;
  acknowledged_by?: string | null;
  /** The clip covering this event, once announced (`GET /api/events/{id}/media`). */
  clip_id?: string | null;
  /** The snapshot taken at this event's trigger, once uploaded. */
  snapshot_id?: string | null;
}

/** `GET /api/events` answer; `next_cursor` is null on the last page. */
export interface EventPage {
  items: EventItem[];
  next_cursor?: string | null;
}

/** One device as `GET /api/devices` lists it (`DeviceView`). */
export interface DeviceView {
  id: string;
  state: DeviceState;
  last_seen?: Rfc3339 | null;
  queue_depth: number;
  uptime_s: number;
  clock_synced: boolean;
  acked_seq: number;
  missing_events?: number;
  lost_events?: number;
  api_reachable?: boolean | null;
  clock_offset_ms?: number | null;
  /** What was refused in the device's name (attack telemetry); absent from older clouds. */
  security?: SecurityCounts;
}

/** Attack telemetry of one device, counted since it was first seen (`SecurityCounts`). */
export interface SecurityCounts {
  /** Forged or stale acks the device refused. */
  refused_acks?: number;
  /** Messages on its topics the ingest refused. */
  invalid_messages?: number;
  /** Live-push logins naming it that were refused. */
  refused_live_logins?: number;
  /** When a count last grew. */
  last_at?: Rfc3339 | null;
}

/** `system/{device}/gap`: the device dropped `first_seq..=last_seq` from its outbox. */
export interface GapRecord {
  schema_version: number;
  device: string;
  first_seq: number;
  last_seq: number;
  reason: GapReason | (string & {});
  oldest_at: Rfc3339;
  newest_at: Rfc3339;
  dropped_at: Rfc3339;
}

export interface LoginRequest {
  username: string;
  password: string;
}

export interface TokenResponse {
  access_token: string;
  token_type: string;
  /** Seconds until the access token expires. */
  expires_in: number;
  /** Trade it at `POST /api/auth/refresh` for the next access and refresh tokens (each works once). */
  refresh_token?: string | null;
  /** Seconds until the session (and its refresh token) ends; in the login answer only. */
  refresh_expires_in?: number | null;
}

/** `POST /api/auth/refresh` body. */
export interface RefreshRequest {
  refresh_token: string;
}

export interface ApiErrorBody {
  error: string;
}

export interface ClockReading {
  now: Rfc3339;
}

/** A stored snapshot (`SnapshotView`): a JPEG taken at a trigger. */
export interface SnapshotView {
  id: string;
  camera: string;
  event_id?: string | null;
  taken_at: Rfc3339;
  width: number;
  height: number;
  size_bytes: number;
  /** The JPEG, signed for the caller: usable in an `<img>` for a few minutes. */
  url: string;
}

/** One camera as `GET /api/cameras` lists it (`CameraView`); its id is its device's id. */
export interface CameraView {
  id: string;
  device: string;
  /** A live stream is being received now. */
  live: boolean;
  /** The HLS playlist, signed for the caller: playable without a header for a few minutes. */
  stream_url: string;
  last_snapshot?: SnapshotView | null;
  /** Clips stored in the cloud. */
  clips: number;
}

/** `GET /api/cameras/{id}/snapshots` answer, newest first. */
export interface SnapshotPage {
  items: SnapshotView[];
  next_cursor?: string | null;
}

/** A clip the cloud knows of (`ClipView`): announced by the Pi, playable once uploaded. */
export interface ClipView {
  id: string;
  camera: string;
  event_ids: string[];
  started_at: Rfc3339;
  ended_at: Rfc3339;
  duration_ms: number;
  trigger_offsets_ms?: number[];
  size_bytes: number;
  sha256: string;
  codec: string;
  width: number;
  height: number;
  /** The file is in the media store; false: announced, upload pending. */
  available: boolean;
  /** The MP4 (HTTP Range, seekable), signed for the caller; absent until available. */
  url?: string | null;
}

/** `GET /api/events/{id}/media`: the clip and snapshot of one event, when they exist. */
export interface EventMedia {
  event_id: string;
  clip?: ClipView | null;
  snapshot?: SnapshotView | null;
}

/** A frame on `WS /api/stream`. Unknown frame types are ignored by the reader. */
export type StreamFrame =
  | { type: 'event'; data: EventItem }
  | { type: 'device_status'; data: DeviceView }
  | { type: 'gap'; data: GapRecord }
  | { type: 'acknowledged'; data: EventItem }
  | { type: 'media_ready'; data: MediaReady };

/** A clip or snapshot arrived in the cloud's media store (`MediaReady`). */
export interface MediaReady {
  kind: 'clip' | 'snapshot' | string;
  id: string;
  camera: string;
  event_ids: string[];
}

export const FRAME_TYPES = ['event', 'device_status', 'gap', 'acknowledged', 'media_ready'] as const;

// --- Shapes: which fields are required, checked by the compiler against the types above. ---

type RequiredKeys<T> = { [K in keyof T]-?: object extends Pick<T, K> ? never : K }[keyof T];
/** Every field of `T`, each marked required or optional exactly as `T` declares it. */
export type Shape<T> = { [K in keyof T]-?: K extends RequiredKeys<T> ? 'required' : 'optional' };

export const eventItemShape: Shape<EventItem> = {
  id: 'required',
  device: 'required',
  seq: 'required',
  sensor: 'required',
  kind: 'required',
  occurred_at: 'required',
  corrected_at: 'required',
  received_at: 'required',
  clock_synced: 'optional',
  acknowledged_at: 'optional',
  acknowledged_by: 'optional',
  clip_id: 'optional',
  snapshot_id: 'optional',
};

export const eventPageShape: Shape<EventPage> = { items: 'required', next_cursor: 'optional' };

export const deviceViewShape: Shape<DeviceView> = {
  id: 'required',
  state: 'required',
  last_seen: 'optional',
  queue_depth: 'required',
  uptime_s: 'required',
  clock_synced: 'required',
  acked_seq: 'required',
  missing_events: 'optional',
  lost_events: 'optional',
  api_reachable: 'optional',
  clock_offset_ms: 'optional',
  security: 'optional',
};

export const securityCountsShape: Shape<SecurityCounts> = {
  refused_acks: 'optional',
  invalid_messages: 'optional',
  refused_live_logins: 'optional',
  last_at: 'optional',
};

export const gapRecordShape: Shape<GapRecord> = {
  schema_version: 'required',
  device: 'required',
  first_seq: 'required',
  last_seq: 'required',
  reason: 'required',
  oldest_at: 'required',
  newest_at: 'required',
  dropped_at: 'required',
};

export const loginRequestShape: Shape<LoginRequest> = { username: 'required', password: 'required' };
export const tokenResponseShape: Shape<TokenResponse> = {
  access_token: 'required',
  token_type: 'required',
  expires_in: 'required',
  refresh_token: 'optional',
  refresh_expires_in: 'optional',
};
export const refreshRequestShape: Shape<RefreshRequest> = { refresh_token: 'required' };
export const apiErrorShape: Shape<ApiErrorBody> = { error: 'required' };
export const clockReadingShape: Shape<ClockReading> = { now: 'required' };

export const snapshotViewShape: Shape<SnapshotView> = {
  id: 'required',
  camera: 'required',
  event_id: 'optional',
  taken_at: 'required',
  width: 'required',
  height: 'required',
  size_bytes: 'required',
  url: 'required',
};
export const cameraViewShape: Shape<CameraView> = {
  id: 'required',
  device: 'required',
  live: 'required',
  stream_url: 'required',
  last_snapshot: 'optional',
  clips: 'required',
};
export const snapshotPageShape: Shape<SnapshotPage> = { items: 'required', next_cursor: 'optional' };
export const clipViewShape: Shape<ClipView> = {
  id: 'required',
  camera: 'required',
  event_ids: 'required',
  started_at: 'required',
  ended_at: 'required',
  duration_ms: 'required',
  trigger_offsets_ms: 'optional',
  size_bytes: 'required',
  sha256: 'required',
  codec: 'required',
  width: 'required',
  height: 'required',
  available: 'required',
  url: 'optional',
};
export const eventMediaShape: Shape<EventMedia> = { event_id: 'required', clip: 'optional', snapshot: 'optional' };
export const mediaReadyShape: Shape<MediaReady> = { kind: 'required', id: 'required', camera: 'required', event_ids: 'required' };
