package keys

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/oauthd/oauthd/storage"
	"github.com/oauthd/oauthd/storage/storagetest"
)

// rotCfg is the rotation configuration most tests use: the defaults the
// issue names (30 days, 1h pre-publication) and a 2h token lifetime.
var rotCfg = Config{RotationInterval: 30 * 24 * time.Hour, PrePublish: time.Hour, RetireAfter: 2 * time.Hour}

func TestScheduledRotation(t *testing.T) {
	cfg := rotCfg
	ri, pp, ra := cfg.RotationInterval, cfg.PrePublish, cfg.RetireAfter
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		clk := newClock()
		st := &spyStore{Store: b.Open(t)}
		m := newManager(t, cfg, st, secretA, clk)
		mustInit(t, m)
		tl := newTimeline(t, clk, ra, m)
		tl.step("start")
		k1 := activeKIDs(t, m)

		// Just before the successor is due: Tick reloads but takes no lock.
		clk.Set(t0.Add(ri - pp - time.Second))
		updates := st.updates.Load()
		mustTick(t, m)
		if st.updates.Load() != updates {
			t.Error("Tick took the rotation lock although nothing was due")
		}
		if n := len(rows(t, st)); n != 2 {
			t.Fatalf("rows before due = %d, want 2", n)
		}
		_, etagBefore := m.JWKS()
		tl.step("1s before due")

		// Due: a successor per algorithm, published, not yet signing.
		due := clk.Set(t0.Add(ri - pp))
		mustTick(t, m)
		recs := rows(t, st)
		if len(recs) != 4 {
			t.Fatalf("rows after due Tick = %d, want 4", len(recs))
		}
		k2 := map[string]string{}
		for _, r := range recs {
			if r.KID == k1[r.Alg] {
				if r.RetiresAt == nil || !r.RetiresAt.Equal(due.Add(pp+ra)) {
					t.Errorf("old %s key retires at %v, want successor activation + RetireAfter = %s", r.Alg, r.RetiresAt, due.Add(pp+ra))
				}
				continue
			}
			k2[r.Alg] = r.KID
			if !r.ActivatesAt.Equal(due.Add(pp)) || r.RetiresAt != nil {
				t.Errorf("successor %s activates %s retires %v, want %s and never", r.Alg, r.ActivatesAt, r.RetiresAt, due.Add(pp))
			}
		}
		if len(k2) != 2 {
			t.Fatalf("successors = %v", k2)
		}
		body, etagPub := m.JWKS()
		if etagPub == etagBefore {
			t.Error("ETag unchanged after a successor was published")
		}
		for alg, kid := range k2 {
			if !published(t, m, kid) {
				t.Errorf("successor %s not published", alg)
			}
		}
		checkJWKS(t, body)
		if got := activeKIDs(t, m); fmt.Sprint(got) != fmt.Sprint(k1) {
			t.Fatalf("successor signs before PrePublish passed: %v", got)
		}
		infos, err := m.List(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		for _, in := range infos {
			want := "active"
			if in.KID == k2[in.Alg] {
				want = "pending"
			}
			if in.Status != want {
				t.Errorf("List: %s %s status %q, want %q", in.Alg, in.KID, in.Status, want)
			}
		}
		tl.step("due")

		// A second Tick at the same moment changes nothing.
		mustTick(t, m)
		if n := len(rows(t, st)); n != 4 {
			t.Fatalf("second Tick at due added keys: %d rows", n)
		}

		// One second before activation the old keys still sign.
		clk.Set(due.Add(pp - time.Second))
		if got := activeKIDs(t, m); fmt.Sprint(got) != fmt.Sprint(k1) {
			t.Fatalf("successor signs before its activation: %v", got)
		}
		tl.step("1s before activation")
		lastOld := tl.signersAt(clk.Now())

		// At activation the successors sign, with no Tick or Load: the
		// snapshot expires by itself. The published set is unchanged.
		clk.Set(due.Add(pp))
		if got := activeKIDs(t, m); fmt.Sprint(got) != fmt.Sprint(k2) {
			t.Fatalf("at activation signing keys = %v, want successors %v", got, k2)
		}
		if _, etag := m.JWKS(); etag != etagPub {
			t.Error("ETag changed at activation although the published set did not")
		}
		tl.step("activation")

		// The overlap: old keys stay published while their tokens live.
		for _, d := range []time.Duration{time.Minute, ra / 2, ra - time.Second} {
			clk.Set(due.Add(pp + d))
			mustTick(t, m)
			for alg, kid := range k1 {
				if !published(t, m, kid) {
					t.Fatalf("old %s key unpublished %s after the successor activated", alg, d)
				}
			}
			tl.step(fmt.Sprintf("activation+%s", d))
		}

		// RetireAfter after activation the old keys leave the JWKS (again
		// without a Tick), tokens they signed fail, the row is still there.
		retired := clk.Set(due.Add(pp + ra))
		_, etagRetired := m.JWKS()
		if etagRetired == etagPub {
			t.Error("ETag unchanged when the old keys left the JWKS")
		}
		for alg, kid := range k1 {
			if published(t, m, kid) {
				t.Errorf("old %s key still published after retirement", alg)
			}
			if _, ok := publishedKey(m, kid); ok {
				t.Errorf("publishedKey(%s) still finds the retired %s key", kid, alg)
			}
		}
		for _, s := range tl.toks {
			if s.kid == lastOld[s.alg][0] && s.at.Equal(due.Add(pp-time.Second)) {
				if _, err := m.Verify(context.Background(), s.tok); !errors.Is(err, ErrUnknownKey) {
					t.Errorf("token of the retired %s key: Verify = %v, want ErrUnknownKey", s.alg, err)
				}
			}
		}
		if n := len(rows(t, st)); n != 4 {
			t.Fatalf("retired rows deleted before a Tick: %d rows", n)
		}
		infos, _ = m.List(context.Background())
		for _, in := range infos {
			if in.KID == k1[in.Alg] && in.Status != "retired" {
				t.Errorf("List: retired key status %q", in.Status)
			}
		}
		tl.step("retirement")

		// The next Tick deletes the retired rows; the JWKS stays the same.
		bodyBefore, _ := m.JWKS()
		mustTick(t, m)
		recs = rows(t, st)
		if len(recs) != 2 {
			t.Fatalf("rows after deleting Tick = %d, want 2", len(recs))
		}
		for _, r := range recs {
			if r.KID != k2[r.Alg] {
				t.Errorf("left row %s is not a successor", r.KID)
			}
		}
		if body, etag := m.JWKS(); !bytes.Equal(body, bodyBefore) || etag != etagRetired {
			t.Error("JWKS changed when unpublished rows were deleted")
		}

		// The next cycle is measured from the successor's activation.
		clk.Set(due.Add(pp + ri - pp - time.Second))
		mustTick(t, m)
		if n := len(rows(t, st)); n != 2 {
			t.Fatalf("second cycle started early: %d rows", n)
		}
		clk.Set(retired.Add(-ra - pp + ri))
		mustTick(t, m)
		if n := len(rows(t, st)); n != 4 {
			t.Fatalf("second cycle did not start on time: %d rows", n)
		}
		tl.step("second cycle")
	})
}

// TestScheduledRotationOverdue: a process that starts long after a key was
// due does not drop it on the spot; the successor is pre-published as usual.
func TestScheduledRotationOverdue(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		st := b.Open(t)
		clk := newClock()
		m := newManager(t, rotCfg, st, secretA, clk)
		mustInit(t, m)
		k1 := activeKIDs(t, m)

		late := clk.Set(t0.Add(3 * rotCfg.RotationInterval))
		m2 := newManager(t, rotCfg, st, secretA, clk)
		mustInit(t, m2)
		if n := len(rows(t, st)); n != 4 {
			t.Fatalf("rows = %d, want one successor per alg", n)
		}
		if got := activeKIDs(t, m2); fmt.Sprint(got) != fmt.Sprint(k1) {
			t.Fatalf("overdue successor signs at once: %v", got)
		}
		clk.Set(late.Add(rotCfg.PrePublish))
		if got := activeKIDs(t, m2); fmt.Sprint(got) == fmt.Sprint(k1) {
			t.Fatal("successor does not sign after PrePublish")
		}
	})
}

func TestRotationDisabled(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		st := &spyStore{Store: b.Open(t)}
		clk := newClock()
		m := newManager(t, Config{}, st, secretA, clk)
		mustInit(t, m)
		u := st.updates.Load()
		for _, d := range []time.Duration{24 * time.Hour, 365 * 24 * time.Hour} {
			clk.Set(t0.Add(d))
			mustTick(t, m)
		}
		if n := len(rows(t, st)); n != 2 {
			t.Fatalf("rotation disabled but %d rows", n)
		}
		if st.updates.Load() != u {
			t.Fatal("Tick took the lock with rotation disabled and nothing to do")
		}
		// Forced rotation still works.
		clk.Advance(time.Minute)
		mustRotate(t, m, true)
		if n := len(rows(t, st)); n != 4 {
			t.Fatalf("forced rotation with scheduling disabled: %d rows", n)
		}
	})
}

// TestForcedRotation covers Rotate(immediate=false/true), alone and on top
// of a pending successor, and sweeps time afterwards checking the timeline
// invariants (every signing key published by everyone, unexpired tokens
// verify, ETag changes exactly with the published set).
func TestForcedRotation(t *testing.T) {
	cfg := rotCfg
	pp, ra := cfg.PrePublish, cfg.RetireAfter
	type env = *forcedEnv
	tests := []struct {
		name string
		run  func(t *testing.T, e env)
	}{
		{"deferred", func(t *testing.T, e env) {
			now := e.clk.Advance(time.Minute)
			_, etag0 := e.m.JWKS()
			added := mustRotate(t, e.m, false)
			checkAdded(t, e, added, now.Add(pp), "pending")
			if _, etag := e.m.JWKS(); etag == etag0 {
				t.Error("ETag unchanged after Rotate published keys")
			}
			recs := rows(t, e.st)
			for alg, kid := range e.k1 {
				if r := rowByKID(t, recs, kid); r.RetiresAt == nil || !r.RetiresAt.Equal(now.Add(pp+ra)) {
					t.Errorf("old %s retires at %v, want %s", alg, r.RetiresAt, now.Add(pp+ra))
				}
			}
			e.tl.step("rotated")
			e.clk.Set(now.Add(pp - time.Second))
			if got := activeKIDs(t, e.m); fmt.Sprint(got) != fmt.Sprint(e.k1) {
				t.Fatalf("deferred key signs before PrePublish: %v", got)
			}
			e.tl.step("before activation")
			e.clk.Set(now.Add(pp))
			if got := activeKIDs(t, e.m); fmt.Sprint(got) != fmt.Sprint(added) {
				t.Fatalf("at activation signing %v, want %v", got, added)
			}
		}},
		{"immediate", func(t *testing.T, e env) {
			now := e.clk.Advance(time.Minute)
			_, etag0 := e.m.JWKS()
			added := mustRotate(t, e.m, true)
			checkAdded(t, e, added, now, "active")
			if got := activeKIDs(t, e.m); fmt.Sprint(got) != fmt.Sprint(added) {
				t.Fatalf("immediate rotation does not sign at once: %v, want %v", got, added)
			}
			if _, etag := e.m.JWKS(); etag == etag0 {
				t.Error("ETag unchanged after Rotate published keys")
			}
			recs := rows(t, e.st)
			for alg, kid := range e.k1 {
				if r := rowByKID(t, recs, kid); r.RetiresAt == nil || !r.RetiresAt.Equal(now.Add(ra)) {
					t.Errorf("old %s retires at %v, want %s", alg, r.RetiresAt, now.Add(ra))
				}
				if !published(t, e.m, kid) {
					t.Errorf("old %s key unpublished by an immediate rotation; its tokens still live", alg)
				}
			}
		}},
		{"immediate on top of a pending scheduled successor", func(t *testing.T, e env) {
			due := e.clk.Set(t0.Add(cfg.RotationInterval - pp))
			mustTick(t, e.m)
			pending := map[string]string{}
			for _, in := range mustList(t, e.m) {
				if in.Status == "pending" {
					pending[in.Alg] = in.KID
				}
			}
			if len(pending) != 2 {
				t.Fatalf("pending = %v", pending)
			}
			e.tl.step("scheduled")
			e.clk.Set(due.Add(10 * time.Minute))
			added := mustRotate(t, e.m, true)
			e.tl.step("forced")
			// When the scheduled key's activation comes, the emergency key
			// must go on signing: the scheduled one was superseded.
			e.clk.Set(due.Add(pp))
			if got := activeKIDs(t, e.m); fmt.Sprint(got) != fmt.Sprint(added) {
				t.Fatalf("at the superseded pending key's activation, signing %v, want the forced keys %v (pending %v)", got, added, pending)
			}
		}},
		{"deferred twice at the same moment", func(t *testing.T, e env) {
			now := e.clk.Advance(time.Minute)
			first := mustRotate(t, e.m, false)
			second := mustRotate(t, e.m, false)
			e.tl.step("rotated twice")
			e.clk.Set(now.Add(pp))
			got := activeKIDs(t, e.m)
			if fmt.Sprint(got) != fmt.Sprint(second) {
				t.Fatalf("after two rotations at one moment, signing %v; want the later rotation's keys %v (first %v)", got, second, first)
			}
		}},
		{"immediate twice", func(t *testing.T, e env) {
			e.clk.Advance(time.Minute)
			mustRotate(t, e.m, true)
			e.tl.step("first")
			e.clk.Advance(time.Minute)
			second := mustRotate(t, e.m, true)
			if got := activeKIDs(t, e.m); fmt.Sprint(got) != fmt.Sprint(second) {
				t.Fatalf("signing %v, want %v", got, second)
			}
			if n := len(rows(t, e.st)); n != 6 {
				t.Fatalf("rows = %d, want 6", n)
			}
		}},
		{"deferred then immediate before activation", func(t *testing.T, e env) {
			now := e.clk.Advance(time.Minute)
			mustRotate(t, e.m, false)
			e.tl.step("deferred")
			e.clk.Set(now.Add(pp / 2))
			added := mustRotate(t, e.m, true)
			e.tl.step("immediate")
			e.clk.Set(now.Add(pp))
			if got := activeKIDs(t, e.m); fmt.Sprint(got) != fmt.Sprint(added) {
				t.Fatalf("the superseded deferred key took over at its activation: signing %v, want %v", got, added)
			}
		}},
	}
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				clk := newClock()
				st := &spyStore{Store: b.Open(t)}
				m := newManager(t, cfg, st, secretA, clk)
				mustInit(t, m)
				e := &forcedEnv{m: m, st: st, clk: clk, tl: newTimeline(t, clk, ra, m), k1: activeKIDs(t, m)}
				e.tl.step("init")
				tt.run(t, e)
				// Sweep 6h (past every retirement) in 15-minute steps,
				// ticking like Run does.
				end := clk.Now().Add(6 * time.Hour)
				for now := clk.Now(); !now.After(end); now = clk.Advance(15 * time.Minute) {
					mustTick(t, m)
					e.tl.step("sweep " + now.Sub(t0).String())
					if t.Failed() {
						return
					}
				}
				// Everything superseded is gone by now; one key per alg left
				// signing, at most a successor pending.
				body, _ := m.JWKS()
				if n := len(jwksKIDs(t, body)); n != 2 {
					t.Errorf("after the sweep the JWKS has %d keys, want 2", n)
				}
				if n := len(rows(t, st)); n != 2 {
					t.Errorf("after the sweep %d rows are stored, want 2", n)
				}
			})
		}
	})
}

type forcedEnv struct {
	m   *Manager
	st  *spyStore
	clk *fakeClock
	tl  *timeline
	k1  map[string]string // the keys Init created
}

// checkAdded checks the keys a Rotate returned against the database, the
// JWKS and List.
func checkAdded(t *testing.T, e *forcedEnv, added map[string]string, activates time.Time, status string) {
	t.Helper()
	if len(added) != 2 {
		t.Fatalf("Rotate returned %v, want a key per configured alg", added)
	}
	recs := rows(t, e.st)
	for alg, kid := range added {
		if kid == e.k1[alg] {
			t.Fatalf("Rotate returned the old %s key", alg)
		}
		r := rowByKID(t, recs, kid)
		if r.Alg != alg || !r.ActivatesAt.Equal(activates) || r.RetiresAt != nil {
			t.Errorf("new %s key: alg %s activates %s retires %v; want activation %s", alg, r.Alg, r.ActivatesAt, r.RetiresAt, activates)
		}
		if !published(t, e.m, kid) {
			t.Errorf("new %s key not published right after Rotate", alg)
		}
	}
	for _, in := range mustList(t, e.m) {
		if added[in.Alg] == in.KID && in.Status != status {
			t.Errorf("List: new %s key status %q, want %q", in.Alg, in.Status, status)
		}
	}
}

func mustList(t *testing.T, m *Manager) []Info {
	t.Helper()
	infos, err := m.List(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return infos
}

// TestTwoProcesses: two managers on one database, each with its own
// connection pool, behave like one.
func TestTwoProcesses(t *testing.T) {
	cfg := rotCfg
	pp, ra := cfg.PrePublish, cfg.RetireAfter
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		t.Run("cold start and scheduled rotation race", func(t *testing.T) {
			stores := openShared(t, b, 2)
			clk := newClock()
			ms := []*Manager{newManager(t, cfg, stores[0], secretA, clk), newManager(t, cfg, stores[1], secretA, clk)}

			// Both start at once on an empty database.
			concurrently(t, 2, func(i int) error { return ms[i].Init(context.Background()) })
			if n := len(rows(t, stores[0])); n != 2 {
				t.Fatalf("simultaneous Init created %d keys, want 2", n)
			}
			sameView(t, ms)
			tl := newTimeline(t, clk, ra, ms...)
			tl.step("start")

			// Both (several goroutines each) tick at the due moment.
			due := clk.Set(t0.Add(cfg.RotationInterval - pp))
			concurrently(t, 8, func(i int) error { return ms[i%2].Tick(context.Background()) })
			recs := rows(t, stores[0])
			if len(recs) != 4 {
				t.Fatalf("concurrent Ticks created %d keys, want 4 (one successor per alg)", len(recs))
			}
			perAlg := map[string]int{}
			for _, r := range recs {
				if r.ActivatesAt.Equal(due.Add(pp)) {
					perAlg[r.Alg]++
				}
			}
			if perAlg[ES256] != 1 || perAlg[RS256] != 1 {
				t.Fatalf("successors per alg = %v", perAlg)
			}
			sameView(t, ms)
			tl.step("due")
			for _, now := range []time.Time{due.Add(pp - time.Second), due.Add(pp), due.Add(pp + ra - time.Second), due.Add(pp + ra)} {
				clk.Set(now)
				sameView(t, ms)
				tl.step(now.Sub(t0).String())
			}
			// Both delete the retired keys at once.
			concurrently(t, 2, func(i int) error { return ms[i].Tick(context.Background()) })
			if n := len(rows(t, stores[0])); n != 2 {
				t.Fatalf("rows after concurrent delete = %d", n)
			}
			sameView(t, ms)
		})

		t.Run("lagging process", func(t *testing.T) {
			stores := openShared(t, b, 2)
			clk := newClock()
			a := newManager(t, cfg, stores[0], secretA, clk)
			bm := newManager(t, cfg, stores[1], secretA, clk)
			mustInit(t, a)
			mustInit(t, bm)
			tl := newTimeline(t, clk, ra, a, bm)

			// A rotates; B only reloads ReloadInterval later, as Run does.
			due := clk.Set(t0.Add(cfg.RotationInterval - pp))
			mustTick(t, a)
			tl.step("A rotated, B not reloaded")
			clk.Set(due.Add(a.Config().ReloadInterval))
			mustTick(t, bm)
			sameView(t, []*Manager{a, bm})
			for now := clk.Now(); now.Before(due.Add(pp + ra + time.Hour)); now = clk.Advance(a.Config().ReloadInterval * 37) {
				mustTick(t, a)
				mustTick(t, bm)
				tl.step(now.Sub(t0).String())
				if t.Failed() {
					return
				}
			}
		})

		t.Run("concurrent forced rotations", func(t *testing.T) {
			stores := openShared(t, b, 2)
			clk := newClock()
			ms := []*Manager{newManager(t, cfg, stores[0], secretA, clk), newManager(t, cfg, stores[1], secretA, clk)}
			for _, m := range ms {
				mustInit(t, m)
			}
			tl := newTimeline(t, clk, ra, ms...)
			tl.step("start")
			now := clk.Advance(time.Minute)
			concurrently(t, 2, func(i int) error { _, err := ms[i].Rotate(context.Background(), false); return err })
			if n := len(rows(t, stores[0])); n != 6 {
				t.Fatalf("two forced rotations stored %d keys, want 6", n)
			}
			for _, m := range ms {
				mustTick(t, m)
			}
			sameView(t, ms)
			for end := now.Add(pp + 2*ra); !clk.Now().After(end); clk.Advance(10 * time.Minute) {
				for _, m := range ms {
					mustTick(t, m)
				}
				sameView(t, ms)
				tl.step(clk.Now().Sub(t0).String())
				if t.Failed() {
					return
				}
			}
		})
	})
}

// sameView checks that every manager publishes the same JWKS bytes and
// ETag and signs with the same kids.
func sameView(t *testing.T, ms []*Manager) {
	t.Helper()
	body0, etag0 := ms[0].JWKS()
	act0 := activeKIDs(t, ms[0])
	for i, m := range ms[1:] {
		body, etag := m.JWKS()
		if !bytes.Equal(body, body0) || etag != etag0 {
			t.Errorf("manager %d JWKS differs from manager 0:\n%s\n%s", i+1, body0, body)
		}
		if act := activeKIDs(t, m); fmt.Sprint(act) != fmt.Sprint(act0) {
			t.Errorf("manager %d signs with %v, manager 0 with %v", i+1, act, act0)
		}
	}
}

// concurrently runs fn(0..n-1) at once and fails on any error.
func concurrently(t *testing.T, n int, fn func(i int) error) {
	t.Helper()
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, n)
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func(i int) {
			defer wg.Done()
			<-start
			errs <- fn(i)
		}(i)
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestPlanScheduled: table tests of the scheduling decision itself, on
// fixed rows without a database.
func TestPlanScheduled(t *testing.T) {
	cfg := rotCfg
	cfg.AccessTokenAlg, cfg.IDTokenAlg = ES256, EdDSA // fast key generation
	m, err := New(cfg.WithDefaults(), nil, secretA, discardLogger)
	if err != nil {
		t.Fatal(err)
	}
	now := t0.Add(100 * 24 * time.Hour)
	at := func(d time.Duration) time.Time { return now.Add(d) }
	ptr := func(t time.Time) *time.Time { return &t }
	names := map[string]string{} // kid → the table's name for it
	rec := func(name, alg string, act time.Time, ret *time.Time) storage.SigningKey {
		r, err := newRecord(m.aead, alg, act)
		if err != nil {
			t.Fatal(err)
		}
		names[r.KID] = name
		r.RetiresAt = ret
		return r
	}
	ri, pp, ra := rotCfg.RotationInterval, rotCfg.PrePublish, rotCfg.RetireAfter
	tests := []struct {
		name       string
		current    []storage.SigningKey
		wantAdd    []string // algs
		wantRetire map[string]time.Time
		wantDelete []string
	}{
		{"empty", nil, []string{ES256, EdDSA}, map[string]time.Time{}, nil},
		{"fresh keys", []storage.SigningKey{rec("e", ES256, at(-time.Hour), nil), rec("r", EdDSA, at(-time.Hour), nil)}, nil, map[string]time.Time{}, nil},
		{"one alg missing", []storage.SigningKey{rec("e", ES256, at(-time.Hour), nil)}, []string{EdDSA}, map[string]time.Time{}, nil},
		{"ES256 due exactly", []storage.SigningKey{rec("e", ES256, at(-(ri - pp)), nil), rec("r", EdDSA, at(-time.Hour), nil)},
			[]string{ES256}, map[string]time.Time{"e": at(pp + ra)}, nil},
		{"ES256 a second before due", []storage.SigningKey{rec("e", ES256, at(-(ri-pp)+time.Second), nil), rec("r", EdDSA, at(-time.Hour), nil)},
			nil, map[string]time.Time{}, nil},
		{"successor pending", []storage.SigningKey{rec("e", ES256, at(-ri), ptr(at(time.Hour+ra))), rec("e2", ES256, at(time.Hour), nil), rec("r", EdDSA, at(-time.Hour), nil)},
			nil, map[string]time.Time{}, nil},
		{"retired deleted", []storage.SigningKey{rec("old", ES256, at(-ri), ptr(now)), rec("e", ES256, at(-time.Hour), nil), rec("r", EdDSA, at(-time.Hour), nil)},
			nil, map[string]time.Time{}, []string{"old"}},
		{"retiring kept", []storage.SigningKey{rec("old", ES256, at(-ri), ptr(at(time.Second))), rec("e", ES256, at(-time.Hour), nil), rec("r", EdDSA, at(-time.Hour), nil)},
			nil, map[string]time.Time{}, nil},
		{"unconfigured alg retired", []storage.SigningKey{rec("x", RS256, at(-time.Hour), nil), rec("e", ES256, at(-time.Hour), nil), rec("r", EdDSA, at(-time.Hour), nil)},
			nil, map[string]time.Time{"x": at(ra)}, nil},
		{"unconfigured alg already retiring", []storage.SigningKey{rec("x", RS256, at(-time.Hour), ptr(at(time.Minute))), rec("e", ES256, at(-time.Hour), nil), rec("r", EdDSA, at(-time.Hour), nil)},
			nil, map[string]time.Time{}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			change, err := m.planScheduled(tt.current, now)
			if err != nil {
				t.Fatal(err)
			}
			var added []string
			for _, a := range change.Add {
				added = append(added, a.Alg)
				want := now
				for _, c := range tt.current {
					if c.Alg == a.Alg {
						want = now.Add(pp) // a successor, not a first key
					}
				}
				if !a.ActivatesAt.Equal(want) {
					t.Errorf("added %s activates %s, want %s", a.Alg, a.ActivatesAt, want)
				}
			}
			if fmt.Sprint(added) != fmt.Sprint(tt.wantAdd) {
				t.Errorf("added %v, want %v", added, tt.wantAdd)
			}
			retire := map[string]time.Time{}
			for kid, at := range change.Retire {
				retire[names[kid]] = at
			}
			var deleted []string
			for _, kid := range change.Delete {
				deleted = append(deleted, names[kid])
			}
			if fmt.Sprint(retire) != fmt.Sprint(tt.wantRetire) {
				t.Errorf("retire %v, want %v", retire, tt.wantRetire)
			}
			if fmt.Sprint(deleted) != fmt.Sprint(tt.wantDelete) {
				t.Errorf("delete %v, want %v", deleted, tt.wantDelete)
			}
		})
	}
}

// TestImmediateRotationTies: immediate rotations at the very instant the
// current key activated tie on activation time; the newest key must sign
// (and the superseded ones stay published), whatever the kids' order.
func TestImmediateRotationTies(t *testing.T) {
	cfg := Config{AccessTokenAlg: EdDSA, IDTokenAlg: EdDSA, RotationInterval: rotCfg.RotationInterval, PrePublish: rotCfg.PrePublish, RetireAfter: rotCfg.RetireAfter}
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		stores := openShared(t, b, 2)
		clk := newClock()
		m := newManager(t, cfg, stores[0], secretA, clk)
		other := newManager(t, cfg, stores[1], secretA, clk)
		mustInit(t, m)
		tl := newTimeline(t, clk, cfg.RetireAfter, m, other)
		for i := 0; i < 8; i++ {
			added := mustRotate(t, m, true)[EdDSA]
			mustTick(t, other)
			for j, mm := range []*Manager{m, other} {
				if got := activeKIDs(t, mm)[EdDSA]; got != added {
					t.Fatalf("rotation %d at the activation instant: manager %d signs with %s, want the new %s", i, j, got, added)
				}
			}
			tl.step(fmt.Sprint("rotation ", i))
		}
		for end := t0.Add(3 * cfg.RetireAfter); clk.Now().Before(end); clk.Advance(20 * time.Minute) {
			mustTick(t, m)
			mustTick(t, other)
			tl.step(clk.Now().Sub(t0).String())
		}
		if n := len(rows(t, stores[0])); n != 1 {
			t.Fatalf("%d keys left, want 1", n)
		}
	})
}

// TestNoActiveKeyGetsOneAtOnce: whenever an algorithm has no key signing
// now, the next rotation or Init creates one that signs at once, so the
// server never runs without a key (a rotation with pre-publication on an
// empty database, or an active key removed by hand after a rotation).
func TestNoActiveKeyGetsOneAtOnce(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		st := b.Open(t)
		clk := newClock()
		m := newManager(t, rotCfg, st, secretA, clk)

		// `oauthd keys rotate` before the first `serve`.
		added, err := m.Rotate(context.Background(), false)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range added {
			if a.Status != "active" || a.ActivatesAt.After(clk.Now()) {
				t.Errorf("%s key on an empty database is %s from %s, want active now", a.Alg, a.Status, a.ActivatesAt)
			}
		}
		if err := m.Ready(); err != nil {
			t.Fatalf("not ready after the first rotation: %v", err)
		}

		// Now a scheduled-style rotation leaves a pending key; remove the
		// active rows by hand (what an operator does with a leaked key).
		if _, err := m.Rotate(context.Background(), false); err != nil {
			t.Fatal(err)
		}
		var pending []string
		for _, r := range rows(t, st) {
			if r.ActivatesAt.After(clk.Now()) {
				pending = append(pending, r.KID)
			}
		}
		if err := st.UpdateSigningKeys(context.Background(), func(cur []storage.SigningKey) (storage.KeyChange, error) {
			var del []string
			for _, k := range cur {
				if !k.ActivatesAt.After(clk.Now()) {
					del = append(del, k.KID)
				}
			}
			return storage.KeyChange{Delete: del}, nil
		}); err != nil {
			t.Fatal(err)
		}
		m2 := newManager(t, rotCfg, st, secretA, clk)
		mustInit(t, m2)
		if err := m2.Ready(); err != nil {
			t.Fatalf("Init left no active key: %v", err)
		}
		for _, r := range rows(t, st) {
			if r.ActivatesAt.After(clk.Now()) || slices.Contains(pending, r.KID) {
				continue
			}
			// The stop-gap key retires after the pending key takes over.
			if r.RetiresAt == nil || !r.RetiresAt.Equal(clk.Now().Add(rotCfg.PrePublish+rotCfg.RetireAfter)) {
				t.Errorf("stop-gap key %s retires at %v, want pending activation + RetireAfter", r.KID, r.RetiresAt)
			}
		}
		// When the pending keys activate they sign.
		clk.Set(clk.Now().Add(rotCfg.PrePublish))
		for _, kid := range activeKIDs(t, m2) {
			if !slices.Contains(pending, kid) {
				t.Errorf("after activation %s signs, want one of the pending %v", kid, pending)
			}
		}
	})
}
