ALTER TABLE events DROP COLUMN acknowledged_by;
ALTER TABLE events DROP COLUMN acknowledged_at;
