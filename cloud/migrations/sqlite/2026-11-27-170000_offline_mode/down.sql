DROP TABLE device_gaps;
ALTER TABLE devices DROP COLUMN clock_offset_ms;
ALTER TABLE devices DROP COLUMN api_reachable;
DROP INDEX events_device_corrected_at;
DROP INDEX events_corrected_at;
CREATE INDEX events_occurred_at ON events (occurred_at);
CREATE INDEX events_device_occurred_at ON events (device, occurred_at);
ALTER TABLE events DROP COLUMN corrected_at;
