-- Ingest speed: the same change as on PostgreSQL, for the same schema on both backends.

-- Highest seq ever offered (stored or duplicate): when acked_seq reaches it, the store has nothing
-- left to walk and does not read the events back.
ALTER TABLE devices ADD COLUMN max_seq BIGINT NOT NULL DEFAULT 0;
UPDATE devices SET max_seq = COALESCE((SELECT MAX(seq) FROM events WHERE events.device = devices.id), 0);

-- No FOREIGN KEY from events to devices (the store upserts the device in the same transaction),
-- and narrower listing indexes. SQLite drops a constraint by rebuilding the table.
CREATE TABLE events_new (
    id TEXT NOT NULL PRIMARY KEY,
    device TEXT NOT NULL,
    seq BIGINT NOT NULL,
    sensor TEXT NOT NULL,
    kind TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    clock_synced BOOLEAN NOT NULL,
    received_at BIGINT NOT NULL,
    schema_version BIGINT NOT NULL
);
INSERT INTO events_new
    SELECT id, device, seq, sensor, kind, occurred_at, clock_synced, received_at, schema_version
    FROM events;
DROP TABLE events;
ALTER TABLE events_new RENAME TO events;
CREATE INDEX events_occurred_at ON events (occurred_at);
CREATE INDEX events_device_occurred_at ON events (device, occurred_at);
CREATE INDEX events_device_seq ON events (device, seq);
