package main

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/oauthd/oauthd/internal/loadgen"
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
		t.Run(string(client), func(t *testing.T) { testBenchLoadGenerator(t, ts.PublicURL, cl, client) })
	}
}

func testBenchLoadGenerator(t *testing.T, publicURL string, cl benchClient, client loadgen.Client) {
	ctx := context.Background()
	specs, err := benchSpecs(ctx, publicURL, cl, benchScenarios, client)
	if err != nil {
		t.Fatal(err)
	}
	o := &benchOptions{scenarios: benchScenarios, concurrency: 2, duration: 300 * time.Millisecond, warmup: 50 * time.Millisecond, client: string(client)}
	var progress bytes.Buffer
	reports, err := benchLoad(ctx, specs, o, 0, &progress, nil)
	if err != nil {
		t.Fatal(err)
	}
	if want := "(" + string(client) + " client)"; !strings.Contains(progress.String(), want) {
		t.Errorf("progress lacks %q:\n%s", want, progress.String())
	}
	if len(reports) != len(benchScenarios) {
		t.Fatalf("%d scenario reports, want %d", len(reports), len(benchScenarios))
	}
	for i, s := range reports {
		if s.Name != benchScenarios[i] {
			t.Errorf("report %d is %s, want %s", i, s.Name, benchScenarios[i])
		}
		checkScenarioReport(t, s)
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
	if err := json.Unmarshal(js.Bytes(), &back); err != nil || len(back.Scenarios) != 3 || back.Scenarios[0].LatencyMS.P50 <= 0 || back.Config.Client != string(client) {
		t.Errorf("JSON report: %v\n%s", err, js.String())
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
	err := run(context.Background(), []string{"bench", "--json", "--concurrency", "2", "--duration", "200ms", "--warmup", "0s"}, envMap(nil), nil, &out, &errb)
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
	specs, err := benchSpecs(ctx, publicURL, cl, []string{scenarioToken}, loadgen.ClientNetHTTP)
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
		s, err := loadgen.NewSender(ctx, specs[0], rt)
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
