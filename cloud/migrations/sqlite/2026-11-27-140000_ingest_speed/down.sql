CREATE TABLE events_old (
    id TEXT NOT NULL PRIMARY KEY,
    device TEXT NOT NULL REFERENCES devices (id),
    seq BIGINT NOT NULL,
    sensor TEXT NOT NULL,
    kind TEXT NOT NULL,
    occurred_at BIGINT NOT NULL,
    clock_synced BOOLEAN NOT NULL,
    received_at BIGINT NOT NULL,
    schema_version BIGINT NOT NULL
);
INSERT INTO events_old
    SELECT id, device, seq, sensor, kind, occurred_at, clock_synced, received_at, schema_version
    FROM events;
DROP TABLE events;
ALTER TABLE events_old RENAME TO events;
CREATE INDEX events_newest_first ON events (occurred_at DESC, id DESC);
CREATE INDEX events_device_newest_first ON events (device, occurred_at DESC, id DESC);
CREATE INDEX events_device_seq ON events (device, seq);
ALTER TABLE devices DROP COLUMN max_seq;
