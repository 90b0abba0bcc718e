-- +goose Up
-- Grant sessions: one per authorization a user gives a client (a code
-- exchange starts it). The id is the sid claim of every token issued under
-- it, and the family id of its refresh tokens.
--
-- No foreign key to users or clients, on purpose: deleting a client or a user
-- is one statement that must not fail (RESTRICT) nor silently erase the
-- audit trail of who was signed in (CASCADE). A session of a deleted client
-- is unusable anyway (every token request authenticates the client first);
-- whoever deletes a user revokes the user's sessions first
-- (RevokeUserGrantSessions); the pruning job removes sessions a day after
-- they end.
CREATE TABLE grant_sessions (
    id                  TEXT PRIMARY KEY,
    user_id             TEXT NOT NULL,
    client_id           TEXT NOT NULL,
    scope               TEXT NOT NULL DEFAULT '',
    audience            TEXT NOT NULL DEFAULT '[]',
    auth_time           DATETIME NOT NULL,
    created_at          DATETIME NOT NULL,
    last_used_at        DATETIME NOT NULL,
    -- The session ends at the earlier of the two: idle_expires_at moves on
    -- every refresh (never past absolute_expires_at), absolute_expires_at
    -- never moves.
    idle_expires_at     DATETIME NOT NULL,
    absolute_expires_at DATETIME NOT NULL,
    revoked_at          DATETIME,
    revoked_reason      TEXT NOT NULL DEFAULT '',
    user_agent          TEXT NOT NULL DEFAULT '',
    ip                  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX grant_sessions_user_id ON grant_sessions (user_id);
CREATE INDEX grant_sessions_client_id ON grant_sessions (client_id);
CREATE INDEX grant_sessions_idle_expires_at ON grant_sessions (idle_expires_at);
CREATE INDEX grant_sessions_absolute_expires_at ON grant_sessions (absolute_expires_at);
-- Pruning finds revoked sessions by revocation time; most sessions are not
-- revoked, so the index holds only those that are.
CREATE INDEX grant_sessions_revoked_at ON grant_sessions (revoked_at) WHERE revoked_at IS NOT NULL;

-- Refresh tokens, one family per grant session. Only the HMAC signature of
-- the opaque token is stored, never the token. A rotated token stays (state
-- 'rotated') until it expires, to recognise its reuse as theft; for the reuse
-- window it also keeps its child token, encrypted by the caller
-- (successor_sealed), so a repeated refresh gets the same child. The pruning
-- job clears successor_sealed after the window. SQLite enforces the foreign
-- key (and its cascade) only with PRAGMA foreign_keys=1, which storage.Open
-- sets on every connection.
CREATE TABLE refresh_tokens (
    signature           TEXT PRIMARY KEY,
    session_id          TEXT NOT NULL REFERENCES grant_sessions (id) ON DELETE CASCADE,
    client_id           TEXT NOT NULL,
    request_data        BLOB NOT NULL,
    created_at          DATETIME NOT NULL,
    expires_at          DATETIME NOT NULL,
    state               TEXT NOT NULL CHECK (state IN ('active', 'rotated', 'revoked')),
    rotated_at          DATETIME,
    successor_signature TEXT NOT NULL DEFAULT '',
    successor_sealed    BLOB
);
CREATE INDEX refresh_tokens_session_id ON refresh_tokens (session_id);
CREATE INDEX refresh_tokens_expires_at ON refresh_tokens (expires_at);
-- At most one valid refresh token per family, guaranteed by the database
-- (SQLite has partial indexes since 3.8.0, same syntax as PostgreSQL).
CREATE UNIQUE INDEX refresh_tokens_one_active_per_session ON refresh_tokens (session_id) WHERE state = 'active';
-- Pruning clears sealed successors after the reuse window; only rows that
-- still hold one are indexed.
CREATE INDEX refresh_tokens_sealed_rotated_at ON refresh_tokens (rotated_at) WHERE successor_sealed IS NOT NULL;

-- +goose Down
DROP TABLE refresh_tokens;
DROP TABLE grant_sessions;
