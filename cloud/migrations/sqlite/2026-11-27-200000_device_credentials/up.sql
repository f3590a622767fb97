-- Each device's MQTT identity: its password as Mosquitto hashes it (PBKDF2-SHA512, `$7$` format),
-- from which `vigie-cloud broker-config` writes the broker's password file; and when it was revoked
-- (its token and MQTT password are then cleared).
ALTER TABLE devices ADD COLUMN mqtt_password_hash TEXT;
ALTER TABLE devices ADD COLUMN revoked_at BIGINT;
