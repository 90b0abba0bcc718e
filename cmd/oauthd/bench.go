package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"database/sql"
	"debug/elf"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"text/tabwriter"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx", for the benchmark's schema
	"github.com/spf13/cobra"

	"github.com/oauthd/oauthd/internal/loadgen"
	"github.com/oauthd/oauthd/oauth"
	"github.com/oauthd/oauthd/storage"
)

// Scenarios of `oauthd bench`, in the order "all" runs them.
const (
	scenarioToken        = "client_credentials"
	scenarioJWKS         = "jwks"
	scenarioJWKS304      = "jwks-304"
	scenarioIntrospect   = "introspect"
	scenarioRefresh      = "refresh"
	scenarioCode         = "authorization_code"
	scenarioCodeExchange = "code_exchange"
	scenarioRefreshOIDC  = "refresh-oidc"
)

// benchScenarios is what "all" runs; refresh runs before
// authorization_code and code_exchange, whose thousands of new grants it
// would otherwise find in the tables.
var benchScenarios = []string{scenarioToken, scenarioJWKS, scenarioJWKS304, scenarioIntrospect, scenarioRefresh, scenarioCode, scenarioCodeExchange}

// benchExtraScenarios run only when named.
var benchExtraScenarios = []string{scenarioRefreshOIDC}

// benchScenario is a prepared scenario.
type benchScenario struct {
	spec loadgen.Spec
	// iteration names what one counted iteration is, when it is more than
	// one request.
	iteration string
	// check, when set, verifies the server's state after the load.
	check func(ctx context.Context) (*familyCheck, error)
	// prepare, when set, runs just before the scenario's load (not
	// measured), with the load's client: set-up that would not keep from
	// benchSpecs until then, like code_exchange's codes, which expire.
	prepare func(ctx context.Context, client loadgen.Client, progress io.Writer) error
}

// benchOptions are the flags of `oauthd bench`.
type benchOptions struct {
	scenario    string
	concurrency int
	duration    time.Duration
	warmup      time.Duration
	dsn         string
	logLevel    string
	target      string
	adminURL    string
	adminToken  string
	json        bool
	keepGoing   bool
	client      string
	seed        int64
	cpuProfile  string
	codeStock   int

	scenarios        []string // parsed --scenario
	serverProfileDir string   // where the server bench started writes profiles
}

func (c *cli) benchCommand() *cobra.Command {
	o := &benchOptions{}
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Measure throughput, latency, start-up time and memory under load",
		Long: `Measure oauthd under load: for each scenario, successful requests per second,
latency percentiles and errors; for the server process, binary size, start-up
time and memory. It reports figures; it never judges them.

Without --target, bench starts this binary as "oauthd serve" on loopback
ports, on a fresh SQLite database in a temporary directory (or a fresh schema,
dropped at the end, in the PostgreSQL database named by --dsn), registers a
client through the admin API, and stops the server with SIGTERM at the end.
The server logs at --log-level, by default info like a default server: one
access-log line per request, to a file (--log-level warn leaves them out). Other
OAUTHD_* variables (e.g. OAUTHD_ACCESS_TOKEN_ALG) and GOMAXPROCS, GOGC,
GOMEMLIMIT and GODEBUG pass through to it and are printed with the results.

With --target, bench drives a running server; it registers its client through
--admin-url with --admin-token (or OAUTHD_ADMIN_TOKEN) and deletes it at the
end. Process figures are then not measured.

Scenarios:
  client_credentials  POST /oauth2/token (client_secret_basic, scope bench:read);
                      expects 200 with an access_token
  jwks                GET /.well-known/jwks.json; expects 200
  jwks-304            the same with If-None-Match: <current ETag>; expects 304
  introspect          POST /oauth2/introspect by a resource server (a client
                      with allow_introspection) for the access token of a
                      user's grant; expects 200 with "active":true
  refresh             POST /oauth2/token grant_type=refresh_token: each worker
                      owns one grant (refresh-token family) and sends the
                      refresh token the previous answer rotated to; expects
                      200 with a refresh_token. Scope offline_access
                      bench:read, no openid (no ID token). Afterwards each
                      worker's last token must refresh once more and the
                      admin API must list one active grant session per
                      worker: "lost rotations" counts the families that fail
  authorization_code  one sign-in per iteration, without pages: GET
                      /oauth2/authorize with a signed-in browser's cookie
                      (the client skips consent) answers 303 with a code,
                      then POST /oauth2/token exchanges it (PKCE S256,
                      offline_access bench:read); REQ/S counts exchanges
  code_exchange       the code exchange alone: POST /oauth2/token
                      grant_type=authorization_code (PKCE S256), expects 200
                      with a refresh_token. Codes are single-use and live
                      60s, so before the load (not measured) each worker
                      gets --code-stock codes from GET /oauth2/authorize as
                      in authorization_code (that rate is printed too); a
                      worker whose stock runs out stops, and bench warns
                      that REQ/S then understates the rate
  refresh-oidc        refresh with openid in the grant: each answer carries
                      an ID token (RS256); only when named

The user scenarios set up, outside the measured time and through the public
pages and the admin API only: a confidential client with skip_consent
(redirect URI ` + benchRedirect + `, never contacted), a person per scenario
(POST /admin/users), signed in once through GET and POST /login, and for
refresh one grant per worker (authorize + code exchange). With --target they
stay on the server: bench deletes its clients and revokes its people's
grant sessions at the end (people cannot be deleted through the API).

--seed-sessions N inserts, before the scenarios, N grant sessions with one
active refresh token each straight into the database of the server bench
starts (one generate_series statement per 100,000 on PostgreSQL, recursive
CTEs in transactions of 50,000 rows on SQLite; random ids and signatures,
the request data of a real grant), then VACUUM ANALYZE (PostgreSQL) or a WAL
checkpoint (SQLite), and reports how long that took.

--cpuprofile DIR writes a CPU profile of the server per scenario, over its
measured window, to DIR/SCENARIO.pprof (go tool pprof DIR/refresh.pprof).

Each scenario runs --concurrency workers, each with one request in flight on
a kept-alive connection, for --warmup (not measured), then --duration.
--client picks the HTTP client: raw (the default for http://) is bench's own
lean HTTP/1.1 client, one connection per worker and no allocation per
request, so that it takes as little CPU from the server as it can; nethttp
(the default for https://) is Go's net/http, which costs several times more
CPU per request.
REQ/S counts successful requests in the measured window, and the latencies
(request start to end of the response body) are theirs. ERRORS counts failed
requests (wrong status, unexpected body, transport error, no answer 10s after
the end) over the whole run. The first failure stops the run unless
--keep-going; the exit status is 1 if any request failed. CPU columns are the
average cores the server and the benchmark itself used during the scenario:
the load generator shares the machine with the server (and the database).

Process figures (Linux): binary size; start-up time from process start to the
first 200 from /health/ready (polled every 5ms), on a fresh database
(migrations, key generation) and again on the existing one; idle RSS 1s after
ready; peak RSS (VmHWM) after the load.`,
		Example: `  oauthd bench
  oauthd bench --scenario client_credentials --concurrency 64 --duration 30s
  oauthd bench --dsn "postgres://oauthd@127.0.0.1:5432/oauthd?sslmode=disable"
  oauthd bench --log-level info        # include the cost of access logging
  oauthd bench --scenario refresh --seed-sessions 1000000
  oauthd bench --scenario authorization_code,introspect --cpuprofile /tmp/prof
  oauthd bench --scenario code_exchange --code-stock 2000
  oauthd bench --json > bench.json
  OAUTHD_ADMIN_TOKEN=... oauthd bench --target https://auth.example.com --admin-url http://10.0.0.5:8081
  make bench BENCH_ARGS="--duration 30s"`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := o.validate(cmd, c.getenv); err != nil {
				return err
			}
			return c.runBench(cmd.Context(), o)
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.scenario, "scenario", "all", "what to drive: "+strings.Join(append(slices.Clone(benchScenarios), benchExtraScenarios...), ", ")+"; all is every one but "+strings.Join(benchExtraScenarios, ", ")+"; several separated by commas")
	f.IntVar(&o.concurrency, "concurrency", 32, "requests in flight (workers)")
	f.DurationVar(&o.duration, "duration", 10*time.Second, "measured time per scenario")
	f.DurationVar(&o.warmup, "warmup", 2*time.Second, "unmeasured load before each scenario")
	f.StringVar(&o.dsn, "dsn", "", "database of the server bench starts: sqlite://PATH or postgres://... (a fresh schema in it) (default: SQLite in a temporary directory)")
	f.StringVar(&o.logLevel, "log-level", "info", "log level of the server bench starts (info, the server default, includes access logs)")
	f.StringVar(&o.target, "target", "", "base URL of a running server to drive instead of starting one")
	f.StringVar(&o.adminURL, "admin-url", "", "with --target: base URL of its admin listener")
	f.StringVar(&o.adminToken, "admin-token", "", "with --target: admin token (env OAUTHD_ADMIN_TOKEN); prefer the environment: flags show in ps")
	f.BoolVar(&o.json, "json", false, "print the results as one JSON object")
	f.BoolVar(&o.keepGoing, "keep-going", false, "count failed requests and carry on instead of stopping at the first")
	f.Int64Var(&o.seed, "seed-sessions", 0, "grant sessions (each with an active refresh token) to insert into the server's database before the scenarios")
	f.IntVar(&o.codeStock, "code-stock", 1200, "code_exchange: authorization codes each worker mints before the load and exchanges during it, one per request")
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "directory for a CPU profile of the server per scenario (SCENARIO.pprof)")
	f.StringVar(&o.client, "client", "", "HTTP client of the load: raw (lean, http:// only) or nethttp (Go's net/http) (default: raw for http://, nethttp for https://)")
	return cmd
}

// validate checks the flags before anything starts.
func (o *benchOptions) validate(cmd *cobra.Command, getenv func(string) string) error {
	var problems []error
	bad := func(format string, args ...any) { problems = append(problems, fmt.Errorf(format, args...)) }
	changed := func(name string) bool { return cmd.Flags().Changed(name) }

	o.scenarios = nil
	for _, s := range strings.Split(o.scenario, ",") {
		s = strings.TrimSpace(s)
		switch {
		case s == "all":
			o.scenarios = append(o.scenarios, benchScenarios...)
		case slices.Contains(benchScenarios, s) || slices.Contains(benchExtraScenarios, s):
			o.scenarios = append(o.scenarios, s)
		default:
			bad("--scenario: unknown scenario %q (want %s, %s or all)", s, strings.Join(benchScenarios, ", "), strings.Join(benchExtraScenarios, ", "))
		}
	}
	o.scenarios = benchDedupe(o.scenarios)
	if o.concurrency < 1 || o.concurrency > 10000 {
		bad("--concurrency: must be between 1 and 10000, not %d", o.concurrency)
	}
	if o.duration <= 0 {
		bad("--duration: must be positive (e.g. 10s)")
	}
	if o.warmup < 0 {
		bad("--warmup: must not be negative (0s for none)")
	}
	if o.codeStock < 1 {
		bad("--code-stock: must be at least 1 (codes per worker), not %d", o.codeStock)
	}
	if o.seed < 0 || o.seed > benchMaxSeed {
		bad("--seed-sessions: must be between 0 and %d, not %d", int64(benchMaxSeed), o.seed)
	}
	switch loadgen.Client(o.client) {
	case "", loadgen.ClientRaw, loadgen.ClientNetHTTP:
		if u, err := url.Parse(o.target); err == nil && u.Scheme == "https" && o.client == string(loadgen.ClientRaw) {
			bad("--client: raw speaks plain http only; use nethttp for an https --target")
		}
	default:
		bad("--client: must be %s or %s, not %q", loadgen.ClientRaw, loadgen.ClientNetHTTP, o.client)
	}
	if o.target != "" {
		if err := benchCheckURL(o.target); err != nil {
			bad("--target: %v", err)
		}
		for _, name := range []string{"dsn", "log-level", "seed-sessions", "cpuprofile"} {
			if changed(name) {
				bad("--%s: applies to the server bench starts, not to a --target", name)
			}
		}
		if o.adminURL == "" {
			bad("--admin-url: required with --target (to register the benchmark's client)")
		} else if err := benchCheckURL(o.adminURL); err != nil {
			bad("--admin-url: %v", err)
		}
		if o.adminToken == "" {
			o.adminToken = getenv("OAUTHD_ADMIN_TOKEN")
		}
		if o.adminToken == "" {
			bad("--admin-token or OAUTHD_ADMIN_TOKEN: required with --target")
		}
	} else {
		for _, name := range []string{"admin-url", "admin-token"} {
			if changed(name) {
				bad("--%s: only with --target (bench makes its own admin token for the server it starts)", name)
			}
		}
		if o.dsn != "" {
			if _, _, err := storage.ParseDSN(o.dsn); err != nil {
				bad("--dsn: %v", err)
			}
		}
		if !slices.Contains([]string{"debug", "info", "warn", "error"}, o.logLevel) {
			bad("--log-level: must be one of debug, info, warn, error")
		}
	}
	return errors.Join(problems...)
}

func benchCheckURL(s string) error {
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%q is not a base URL like http://127.0.0.1:8080", s)
	}
	return nil
}

func benchDedupe(list []string) []string {
	var out []string
	for _, s := range list {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// The report, printed as text or (--json) as one JSON object.
type benchReport struct {
	Config    benchConfig      `json:"config"`
	Seed      *seedReport      `json:"seed,omitempty"`
	Scenarios []scenarioReport `json:"scenarios"`
	Process   *processReport   `json:"process,omitempty"`
}

type benchConfig struct {
	Scenarios   []string `json:"scenarios"`
	Concurrency int      `json:"concurrency"`
	DurationS   float64  `json:"duration_s"`
	WarmupS     float64  `json:"warmup_s"`
	KeepGoing   bool     `json:"keep_going"`
	// SeedSessions is --seed-sessions.
	SeedSessions int64 `json:"seed_sessions,omitempty"`
	// Client is the load's HTTP client: raw or nethttp.
	Client string `json:"client"`
	// Server is "started" (bench ran oauthd serve) or "external" (--target).
	Server    string            `json:"server"`
	Target    string            `json:"target"`
	DB        string            `json:"db"` // sqlite, postgres, or unknown for --target
	LogLevel  string            `json:"server_log_level,omitempty"`
	ServerEnv map[string]string `json:"server_env,omitempty"`
	// The machine the benchmark (and a started server) ran on.
	GOMAXPROCS int    `json:"gomaxprocs"`
	NumCPU     int    `json:"num_cpu"`
	GoVersion  string `json:"go_version"`
	OS         string `json:"os"`
	Arch       string `json:"arch"`
}

type scenarioReport struct {
	Name           string           `json:"scenario"`
	Requests       int64            `json:"requests"`
	Errors         int64            `json:"errors"`
	ErrorKinds     map[string]int64 `json:"error_kinds,omitempty"`
	FirstError     string           `json:"first_error,omitempty"`
	Aborted        bool             `json:"aborted,omitempty"`
	WarmupRequests int64            `json:"warmup_requests"`
	ElapsedS       float64          `json:"elapsed_s"`
	RPS            float64          `json:"requests_per_second"`
	LatencyMS      latencyReport    `json:"latency_ms"`
	ServerCPU      *float64         `json:"server_cpu_cores,omitempty"`
	BenchCPU       *float64         `json:"bench_cpu_cores,omitempty"`
	// Iteration says what one counted request is when it is several
	// (requests and requests_per_second then count iterations).
	Iteration string `json:"iteration,omitempty"`
	// LostRotations and Families: the refresh scenarios' check after the
	// load (see familyCheck).
	LostRotations *int         `json:"lost_rotations,omitempty"`
	Families      *familyCheck `json:"families,omitempty"`
	// CPUProfile is the server's CPU profile of the measured window
	// (--cpuprofile).
	CPUProfile string `json:"cpu_profile,omitempty"`
	// ExhaustedS has, for each worker that ran out of its stock
	// (code_exchange), when, in seconds into the measured window
	// (negative: during the warm-up); requests_per_second then understates
	// the rate.
	ExhaustedS []float64 `json:"exhausted_workers_s,omitempty"`

	p50, p90, p99, p999, max time.Duration
}

type latencyReport struct {
	P50  float64 `json:"p50"`
	P90  float64 `json:"p90"`
	P99  float64 `json:"p99"`
	P999 float64 `json:"p99_9"`
	Max  float64 `json:"max"`
	Mean float64 `json:"mean"`
}

type processReport struct {
	BinaryPath  string `json:"binary_path"`
	BinaryBytes int64  `json:"binary_bytes"`
	// BinaryStripped says the binary lacks the symbol table and DWARF
	// (go run builds so; go build keeps both unless -ldflags="-s -w").
	BinaryStripped    *bool   `json:"binary_stripped,omitempty"`
	FreshDB           bool    `json:"first_start_fresh_db"`
	FirstStartMS      float64 `json:"first_start_ms"`
	StartMS           float64 `json:"start_ms"`
	IdleRSSBytes      int64   `json:"idle_rss_bytes,omitempty"`
	PeakRSSBytes      int64   `json:"peak_rss_bytes,omitempty"`
	RSSAfterLoadBytes int64   `json:"rss_after_load_bytes,omitempty"`
}

func benchMS(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

func newScenarioReport(r *loadgen.Result) scenarioReport {
	h := r.Latency
	s := scenarioReport{
		Name: r.Name, Requests: r.Requests, Errors: r.Errors, FirstError: r.FirstError, Aborted: r.Aborted,
		WarmupRequests: r.WarmupRequests, ElapsedS: math.Round(r.Elapsed.Seconds()*1000) / 1000,
		RPS: math.Round(r.Throughput()*10) / 10,
		p50: h.Quantile(0.5), p90: h.Quantile(0.9), p99: h.Quantile(0.99), p999: h.Quantile(0.999), max: h.Max(),
	}
	if len(r.ErrorKinds) > 0 {
		s.ErrorKinds = r.ErrorKinds
	}
	for _, d := range r.Exhausted {
		s.ExhaustedS = append(s.ExhaustedS, math.Round(d.Seconds()*1000)/1000)
	}
	s.LatencyMS = latencyReport{P50: benchMS(s.p50), P90: benchMS(s.p90), P99: benchMS(s.p99), P999: benchMS(s.p999), Max: benchMS(s.max), Mean: benchMS(h.Mean())}
	return s
}

// benchExhaustedText says how many of the workers ran out of their stock
// and when (offsets into the measured window, earliest first), and what
// that does to REQ/S.
func benchExhaustedText(exhausted []time.Duration, workers int) string {
	var warm int
	for _, d := range exhausted {
		if d < 0 {
			warm++
		}
	}
	var when []string
	if warm > 0 {
		when = append(when, fmt.Sprintf("%d during the warm-up", warm))
	}
	if in := exhausted[warm:]; len(in) > 0 {
		first, last := in[0].Seconds(), in[len(in)-1].Seconds()
		at := fmt.Sprintf("%.2fs", first)
		if len(in) > 1 {
			at = fmt.Sprintf("%.2fs to %.2fs", first, last)
		}
		when = append(when, fmt.Sprintf("%d at %s into the measured window", len(in), at))
	}
	return fmt.Sprintf("%d of %d workers ran out of codes (%s) and stopped; REQ/S counts until the last one stopped, so the time fewer than %d worked makes it understate their rate; a larger --code-stock keeps them busy to the end",
		len(exhausted), workers, strings.Join(when, ", "), workers)
}

// runBench runs the whole benchmark and prints the report.
func (c *cli) runBench(ctx context.Context, o *benchOptions) (err error) {
	rep := &benchReport{Config: benchConfig{
		Scenarios: o.scenarios, Concurrency: o.concurrency, DurationS: o.duration.Seconds(), WarmupS: o.warmup.Seconds(),
		KeepGoing: o.keepGoing, SeedSessions: o.seed, GOMAXPROCS: runtime.GOMAXPROCS(0), NumCPU: runtime.NumCPU(),
		GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH,
	}}
	progress := c.stderr
	defer func() {
		if err != nil && ctx.Err() != nil {
			err = errors.New("interrupted")
		}
	}()

	var publicURL, adminURL, adminToken string
	var srv *benchChild
	if o.target == "" {
		var cleanup func()
		srv, cleanup, err = c.startBenchServer(ctx, o, rep)
		defer cleanup() // after srv.stop (deferred below): removes the data, drops the schema
		if err != nil {
			return err
		}
		defer func() {
			if stopErr := srv.stop(); stopErr != nil && err == nil {
				err = fmt.Errorf("server did not stop cleanly: %v%s", stopErr, benchLogTail(srv.logPath))
			}
		}()
		publicURL, adminURL, adminToken = srv.publicURL, srv.adminURL, srv.adminToken
	} else {
		publicURL, adminURL, adminToken = strings.TrimRight(o.target, "/"), strings.TrimRight(o.adminURL, "/"), o.adminToken
		rep.Config.Server, rep.Config.Target, rep.Config.DB = "external", publicURL, "unknown"
		if err := benchCheckReady(ctx, publicURL); err != nil {
			return err
		}
	}

	loadClient, err := loadgen.ChooseClient(loadgen.Client(o.client), publicURL)
	if err != nil {
		return err
	}
	o.client, rep.Config.Client = string(loadClient), string(loadClient)
	client, err := registerBenchClient(ctx, adminURL, adminToken)
	if err != nil {
		return err
	}
	if srv == nil {
		defer func() {
			if err := deleteBenchClient(context.WithoutCancel(ctx), adminURL, adminToken, client.ID); err != nil {
				fmt.Fprintf(c.stderr, "bench: could not delete the benchmark client %s: %v\n", client.ID, err)
			}
		}()
	}
	target := &benchTarget{publicURL: publicURL, adminURL: adminURL, adminToken: adminToken, client: client, concurrency: o.concurrency, codeStock: o.codeStock, external: srv == nil}
	defer target.cleanup(context.WithoutCancel(ctx), c.stderr)
	if o.seed > 0 {
		if rep.Seed, err = target.seed(ctx, srv.dsn, o.seed, progress); err != nil {
			return err
		}
	}
	specs, err := benchSpecs(ctx, target, o.scenarios, loadClient)
	if err != nil {
		return err
	}
	pid := 0
	var alive func() error
	if srv != nil {
		pid, alive = srv.pid(), srv.alive
		o.serverProfileDir = srv.profileDir
	}
	rep.Scenarios, err = benchLoad(ctx, specs, o, pid, progress, alive)
	if err != nil {
		return err
	}
	if srv != nil {
		if rss, hwm, err := loadgen.ProcMemory(srv.pid()); err == nil {
			rep.Process.PeakRSSBytes, rep.Process.RSSAfterLoadBytes = hwm, rss
		}
	}

	if o.json {
		if err := printJSON(c.stdout, rep); err != nil {
			return err
		}
	} else {
		rep.writeText(c.stdout)
	}
	var failed int64
	aborted := false
	var checks []string
	for _, s := range rep.Scenarios {
		failed += s.Errors
		aborted = aborted || s.Aborted
		if f := s.Families; f != nil && !f.ok() {
			checks = append(checks, fmt.Sprintf("%s: %d of %d refresh-token families lost a rotation (%s)", s.Name, f.LostRotations, f.Families, f.FirstProblem))
		}
	}
	if srv != nil && (failed > 0 || len(checks) > 0) {
		if lines := benchLogProblems(srv.logPath, 8); len(lines) > 0 {
			fmt.Fprintf(c.stderr, "bench: the server logged (first warnings and errors):\n  %s\n", strings.Join(lines, "\n  "))
		}
	}
	switch {
	case aborted:
		return fmt.Errorf("a request failed, so the benchmark stopped (--keep-going counts failures and carries on)")
	case failed > 0:
		return fmt.Errorf("%d requests failed", failed)
	case len(checks) > 0:
		return errors.New(strings.Join(checks, "; "))
	}
	return nil
}

// startBenchServer prepares a database and starts the server twice: first
// on the fresh database (migrations, first keys), then on the existing one,
// as a restart would; it measures both starts and the idle RSS, and returns
// the second, running server. cleanup (never nil) removes what it made; call
// it after stopping the server.
func (c *cli) startBenchServer(ctx context.Context, o *benchOptions, rep *benchReport) (srv *benchChild, cleanup func(), err error) {
	var undo []func()
	cleanup = func() {
		for i := len(undo) - 1; i >= 0; i-- {
			undo[i]()
		}
	}
	tmp, err := os.MkdirTemp("", "oauthd-bench-")
	if err != nil {
		return nil, cleanup, err
	}
	undo = append(undo, func() { os.RemoveAll(tmp) })
	dsn, fresh := o.dsn, true
	if dsn == "" {
		dsn = "sqlite://" + filepath.Join(tmp, "oauthd.db")
	}
	dialect, driverDSN, _ := storage.ParseDSN(dsn)
	rep.Config.DB = string(dialect)
	switch dialect {
	case storage.Postgres:
		var drop func()
		if dsn, drop, err = benchSchema(ctx, dsn); err != nil {
			return nil, cleanup, err
		}
		undo = append(undo, drop)
	case storage.SQLite:
		if _, err := os.Stat(driverDSN); err == nil {
			fresh = false
		}
	}

	exe, err := os.Executable()
	if err != nil {
		return nil, cleanup, fmt.Errorf("cannot find this executable to start the server: %w", err)
	}
	proc := &processReport{BinaryPath: exe, FreshDB: fresh, BinaryStripped: benchStripped(exe)}
	if fi, err := os.Stat(exe); err == nil {
		proc.BinaryBytes = fi.Size()
	}
	rep.Process = proc

	env, shown, err := benchServerEnv(dsn, tmp, o.logLevel)
	if err == nil && o.cpuProfile != "" {
		env[benchProfileEnv] = filepath.Join(tmp, "profiles")
		err = os.MkdirAll(env[benchProfileEnv], 0o700)
	}
	if err != nil {
		return nil, cleanup, err
	}
	rep.Config.Server, rep.Config.LogLevel, rep.Config.ServerEnv = "started", o.logLevel, shown
	rep.Config.Target = "http://" + env["OAUTHD_ADDR"]
	logPath := filepath.Join(tmp, "server.log")

	fmt.Fprintf(c.stderr, "bench: starting %s serve (%s database, log level %s)\n", filepath.Base(exe), dialect, o.logLevel)
	first, err := startBenchChild(ctx, exe, env, logPath)
	if err != nil {
		return nil, cleanup, err
	}
	proc.FirstStartMS = benchMS(first.ready.Sub(first.started))
	if err := first.stop(); err != nil {
		return nil, cleanup, fmt.Errorf("server did not stop cleanly after the first start: %v%s", err, benchLogTail(logPath))
	}
	srv, err = startBenchChild(ctx, exe, env, logPath)
	if err != nil {
		return nil, cleanup, err
	}
	srv.dsn, srv.profileDir = dsn, env[benchProfileEnv]
	proc.StartMS = benchMS(srv.ready.Sub(srv.started))
	if err := benchSleep(ctx, time.Second); err != nil {
		srv.stop()
		return nil, cleanup, err
	}
	if rss, _, err := loadgen.ProcMemory(srv.pid()); err == nil {
		proc.IdleRSSBytes = rss
	}
	return srv, cleanup, nil
}

// benchLoad drives each scenario in turn. pid, when not 0, is the server's
// process, whose CPU use is reported (and profiled with --cpuprofile);
// alive, when set, reports a server that has died.
func benchLoad(ctx context.Context, scenarios []benchScenario, o *benchOptions, pid int, progress io.Writer, alive func() error) ([]scenarioReport, error) {
	var out []scenarioReport
	for _, sc := range scenarios {
		spec := sc.spec
		loadClient, err := loadgen.ChooseClient(loadgen.Client(o.client), spec.URL)
		if err != nil {
			return nil, err
		}
		if sc.prepare != nil {
			if err := sc.prepare(ctx, loadClient, progress); err != nil {
				return nil, err
			}
		}
		fmt.Fprintf(progress, "bench: %s: %d workers (%s client), %s warm-up + %s\n", spec.Name, o.concurrency, loadClient, o.warmup, o.duration)
		var prof *benchProfile
		if o.cpuProfile != "" && o.serverProfileDir != "" && pid > 0 {
			prof = startBenchProfile(pid, o.serverProfileDir, o.warmup)
		}
		srvCPU0, srvErr := loadgen.ProcCPU(pid)
		selfCPU0, selfErr := loadgen.ProcCPU(os.Getpid())
		start := time.Now()
		res, err := loadgen.Run(ctx, spec, loadgen.Config{Client: loadClient, Concurrency: o.concurrency, Duration: o.duration, Warmup: o.warmup, KeepGoing: o.keepGoing})
		if err != nil {
			return nil, err
		}
		wall := time.Since(start).Seconds()
		s := newScenarioReport(res)
		s.Iteration = sc.iteration
		if len(res.Exhausted) > 0 {
			fmt.Fprintf(progress, "bench: %s: warning: %s\n", spec.Name, benchExhaustedText(res.Exhausted, o.concurrency))
		}
		if cpu, err := loadgen.ProcCPU(pid); err == nil && srvErr == nil && pid > 0 {
			v := math.Round((cpu-srvCPU0).Seconds()/wall*100) / 100
			s.ServerCPU = &v
		}
		if cpu, err := loadgen.ProcCPU(os.Getpid()); err == nil && selfErr == nil {
			v := math.Round((cpu-selfCPU0).Seconds()/wall*100) / 100
			s.BenchCPU = &v
		}
		if prof != nil {
			if s.CPUProfile, err = prof.stop(o.cpuProfile, spec.Name); err != nil {
				fmt.Fprintf(progress, "bench: %s: no CPU profile: %v\n", spec.Name, err)
			}
		}
		if alive != nil {
			if err := alive(); err != nil {
				return nil, err
			}
		}
		if sc.check != nil {
			fc, err := sc.check(ctx)
			if err != nil {
				return nil, fmt.Errorf("scenario %s: %w", spec.Name, err)
			}
			s.Families, s.LostRotations = fc, &fc.LostRotations
		}
		out = append(out, s)
		if s.Errors > 0 && !o.keepGoing {
			break
		}
	}
	return out, nil
}

// benchServerEnv is the environment of the server bench starts: this
// process's, with the benchmark's settings on top. shown is what the
// report prints: the settings that pass through and change the figures.
func benchServerEnv(dsn, dataDir, logLevel string) (env map[string]string, shown map[string]string, err error) {
	addr, err := benchFreeAddr()
	if err != nil {
		return nil, nil, err
	}
	adminAddr, err := benchFreeAddr()
	if err != nil {
		return nil, nil, err
	}
	env = map[string]string{
		"OAUTHD_DSN":         dsn,
		"OAUTHD_ADDR":        addr,
		"OAUTHD_ADMIN_ADDR":  adminAddr,
		"OAUTHD_ISSUER":      "http://" + addr,
		"OAUTHD_DATA_DIR":    dataDir,
		"OAUTHD_SECRET":      benchRandom(32), // 43 characters
		"OAUTHD_ADMIN_TOKEN": benchRandom(32),
		"OAUTHD_LOG_LEVEL":   logLevel,
	}
	shown = map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		if _, ours := env[k]; ours || v == "" {
			continue
		}
		if strings.HasPrefix(k, "OAUTHD_") || slices.Contains([]string{"GOMAXPROCS", "GOGC", "GOMEMLIMIT", "GODEBUG"}, k) {
			if strings.Contains(k, "SECRET") || strings.Contains(k, "TOKEN") || strings.Contains(k, "PASSWORD") {
				v = "(hidden)"
			}
			shown[k] = v
		}
	}
	return env, shown, nil
}

// stripped reports whether an ELF binary lacks both the symbol table and
// DWARF; nil when it cannot tell (not ELF, or half stripped).
func benchStripped(path string) *bool {
	f, err := elf.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	syms := f.Section(".symtab") != nil
	dwarf := f.Section(".debug_info") != nil || f.Section(".zdebug_info") != nil
	if syms != dwarf {
		return nil
	}
	v := !syms
	return &v
}

func benchFreeAddr() (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", fmt.Errorf("cannot find a free loopback port: %w", err)
	}
	defer ln.Close()
	return ln.Addr().String(), nil
}

func benchRandom(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return base64.RawURLEncoding.EncodeToString(b)
}

// benchSchema creates a fresh schema in the PostgreSQL database of dsn and
// returns a DSN using it, and a function that drops it.
func benchSchema(ctx context.Context, dsn string) (string, func(), error) {
	var b [6]byte
	_, _ = rand.Read(b[:])
	schema := "bench_" + hex.EncodeToString(b[:])
	u, err := url.Parse(dsn)
	if err != nil {
		return "", nil, fmt.Errorf("--dsn: not a URL: %s", storage.Redact(dsn))
	}
	db, err := sql.Open("pgx", dsn)
	if err != nil {
		return "", nil, fmt.Errorf("postgres %s: %w", storage.Host(dsn), err)
	}
	cctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if _, err := db.ExecContext(cctx, `CREATE SCHEMA `+schema); err != nil {
		db.Close()
		return "", nil, fmt.Errorf("postgres %s: cannot create the benchmark's schema: %w", storage.Host(dsn), err)
	}
	q := u.Query()
	q.Set("search_path", schema)
	u.RawQuery = q.Encode()
	drop := func() {
		dctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if _, err := db.ExecContext(dctx, `DROP SCHEMA `+schema+` CASCADE`); err != nil {
			fmt.Fprintf(os.Stderr, "bench: could not drop schema %s: %v\n", schema, err)
		}
		db.Close()
	}
	return u.String(), drop, nil
}

// benchChild is a server process bench started.
type benchChild struct {
	publicURL, adminURL, adminToken string
	dsn                             string // the server's database
	profileDir                      string // where it writes CPU profiles (--cpuprofile)

	cmd      *exec.Cmd
	started  time.Time
	ready    time.Time
	done     chan struct{}
	waitErr  error
	logPath  string
	stopOnce sync.Once
	stopErr  error
}

// startBenchChild starts exe serve with env (on top of this process's) and
// waits for /health/ready to answer 200; the server's output is appended to
// logPath.
func startBenchChild(ctx context.Context, exe string, env map[string]string, logPath string) (*benchChild, error) {
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := exec.Command(exe, "serve")
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); env[k] == "" {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	loadgen.StopWithParent(cmd)
	ch := &benchChild{cmd: cmd, done: make(chan struct{}), logPath: logPath,
		publicURL: "http://" + env["OAUTHD_ADDR"], adminURL: "http://" + env["OAUTHD_ADMIN_ADDR"], adminToken: env["OAUTHD_ADMIN_TOKEN"]}
	ch.started = time.Now()
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("cannot start %s serve: %w", exe, err)
	}
	go func() {
		ch.waitErr = cmd.Wait()
		close(ch.done)
	}()

	poll := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	limit := time.NewTimer(2 * time.Minute)
	defer limit.Stop()
	for {
		if resp, err := poll.Get(ch.publicURL + "/health/ready"); err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				ch.ready = time.Now()
				return ch, nil
			}
		}
		select {
		case <-ch.done:
			return nil, fmt.Errorf("the server exited during start-up (%v)%s", ch.waitErr, benchLogTail(logPath))
		case <-ctx.Done():
			ch.stop()
			return nil, ctx.Err()
		case <-limit.C:
			ch.stop()
			return nil, fmt.Errorf("the server was not ready after 2 minutes%s", benchLogTail(logPath))
		case <-tick.C:
		}
	}
}

func (ch *benchChild) pid() int { return ch.cmd.Process.Pid }

// alive reports an error if the server has exited.
func (ch *benchChild) alive() error {
	select {
	case <-ch.done:
		return fmt.Errorf("the server exited during the benchmark (%v)%s", ch.waitErr, benchLogTail(ch.logPath))
	default:
		return nil
	}
}

// stop sends SIGTERM and waits for the graceful shutdown (SIGKILL after
// 30s); it returns the exit error of a server that did not exit cleanly.
func (ch *benchChild) stop() error {
	ch.stopOnce.Do(func() {
		select {
		case <-ch.done:
			ch.stopErr = ch.waitErr // already gone: that is an error
			if ch.stopErr == nil {
				ch.stopErr = errors.New("exited before it was stopped")
			}
			return
		default:
		}
		_ = ch.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-ch.done:
			ch.stopErr = ch.waitErr
		case <-time.After(30 * time.Second):
			_ = ch.cmd.Process.Kill()
			<-ch.done
			ch.stopErr = errors.New("no exit 30s after SIGTERM; killed")
		}
	})
	return ch.stopErr
}

// benchLogProblems returns the first n distinct warnings and errors of the
// server log (distinct by message), to explain failed requests.
func benchLogProblems(path string, n int) []string {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []string
	seen := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		if !strings.Contains(line, " level=ERROR ") && !strings.Contains(line, " level=WARN ") {
			continue
		}
		key := line
		if i := strings.Index(line, " msg="); i >= 0 {
			key = line[i:]
			if j := strings.Index(key[1:], "="); j >= 0 {
				key = key[:j]
			}
		}
		if seen[key] {
			continue
		}
		seen[key] = true
		out = append(out, benchTruncate([]byte(benchDropStacks(line)), 600))
		if len(out) == n {
			break
		}
	}
	return out
}

// benchDropStacks removes the stack traces from the quoted values of a
// logfmt line (errors logged with %+v carry one per wrapping), keeping
// their messages.
func benchDropStacks(line string) string {
	var b strings.Builder
	for {
		i := strings.Index(line, `="`)
		if i < 0 {
			b.WriteString(line)
			return b.String()
		}
		b.WriteString(line[:i+1])
		line = line[i+1:]
		end := 1
		for end < len(line) && line[end] != '"' {
			if line[end] == '\\' {
				end++
			}
			end++
		}
		if end >= len(line) {
			b.WriteString(line)
			return b.String()
		}
		v, err := strconv.Unquote(line[:end+1])
		line = line[end+1:]
		if err != nil || !strings.Contains(v, "\n\t") {
			b.WriteString(strconv.Quote(v))
			continue
		}
		lines := strings.Split(v, "\n")
		var keep []string
		for j, l := range lines {
			frame := strings.HasPrefix(l, "\t") || j+1 < len(lines) && strings.HasPrefix(lines[j+1], "\t")
			if !frame && strings.TrimSpace(l) != "" {
				keep = append(keep, l)
			}
		}
		b.WriteString(strconv.Quote(strings.Join(keep, " | ")))
	}
}

// logTail returns the end of the server log, for error messages.
func benchLogTail(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(bytes.TrimSpace(b)) == 0 {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > 20 {
		lines = lines[len(lines)-20:]
	}
	return "; server log:\n  " + strings.Join(lines, "\n  ")
}

func benchSleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// benchHTTP is the client for set-up requests (not the load).
var benchHTTP = &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{Proxy: nil}}

func benchCheckReady(ctx context.Context, base string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+"/health/ready", nil)
	if err != nil {
		return err
	}
	resp, err := benchHTTP.Do(req)
	if err != nil {
		return fmt.Errorf("--target: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 300))
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("--target: %s/health/ready answered %d: %s", base, resp.StatusCode, bytes.TrimSpace(body))
	}
	return nil
}

// benchClient is the client the benchmark registers.
type benchClient struct {
	ID     string `json:"client_id"`
	Secret string `json:"client_secret"`
}

func benchAdminRequest(ctx context.Context, method, adminURL, path, token string, body []byte) (int, []byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, adminURL+path, bytes.NewReader(body))
	if err != nil {
		return 0, nil, err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := benchHTTP.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	return resp.StatusCode, b, err
}

// registerBenchClient registers a client_credentials client through the
// admin API.
func registerBenchClient(ctx context.Context, adminURL, token string) (benchClient, error) {
	meta := []byte(`{"client_name":"bench","grant_types":["client_credentials"],"scope":"bench:read bench:write"}`)
	status, body, err := benchAdminRequest(ctx, http.MethodPost, adminURL, "/admin/clients", token, meta)
	if err != nil {
		return benchClient{}, fmt.Errorf("register the benchmark client: %w", err)
	}
	if status != http.StatusCreated {
		return benchClient{}, fmt.Errorf("register the benchmark client: POST %s/admin/clients answered %d: %s", adminURL, status, benchTruncate(body, 300))
	}
	var cl benchClient
	if err := json.Unmarshal(body, &cl); err != nil || cl.ID == "" || cl.Secret == "" {
		return benchClient{}, fmt.Errorf("register the benchmark client: unexpected answer: %s", benchTruncate(body, 300))
	}
	return cl, nil
}

func deleteBenchClient(ctx context.Context, adminURL, token, id string) error {
	status, body, err := benchAdminRequest(ctx, http.MethodDelete, adminURL, "/admin/clients/"+url.PathEscape(id), token, nil)
	if err != nil {
		return err
	}
	if status/100 != 2 {
		return fmt.Errorf("DELETE answered %d: %s", status, benchTruncate(body, 300))
	}
	return nil
}

func benchTruncate(b []byte, n int) string {
	b = bytes.TrimSpace(b)
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// benchSpecs prepares the scenarios (the user scenarios' set-up runs
// here) and sends each one's first request (or iteration) once with the
// load's client, so that a set-up problem fails with a clear message before
// any load.
func benchSpecs(ctx context.Context, t *benchTarget, names []string, client loadgen.Client) ([]benchScenario, error) {
	base, cl := t.publicURL, t.client
	client, err := loadgen.ChooseClient(client, base)
	if err != nil {
		return nil, err
	}
	var out []benchScenario
	for _, name := range names {
		var sc *benchScenario
		switch name {
		case scenarioToken:
			sc = &benchScenario{spec: loadgen.Spec{
				Name: name, Method: http.MethodPost, URL: base + oauth.PathToken,
				Header: http.Header{
					"Authorization": {cl.basicAuth()},
					"Content-Type":  {"application/x-www-form-urlencoded"},
					"Accept":        {"application/json"},
				},
				Body:         []byte(url.Values{"grant_type": {"client_credentials"}, "scope": {"bench:read"}}.Encode()),
				Status:       http.StatusOK,
				BodyContains: []byte(`"access_token"`),
			}}
		case scenarioJWKS:
			sc = &benchScenario{spec: loadgen.Spec{Name: name, Method: http.MethodGet, URL: base + oauth.PathJWKS, Status: http.StatusOK, BodyContains: []byte(`"keys"`)}}
		case scenarioJWKS304:
			etag, err := jwksETag(ctx, base)
			if err != nil {
				return nil, err
			}
			sc = &benchScenario{spec: loadgen.Spec{Name: name, Method: http.MethodGet, URL: base + oauth.PathJWKS,
				Header: http.Header{"If-None-Match": {etag}}, Status: http.StatusNotModified}}
		case scenarioIntrospect:
			sc, err = t.introspectScenario(ctx)
		case scenarioRefresh:
			sc, err = t.refreshScenario(ctx, name, benchUserScope)
		case scenarioRefreshOIDC:
			sc, err = t.refreshScenario(ctx, name, "openid "+benchUserScope)
		case scenarioCode:
			sc, err = t.codeScenario(ctx)
		case scenarioCodeExchange:
			sc, err = t.codeExchangeScenario(ctx, client)
		default:
			return nil, fmt.Errorf("unknown scenario %q", name)
		}
		if err != nil {
			return nil, err
		}
		var s *loadgen.Sender
		if client == loadgen.ClientRaw {
			s, err = loadgen.NewRawSender(ctx, sc.spec, benchHTTP.Timeout)
		} else {
			s, err = loadgen.NewSender(ctx, sc.spec, benchHTTP.Transport)
		}
		if err != nil {
			return nil, err
		}
		err = s.Do()
		s.Close()
		if err != nil {
			return nil, fmt.Errorf("scenario %s: the first request failed (%s client): %v", name, client, err)
		}
		out = append(out, *sc)
	}
	return out, nil
}

func jwksETag(ctx context.Context, base string) (string, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+oauth.PathJWKS, nil)
	if err != nil {
		return "", err
	}
	resp, err := benchHTTP.Do(req)
	if err != nil {
		return "", fmt.Errorf("scenario %s: %w", scenarioJWKS304, err)
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	etag := resp.Header.Get("ETag")
	if resp.StatusCode != http.StatusOK || etag == "" {
		return "", fmt.Errorf("scenario %s: GET %s answered %d with ETag %q", scenarioJWKS304, oauth.PathJWKS, resp.StatusCode, etag)
	}
	return etag, nil
}

// writeText prints the report for people.
func (r *benchReport) writeText(w io.Writer) {
	c := r.Config
	client := c.Client
	if client == "" {
		client = "?"
	}
	fmt.Fprintf(w, "oauthd bench: scenario=%s concurrency=%d duration=%s warmup=%s client=%s db=%s GOMAXPROCS=%d cpus=%d %s %s/%s\n",
		strings.Join(c.Scenarios, ","), c.Concurrency, benchSecs(c.DurationS), benchSecs(c.WarmupS), client, c.DB, c.GOMAXPROCS, c.NumCPU, c.GoVersion, c.OS, c.Arch)
	if c.Server == "started" {
		logging := "access logging off"
		if c.LogLevel == "info" || c.LogLevel == "debug" {
			logging = "access logging on, to a file"
		}
		fmt.Fprintf(w, "server: oauthd serve started by bench at %s, log level %s (%s); bench shares the machine\n", c.Target, c.LogLevel, logging)
	} else {
		fmt.Fprintf(w, "server: %s (external: start-up and memory not measured)\n", c.Target)
	}
	if len(c.ServerEnv) > 0 {
		keys := make([]string, 0, len(c.ServerEnv))
		for k := range c.ServerEnv {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for i, k := range keys {
			keys[i] = k + "=" + c.ServerEnv[k]
		}
		fmt.Fprintf(w, "server environment: %s\n", strings.Join(keys, " "))
	}
	if sd := r.Seed; sd != nil {
		fmt.Fprintf(w, "seeded: %s\n", sd.text())
	}
	fmt.Fprintln(w)

	// Numbers align right; the scenario names, padded to one width, left.
	nameWidth := len("SCENARIO")
	for _, s := range r.Scenarios {
		nameWidth = max(nameWidth, len(s.Name))
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintf(tw, "%-*s\tREQUESTS\tERRORS\tREQ/S\tP50\tP90\tP99\tP99.9\tMAX\tCPU SERVER\tCPU BENCH\t\n", nameWidth, "SCENARIO")
	for _, s := range r.Scenarios {
		fmt.Fprintf(tw, "%-*s\t%d\t%d\t%.0f\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", nameWidth, s.Name, s.Requests, s.Errors, s.RPS,
			benchDur(s.p50), benchDur(s.p90), benchDur(s.p99), benchDur(s.p999), benchDur(s.max), benchCores(s.ServerCPU), benchCores(s.BenchCPU))
	}
	tw.Flush()
	for _, s := range r.Scenarios {
		if s.Iteration != "" {
			fmt.Fprintf(w, "%s: REQUESTS and REQ/S count iterations, each %s\n", s.Name, s.Iteration)
		}
		if f := s.Families; f != nil {
			fmt.Fprintf(w, "%s: lost rotations: %d (%d families, %d rotations; %d last tokens refreshed once more; %d active grant sessions listed for %d workers",
				s.Name, f.LostRotations, f.Families, f.Rotations, f.FinalRefreshOK, f.ActiveSessions, f.Families)
			if f.FirstProblem != "" {
				fmt.Fprintf(w, "; first problem: %s", f.FirstProblem)
			}
			fmt.Fprintln(w, ")")
		}
		if s.CPUProfile != "" {
			fmt.Fprintf(w, "%s: server CPU profile of the measured window: %s\n", s.Name, s.CPUProfile)
		}
	}
	for _, s := range r.Scenarios {
		if s.Errors == 0 {
			continue
		}
		var kinds []string
		for k, n := range s.ErrorKinds {
			kinds = append(kinds, fmt.Sprintf("%s ×%d", k, n))
		}
		sort.Strings(kinds)
		stopped := ""
		if s.Aborted {
			stopped = " (stopped at the first; --keep-going to carry on)"
		}
		fmt.Fprintf(w, "%s errors%s: %s; first: %s\n", s.Name, stopped, strings.Join(kinds, ", "), s.FirstError)
	}
	if len(r.Scenarios) < len(c.Scenarios) {
		fmt.Fprintf(w, "skipped after a failure: %s\n", strings.Join(c.Scenarios[len(r.Scenarios):], ", "))
	}

	p := r.Process
	if p == nil {
		return
	}
	fmt.Fprintln(w)
	tw = tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	build := ""
	if p.BinaryStripped != nil && *p.BinaryStripped {
		build = " (stripped, as go run builds; go build keeps symbols and DWARF unless -ldflags=\"-s -w\")"
	} else if p.BinaryStripped != nil {
		build = " (with symbols and DWARF, as go build makes it; -ldflags=\"-s -w\" strips them)"
	}
	fmt.Fprintf(tw, "binary size\t%s\t%s%s\n", benchMiB(p.BinaryBytes), p.BinaryPath, build)
	firstDB := "fresh database: migrations, key generation"
	if !p.FreshDB {
		firstDB = "database from --dsn, not fresh"
	}
	fmt.Fprintf(tw, "first start\t%s\tprocess start to /health/ready 200 (±5ms), %s\n", benchDur(time.Duration(p.FirstStartMS*1e6)), firstDB)
	fmt.Fprintf(tw, "cold start\t%s\tthe same, on the existing database\n", benchDur(time.Duration(p.StartMS*1e6)))
	fmt.Fprintf(tw, "idle RSS\t%s\t1s after ready\n", benchMiB(p.IdleRSSBytes))
	fmt.Fprintf(tw, "peak RSS\t%s\tVmHWM after the load (RSS then %s)\n", benchMiB(p.PeakRSSBytes), benchMiB(p.RSSAfterLoadBytes))
	tw.Flush()
}

func benchSecs(s float64) string { return time.Duration(s * float64(time.Second)).String() }

func benchMiB(b int64) string {
	if b <= 0 {
		return "n/a"
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}

func benchCores(v *float64) string {
	if v == nil {
		return "-"
	}
	return fmt.Sprintf("%.2f", *v)
}

// fmtDur prints a duration with three significant digits.
func benchDur(d time.Duration) string {
	switch {
	case d <= 0:
		return "-"
	case d < time.Microsecond:
		return fmt.Sprintf("%dns", d)
	case d < 10*time.Microsecond:
		return fmt.Sprintf("%.2fµs", float64(d)/1e3)
	case d < 100*time.Microsecond:
		return fmt.Sprintf("%.1fµs", float64(d)/1e3)
	case d < time.Millisecond:
		return fmt.Sprintf("%.0fµs", float64(d)/1e3)
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	case d < 100*time.Millisecond:
		return fmt.Sprintf("%.1fms", float64(d)/1e6)
	case d < time.Second:
		return fmt.Sprintf("%.0fms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.2fs", d.Seconds())
}
