ALTER TABLE devices DROP COLUMN revoked_at;
ALTER TABLE devices DROP COLUMN mqtt_password_hash;
