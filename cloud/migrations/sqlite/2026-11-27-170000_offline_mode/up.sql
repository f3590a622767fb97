-- Offline mode: corrected event times, gap records, and what a device says about its link and clock.

-- The device's time corrected by the offset it measured against the cloud (occurred_at when none
-- was measured). Listings, filters and cursors use it.
ALTER TABLE events ADD COLUMN corrected_at BIGINT NOT NULL DEFAULT 0;
UPDATE events SET corrected_at = occurred_at;
DROP INDEX events_occurred_at;
DROP INDEX events_device_occurred_at;
CREATE INDEX events_corrected_at ON events (corrected_at);
CREATE INDEX events_device_corrected_at ON events (device, corrected_at);

ALTER TABLE devices ADD COLUMN api_reachable BOOLEAN;
ALTER TABLE devices ADD COLUMN clock_offset_ms BIGINT;

-- Events a device dropped from its outbox (its size or age bound), as its gap records said: the
-- device's acked_seq passes over these seqs. A record extended by the device keeps its first_seq.
CREATE TABLE device_gaps (
    device TEXT NOT NULL,
    first_seq BIGINT NOT NULL,
    last_seq BIGINT NOT NULL,
    reason TEXT NOT NULL,
    oldest_at BIGINT NOT NULL,
    newest_at BIGINT NOT NULL,
    dropped_at BIGINT NOT NULL,
    received_at BIGINT NOT NULL,
    PRIMARY KEY (device, first_seq)
);
