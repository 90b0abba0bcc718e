package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"

	"github.com/gorilla/mux"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"github.com/oauthd/oauthd/accounts"
	"github.com/oauthd/oauthd/admin"
	"github.com/oauthd/oauthd/internal/httpx"
	"github.com/oauthd/oauthd/internal/logx"
	"github.com/oauthd/oauthd/internal/secret"
	"github.com/oauthd/oauthd/keys"
	"github.com/oauthd/oauthd/oauth"
	"github.com/oauthd/oauthd/storage"
	"github.com/oauthd/oauthd/web"
)

// maxBodyBytes caps every request body: OAuth requests and client metadata
// are small.
const maxBodyBytes = 64 << 10

// server is a started oauthd: both listeners bound, keys loaded.
type server struct {
	cfg        *Config
	logger     *slog.Logger
	store      *storage.Store
	keys       *keys.Manager
	public     *http.Server
	admin      *http.Server
	publicLn   net.Listener
	adminLn    net.Listener
	ready      atomic.Bool
	tokenPath  string // where the admin token is stored, "" when from the environment
	adminToken string
}

// gcPercent is the garbage-collection target of `serve` unless GOGC is set.
// The server's live heap is a few MiB and every request allocates, so Go's
// default (100) collects very often: at 300 the token endpoint serves about
// 15% more requests per CPU second for about 6 MiB more resident memory
// (docs/benchmarks.md). GOGC and GOMEMLIMIT still override it.
const gcPercent = 300

func tuneGC(getenv func(string) string) {
	if getenv("GOGC") == "" {
		debug.SetGCPercent(gcPercent)
	}
}

// newLogger builds the process logger from the configuration. When w is a
// logx.BufferedWriter, warnings and errors flush it at once.
func newLogger(c *Config, w io.Writer) *slog.Logger {
	var level slog.Level
	_ = level.UnmarshalText([]byte(c.LogLevel))
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if c.LogFormat == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	if b, ok := w.(*logx.BufferedWriter); ok {
		h = logx.FlushingHandler{Handler: h, Buffer: b, Level: slog.LevelWarn}
	}
	return slog.New(httpx.ContextHandler{Handler: h})
}

// openStore connects to the database and applies migrations when asked to.
func openStore(ctx context.Context, c *Config, logger *slog.Logger, migrate bool) (*storage.Store, error) {
	st, err := storage.Open(ctx, storage.Config{DSN: c.DSN, MaxOpenConns: c.DBMaxOpenConns, ConnMaxLifetime: c.DBConnMaxLifetime}, logger)
	if err != nil {
		return nil, err
	}
	if migrate {
		applied, err := st.MigrateUp(ctx)
		if err != nil {
			st.Close()
			return nil, err
		}
		if len(applied) > 0 {
			logger.Info("migrations applied", "versions", applied)
		}
	}
	return st, nil
}

// The sign-in pages are the authorization endpoint's Browser.
var _ oauth.Browser = (*web.Site)(nil)

// start builds and binds everything; it serves nothing until serve is called.
// Listeners may be passed in (tests bind port 0 first to know the issuer);
// otherwise OAUTHD_ADDR and OAUTHD_ADMIN_ADDR are bound.
func start(ctx context.Context, c *Config, logger *slog.Logger, lns ...net.Listener) (*server, error) {
	st, err := openStore(ctx, c, logger, c.Migrate)
	if err != nil {
		return nil, err
	}
	s := &server{cfg: c, logger: logger, store: st}
	if len(lns) == 2 {
		s.publicLn, s.adminLn = lns[0], lns[1]
	}
	ok := false
	defer func() {
		if !ok {
			s.close()
		}
	}()
	if !c.Migrate {
		pending, err := st.PendingMigrations(ctx)
		if err != nil {
			return nil, err
		}
		if pending {
			return nil, errors.New("the database schema is behind this binary: run `oauthd migrate up` or start with --migrate=true")
		}
	}
	master, err := systemSecret(c)
	if err != nil {
		return nil, err
	}
	if c.Secret == "" && st.Dialect() == storage.Postgres {
		logger.Warn("OAUTHD_SECRET is not set: using the secret generated in the data dir; every process sharing this database must use the same secret, so set OAUTHD_SECRET on all of them",
			"file", c.secretFile())
	}
	s.adminToken, _, err = adminToken(c)
	if err != nil {
		return nil, err
	}
	if c.AdminToken == "" {
		s.tokenPath = c.adminTokenFile()
	}

	s.keys, err = keys.New(c.keysConfig(), st, master, logger)
	if err != nil {
		return nil, err
	}
	if err := s.keys.Init(ctx); err != nil {
		return nil, err
	}

	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		collectors.NewDBStatsCollector(st.SQLDB(), string(st.Dialect())),
		keyAgeCollector{s.keys},
	)
	hasher := secret.NewHasher(master)
	users, err := accounts.New(st, c.PasswordHash, runtime.GOMAXPROCS(0))
	if err != nil {
		return nil, err
	}
	site, err := web.New(web.Config{
		Issuer: c.Issuer,
		Key:    secret.Derive(master, secret.CSRF),
	}, st, users, logger)
	if err != nil {
		return nil, err
	}
	provider, err := oauth.New(oauth.Config{
		Issuer:             c.Issuer,
		AccessTokenTTL:     c.AccessTokenTTL,
		ClientCacheTTL:     c.ClientCacheTTL,
		TokenHMACKey:       secret.Derive(master, secret.TokenHMAC),
		SealKey:            secret.Derive(master, secret.Seal),
		AccessTokenAlg:     c.AccessTokenAlg,
		IDTokenAlg:         c.IDTokenAlg,
		JWKSMaxAge:         c.JWKSMaxAge,
		RefreshTokenTTL:    c.RefreshTokenTTL,
		RefreshReuseWindow: c.RefreshReuseWindow,
	}, st, s.keys, site, hasher, reg, logger)
	if err != nil {
		return nil, err
	}
	clients := admin.NewClients(st, hasher, oauth.SupportedGrantTypes)
	clients.Changed = provider.InvalidateClient

	pub := mux.NewRouter()
	pubMetrics := httpx.NewMetrics(reg, "public")
	pub.Use(pubMetrics.Middleware)
	provider.Register(pub)
	site.Register(pub)
	s.registerHealth(pub)
	// mux middleware runs on matched routes only: count the misses too.
	pub.NotFoundHandler = pubMetrics.Middleware(http.HandlerFunc(notFound))
	pub.MethodNotAllowedHandler = pubMetrics.Middleware(http.HandlerFunc(methodNotAllowed))

	adm := mux.NewRouter()
	admMetrics := httpx.NewMetrics(reg, "admin")
	adm.Use(admMetrics.Middleware)
	(&admin.API{Clients: clients, Users: users, Sessions: st, Keys: s.keys, Token: s.adminToken, Logger: logger}).Register(adm)
	adm.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{})).Methods(http.MethodGet)
	s.registerHealth(adm)
	adm.NotFoundHandler = admMetrics.Middleware(http.HandlerFunc(notFound))
	adm.MethodNotAllowedHandler = admMetrics.Middleware(http.HandlerFunc(methodNotAllowed))

	s.public = newHTTPServer(pub, logger)
	s.admin = newHTTPServer(adm, logger)
	if s.publicLn == nil {
		if s.publicLn, err = net.Listen("tcp", c.Addr); err != nil {
			return nil, fmt.Errorf("OAUTHD_ADDR: cannot listen on %s: %w", c.Addr, err)
		}
	}
	if s.adminLn == nil {
		if s.adminLn, err = net.Listen("tcp", c.AdminAddr); err != nil {
			return nil, fmt.Errorf("OAUTHD_ADMIN_ADDR: cannot listen on %s: %w", c.AdminAddr, err)
		}
	}
	ok = true
	return s, nil
}

// newHTTPServer wraps a router in the shared middleware and sets timeouts
// that keep slow or abusive clients from holding connections.
func newHTTPServer(h http.Handler, logger *slog.Logger) *http.Server {
	h = httpx.LimitBody(maxBodyBytes)(h)
	h = httpx.SecurityHeaders(h)
	h = httpx.Recover(logger)(h) // inside AccessLog: a panic still gets its access line and request id
	h = httpx.AccessLog(logger)(h)
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelWarn),
	}
}

// serve runs until ctx ends, then shuts down gracefully: readiness turns
// 503 (and the server keeps serving for ShutdownDelay), listeners stop
// accepting, in-flight requests finish (up to ShutdownTimeout), background
// work stops, the database is closed.
func (s *server) serve(ctx context.Context) error {
	defer s.close()
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return serveListener(s.public, s.publicLn) })
	g.Go(func() error { return serveListener(s.admin, s.adminLn) })
	g.Go(func() error { return s.keys.Run(gctx) })
	g.Go(func() error { s.prune(gctx); return nil })
	g.Go(func() error {
		<-gctx.Done()
		s.ready.Store(false)
		if ctx.Err() != nil && s.cfg.ShutdownDelay > 0 { // a signal, not a failed listener
			// Readiness is 503 now; keep serving until load balancers notice.
			s.logger.Info("draining: not ready, still serving", "delay", s.cfg.ShutdownDelay)
			time.Sleep(s.cfg.ShutdownDelay)
		}
		shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.ShutdownTimeout)
		defer cancel()
		s.logger.Info("shutting down", "timeout", s.cfg.ShutdownTimeout)
		return errors.Join(s.public.Shutdown(shutdownCtx), s.admin.Shutdown(shutdownCtx))
	})
	s.ready.Store(true)
	err := g.Wait()
	s.logger.Info("stopped")
	return err
}

// prune deletes expired rows every PruneInterval (with up to 10% jitter, so
// processes started together spread out) until ctx ends. Failures are
// logged; the next round tries again.
func (s *server) prune(ctx context.Context) {
	for {
		wait := s.cfg.PruneInterval + time.Duration(rand.Int64N(int64(s.cfg.PruneInterval)/10+1))
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		n, err := s.store.PruneExpired(ctx, time.Now(), storage.PruneOptions{ReuseWindow: s.cfg.RefreshReuseWindow})
		switch {
		case err != nil && ctx.Err() == nil:
			s.logger.WarnContext(ctx, "pruning expired rows failed", "err", err)
		case n > 0:
			s.logger.InfoContext(ctx, "expired rows pruned", "rows", n)
		}
	}
}

func serveListener(srv *http.Server, ln net.Listener) error {
	if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

func (s *server) close() {
	if s.publicLn != nil {
		s.publicLn.Close()
	}
	if s.adminLn != nil {
		s.adminLn.Close()
	}
	if s.store != nil {
		s.store.Close()
	}
}

// registerHealth mounts /health/alive (the process answers) and
// /health/ready (database reachable, keys loaded, not shutting down).
func (s *server) registerHealth(r *mux.Router) {
	r.HandleFunc("/health/alive", func(w http.ResponseWriter, _ *http.Request) {
		httpx.NoStore(w)
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}).Methods(http.MethodGet, http.MethodHead)
	r.HandleFunc("/health/ready", func(w http.ResponseWriter, r *http.Request) {
		httpx.NoStore(w)
		problems := map[string]string{}
		if !s.ready.Load() {
			problems["server"] = "not serving (starting or shutting down)"
		}
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if err := s.store.Ping(ctx); err != nil {
			problems["database"] = "unreachable"
		}
		if err := s.keys.Ready(); err != nil {
			problems["keys"] = "no active signing key"
		}
		if len(problems) > 0 {
			httpx.WriteJSON(w, http.StatusServiceUnavailable, map[string]any{"status": "unavailable", "problems": problems})
			return
		}
		httpx.WriteJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	}).Methods(http.MethodGet, http.MethodHead)
}

func notFound(w http.ResponseWriter, _ *http.Request) {
	httpx.WriteJSON(w, http.StatusNotFound, map[string]string{"error": "not_found", "error_description": "No such endpoint."})
}

func methodNotAllowed(w http.ResponseWriter, _ *http.Request) {
	httpx.WriteJSON(w, http.StatusMethodNotAllowed, map[string]string{"error": "invalid_request", "error_description": "Method not allowed on this endpoint."})
}

// keyAgeCollector reports how long each active signing key has signed.
type keyAgeCollector struct{ keys *keys.Manager }

var keyAgeDesc = prometheus.NewDesc("oauthd_signing_key_age_seconds", "How long the active signing key of each algorithm has been signing.", []string{"alg"}, nil)

func (k keyAgeCollector) Describe(ch chan<- *prometheus.Desc) { ch <- keyAgeDesc }

func (k keyAgeCollector) Collect(ch chan<- prometheus.Metric) {
	for alg, age := range k.keys.ActiveAges() {
		ch <- prometheus.MustNewConstMetric(keyAgeDesc, prometheus.GaugeValue, age.Seconds(), alg)
	}
}
