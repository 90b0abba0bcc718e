package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/oauthd/oauthd/internal/loadgen"
	"github.com/oauthd/oauthd/storage"
	"github.com/oauthd/oauthd/storage/storagetest"
)

// These tests check that the benchmark measures and reports; none asserts
// a speed.

func checkScenarioReport(t *testing.T, s scenarioReport) {
	t.Helper()
	if s.Requests <= 0 || s.Errors != 0 || s.Aborted {
		t.Errorf("%s: %d requests, %d errors %v (first: %s)", s.Name, s.Requests, s.Errors, s.ErrorKinds, s.FirstError)
	}
	if !(0 < s.p50 && s.p50 <= s.p90 && s.p90 <= s.p99 && s.p99 <= s.p999 && s.p999 <= s.max) {
		t.Errorf("%s: percentiles out of order: p50 %v p90 %v p99 %v p99.9 %v max %v", s.Name, s.p50, s.p90, s.p99, s.p999, s.max)
	}
	if s.RPS <= 0 || s.ElapsedS <= 0 {
		t.Errorf("%s: %v req/s over %vs", s.Name, s.RPS, s.ElapsedS)
	}
}

func TestBenchLoadGenerator(t *testing.T) {
	ts := startServer(t, storagetest.Backends(t)[0].NewDSN(t), map[string]string{"OAUTHD_LOG_LEVEL": "warn"})
	ctx := context.Background()
	cl, err := registerBenchClient(ctx, ts.AdminURL, ts.AdminToken)
	if err != nil {
		t.Fatal(err)
	}
	for _, client := range []loadgen.Client{loadgen.ClientRaw, loadgen.ClientNetHTTP} {
		t.Run(string(client), func(t *testing.T) { testBenchLoadGenerator(t, ts, cl, client) })
	}
}

func testBenchLoadGenerator(t *testing.T, ts *testServer, cl benchClient, client loadgen.Client) {
	ctx := context.Background()
	publicURL := ts.PublicURL
	// 500 codes per worker outlast 350ms of exchanges by 2 workers here.
	target := &benchTarget{publicURL: publicURL, adminURL: ts.AdminURL, adminToken: ts.AdminToken, client: cl, concurrency: 2, codeStock: 500}
	specs, err := benchSpecs(ctx, target, benchScenarios, client)
	if err != nil {
		t.Fatal(err)
	}
	o := &benchOptions{scenarios: benchScenarios, concurrency: 2, duration: 300 * time.Millisecond, warmup: 50 * time.Millisecond, client: string(client)}
	var progress bytes.Buffer
	reports, err := benchLoad(ctx, specs, o, 0, &progress, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"(" + string(client) + " client)", "code_exchange: minted 1000 codes in "} {
		if !strings.Contains(progress.String(), want) {
			t.Errorf("progress lacks %q:\n%s", want, progress.String())
		}
	}
	if len(reports) != len(benchScenarios) {
		t.Fatalf("%d scenario reports, want %d", len(reports), len(benchScenarios))
	}
	for i, s := range reports {
		if s.Name != benchScenarios[i] {
			t.Errorf("report %d is %s, want %s", i, s.Name, benchScenarios[i])
		}
		checkScenarioReport(t, s)
		switch s.Name {
		case scenarioRefresh:
			f := s.Families
			if f == nil || s.LostRotations == nil || *s.LostRotations != 0 || !f.ok() || f.Families != 2 || f.FinalRefreshOK != 2 ||
				f.Rotations != s.Requests+s.WarmupRequests+1 { // +1: the trial request
				t.Errorf("refresh check %+v after %d+%d requests", f, s.WarmupRequests, s.Requests)
			}
		case scenarioCode:
			if !strings.Contains(s.Iteration, "code exchanges") {
				t.Errorf("authorization_code iteration %q", s.Iteration)
			}
		case scenarioCodeExchange:
			if !strings.Contains(s.Iteration, "minted before the load") {
				t.Errorf("code_exchange iteration %q", s.Iteration)
			}
		}
	}

	// Both renderings carry the figures.
	rep := &benchReport{Config: benchConfig{Scenarios: o.scenarios, Concurrency: 2, DurationS: 0.3, Client: string(client), Server: "external", Target: publicURL}, Scenarios: reports}
	var text bytes.Buffer
	rep.writeText(&text)
	firstLine, _, _ := strings.Cut(text.String(), "\n")
	if want := "client=" + string(client); !strings.Contains(firstLine, want) {
		t.Errorf("header line lacks %q: %s", want, firstLine)
	}
	for _, want := range append([]string{"concurrency=2", "P99.9", "external"}, benchScenarios...) {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
	var js bytes.Buffer
	if err := printJSON(&js, rep); err != nil {
		t.Fatal(err)
	}
	var back benchReport
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Scenarios) != len(benchScenarios) || back.Scenarios[0].LatencyMS.P50 <= 0 || back.Config.Client != string(client) {
		t.Errorf("JSON report: %v\n%s", err, js.String())
	}
	for _, want := range []string{"lost rotations: 0", "authorization_code: REQUESTS and REQ/S count iterations"} {
		if !strings.Contains(text.String(), want) {
			t.Errorf("text report lacks %q:\n%s", want, text.String())
		}
	}
	if !strings.Contains(js.String(), `"lost_rotations": 0`) {
		t.Errorf("JSON report lacks lost_rotations: %s", js.String())
	}
}

func TestBenchFlagValidation(t *testing.T) {
	tests := []struct {
		args []string
		env  map[string]string
		want []string
	}{
		{args: []string{"--concurrency", "0"}, want: []string{"--concurrency"}},
		{args: []string{"--concurrency", "-3"}, want: []string{"--concurrency"}},
		{args: []string{"--scenario", "nope"}, want: []string{`unknown scenario "nope"`, "client_credentials"}},
		{args: []string{"--scenario", "jwks,nope"}, want: []string{`"nope"`}},
		{args: []string{"--concurrency", "0", "--scenario", "nope"}, want: []string{"--concurrency", "--scenario"}},
		{args: []string{"--duration", "0s"}, want: []string{"--duration"}},
		{args: []string{"--duration", "soon"}, want: []string{"duration"}},
		{args: []string{"--warmup", "-1s"}, want: []string{"--warmup"}},
		{args: []string{"--dsn", "mysql://db/x"}, want: []string{"--dsn"}},
		{args: []string{"--log-level", "loud"}, want: []string{"--log-level"}},
		{args: []string{"--admin-url", "http://127.0.0.1:8081"}, want: []string{"--admin-url", "only with --target"}},
		{args: []string{"--target", "http://127.0.0.1:1"}, want: []string{"--admin-url", "OAUTHD_ADMIN_TOKEN"}},
		{args: []string{"--target", "ftp://example.com", "--admin-url", "http://127.0.0.1:1"}, env: map[string]string{"OAUTHD_ADMIN_TOKEN": "x"}, want: []string{"--target"}},
		{args: []string{"--target", "http://127.0.0.1:1", "--admin-url", "http://127.0.0.1:2", "--dsn", "sqlite://x.db"}, env: map[string]string{"OAUTHD_ADMIN_TOKEN": "x"}, want: []string{"--dsn", "--target"}},
		{args: []string{"surplus"}, want: []string{"surplus"}},
		{args: []string{"--client", "curl"}, want: []string{"--client", `"curl"`}},
		{args: []string{"--target", "https://127.0.0.1:1", "--admin-url", "http://127.0.0.1:2", "--client", "raw"}, env: map[string]string{"OAUTHD_ADMIN_TOKEN": "x"}, want: []string{"--client", "https"}},
		{args: []string{"--seed-sessions", "-1"}, want: []string{"--seed-sessions", "-1"}},
		{args: []string{"--seed-sessions", "1e6"}, want: []string{"seed-sessions"}},
		{args: []string{"--seed-sessions", "100000001"}, want: []string{"--seed-sessions", "100000000"}},
		{args: []string{"--target", "http://127.0.0.1:1", "--admin-url", "http://127.0.0.1:2", "--seed-sessions", "10"}, env: map[string]string{"OAUTHD_ADMIN_TOKEN": "x"}, want: []string{"--seed-sessions", "--target"}},
		{args: []string{"--target", "http://127.0.0.1:1", "--admin-url", "http://127.0.0.1:2", "--cpuprofile", "/tmp/x"}, env: map[string]string{"OAUTHD_ADMIN_TOKEN": "x"}, want: []string{"--cpuprofile", "--target"}},
		{args: []string{"--scenario", "refresh,refresh-oidc,nope"}, want: []string{`unknown scenario "nope"`, "refresh-oidc", "code_exchange"}},
		{args: []string{"--code-stock", "0"}, want: []string{"--code-stock", "at least 1"}},
		{args: []string{"--scenario", "code_exchange", "--code-stock", "-5"}, want: []string{"--code-stock", "-5"}},
		// Valid flags, unreachable target: fails at the readiness check,
		// which shows the token was taken from the environment.
		{args: []string{"--target", "http://127.0.0.1:1", "--admin-url", "http://127.0.0.1:2"}, env: map[string]string{"OAUTHD_ADMIN_TOKEN": "x"}, want: []string{"--target: ", "127.0.0.1:1"}},
	}
	for _, tc := range tests {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			start := time.Now()
			err := run(context.Background(), append([]string{"bench"}, tc.args...), envMap(tc.env), nil, &out, &errb)
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if out.Len() != 0 || time.Since(start) > 5*time.Second {
				t.Errorf("bad flags must fail before any work (took %v, printed %q)", time.Since(start), out.String())
			}
		})
	}
}

// TestBenchCommand runs the whole command, which starts this test binary
// as its server (see TestMain), briefly.
func TestBenchCommand(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two server processes")
	}
	t.Setenv("OAUTHD_TEST_MAIN", "1") // the server process is this test binary
	var out, errb bytes.Buffer
	err := run(context.Background(), []string{"bench", "--json", "--concurrency", "2", "--duration", "200ms", "--warmup", "0s", "--code-stock", "300"}, envMap(nil), nil, &out, &errb)
	if err != nil {
		t.Fatalf("bench: %v\nstderr: %s", err, errb.String())
	}
	var rep benchReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, out.String())
	}
	if rep.Config.DB != "sqlite" || rep.Config.Server != "started" || rep.Config.LogLevel != "info" || rep.Config.Concurrency != 2 || rep.Config.Client != "raw" {
		t.Errorf("config %+v", rep.Config)
	}
	if len(rep.Scenarios) != len(benchScenarios) {
		t.Fatalf("%d scenarios", len(rep.Scenarios))
	}
	for _, s := range rep.Scenarios {
		l := s.LatencyMS
		if s.Requests <= 0 || s.Errors != 0 || !(0 < l.P50 && l.P50 <= l.P99 && l.P99 <= l.Max) {
			t.Errorf("%+v", s)
		}
	}
	p := rep.Process
	if p == nil || p.BinaryBytes <= 0 || p.FirstStartMS <= 0 || p.StartMS <= 0 || !p.FreshDB {
		t.Fatalf("process figures %+v", p)
	}
	if runtime.GOOS == "linux" {
		if p.IdleRSSBytes <= 0 || p.PeakRSSBytes < p.IdleRSSBytes || p.RSSAfterLoadBytes <= 0 {
			t.Errorf("memory figures %+v", p)
		}
		if s := rep.Scenarios[0]; s.ServerCPU == nil || s.BenchCPU == nil {
			t.Error("no CPU figures")
		}
	}
}

// TestBenchCommandSignIn runs the user scenarios through the whole
// command with the net/http client, after seeding, with CPU profiles.
func TestBenchCommandSignIn(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two server processes")
	}
	t.Setenv("OAUTHD_TEST_MAIN", "1") // the server process is this test binary
	profiles := t.TempDir()
	var out, errb bytes.Buffer
	args := []string{"bench", "--json", "--scenario", "introspect,refresh,authorization_code,code_exchange,refresh-oidc", "--client", "nethttp",
		"--seed-sessions", "300", "--cpuprofile", profiles, "--concurrency", "2", "--duration", "300ms", "--warmup", "50ms", "--log-level", "warn", "--code-stock", "300"}
	if err := run(context.Background(), args, envMap(nil), nil, &out, &errb); err != nil {
		t.Fatalf("bench: %v\nstderr: %s", err, errb.String())
	}
	var rep benchReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, out.String())
	}
	if rep.Config.Client != "nethttp" || rep.Config.SeedSessions != 300 || rep.Seed == nil || rep.Seed.Sessions != 300 || rep.Seed.GrantSessions < 300 {
		t.Errorf("config %+v, seed %+v", rep.Config, rep.Seed)
	}
	if len(rep.Scenarios) != 5 {
		t.Fatalf("%d scenarios", len(rep.Scenarios))
	}
	for _, s := range rep.Scenarios {
		if s.Requests <= 0 || s.Errors != 0 || s.LatencyMS.P50 <= 0 {
			t.Errorf("%+v", s)
		}
		if strings.HasPrefix(s.Name, "refresh") && (s.LostRotations == nil || *s.LostRotations != 0 || s.Families == nil || s.Families.ActiveSessions != 2) {
			t.Errorf("%s: check %+v", s.Name, s.Families)
		}
		if fi, err := os.Stat(s.CPUProfile); err != nil || fi.Size() == 0 || filepath.Dir(s.CPUProfile) != profiles {
			t.Errorf("%s: CPU profile %q: %v", s.Name, s.CPUProfile, err)
		}
	}
	for _, want := range []string{"seeding 300 grant sessions", "code_exchange: minted 600 codes in "} {
		if !strings.Contains(errb.String(), want) {
			t.Errorf("progress lacks %q: %s", want, errb.String())
		}
	}
}

// BenchmarkTokenEndpoint drives client_credentials requests through the
// in-process server over loopback; allocations are client and server
// together. For profiling:
//
//	go test -run '^$' -bench TokenEndpoint -cpuprofile cpu.out ./cmd/oauthd/
func BenchmarkTokenEndpoint(b *testing.B) {
	level := os.Getenv("OAUTHD_LOG_LEVEL") // e.g. info, to profile access logging too
	if level == "" {
		level = "warn"
	}
	ts := startServer(b, storagetest.Backends(b)[0].NewDSN(b), map[string]string{"OAUTHD_LOG_LEVEL": level})
	publicURL := ts.PublicURL
	ctx := context.Background()
	cl, err := registerBenchClient(ctx, ts.AdminURL, ts.AdminToken)
	if err != nil {
		b.Fatal(err)
	}
	specs, err := benchSpecs(ctx, &benchTarget{publicURL: publicURL, client: cl}, []string{scenarioToken}, loadgen.ClientNetHTTP)
	if err != nil {
		b.Fatal(err)
	}
	const parallelism = 4 // goroutines per GOMAXPROCS
	tr := loadgen.NewTransport(parallelism * runtime.GOMAXPROCS(0))
	defer tr.CloseIdleConnections()
	var rt http.RoundTripper = tr
	b.SetParallelism(parallelism)
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		s, err := loadgen.NewSender(ctx, specs[0].spec, rt)
		if err != nil {
			b.Error(err)
			return
		}
		for pb.Next() {
			if err := s.Do(); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

// mustSID returns the id of the template grant (the one session not seeded).
func mustSID(t *testing.T, db *sql.DB) string {
	t.Helper()
	var sid string
	if err := db.QueryRow("SELECT id FROM grant_sessions WHERE user_id NOT LIKE 'bench-seed-%'").Scan(&sid); err != nil {
		t.Fatal(err)
	}
	return sid
}

// TestBenchSeedSessions seeds a few grant sessions on each database and
// checks that the server's own queries read them as live sessions with
// active refresh tokens, and that refresh still runs beside them.
func TestBenchSeedSessions(t *testing.T) {
	forEachBackend(t, func(t *testing.T, b storagetest.Backend) {
		dsn := b.NewDSN(t)
		ts := startServer(t, dsn, map[string]string{"OAUTHD_LOG_LEVEL": "warn"})
		ctx := context.Background()
		cl, err := registerBenchClient(ctx, ts.AdminURL, ts.AdminToken)
		if err != nil {
			t.Fatal(err)
		}
		target := &benchTarget{publicURL: ts.PublicURL, adminURL: ts.AdminURL, adminToken: ts.AdminToken, client: cl, concurrency: 2}
		const n = 1234
		var progress bytes.Buffer
		rep, err := target.seed(ctx, dsn, n, &progress)
		if err != nil {
			t.Fatal(err)
		}
		// The template grant is real: one more of each.
		if rep.Sessions != n || rep.GrantSessions != n+1 || rep.RefreshTokens != n+1 || rep.InsertS < 0 || rep.Finish == "" {
			t.Errorf("seed report %+v", rep)
		}
		if !strings.Contains(rep.text(), "1234 grant sessions") {
			t.Errorf("seed text %q", rep.text())
		}

		st, err := storage.Open(ctx, storage.Config{DSN: dsn}, slog.New(slog.DiscardHandler))
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		db := st.SQLDB()
		var user, sig, sid string
		var count int
		q := "SELECT user_id, COUNT(*) FROM grant_sessions WHERE user_id LIKE 'bench-seed-%' GROUP BY user_id ORDER BY COUNT(*) DESC, user_id LIMIT 1"
		if err := db.QueryRowContext(ctx, q).Scan(&user, &count); err != nil || count != 3 {
			t.Fatalf("a seeded user: %q with %d sessions, %v", user, count, err)
		}
		live, err := st.ListActiveGrantSessions(ctx, user, time.Now())
		if err != nil || len(live) != 3 {
			t.Fatalf("ListActiveGrantSessions(%s) = %d sessions, %v; want the 3 seeded", user, len(live), err)
		}
		// Each session's times hang together: created within the last 30
		// days, used since, idle expiry from the last use (capped at the
		// absolute one), token expiry from the last use too.
		near := func(a, b time.Time) bool { return a.Sub(b).Abs() < 2*time.Millisecond }
		tpl, err := benchSeedTemplate(ctx, db, mustSID(t, db))
		if err != nil {
			t.Fatal(err)
		}
		// Seeding takes the template's lifetimes in whole seconds.
		tpl.idleTTL, tpl.absTTL, tpl.tokenTTL = tpl.idleTTL.Truncate(time.Second), tpl.absTTL.Truncate(time.Second), tpl.tokenTTL.Truncate(time.Second)
		for _, g := range live {
			abs := g.CreatedAt.Add(tpl.absTTL)
			idle := g.LastUsedAt.Add(tpl.idleTTL)
			if abs.Before(idle) {
				idle = abs
			}
			if len(g.ID) != 25 || g.ClientID == "" || g.Scope != benchUserScope || !near(g.AuthTime, g.CreatedAt) ||
				!g.CreatedAt.Before(time.Now()) || g.CreatedAt.Before(time.Now().Add(-31*24*time.Hour)) ||
				g.LastUsedAt.Before(g.CreatedAt) || g.LastUsedAt.After(time.Now()) || !near(g.AbsoluteExpiresAt, abs) || !near(g.IdleExpiresAt, idle) {
				t.Errorf("seeded session %+v (TTLs %v idle, %v absolute)", g, tpl.idleTTL, tpl.absTTL)
			}
		}
		g := live[0]
		if err := db.QueryRowContext(ctx, "SELECT signature, session_id FROM refresh_tokens WHERE session_id = $1", g.ID).Scan(&sig, &sid); err != nil {
			t.Fatal(err)
		}
		tok, err := st.GetRefreshToken(ctx, sig)
		if err != nil || len(sig) != 43 || tok.State != storage.TokenActive || !near(tok.CreatedAt, g.LastUsedAt) ||
			!near(tok.ExpiresAt, g.LastUsedAt.Add(tpl.tokenTTL)) || !bytes.Equal(tok.RequestData, tpl.requestData) {
			t.Errorf("seeded token %q: created %v, expires %v (session last used %v, token TTL %v), %d bytes of request data, %v",
				sig, tok.CreatedAt, tok.ExpiresAt, g.LastUsedAt, tpl.tokenTTL, len(tok.RequestData), err)
		}

		// Refresh beside them.
		specs, err := benchSpecs(ctx, target, []string{scenarioRefresh}, loadgen.ClientRaw)
		if err != nil {
			t.Fatal(err)
		}
		o := &benchOptions{concurrency: 2, duration: 200 * time.Millisecond, client: string(loadgen.ClientRaw)}
		reports, err := benchLoad(ctx, specs, o, 0, io.Discard, nil)
		if err != nil {
			t.Fatal(err)
		}
		checkScenarioReport(t, reports[0])
		if f := reports[0].Families; f == nil || !f.ok() {
			t.Errorf("refresh after seeding: %+v", f)
		}
	})
}

func TestBenchDropStacks(t *testing.T) {
	line := `time=x level=ERROR msg="request failed" route=/oauth2/token err="server_error\ngithub.com/ory/x/errorsx.WithStack\n\tgithub.com/ory/x/errors.go:41\nstorage: delete pkce request: database is locked (5)\ngithub.com/a.F\n\ta.go:1" request_id=1`
	want := `time=x level=ERROR msg="request failed" route=/oauth2/token err="server_error | storage: delete pkce request: database is locked (5)" request_id=1`
	if got := benchDropStacks(line); got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if plain := `level=WARN msg="a \"quoted\" word" n=1`; benchDropStacks(plain) != plain {
		t.Errorf("changed %s into %s", plain, benchDropStacks(plain))
	}
}

// TestBenchExchangeStep checks that code_exchange sends each code once, in
// order, without allocating, and says when it has none left.
func TestBenchExchangeStep(t *testing.T) {
	s := &exchangeStep{prefix: benchExchangePrefix("v"), codes: [][]byte{[]byte("c1"), []byte("c%2B2")}}
	want := "code_verifier=v&grant_type=authorization_code&redirect_uri=http%3A%2F%2F127.0.0.1%3A9%2Fcb&code="
	for _, code := range []string{"c1", "c%2B2"} {
		if s.Exhausted() {
			t.Fatalf("exhausted before %s", code)
		}
		if got := string(s.Body(0)); got != want+code {
			t.Errorf("body %q, want %q", got, want+code)
		}
	}
	if !s.Exhausted() || s.Body(0) != nil {
		t.Error("a step without codes left is not exhausted, or sends a body")
	}
	if n := testing.AllocsPerRun(100, func() { s.next = 0; s.Body(0); s.Body(0) }); n != 0 {
		t.Errorf("%v allocations per two bodies", n)
	}

	// Minting takes the code from the redirect, and refuses one without.
	m := mintStep{into: &exchangeStep{}}
	if err := m.Observe(0, loadgen.Answer{Header: []byte(benchRedirect + "?code=abc&state=s")}); err != nil || len(m.into.codes) != 1 || string(m.into.codes[0]) != "abc" {
		t.Errorf("minted %q, %v", m.into.codes, err)
	}
	for _, loc := range []string{"", benchRedirect + "?error=access_denied", "http://elsewhere/?code=x"} {
		if err := m.Observe(0, loadgen.Answer{Header: []byte(loc)}); err == nil {
			t.Errorf("minted a code from %q", loc)
		}
	}
}

func TestBenchExhaustedText(t *testing.T) {
	got := benchExhaustedText([]time.Duration{-100 * time.Millisecond, 2500 * time.Millisecond, 3100 * time.Millisecond}, 32)
	for _, want := range []string{"3 of 32 workers ran out", "1 during the warm-up", "2 at 2.50s to 3.10s into the measured window", "counts until the last one stopped", "understate", "--code-stock"} {
		if !strings.Contains(got, want) {
			t.Errorf("%q lacks %q", got, want)
		}
	}
	if got := benchExhaustedText([]time.Duration{time.Second}, 2); !strings.Contains(got, "1 at 1.00s into") || strings.Contains(got, "warm-up") {
		t.Errorf("one worker: %q", got)
	}
}
