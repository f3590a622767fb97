-- Issue 12: disabled users, refresh-token reuse detection, and login locks per (user, address).

-- A disabled user cannot log in, and every session of theirs is refused (the role and this column
-- are read with the session on every request).
ALTER TABLE users ADD COLUMN disabled_at BIGINT;

-- Every refresh token a session has used (its SHA-256). Presenting one again is a replay: the
-- session is revoked, so the thief's and the owner's newest tokens both stop, and `refresh_reuse`
-- goes to the audit trail. Rows go with their session's expiry (swept at rotation).
CREATE TABLE used_refresh_tokens (
    hash TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    session_id TEXT COLLATE "C" NOT NULL,
    expires_at BIGINT NOT NULL
);
CREATE INDEX used_refresh_tokens_expiry ON used_refresh_tokens (expires_at);

-- Failed logins of a user from one client address (an IPv4 address or an IPv6 /64), the lock they
-- earned, and when this address last logged in as this user. The user-wide lock (users.locked_until)
-- only stops addresses that never succeeded, so nobody can lock a user out of their usual place.
CREATE TABLE login_addresses (
    username TEXT COLLATE "C" NOT NULL,
    address TEXT COLLATE "C" NOT NULL,
    failed_logins BIGINT NOT NULL DEFAULT 0,
    locked_until BIGINT,
    succeeded_at BIGINT,
    PRIMARY KEY (username, address)
);
