-- +goose Up
-- Registered OAuth 2.0 clients (RFC 7591 metadata). Secrets are stored only as a
-- keyed hash (HMAC-SHA-256 under a key derived from the system secret).
CREATE TABLE clients (
    id                           TEXT PRIMARY KEY,
    name                         TEXT NOT NULL DEFAULT '',
    secret_hash                  TEXT NOT NULL DEFAULT '',
    previous_secret_hash         TEXT NOT NULL DEFAULT '',
    previous_secret_expires_at   DATETIME,
    redirect_uris                TEXT NOT NULL DEFAULT '[]',
    post_logout_redirect_uris    TEXT NOT NULL DEFAULT '[]',
    grant_types                  TEXT NOT NULL DEFAULT '[]',
    response_types               TEXT NOT NULL DEFAULT '[]',
    scope                        TEXT NOT NULL DEFAULT '',
    audience                     TEXT NOT NULL DEFAULT '[]',
    token_endpoint_auth_method   TEXT NOT NULL,
    skip_consent                 BOOLEAN NOT NULL DEFAULT 0,
    allow_introspection          BOOLEAN NOT NULL DEFAULT 0,
    created_at                   DATETIME NOT NULL,
    updated_at                   DATETIME NOT NULL
);

-- Signing keys. The private key is encrypted at rest (AES-256-GCM under a key
-- derived from the system secret, kid as associated data). The key of an
-- algorithm that signs is the one with the latest activates_at in the past,
-- so processes sharing the database agree without coordination.
CREATE TABLE signing_keys (
    kid          TEXT PRIMARY KEY,
    alg          TEXT NOT NULL,
    private_key  BLOB NOT NULL,
    public_jwk   TEXT NOT NULL,
    created_at   DATETIME NOT NULL,
    activates_at DATETIME NOT NULL,
    -- When set, the key leaves the JWKS at this time: a successor has been
    -- scheduled and every token this key signed will have expired by then.
    retires_at   DATETIME
);
CREATE INDEX signing_keys_alg_activates_at ON signing_keys (alg, activates_at);

-- JWT ids of client assertions (private_key_jwt), kept until they expire so an
-- assertion cannot be replayed.
CREATE TABLE used_jtis (
    jti        TEXT PRIMARY KEY,
    expires_at DATETIME NOT NULL
);
CREATE INDEX used_jtis_expires_at ON used_jtis (expires_at);

-- +goose Down
DROP TABLE used_jtis;
DROP TABLE signing_keys;
DROP TABLE clients;
