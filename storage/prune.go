package storage

import (
	"context"
	"time"
)

// pruneBatch bounds one DELETE so pruning never holds long locks or a big
// transaction while the server is busy.
const pruneBatch = 1000

// endedSessionRetention is how long a grant session stays after it ended
// (revoked, or idle- or absolute-expired) before pruning deletes it and, by
// cascade, its refresh tokens: for a day, the admin session view can still
// say why a session ended, and a token of it presented again is answered as
// revoked rather than unknown.
const endedSessionRetention = 24 * time.Hour

// PruneOptions carries the policy pruning needs from the configuration.
type PruneOptions struct {
	// ReuseWindow is the longest refresh-token reuse window in use
	// (OAUTHD_REFRESH_REUSE_WINDOW): sealed successor tokens kept for replay
	// are cleared once it has passed, so a database dump holds no usable
	// tokens for longer than that.
	ReuseWindow time.Duration
}

// PruneExpired removes what expired before now, in batches, and returns how
// many rows it deleted or cleared:
//   - used client-assertion ids past their expiry;
//   - sealed successors of refresh tokens rotated at least
//     opts.ReuseWindow ago (the column is cleared; the row stays);
//   - refresh tokens past their expiry;
//   - grant sessions that ended more than endedSessionRetention ago, with
//     their refresh tokens (ON DELETE CASCADE);
//   - authorization codes past their expiry, used or not (a used code keeps
//     its row until then, so that a replay is recognised as reuse), and the
//     OpenID Connect requests of codes (and PKCE requests that versions
//     before the code became its own PKCE binding left);
//   - pushed authorization requests, denied access-token ids and browser
//     sessions past their expiry (revoked browser sessions too go only
//     then).
//
// It is safe to run from several processes at once: a row is deleted once,
// and on PostgreSQL a process that finds another pruning skips the round.
func (s *Store) PruneExpired(ctx context.Context, now time.Time, opts PruneOptions) (int64, error) {
	now = now.UTC()
	window := max(opts.ReuseWindow, 0)
	var total int64
	steps := []func(ctx context.Context) (int64, error){
		func(ctx context.Context) (int64, error) { return s.pruneOnce(ctx, "used_jtis", "jti", now) },
		func(ctx context.Context) (int64, error) { return s.clearSealedSuccessors(ctx, now.Add(-window)) },
		func(ctx context.Context) (int64, error) { return s.pruneOnce(ctx, "refresh_tokens", "signature", now) },
		func(ctx context.Context) (int64, error) {
			return s.pruneEndedSessions(ctx, now.Add(-endedSessionRetention))
		},
	}
	// Tables whose rows simply go once expired: table, primary key.
	for _, tk := range [][2]string{
		{"authorization_codes", "signature"},
		{"pkce_requests", "signature"},
		{"oidc_requests", "code_hash"},
		{"par_requests", "request_uri_hash"},
		{"revoked_access_tokens", "jti"},
		{"browser_sessions", "id_hash"},
	} {
		steps = append(steps, func(ctx context.Context) (int64, error) { return s.pruneOnce(ctx, tk[0], tk[1], now) })
	}
	run := func(ctx context.Context) error {
		for _, step := range steps {
			for {
				n, err := step(ctx)
				total += n
				if err != nil {
					return err
				}
				if n < pruneBatch {
					break
				}
			}
		}
		return nil
	}
	if s.dialect != Postgres {
		return total, run(ctx)
	}
	// A session-level advisory lock on one pooled connection: other
	// processes skip instead of queueing behind it.
	conn, err := s.sqlDB.Conn(ctx)
	if err != nil {
		return 0, translate("prune", err)
	}
	defer conn.Close()
	const lockID = 0x6f61757468 + 1 // next to the signing-key lock id
	var got bool
	if err := conn.QueryRowContext(ctx, "SELECT pg_try_advisory_lock($1)", lockID).Scan(&got); err != nil {
		return 0, translate("prune lock", err)
	}
	if !got {
		return 0, nil
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", lockID) //nolint:errcheck // released with the session anyway
	return total, run(ctx)
}

// pruneOnce deletes up to pruneBatch expired rows of table, keyed by key.
// table and key are constants of this package, never input.
func (s *Store) pruneOnce(ctx context.Context, table, key string, now time.Time) (int64, error) {
	res := s.conn(ctx).Exec(
		"DELETE FROM "+table+" WHERE "+key+" IN (SELECT "+key+" FROM "+table+" WHERE expires_at <= ? LIMIT ?)",
		now, pruneBatch)
	if res.Error != nil {
		return 0, translate("prune "+table, res.Error)
	}
	return res.RowsAffected, nil
}

// clearSealedSuccessors drops up to pruneBatch sealed successor tokens of
// refresh tokens rotated at or before cutoff: from then on the reuse window
// is closed and RotateRefreshToken no longer replays them.
func (s *Store) clearSealedSuccessors(ctx context.Context, cutoff time.Time) (int64, error) {
	res := s.conn(ctx).Exec(
		"UPDATE refresh_tokens SET successor_sealed = NULL WHERE signature IN "+
			"(SELECT signature FROM refresh_tokens WHERE successor_sealed IS NOT NULL AND rotated_at <= ? LIMIT ?)",
		cutoff, pruneBatch)
	if res.Error != nil {
		return 0, translate("prune sealed refresh tokens", res.Error)
	}
	return res.RowsAffected, nil
}

// pruneEndedSessions deletes up to pruneBatch grant sessions that were
// revoked or expired at or before cutoff; their refresh tokens go by cascade
// (and are not counted).
func (s *Store) pruneEndedSessions(ctx context.Context, cutoff time.Time) (int64, error) {
	// A session's idle expiry never passes its absolute one (every writer
	// caps it), so idle_expires_at alone finds the sessions that ended by
	// time, through its index.
	res := s.conn(ctx).Exec(
		"DELETE FROM grant_sessions WHERE id IN (SELECT id FROM grant_sessions "+
			"WHERE revoked_at <= ? OR idle_expires_at <= ? LIMIT ?)",
		cutoff, cutoff, pruneBatch)
	if res.Error != nil {
		return 0, translate("prune grant sessions", res.Error)
	}
	return res.RowsAffected, nil
}
