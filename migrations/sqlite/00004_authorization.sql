-- +goose Up
-- Authorization codes, known only by the HMAC signature of the code (never
-- the code). session_id names the grant session the exchange will create
-- (sid of every token issued under it); no foreign key, because that row is
-- created at the exchange. A used code keeps its row (used_at set) until it
-- expires, so that presenting it again is recognised as reuse and the
-- tokens of its grant can be revoked.
CREATE TABLE authorization_codes (
    signature    TEXT PRIMARY KEY,
    session_id   TEXT NOT NULL,
    client_id    TEXT NOT NULL,
    request_data BLOB NOT NULL,
    created_at   DATETIME NOT NULL,
    expires_at   DATETIME NOT NULL,
    used_at      DATETIME
);
CREATE INDEX authorization_codes_session_id ON authorization_codes (session_id);
CREATE INDEX authorization_codes_expires_at ON authorization_codes (expires_at);

-- PKCE requests, keyed by the signature of their authorization code.
CREATE TABLE pkce_requests (
    signature    TEXT PRIMARY KEY,
    request_data BLOB NOT NULL,
    expires_at   DATETIME NOT NULL
);
CREATE INDEX pkce_requests_expires_at ON pkce_requests (expires_at);

-- OpenID Connect requests, keyed by the SHA-256 of the raw authorization
-- code (fosite hands these methods the code itself; the caller hashes it).
CREATE TABLE oidc_requests (
    code_hash    TEXT PRIMARY KEY,
    request_data BLOB NOT NULL,
    expires_at   DATETIME NOT NULL
);
CREATE INDEX oidc_requests_expires_at ON oidc_requests (expires_at);

-- Pushed authorization requests, keyed by a hash of the request_uri, taken
-- (read and deleted) on first use.
CREATE TABLE par_requests (
    request_uri_hash TEXT PRIMARY KEY,
    client_id        TEXT NOT NULL,
    request_data     BLOB NOT NULL,
    expires_at       DATETIME NOT NULL
);
CREATE INDEX par_requests_expires_at ON par_requests (expires_at);

-- Revoked JWT access tokens by jti, kept until the token's own expiry:
-- after that the token is refused anyway.
CREATE TABLE revoked_access_tokens (
    jti        TEXT PRIMARY KEY,
    expires_at DATETIME NOT NULL,
    revoked_at DATETIME NOT NULL
);
CREATE INDEX revoked_access_tokens_expires_at ON revoked_access_tokens (expires_at);

-- Browser (login) sessions at the authorization server, keyed by the
-- SHA-256 of the cookie value (the cookie itself is never stored). No
-- foreign key to users, for the reason given for grant_sessions.
CREATE TABLE browser_sessions (
    id_hash      TEXT PRIMARY KEY,
    user_id      TEXT NOT NULL,
    created_at   DATETIME NOT NULL,
    auth_time    DATETIME NOT NULL,
    last_seen_at DATETIME NOT NULL,
    expires_at   DATETIME NOT NULL,
    revoked_at   DATETIME,
    user_agent   TEXT NOT NULL DEFAULT '',
    ip           TEXT NOT NULL DEFAULT ''
);
CREATE INDEX browser_sessions_user_id ON browser_sessions (user_id);
CREATE INDEX browser_sessions_expires_at ON browser_sessions (expires_at);

-- +goose Down
DROP TABLE browser_sessions;
DROP TABLE revoked_access_tokens;
DROP TABLE par_requests;
DROP TABLE oidc_requests;
DROP TABLE pkce_requests;
DROP TABLE authorization_codes;
