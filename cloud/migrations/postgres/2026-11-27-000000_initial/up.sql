-- Vigie's store on PostgreSQL. Times are milliseconds since the Unix epoch (BIGINT) and ids are text
-- with the "C" collation, so rows sort byte by byte exactly as they do on SQLite.

CREATE TABLE devices (
    id TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    -- SHA-256 (hex) of the device's opaque token; NULL until the device is provisioned.
    token_hash TEXT UNIQUE,
    -- From status messages and the last will: online, offline, or a state a newer device reports.
    state TEXT NOT NULL,
    last_seen BIGINT,
    queue_depth BIGINT NOT NULL DEFAULT 0,
    uptime_s BIGINT NOT NULL DEFAULT 0,
    clock_synced BOOLEAN NOT NULL DEFAULT FALSE,
    -- Highest seq such that every seq from 1 to it is stored.
    acked_seq BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);

CREATE TABLE events (
    id TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    device TEXT COLLATE "C" NOT NULL REFERENCES devices (id),
    seq BIGINT NOT NULL,
    sensor TEXT NOT NULL,
    kind TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    clock_synced BOOLEAN NOT NULL,
    received_at BIGINT NOT NULL,
    schema_version BIGINT NOT NULL
);

-- The listing order (newest first), with and without a device filter.
CREATE INDEX events_newest_first ON events (occurred_at DESC, id DESC);
CREATE INDEX events_device_newest_first ON events (device, occurred_at DESC, id DESC);
-- The acked_seq walk.
CREATE INDEX events_device_seq ON events (device, seq);

CREATE TABLE users (
    username TEXT NOT NULL PRIMARY KEY,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('admin', 'viewer')),
    created_at BIGINT NOT NULL
);
