-- Issue 12: disabled users, refresh-token reuse detection, and login locks per (user, address).
-- (The PostgreSQL migration of the same name explains each table.)
ALTER TABLE users ADD COLUMN disabled_at BIGINT;

CREATE TABLE used_refresh_tokens (
    hash TEXT NOT NULL PRIMARY KEY,
    session_id TEXT NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX used_refresh_tokens_expiry ON used_refresh_tokens (expires_at);

CREATE TABLE login_addresses (
    username TEXT NOT NULL,
    address TEXT NOT NULL,
    failed_logins BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT,
    succeeded_at BIGINT,
    PRIMARY KEY (username, address)
);
