package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"gopkg.in/yaml.v3"

	"github.com/oauthd/oauthd/accounts"
	"github.com/oauthd/oauthd/keys"
	"github.com/oauthd/oauthd/oauth"
	"github.com/oauthd/oauthd/storage"
)

// Config is everything oauthd reads from its environment. It is loaded in
// one place (loadConfig) from, in rising precedence: defaults, the YAML
// file, OAUTHD_* variables, command-line flags.
type Config struct {
	Issuer             string
	Addr               string
	AdminAddr          string
	AdminToken         string
	DSN                string
	Secret             string
	AccessTokenTTL     time.Duration
	RefreshTokenTTL    time.Duration
	RefreshReuseWindow time.Duration

	DataDir           string
	LogFormat         string
	LogLevel          string
	AccessTokenAlg    string
	IDTokenAlg        string
	KeyRotation       time.Duration
	KeyPrePublish     time.Duration
	KeyReloadInterval time.Duration
	JWKSMaxAge        time.Duration
	ClientCacheTTL    time.Duration
	DBMaxOpenConns    int
	DBConnMaxLifetime time.Duration
	ShutdownTimeout   time.Duration
	ShutdownDelay     time.Duration
	PruneInterval     time.Duration
	Migrate           bool
	PasswordHash      accounts.Params
}

// option is one setting: its name in the YAML file (snake_case), the
// environment (OAUTHD_ + upper case) and on the command line (--kebab-case).
type option struct {
	name string
	def  string
	help string
	// serveOnly options are flags of `serve` only; the others are flags of
	// every command (they locate the database and the secret).
	serveOnly bool
	boolean   bool
	set       func(c *Config, v string) error
}

func (o option) env() string  { return "OAUTHD_" + strings.ToUpper(o.name) }
func (o option) flag() string { return strings.ReplaceAll(o.name, "_", "-") }

func str(dst func(*Config) *string) func(*Config, string) error {
	return func(c *Config, v string) error { *dst(c) = v; return nil }
}

func dur(dst func(*Config) *time.Duration, min time.Duration) func(*Config, string) error {
	return func(c *Config, v string) error {
		d, err := time.ParseDuration(v)
		if err != nil {
			return fmt.Errorf("not a duration (examples: 90s, 10m, 720h)")
		}
		if d < min {
			return fmt.Errorf("must be at least %s", min)
		}
		*dst(c) = d
		return nil
	}
}

func oneOf(dst func(*Config) *string, allowed ...string) func(*Config, string) error {
	return func(c *Config, v string) error {
		for _, a := range allowed {
			if v == a {
				*dst(c) = v
				return nil
			}
		}
		return fmt.Errorf("must be one of %s", strings.Join(allowed, ", "))
	}
}

func uintOption(min, max uint64, set func(*Config, uint64)) func(*Config, string) error {
	return func(c *Config, v string) error {
		n, err := strconv.ParseUint(v, 10, 64)
		if err != nil || n < min || n > max {
			return fmt.Errorf("must be a whole number between %d and %d", min, max)
		}
		set(c, n)
		return nil
	}
}

// options is the whole configuration surface; docs/configuration.md lists it.
var options = []option{
	{name: "issuer", def: "http://localhost:8080", serveOnly: true, help: "issuer URL, exactly as in iss and discovery",
		set: str(func(c *Config) *string { return &c.Issuer })},
	{name: "addr", def: ":8080", serveOnly: true, help: "public listener address",
		set: str(func(c *Config) *string { return &c.Addr })},
	{name: "admin_addr", def: "127.0.0.1:8081", serveOnly: true, help: "admin listener address (admin API, metrics)",
		set: str(func(c *Config) *string { return &c.AdminAddr })},
	{name: "admin_token", def: "", serveOnly: true, help: "admin API bearer token (default: generated, stored in the data dir)",
		set: func(c *Config, v string) error {
			if v != "" && len(v) < 16 {
				return errors.New("must be at least 16 characters")
			}
			c.AdminToken = v
			return nil
		}},
	{name: "dsn", def: "sqlite://./data/oauthd.db", help: "database: sqlite://PATH or postgres://...",
		set: func(c *Config, v string) error {
			if _, _, err := storage.ParseDSN(v); err != nil {
				return err
			}
			c.DSN = v
			return nil
		}},
	{name: "secret", def: "", help: "system secret, at least 32 bytes (default: generated, stored in the data dir)",
		set: func(c *Config, v string) error {
			if v != "" && len(v) < 32 {
				return errors.New("must be at least 32 bytes")
			}
			c.Secret = v
			return nil
		}},
	{name: "access_token_ttl", def: "10m", serveOnly: true, help: "access-token lifetime",
		set: dur(func(c *Config) *time.Duration { return &c.AccessTokenTTL }, time.Second)},
	{name: "refresh_token_ttl", def: "720h", serveOnly: true, help: "refresh-token / grant-session idle lifetime",
		set: dur(func(c *Config) *time.Duration { return &c.RefreshTokenTTL }, time.Minute)},
	{name: "refresh_reuse_window", def: "10s", serveOnly: true, help: "window in which a retried refresh gets the same new refresh token; 0s makes every reuse theft",
		set: dur(func(c *Config) *time.Duration { return &c.RefreshReuseWindow }, 0)},
	{name: "data_dir", def: "./data", help: "directory for the generated secret and admin token",
		set: str(func(c *Config) *string { return &c.DataDir })},
	{name: "log_format", def: "text", help: "log format: text or json",
		set: oneOf(func(c *Config) *string { return &c.LogFormat }, "text", "json")},
	{name: "log_level", def: "info", help: "log level: debug, info, warn or error",
		set: oneOf(func(c *Config) *string { return &c.LogLevel }, "debug", "info", "warn", "error")},
	{name: "access_token_alg", def: keys.ES256, serveOnly: true, help: "access-token signing algorithm: ES256, RS256 or EdDSA",
		set: oneOf(func(c *Config) *string { return &c.AccessTokenAlg }, keys.ES256, keys.RS256, keys.EdDSA)},
	{name: "id_token_alg", def: keys.RS256, serveOnly: true, help: "ID-token signing algorithm: RS256, ES256 or EdDSA",
		set: oneOf(func(c *Config) *string { return &c.IDTokenAlg }, keys.RS256, keys.ES256, keys.EdDSA)},
	{name: "key_rotation_interval", def: "720h", help: "how long a signing key signs before its successor takes over; 0s disables scheduled rotation",
		set: dur(func(c *Config) *time.Duration { return &c.KeyRotation }, 0)},
	{name: "key_prepublish", def: "1h", help: "how long a new key is in the JWKS before it signs",
		set: dur(func(c *Config) *time.Duration { return &c.KeyPrePublish }, 0)},
	{name: "key_reload_interval", def: "10s", serveOnly: true, help: "how often keys are re-read from the database (bounds how late a process sees another's rotation)",
		set: dur(func(c *Config) *time.Duration { return &c.KeyReloadInterval }, 100*time.Millisecond)},
	{name: "jwks_max_age", def: "5m", serveOnly: true, help: "Cache-Control max-age of the JWKS",
		set: dur(func(c *Config) *time.Duration { return &c.JWKSMaxAge }, 0)},
	{name: "client_cache_ttl", def: "5s", serveOnly: true, help: "how long a process caches a client; bounds how long a deleted client or rotated secret keeps working on other processes",
		set: dur(func(c *Config) *time.Duration { return &c.ClientCacheTTL }, 0)},
	{name: "db_max_open_conns", def: "0", help: "database pool size; 0 picks 32 for PostgreSQL, 8 for SQLite",
		set: func(c *Config, v string) error {
			n, err := strconv.Atoi(v)
			if err != nil || n < 0 || n > 10000 {
				return errors.New("must be a whole number between 0 and 10000")
			}
			c.DBMaxOpenConns = n
			return nil
		}},
	{name: "db_conn_max_lifetime", def: "30m", help: "recycle database connections after this long",
		set: dur(func(c *Config) *time.Duration { return &c.DBConnMaxLifetime }, time.Second)},
	{name: "password_hash_memory", def: "65536", help: "argon2id memory per password hash, in KiB",
		set: uintOption(8<<10, 4<<20, func(c *Config, n uint64) { c.PasswordHash.MemoryKiB = uint32(n) })},
	{name: "password_hash_iterations", def: "2", help: "argon2id passes per password hash",
		set: uintOption(1, 100, func(c *Config, n uint64) { c.PasswordHash.Iterations = uint32(n) })},
	{name: "password_hash_parallelism", def: "2", help: "argon2id lanes per password hash",
		set: uintOption(1, 255, func(c *Config, n uint64) { c.PasswordHash.Parallelism = uint8(n) })},
	{name: "prune_interval", def: "10m", serveOnly: true, help: "how often expired rows are deleted from the database (several processes may run it)",
		set: dur(func(c *Config) *time.Duration { return &c.PruneInterval }, time.Second)},
	{name: "shutdown_delay", def: "0s", serveOnly: true, help: "after SIGTERM, how long to keep serving while /health/ready answers 503, so load balancers stop sending new requests first",
		set: dur(func(c *Config) *time.Duration { return &c.ShutdownDelay }, 0)},
	{name: "shutdown_timeout", def: "20s", serveOnly: true, help: "how long in-flight requests may finish after SIGTERM",
		set: dur(func(c *Config) *time.Duration { return &c.ShutdownTimeout }, 0)},
	{name: "migrate", def: "true", serveOnly: true, boolean: true, help: "apply pending migrations at start",
		set: func(c *Config, v string) error {
			b, err := strconv.ParseBool(v)
			if err != nil {
				return errors.New("must be true or false")
			}
			c.Migrate = b
			return nil
		}},
}

// addFlags declares the flags of a command: serve gets every option, the
// other commands the global ones.
func addFlags(fs *pflag.FlagSet, serve bool) {
	fs.String("config", "", "YAML configuration file (env OAUTHD_CONFIG)")
	for _, o := range options {
		if o.serveOnly && !serve {
			continue
		}
		help := o.help + " (env " + o.env() + ")"
		if o.name == "secret" || o.name == "admin_token" {
			help += "; prefer the environment: flags show in ps"
		}
		fs.String(o.flag(), o.def, help)
		if o.boolean {
			fs.Lookup(o.flag()).NoOptDefVal = "true"
		}
	}
}

// loadConfig builds the configuration. Each bad value fails with a message
// naming the variable (and where it came from).
func loadConfig(fs *pflag.FlagSet, getenv func(string) string) (*Config, error) {
	c := &Config{}
	var problems []error
	for _, o := range options {
		if err := o.set(c, o.def); err != nil {
			problems = append(problems, fmt.Errorf("default of %s: %w", o.env(), err))
		}
	}

	path := getenv("OAUTHD_CONFIG")
	if f := fs.Lookup("config"); f != nil && f.Changed {
		path = f.Value.String()
	}
	if path != "" {
		file, err := readConfigFile(path)
		if err != nil {
			return nil, err
		}
		for _, o := range options {
			if v, ok := file[o.name]; ok {
				delete(file, o.name)
				if err := o.set(c, v); err != nil {
					problems = append(problems, fmt.Errorf("%s (%s in %s): invalid value %q: %w", o.env(), o.name, path, redactValue(o, v), err))
				}
			}
		}
		for k := range file {
			problems = append(problems, fmt.Errorf("%s: unknown setting %q", path, k))
		}
	}

	for _, o := range options {
		if v, ok := lookupEnv(getenv, o.env()); ok {
			if err := o.set(c, v); err != nil {
				problems = append(problems, fmt.Errorf("%s: invalid value %q: %w", o.env(), redactValue(o, v), err))
			}
		}
	}

	for _, o := range options {
		f := fs.Lookup(o.flag())
		if f == nil || !f.Changed {
			continue
		}
		if err := o.set(c, f.Value.String()); err != nil {
			problems = append(problems, fmt.Errorf("%s (flag --%s): invalid value %q: %w", o.env(), o.flag(), redactValue(o, f.Value.String()), err))
		}
	}
	if err := errors.Join(problems...); err != nil {
		return nil, err
	}
	return c, c.validate()
}

// lookupEnv treats an empty variable as unset, the way most operators expect.
func lookupEnv(getenv func(string) string, name string) (string, bool) {
	v := getenv(name)
	return v, v != ""
}

func redactValue(o option, v string) string {
	if o.name == "secret" || o.name == "admin_token" || o.name == "dsn" {
		if o.name == "dsn" {
			return storage.Redact(v)
		}
		return "(hidden)"
	}
	return v
}

// readConfigFile reads a flat YAML mapping of option names to scalars.
func readConfigFile(path string) (map[string]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("OAUTHD_CONFIG: cannot read %s: %w", path, err)
	}
	var raw map[string]any
	if err := yaml.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("OAUTHD_CONFIG: %s is not valid YAML: %w", path, err)
	}
	out := make(map[string]string, len(raw))
	for k, v := range raw {
		switch v.(type) {
		case map[string]any, []any:
			return nil, fmt.Errorf("OAUTHD_CONFIG: %s: setting %q must be a single value", path, k)
		case nil:
			out[k] = ""
		default:
			out[k] = fmt.Sprint(v)
		}
	}
	return out, nil
}

// validate checks what no single option can.
func (c *Config) validate() error {
	var problems []error
	if c.Addr == c.AdminAddr {
		problems = append(problems, errors.New("OAUTHD_ADMIN_ADDR: must differ from OAUTHD_ADDR"))
	}
	if c.KeyRotation > 0 && c.KeyRotation <= c.KeyPrePublish {
		problems = append(problems, fmt.Errorf("OAUTHD_KEY_ROTATION_INTERVAL: must exceed OAUTHD_KEY_PREPUBLISH (%s)", c.KeyPrePublish))
	}
	if c.JWKSMaxAge > c.KeyPrePublish {
		problems = append(problems, fmt.Errorf("OAUTHD_JWKS_MAX_AGE: must not exceed OAUTHD_KEY_PREPUBLISH (%s), or JWKS caches miss new keys", c.KeyPrePublish))
	} else if c.KeyPrePublish > 0 && c.KeyPrePublish < c.JWKSMaxAge+c.KeyReloadInterval {
		problems = append(problems, fmt.Errorf("OAUTHD_KEY_PREPUBLISH: must be at least OAUTHD_JWKS_MAX_AGE + OAUTHD_KEY_RELOAD_INTERVAL (%s), so every process and cache knows a key before it signs", c.JWKSMaxAge+c.KeyReloadInterval))
	}
	if err := c.PasswordHash.Validate(); err != nil {
		problems = append(problems, fmt.Errorf("OAUTHD_PASSWORD_HASH_MEMORY / _ITERATIONS / _PARALLELISM: %w", err))
	}
	if err := oauth.ValidateIssuer(c.Issuer); err != nil {
		problems = append(problems, fmt.Errorf("OAUTHD_ISSUER: %w", err))
	}
	if c.DataDir == "" {
		problems = append(problems, errors.New("OAUTHD_DATA_DIR: must not be empty"))
	}
	return errors.Join(problems...)
}

// keysConfig maps the configuration onto the key manager's.
func (c *Config) keysConfig() keys.Config {
	// A superseded key stays published until every token it signed has
	// expired: the longest token lifetime plus clock-skew leeway. ID tokens
	// (RS256 by default) live one hour.
	longest := c.AccessTokenTTL
	if longest < time.Hour {
		longest = time.Hour
	}
	return keys.Config{
		AccessTokenAlg:   c.AccessTokenAlg,
		IDTokenAlg:       c.IDTokenAlg,
		RotationInterval: c.KeyRotation,
		PrePublish:       c.KeyPrePublish,
		RetireAfter:      longest + 5*time.Minute,
		ReloadInterval:   c.KeyReloadInterval,
		JWKSMaxAge:       c.JWKSMaxAge,
	}
}

// secretFile and adminTokenFile are where generated values live.
func (c *Config) secretFile() string     { return filepath.Join(c.DataDir, "secret") }
func (c *Config) adminTokenFile() string { return filepath.Join(c.DataDir, "admin-token") }
