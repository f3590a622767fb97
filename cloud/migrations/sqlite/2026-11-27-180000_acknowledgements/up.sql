-- Alerts acknowledged from the console: when, and by which user (the first acknowledgement is kept).
ALTER TABLE events ADD COLUMN acknowledged_at BIGINT;
ALTER TABLE events ADD COLUMN acknowledged_by TEXT;
