DROP INDEX events_device_occurred_at;
DROP INDEX events_occurred_at;
CREATE INDEX events_newest_first ON events (occurred_at DESC, id DESC);
CREATE INDEX events_device_newest_first ON events (device, occurred_at DESC, id DESC);
ALTER TABLE events ADD CONSTRAINT events_device_fkey FOREIGN KEY (device) REFERENCES devices (id);
ALTER TABLE devices DROP COLUMN max_seq;
