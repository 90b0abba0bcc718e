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

-- RFC 9126 §6: a client registered with this flag must push its
-- authorization requests (/oauth2/par); a plain /oauth2/authorize is refused.
ALTER TABLE clients ADD COLUMN require_pushed_authorization_requests BOOLEAN NOT NULL DEFAULT 0;

-- +goose Down
ALTER TABLE clients DROP COLUMN require_pushed_authorization_requests;
DROP TABLE consents;
