package storage

import (
	"context"
	"time"
)

// SQLite's WAL is copied back into the database file by checkpoints. Left
// to SQLite, the write that takes the WAL past 1,000 pages does it, with a
// flush to disk, while it holds the one write lock: under load every
// sixtieth of a second a write waits for the disk, and every writer behind
// it. Instead the connections never checkpoint on their own
// (wal_autocheckpoint(0), see Open) and this goroutine does, beside the
// writers: a PASSIVE checkpoint takes no lock that writers need and copies
// what no reader still needs.

// checkpointInterval is how often the WAL is checkpointed; a busy server
// writes a few MiB of WAL in that time.
const checkpointInterval = 100 * time.Millisecond

// checkpointLoop runs until quit, then checkpoints once more.
func (s *Store) checkpointLoop(quit <-chan struct{}, ended chan<- struct{}) {
	defer close(ended)
	t := time.NewTicker(checkpointInterval)
	defer t.Stop()
	for {
		select {
		case <-quit:
			s.checkpoint("TRUNCATE")
			return
		case <-t.C:
			s.checkpoint("PASSIVE")
		}
	}
}

// checkpoint runs one checkpoint of the given mode; a failure is logged
// (the next one tries again, and the WAL only grows meanwhile).
func (s *Store) checkpoint(mode string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.sqlDB.ExecContext(ctx, "PRAGMA wal_checkpoint("+mode+")"); err != nil && s.logger != nil {
		s.logger.Warn("SQLite WAL checkpoint failed", "mode", mode, "err", err)
	}
}
