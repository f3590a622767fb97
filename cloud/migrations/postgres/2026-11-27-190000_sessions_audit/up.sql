-- Security: login sessions (refresh tokens, revocation), login lockout, and the audit trail.

-- One row per login. The access token names its session (`sid`); a revoked or expired session
-- refuses its access tokens at once and its refresh token. Only the SHA-256 of the current refresh
-- token is kept; presenting an earlier one (a replay) revokes the session.
CREATE TABLE sessions (
    id TEXT COLLATE "C" NOT NULL PRIMARY KEY,
    username TEXT NOT NULL,
    refresh_hash TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    revoked_at BIGINT
);
CREATE INDEX sessions_username ON sessions (username);

-- Consecutive failed logins of a user, and until when the user is locked out.
ALTER TABLE users ADD COLUMN failed_logins BIGINT NOT NULL DEFAULT 0;
ALTER TABLE users ADD COLUMN locked_until BIGINT;

-- Who did what, when: logins, failures, lockouts, logouts, user and device changes,
-- acknowledgements. Never holds a secret.
CREATE TABLE audit_log (
    id BIGSERIAL PRIMARY KEY,
    at BIGINT NOT NULL,
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    target TEXT,
    detail TEXT,
    source TEXT
);
