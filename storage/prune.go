package storage

import (
	"context"
	"time"
)

// pruneBatch bounds one DELETE so pruning never holds long locks or a big
// transaction while the server is busy.
const pruneBatch = 1000

// PruneExpired deletes rows that expired before now from every table with an
// expiry (today: used client-assertion ids), in batches, and returns how many
// went. It is safe to run from several processes at once: a row is deleted
// once, and on PostgreSQL a process that finds another pruning skips the
// round.
func (s *Store) PruneExpired(ctx context.Context, now time.Time) (int64, error) {
	var total int64
	run := func(ctx context.Context) error {
		for {
			n, err := s.pruneOnce(ctx, "used_jtis", "jti", now)
			total += n
			if err != nil || n < pruneBatch {
				return err
			}
		}
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
		now.UTC(), pruneBatch)
	if res.Error != nil {
		return 0, translate("prune "+table, res.Error)
	}
	return res.RowsAffected, nil
}
