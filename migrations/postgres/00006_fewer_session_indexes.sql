-- +goose Up
-- Two indexes of grant_sessions that no query needs, yet every code
-- exchange writes: nothing looks sessions up by client, and pruning finds
-- time-ended sessions by idle_expires_at alone, as a session's idle expiry
-- never passes its absolute expiry (storage keeps it so).
DROP INDEX grant_sessions_client_id;
DROP INDEX grant_sessions_absolute_expires_at;

-- +goose Down
CREATE INDEX grant_sessions_absolute_expires_at ON grant_sessions (absolute_expires_at);
CREATE INDEX grant_sessions_client_id ON grant_sessions (client_id);
