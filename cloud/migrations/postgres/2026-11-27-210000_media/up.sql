-- Video (issue 4): clips announced on video/{device}/captured or by an upload manifest, the events
-- they cover, snapshots, and the state of resumable uploads.

-- One row per clip the cloud knows of. `manifest` is the announced metadata as received (JSON);
-- the columns beside it are what queries need. `available`: the file is in the media store.
-- `deleted_at`: an admin removed the file (the row stays so a late upload does not bring it back).
CREATE TABLE clips (
    id TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    device TEXT COLLATE "C" NOT NULL,
    started_at BIGINT NOT NULL,
    size_bytes BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    manifest TEXT NOT NULL,
    announced_at BIGINT NOT NULL,
    available BOOLEAN NOT NULL DEFAULT FALSE,
    stored_at BIGINT,
    deleted_at BIGINT
);
CREATE INDEX clips_device ON clips (device, started_at DESC, id DESC);

-- Which events a clip covers (a clip may cover several triggers).
CREATE TABLE clip_events (
    clip_id TEXT COLLATE "C" NOT NULL,
    event_id TEXT COLLATE "C" NOT NULL,
    PRIMARY KEY (clip_id, event_id)
);
CREATE INDEX clip_events_event ON clip_events (event_id);

-- Snapshots stored in the media store (a row is written once the JPEG is there).
CREATE TABLE snapshots (
    id TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    device TEXT COLLATE "C" NOT NULL,
    event_id TEXT COLLATE "C",
    taken_at BIGINT NOT NULL,
    width BIGINT NOT NULL,
    height BIGINT NOT NULL,
    size_bytes BIGINT NOT NULL,
    stored_at BIGINT NOT NULL
);
CREATE INDEX snapshots_device ON snapshots (device, taken_at DESC, id DESC);
CREATE INDEX snapshots_event ON snapshots (event_id);

-- Resumable uploads (PUT/PATCH /api/media/{id}): `received` counts the bytes fsynced in the
-- staging file; `complete` once the file matched its SHA-256 and is in the media store.
CREATE TABLE uploads (
    id TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    device TEXT COLLATE "C" NOT NULL,
    kind TEXT NOT NULL,
    manifest TEXT NOT NULL,
    size_bytes BIGINT NOT NULL,
    sha256 TEXT NOT NULL,
    received BIGINT NOT NULL DEFAULT 0,
    complete BOOLEAN NOT NULL DEFAULT FALSE,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL
);
