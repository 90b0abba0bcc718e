package main

import (
	"context"
	"database/sql"
	"fmt"
	"io"
	"log/slog"
	"math"
	"time"

	"github.com/oauthd/oauthd/storage"
)

// --seed-sessions: stored grant sessions, so that the scenarios run
// against tables of a realistic size. The rows go straight into the
// server's database with set-based statements (thousands of times faster
// than a million code exchanges); what they hold is modelled on a real
// grant that bench makes first through the server: the same client,
// scope, audience, user agent and request data (the serialized request of
// a real refresh token, the largest column), with random session ids and
// token signatures of the real lengths, so the index entries land all over
// the B-trees as real ones do. Sessions were created over the last 30
// days, last used between then and now, and expire as the server's
// settings say; users have three sessions each. Nobody holds their tokens:
// they are never used, only stored.

// benchMaxSeed bounds --seed-sessions.
const benchMaxSeed = 100_000_000

// seedReport is what seeding did and how long it took.
type seedReport struct {
	Sessions int64 `json:"sessions"`
	// InsertS is the time of the inserts (both tables); FinishS of what
	// followed: VACUUM ANALYZE and a CHECKPOINT on PostgreSQL, a WAL
	// checkpoint on SQLite.
	InsertS    float64 `json:"insert_s"`
	FinishS    float64 `json:"finish_s"`
	Finish     string  `json:"finish"`
	RowsPerSec float64 `json:"sessions_per_second"`
	// GrantSessions and RefreshTokens are the tables' row counts after.
	GrantSessions int64 `json:"grant_sessions_rows"`
	RefreshTokens int64 `json:"refresh_tokens_rows"`
}

func (r *seedReport) text() string {
	return fmt.Sprintf("%d grant sessions with an active refresh token each, inserted in %.1fs (%.0f/s), %s %.1fs; tables now hold %d grant sessions, %d refresh tokens",
		r.Sessions, r.InsertS, r.RowsPerSec, r.Finish, r.FinishS, r.GrantSessions, r.RefreshTokens)
}

// seedTemplate is the real grant the seeded rows copy.
type seedTemplate struct {
	clientID, scope, audience, userAgent, ip string
	requestData                              []byte
	idleTTL, absTTL, tokenTTL                time.Duration
}

// seed inserts n grant sessions into the database at dsn (the server's).
func (t *benchTarget) seed(ctx context.Context, dsn string, n int64, progress io.Writer) (*seedReport, error) {
	u, err := t.newUser(ctx, "seed")
	if err != nil {
		return nil, err
	}
	g, err := t.grant(ctx, u, benchUserScope)
	if err != nil {
		return nil, fmt.Errorf("seed: the template grant: %w", err)
	}
	st, err := storage.Open(ctx, storage.Config{DSN: dsn, MaxOpenConns: 2, BusyTimeout: time.Minute}, slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	defer st.Close()
	db := st.SQLDB()
	tpl, err := benchSeedTemplate(ctx, db, g.SID)
	if err != nil {
		return nil, err
	}

	fmt.Fprintf(progress, "bench: seeding %d grant sessions (%s)\n", n, st.Dialect())
	rep := &seedReport{Sessions: n}
	start := time.Now()
	if st.Dialect() == storage.Postgres {
		err = benchSeedPostgres(ctx, db, n, tpl, progress)
	} else {
		err = benchSeedSQLite(ctx, db, n, tpl, progress)
	}
	if err != nil {
		return nil, fmt.Errorf("seed: %w", err)
	}
	rep.InsertS = math.Round(time.Since(start).Seconds()*10) / 10
	rep.RowsPerSec = math.Round(float64(n) / time.Since(start).Seconds())

	start = time.Now()
	if st.Dialect() == storage.Postgres {
		// What autovacuum would do soon anyway, and should not do during
		// the measurement: statistics for the planner, the visibility map.
		rep.Finish = "VACUUM ANALYZE"
		_, err = db.ExecContext(ctx, "VACUUM ANALYZE grant_sessions, refresh_tokens")
		if err == nil {
			// And the checkpoint the seeding's gigabyte of WAL would start
			// during the measurement. It needs a superuser or, from
			// PostgreSQL 15, pg_checkpoint; without, it is left to the
			// server (and said).
			if _, cerr := db.ExecContext(ctx, "CHECKPOINT"); cerr != nil {
				fmt.Fprintf(progress, "bench: seed: no CHECKPOINT after seeding (%v); the server's own may fall in the measurement\n", cerr)
			} else {
				rep.Finish = "VACUUM ANALYZE + CHECKPOINT"
			}
		}
	} else {
		rep.Finish = "WAL checkpoint"
		_, err = db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)")
	}
	if err != nil {
		return nil, fmt.Errorf("seed: %s: %w", rep.Finish, err)
	}
	rep.FinishS = math.Round(time.Since(start).Seconds()*10) / 10
	if err := db.QueryRowContext(ctx, "SELECT (SELECT COUNT(*) FROM grant_sessions), (SELECT COUNT(*) FROM refresh_tokens)").Scan(&rep.GrantSessions, &rep.RefreshTokens); err != nil {
		return nil, fmt.Errorf("seed: count: %w", err)
	}
	fmt.Fprintf(progress, "bench: seeded: %s\n", rep.text())
	return rep, nil
}

// benchSeedTemplate reads the rows of the real grant sid.
func benchSeedTemplate(ctx context.Context, db *sql.DB, sid string) (seedTemplate, error) {
	var tpl seedTemplate
	var created, used, idle, abs, tokCreated, tokExp time.Time
	err := db.QueryRowContext(ctx, `SELECT g.client_id, g.scope, g.audience, g.user_agent, g.ip, g.created_at, g.last_used_at,
		g.idle_expires_at, g.absolute_expires_at, t.request_data, t.created_at, t.expires_at
		FROM grant_sessions g JOIN refresh_tokens t ON t.session_id = g.id AND t.state = 'active' WHERE g.id = $1`, sid).
		Scan(&tpl.clientID, &tpl.scope, &tpl.audience, &tpl.userAgent, &tpl.ip, &created, &used, &idle, &abs, &tpl.requestData, &tokCreated, &tokExp)
	if err != nil {
		return tpl, fmt.Errorf("seed: read the template grant %s: %w", sid, err)
	}
	tpl.idleTTL, tpl.absTTL, tpl.tokenTTL = idle.Sub(used), abs.Sub(created), tokExp.Sub(tokCreated)
	return tpl, nil
}

// benchSeedPostgres inserts n sessions and their tokens, 100,000 per
// statement (each its own transaction): one INSERT ... SELECT FROM
// generate_series feeding the second INSERT through RETURNING.
func benchSeedPostgres(ctx context.Context, db *sql.DB, n int64, tpl seedTemplate, progress io.Writer) error {
	const batch = 100_000
	const q = `WITH s AS (
	SELECT i, c, c + random() * (now() - c) AS u
	FROM (SELECT i, now() - random() * interval '30 days' AS c FROM generate_series($1::bigint, $2::bigint) AS i) x
), g AS (
	INSERT INTO grant_sessions (id, user_id, client_id, scope, audience, auth_time, created_at, last_used_at,
		idle_expires_at, absolute_expires_at, user_agent, ip)
	SELECT 'gs_' || substr(translate(encode(sha256(convert_to(i::text || random()::text, 'UTF8')), 'base64'), '+/', '-_'), 1, 22),
		'bench-seed-' || md5((i / 3)::text), $3, $4, $5, c, c, u,
		LEAST(u + $6::bigint * interval '1 second', c + $7::bigint * interval '1 second'), c + $7::bigint * interval '1 second', $8, $9
	FROM s
	RETURNING id, client_id, last_used_at
)
INSERT INTO refresh_tokens (signature, session_id, client_id, request_data, created_at, expires_at, state)
SELECT rtrim(translate(encode(sha256(convert_to(id || random()::text, 'UTF8')), 'base64'), '+/', '-_'), '='),
	id, client_id, $10, last_used_at, last_used_at + $11::bigint * interval '1 second', 'active'
FROM g`
	for from := int64(1); from <= n; from += batch {
		to := min(from+batch-1, n)
		_, err := db.ExecContext(ctx, q, from, to, tpl.clientID, tpl.scope, tpl.audience,
			int64(tpl.idleTTL.Seconds()), int64(tpl.absTTL.Seconds()), tpl.userAgent, tpl.ip, tpl.requestData, int64(tpl.tokenTTL.Seconds()))
		if err != nil {
			return err
		}
		benchSeedProgress(progress, to, n)
	}
	return nil
}

// benchSeedSQLite inserts n sessions and their tokens in transactions of
// 50,000 (so the server's own writers never wait long): a recursive CTE
// makes the sessions, and the tokens follow for the rows past the largest
// rowid before the batch. Times are written as the Go driver writes them
// (UTC, "YYYY-MM-DD HH:MM:SS.SSS+00:00"), since SQLite compares them as text.
func benchSeedSQLite(ctx context.Context, db *sql.DB, n int64, tpl seedTemplate, progress io.Writer) error {
	const batch = 50_000
	at := func(expr string) string {
		return `strftime('%Y-%m-%d %H:%M:%f', ` + expr + `, 'unixepoch') || '+00:00'`
	}
	// The random draws are columns of the recursive CTE, whose rows SQLite
	// computes once: an expression with random() in a subquery would be
	// inlined and drawn again wherever it is used.
	sessions := `WITH RECURSIVE seq(i, c, f) AS (
		SELECT ?1, ?3 - (abs(random()) % 2592000000) / 1000.0, (abs(random()) % 1000000) / 1000000.0
		UNION ALL
		SELECT i + 1, ?3 - (abs(random()) % 2592000000) / 1000.0, (abs(random()) % 1000000) / 1000000.0 FROM seq WHERE i < ?2),
	s AS (SELECT i, c, c + f * (?3 - c) AS u FROM seq)
INSERT INTO grant_sessions (id, user_id, client_id, scope, audience, auth_time, created_at, last_used_at,
	idle_expires_at, absolute_expires_at, user_agent, ip)
SELECT 'gs_' || lower(hex(randomblob(11))), 'bench-seed-' || (i / 3), ?4, ?5, ?6, ` + at("c") + `, ` + at("c") + `, ` + at("u") + `,
	` + at("min(u + ?7, c + ?8)") + `, ` + at("c + ?8") + `, ?9, ?10
FROM s`
	tokens := `INSERT INTO refresh_tokens (signature, session_id, client_id, request_data, created_at, expires_at, state)
SELECT substr(lower(hex(randomblob(22))), 1, 43), id, client_id, ?, last_used_at,
	strftime('%Y-%m-%d %H:%M:%f', last_used_at, '+' || ? || ' seconds') || '+00:00', 'active'
FROM grant_sessions WHERE rowid > ?`
	idle, abs, tok := int64(tpl.idleTTL.Seconds()), int64(tpl.absTTL.Seconds()), int64(tpl.tokenTTL.Seconds())
	// One connection with a large page cache (up to 1 GiB, as it fills):
	// the random keys touch index pages all over the file, and the default
	// 2 MiB cache would read most of them again for every batch.
	conn, err := db.Conn(ctx)
	if err != nil {
		return err
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "PRAGMA cache_size = -1048576"); err != nil {
		return err
	}
	for from := int64(1); from <= n; from += batch {
		to := min(from+batch-1, n)
		now := float64(time.Now().UnixMilli()) / 1000
		err := func() error {
			tx, err := conn.BeginTx(ctx, nil)
			if err != nil {
				return err
			}
			defer tx.Rollback() //nolint:errcheck // after Commit: nothing to undo
			var last int64
			if err := tx.QueryRowContext(ctx, "SELECT COALESCE(MAX(rowid), 0) FROM grant_sessions").Scan(&last); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, sessions, from, to, now, tpl.clientID, tpl.scope, tpl.audience,
				idle, abs, tpl.userAgent, tpl.ip); err != nil {
				return err
			}
			if _, err := tx.ExecContext(ctx, tokens, tpl.requestData, tok, last); err != nil {
				return err
			}
			return tx.Commit()
		}()
		if err != nil {
			return err
		}
		benchSeedProgress(progress, to, n)
	}
	return nil
}

func benchSeedProgress(w io.Writer, done, n int64) {
	if n >= 500_000 && (done%500_000 == 0 || done == n) {
		fmt.Fprintf(w, "bench: seeded %d of %d\n", done, n)
	}
}
