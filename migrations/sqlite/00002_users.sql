-- +goose Up
-- People who sign in. username is stored normalized (Unicode NFC, case
-- folded), so "Alice" and "alice" are one user; password_hash is an argon2id
-- PHC string that carries its own parameters.
CREATE TABLE users (
    id             TEXT PRIMARY KEY,
    username       TEXT NOT NULL UNIQUE,
    password_hash  TEXT NOT NULL,
    email          TEXT NOT NULL DEFAULT '',
    email_verified BOOLEAN NOT NULL DEFAULT 0,
    name           TEXT NOT NULL DEFAULT '',
    created_at     DATETIME NOT NULL,
    updated_at     DATETIME NOT NULL
);

-- +goose Down
DROP TABLE users;
