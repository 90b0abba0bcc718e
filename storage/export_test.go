package storage

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// IsRetryable exposes isRetryable to the external tests.
var IsRetryable = isRetryable

// GroupedPlans returns the plan of each of PostgreSQL's grouped statements
// as a connection of the pool they run on (groupDB) makes it, or of the
// ordinary pool when ordinary is set; nil on SQLite.
func (s *Store) GroupedPlans(ctx context.Context, ordinary bool) (map[string]string, error) {
	if s.groupDB == nil {
		return nil, nil
	}
	db := s.groupDB
	if ordinary {
		db = s.sqlDB
	}
	now := []time.Time{time.Now()}
	text, bytes := []string{"x"}, [][]byte{nil}
	statements := map[string]struct {
		query string
		args  []any
	}{
		"access token status": {accessTokenStatusGroup, []any{text, text, now}},
		"authorization code":  {authorizationCodeGroup, []any{text}},
		"rotation":            {rotateGroupPostgres, []any{text, now, text, bytes, text, bytes, now, now}},
		"redemption": {redeemGroupPostgres, []any{text, now, text, text, text, text, text, now, now, now, now, now,
			text, text, text, bytes, now, now}},
	}
	plans := map[string]string{}
	for name, st := range statements {
		rows, err := db.QueryContext(ctx, "EXPLAIN "+st.query, st.args...)
		if err != nil {
			return nil, fmt.Errorf("explain %s: %w", name, err)
		}
		var plan strings.Builder
		for rows.Next() {
			var line string
			if err := rows.Scan(&line); err != nil {
				rows.Close()
				return nil, err
			}
			plan.WriteString(line + "\n")
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return nil, err
		}
		plans[name] = plan.String()
	}
	return plans, nil
}
