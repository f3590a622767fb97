DROP TABLE login_addresses;
DROP TABLE used_refresh_tokens;
ALTER TABLE users DROP COLUMN disabled_at;
