-- +goose Up
-- Remembered consent: a user allowed a client these scopes (space-separated,
-- sorted). A later request for a subset of them skips the consent page. The
-- row is deleted when the user revokes a session of that client from the
-- account page, so the next sign-in asks again. No foreign keys, for the
-- reason given for grant_sessions.
CREATE TABLE consents (
    user_id    TEXT NOT NULL,
    client_id  TEXT NOT NULL,
    scope      TEXT NOT NULL DEFAULT '',
    granted_at DATETIME NOT NULL,
    PRIMARY KEY (user_id, client_id)
);

-- +goose Down
DROP TABLE consents;
