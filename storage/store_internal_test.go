package storage

import "testing"

func TestDefaultPoolSize(t *testing.T) {
	for _, tc := range []struct {
		d    Dialect
		cpus int
		want int
	}{
		{SQLite, 1, 8}, {SQLite, 64, 8},
		{Postgres, 1, 8}, {Postgres, 2, 8}, {Postgres, 3, 12}, {Postgres, 8, 32}, {Postgres, 64, 32},
	} {
		if got := defaultPoolSize(tc.d, tc.cpus); got != tc.want {
			t.Errorf("defaultPoolSize(%s, %d) = %d, want %d", tc.d, tc.cpus, got, tc.want)
		}
	}
}
