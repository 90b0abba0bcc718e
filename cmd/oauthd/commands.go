package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/oauthd/oauthd/admin"
	"github.com/oauthd/oauthd/internal/logx"
	"github.com/oauthd/oauthd/internal/secret"
	"github.com/oauthd/oauthd/keys"
	"github.com/oauthd/oauthd/oauth"
	"github.com/oauthd/oauthd/storage"
)

// cli carries what every command needs.
type cli struct {
	getenv func(string) string
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

func newRootCommand(getenv func(string) string, stdin io.Reader, stdout, stderr io.Writer) *cobra.Command {
	c := &cli{getenv: getenv, stdin: stdin, stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:           "oauthd",
		Short:         "oauthd is an OAuth 2.0 / OpenID Connect authorization server",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetOut(stdout)
	root.SetErr(stderr)
	root.AddCommand(c.serveCommand(), c.migrateCommand(), c.clientCommand(), c.userCommand(), c.keysCommand(), c.benchCommand())
	return root
}

// config loads the configuration from the command's flags.
func (c *cli) config(cmd *cobra.Command) (*Config, error) {
	return loadConfig(cmd.Flags(), c.getenv)
}

// open loads the configuration and opens the (migrated) database for the
// operator commands.
func (c *cli) open(cmd *cobra.Command) (*Config, *storage.Store, *slog.Logger, error) {
	cfg, err := c.config(cmd)
	if err != nil {
		return nil, nil, nil, err
	}
	logger := newLogger(cfg, c.stderr)
	st, err := openStore(cmd.Context(), cfg, logger, false)
	if err != nil {
		return nil, nil, nil, err
	}
	pending, err := st.PendingMigrations(cmd.Context())
	if err != nil {
		st.Close()
		return nil, nil, nil, err
	}
	if pending {
		st.Close()
		return nil, nil, nil, errors.New("the database schema is not up to date: run `oauthd migrate up` (or start `oauthd serve` once)")
	}
	return cfg, st, logger, nil
}

// openUnmigrated opens the database as it is, for the migrate commands.
func (c *cli) openUnmigrated(cmd *cobra.Command) (*storage.Store, error) {
	cfg, err := c.config(cmd)
	if err != nil {
		return nil, err
	}
	return openStore(cmd.Context(), cfg, newLogger(cfg, c.stderr), false)
}

func (c *cli) serveCommand() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run the authorization server (public and admin listeners)",
		Long: `Run the authorization server.

Applies pending migrations (unless --migrate=false), creates the first signing
keys, generates the system secret and admin token in the data directory when
they are not given, and serves the public listener (OAUTHD_ADDR) and the admin
listener (OAUTHD_ADMIN_ADDR) until SIGINT or SIGTERM.

Every flag mirrors an OAUTHD_* environment variable; flags win over the
environment, the environment over the YAML file named by --config.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := c.config(cmd)
			if err != nil {
				return err
			}
			tuneGC(c.getenv)
			// One access-log line per request: batch the writes (flushed
			// every 100ms, at once for warnings, and at exit).
			out := logx.NewBufferedWriter(c.stderr, 100*time.Millisecond)
			defer out.Close()
			logger := newLogger(cfg, out)
			started := time.Now()
			s, err := start(cmd.Context(), cfg, logger)
			if err != nil {
				return err
			}
			logger.Info("oauthd ready", "issuer", cfg.Issuer, "public", s.publicLn.Addr().String(),
				"admin", s.adminLn.Addr().String(), "database", storage.Host(cfg.DSN), "startup", time.Since(started).Round(time.Millisecond))
			if cfg.LogFormat == "json" {
				// Keep stderr machine-readable: the hints become one record.
				logger.Info("first steps", "admin_token_file", s.tokenPath, "admin_api", "http://"+dialable(s.adminLn.Addr())+"/admin/clients",
					"token_endpoint", oauth.TokenEndpoint(cfg.Issuer))
			} else {
				_ = out.Flush() // the welcome text follows the start-up lines
				s.printWelcome(c.stderr)
			}
			return s.serve(cmd.Context())
		},
	}
	addFlags(cmd.Flags(), true)
	return cmd
}

// printWelcome tells a first-time user where the admin token is and how to
// get a first token.
func (s *server) printWelcome(w io.Writer) {
	tokenRef := "$OAUTHD_ADMIN_TOKEN"
	admin := "http://" + dialable(s.adminLn.Addr())
	if s.tokenPath != "" {
		fmt.Fprintf(w, "\nAdmin token: %s (admin API on %s)\n", s.tokenPath, admin)
		tokenRef = "$(cat " + s.tokenPath + ")"
	}
	fmt.Fprintf(w, `Create a client "demo" and get a token with it, in one copy-paste line (curl and sed):

  %s

The same in two steps: oauthd client create --name demo --grant-type client_credentials --scope demo,
then curl -u CLIENT_ID:CLIENT_SECRET -d grant_type=client_credentials %s

`, firstTokenCommand(tokenRef, admin, oauth.TokenEndpoint(s.cfg.Issuer)), oauth.TokenEndpoint(s.cfg.Issuer))
}

// firstTokenCommand is a shell line that registers a client through the admin
// API and uses its credentials (cut out of the JSON answer, whose client_id
// comes before client_secret) to get a token.
func firstTokenCommand(adminTokenRef, adminURL, tokenURL string) string {
	register := `curl -s -H "Authorization: Bearer ` + adminTokenRef + `" -H 'Content-Type: application/json' ` +
		`-d '{"client_name":"demo","grant_types":["client_credentials"],"scope":"demo"}' ` + adminURL + `/admin/clients`
	credentials := `sed -E 's/.*"client_id":"([^"]+)".*"client_secret":"([^"]+)".*/\1:\2/'`
	return `curl -s -u "$(` + register + ` | ` + credentials + `)" -d grant_type=client_credentials ` + tokenURL
}

// dialable turns a listener address into one a local client can reach: an
// unspecified host (":8081", "0.0.0.0", "[::]") becomes 127.0.0.1.
func dialable(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		host = "127.0.0.1"
	}
	return net.JoinHostPort(host, port)
}

func (c *cli) migrateCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "migrate", Short: "Apply, roll back or list database migrations"}
	up := &cobra.Command{
		Use: "up", Short: "Apply every pending migration", Args: cobra.NoArgs,
		RunE: c.withUnmigrated(func(cmd *cobra.Command, st *storage.Store) error {
			applied, err := st.MigrateUp(cmd.Context())
			if err != nil {
				return err
			}
			if len(applied) == 0 {
				fmt.Fprintln(c.stdout, "nothing to apply: the schema is up to date")
			}
			for _, v := range applied {
				fmt.Fprintf(c.stdout, "applied %05d\n", v)
			}
			return nil
		}),
	}
	var all bool
	down := &cobra.Command{
		Use: "down", Short: "Roll back the most recent migration (--all: every migration)", Args: cobra.NoArgs,
		Long: "Roll back the most recent migration. Rolling back loses the data of the tables the step created;\nin production, restore a backup instead.",
		RunE: c.withUnmigrated(func(cmd *cobra.Command, st *storage.Store) error {
			for {
				v, err := st.MigrateDown(cmd.Context())
				if errors.Is(err, storage.ErrNotFound) {
					fmt.Fprintln(c.stdout, "nothing to roll back")
					return nil
				}
				if err != nil {
					return err
				}
				fmt.Fprintf(c.stdout, "rolled back %05d\n", v)
				if !all {
					return nil
				}
			}
		}),
	}
	down.Flags().BoolVar(&all, "all", false, "roll back every migration")
	status := &cobra.Command{
		Use: "status", Short: "List migrations and whether each is applied", Args: cobra.NoArgs,
		RunE: c.withUnmigrated(func(cmd *cobra.Command, st *storage.Store) error {
			list, err := st.MigrationStatus(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "VERSION\tSTATE\tAPPLIED AT\tFILE")
			for _, m := range list {
				state, at := "pending", "-"
				if m.Applied {
					state, at = "applied", m.AppliedAt.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%05d\t%s\t%s\t%s\n", m.Version, state, at, m.Name)
			}
			return tw.Flush()
		}),
	}
	for _, sub := range []*cobra.Command{up, down, status} {
		addFlags(sub.Flags(), false)
		cmd.AddCommand(sub)
	}
	return cmd
}

// withUnmigrated runs a migrate command on the database as it is.
func (c *cli) withUnmigrated(run func(cmd *cobra.Command, st *storage.Store) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		st, err := c.openUnmigrated(cmd)
		if err != nil {
			return err
		}
		defer st.Close()
		return run(cmd, st)
	}
}

// withClients runs a client command with the registration service.
func (c *cli) withClients(run func(cmd *cobra.Command, args []string, svc *admin.Clients) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		svc, done, err := c.clients(cmd)
		if err != nil {
			return err
		}
		defer done()
		return run(cmd, args, svc)
	}
}

// withKeys runs a keys command with a key manager on the database.
func (c *cli) withKeys(run func(cmd *cobra.Command, km *keys.Manager) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, _ []string) error {
		km, done, err := c.keyManager(cmd)
		if err != nil {
			return err
		}
		defer done()
		return run(cmd, km)
	}
}

// clients opens the database and returns the registration service.
func (c *cli) clients(cmd *cobra.Command) (*admin.Clients, func(), error) {
	cfg, st, _, err := c.open(cmd)
	if err != nil {
		return nil, nil, err
	}
	master, err := systemSecret(cfg)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return admin.NewClients(st, secret.NewHasher(master), oauth.SupportedGrantTypes), func() { st.Close() }, nil
}

func (c *cli) clientCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "client", Short: "Register and manage OAuth clients (directly in the database)"}

	var m admin.Metadata
	var asJSON bool
	create := &cobra.Command{
		Use:   "create",
		Short: "Register a client; prints its client_id and (once) its secret",
		Long: `Register a client directly in the database, with the same rules as
POST /admin/clients (docs/api.md). Prints the client_id and, for a
confidential client, the secret: shown only now.

Without --grant-type the client gets authorization_code (the RFC 7591
default), which needs at least one --redirect-uri; a machine client says
--grant-type client_credentials. A public client (--auth-method none, e.g. a
single-page or native app) has no secret and cannot use client_credentials.
Running servers pick the client up within OAUTHD_CLIENT_CACHE_TTL at most.`,
		Example: `  oauthd client create --name billing --grant-type client_credentials --scope "invoices:read"
  oauthd client create --name web --grant-type authorization_code --grant-type refresh_token \
      --redirect-uri https://app.example/callback --post-logout-redirect-uri https://app.example/ \
      --scope "openid profile offline_access" --skip-consent --require-par
  oauthd client create --name cli-app --auth-method none --redirect-uri http://127.0.0.1/callback --scope openid
  oauthd client create --name orders-api --grant-type client_credentials --allow-introspection`,
		Args: cobra.NoArgs,
		RunE: c.withClients(func(cmd *cobra.Command, _ []string, svc *admin.Clients) error {
			out, err := svc.Create(cmd.Context(), m)
			if err != nil {
				return describe(err)
			}
			if asJSON {
				return printJSON(c.stdout, out)
			}
			fmt.Fprintf(c.stdout, "client_id:     %s\n", out.ClientID)
			if out.ClientSecret != "" {
				fmt.Fprintf(c.stdout, "client_secret: %s\n", out.ClientSecret)
				fmt.Fprintln(c.stderr, "The secret is shown only now; it is stored as a keyed hash and cannot be recovered.")
			}
			return nil
		}),
	}
	f := create.Flags()
	f.StringVar(&m.ClientName, "name", "", "client name, shown to people (optional)")
	f.StringVar(&m.ClientID, "client-id", "", "client_id (default: generated)")
	f.StringArrayVar(&m.GrantTypes, "grant-type", nil, "grant type; repeat for several ("+strings.Join(oauth.SupportedGrantTypes, ", ")+"; default authorization_code)")
	f.StringVar(&m.Scope, "scope", "", "space-separated scopes the client may request")
	f.StringArrayVar(&m.RedirectURIs, "redirect-uri", nil, "redirect URI, matched exactly; repeat for several (required for authorization_code)")
	f.StringArrayVar(&m.PostLogoutRedirectURIs, "post-logout-redirect-uri", nil, "where RP-initiated logout may send the browser back to; repeat for several")
	f.StringArrayVar(&m.Audience, "audience", nil, "audience the client may request; repeat for several")
	f.StringVar(&m.TokenEndpointAuthMethod, "auth-method", "", "token_endpoint_auth_method: client_secret_basic (default), client_secret_post or none")
	f.BoolVar(&m.SkipConsent, "skip-consent", false, "never show the consent page (skip_consent: first-party clients only)")
	f.BoolVar(&m.AllowIntrospection, "allow-introspection", false, "may introspect any token, not only its own (allow_introspection: resource servers)")
	f.BoolVar(&m.RequirePAR, "require-par", false, "authorization requests must be pushed to /oauth2/par first (require_pushed_authorization_requests, RFC 9126)")
	f.BoolVar(&asJSON, "json", false, "print the registered metadata as JSON")
	addFlags(f, false)

	list := &cobra.Command{
		Use: "list", Short: "List clients", Args: cobra.NoArgs,
		RunE: c.withClients(func(cmd *cobra.Command, _ []string, svc *admin.Clients) error {
			out, err := svc.List(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(c.stdout, out)
			}
			tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "CLIENT_ID\tNAME\tGRANT TYPES\tSCOPE")
			for _, m := range out {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", m.ClientID, m.ClientName, strings.Join(m.GrantTypes, ","), m.Scope)
			}
			return tw.Flush()
		}),
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	addFlags(list.Flags(), false)

	get := &cobra.Command{
		Use: "get CLIENT_ID", Short: "Show a client's metadata as JSON", Args: cobra.ExactArgs(1),
		RunE: c.withClients(func(cmd *cobra.Command, args []string, svc *admin.Clients) error {
			out, err := svc.Get(cmd.Context(), args[0])
			if err != nil {
				return describe(err)
			}
			return printJSON(c.stdout, out)
		}),
	}
	addFlags(get.Flags(), false)

	del := &cobra.Command{
		Use: "delete CLIENT_ID", Short: "Delete a client; it can get no more tokens (issued ones live until they expire)", Args: cobra.ExactArgs(1),
		RunE: c.withClients(func(cmd *cobra.Command, args []string, svc *admin.Clients) error {
			if err := svc.Delete(cmd.Context(), args[0]); err != nil {
				return describe(err)
			}
			fmt.Fprintf(c.stdout, "deleted %s\n", args[0])
			return nil
		}),
	}
	addFlags(del.Flags(), false)

	var grace time.Duration
	rotate := &cobra.Command{
		Use: "rotate-secret CLIENT_ID", Short: "Give a client a new secret (the old one works for --grace)", Args: cobra.ExactArgs(1),
		RunE: c.withClients(func(cmd *cobra.Command, args []string, svc *admin.Clients) error {
			out, err := svc.RotateSecret(cmd.Context(), args[0], grace)
			if err != nil {
				return describe(err)
			}
			fmt.Fprintf(c.stdout, "client_id:     %s\nclient_secret: %s\n", out.ClientID, out.ClientSecret)
			return nil
		}),
	}
	rotate.Flags().DurationVar(&grace, "grace", 0, "how long the previous secret keeps working, e.g. 1h")
	addFlags(rotate.Flags(), false)

	cmd.AddCommand(create, list, get, del, rotate)
	return cmd
}

// describe turns service errors into operator-readable ones.
func describe(err error) error {
	var me *admin.Error
	switch {
	case errors.As(err, &me):
		return fmt.Errorf("%s: %s", me.Code, me.Description)
	case errors.Is(err, admin.ErrNotFound):
		return errors.New("no client with that client_id")
	case errors.Is(err, admin.ErrExists):
		return errors.New("a client with that client_id already exists")
	}
	return err
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func (c *cli) keyManager(cmd *cobra.Command) (*keys.Manager, func(), error) {
	cfg, st, logger, err := c.open(cmd)
	if err != nil {
		return nil, nil, err
	}
	master, err := systemSecret(cfg)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	km, err := keys.New(cfg.keysConfig(), st, master, logger)
	if err != nil {
		st.Close()
		return nil, nil, err
	}
	return km, func() { st.Close() }, nil
}

func (c *cli) keysCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "List and rotate signing keys"}
	list := &cobra.Command{
		Use: "list", Short: "List signing keys (public parts only)", Args: cobra.NoArgs,
		RunE: c.withKeys(func(cmd *cobra.Command, km *keys.Manager) error {
			infos, err := km.List(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(c.stdout, 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "KID\tALG\tSTATUS\tACTIVATES AT\tRETIRES AT")
			for _, k := range infos {
				ret := "-"
				if k.RetiresAt != nil {
					ret = k.RetiresAt.UTC().Format(time.RFC3339)
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", k.KID, k.Alg, k.Status, k.ActivatesAt.UTC().Format(time.RFC3339), ret)
			}
			return tw.Flush()
		}),
	}
	addFlags(list.Flags(), false)
	var immediate bool
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Create successor keys now (published first; --immediate signs at once)",
		Long: `Create a successor key for every configured algorithm. The new key is published
in the JWKS at once and starts signing after the pre-publication time
(OAUTHD_KEY_PREPUBLISH); the old key stays published until every token it signed
has expired. --immediate makes the new key sign at once: for emergencies, since
verifiers with a cached JWKS will not know it until their cache expires.
Running servers pick the change up within OAUTHD_KEY_RELOAD_INTERVAL.`,
		Args: cobra.NoArgs,
		RunE: c.withKeys(func(cmd *cobra.Command, km *keys.Manager) error {
			added, err := km.Rotate(cmd.Context(), immediate)
			if err != nil {
				return err
			}
			for _, k := range added {
				fmt.Fprintf(c.stdout, "new %s key %s, signs from %s\n", k.Alg, k.KID, k.ActivatesAt.UTC().Format(time.RFC3339))
			}
			return nil
		}),
	}
	rotate.Flags().BoolVar(&immediate, "immediate", false, "sign with the new keys at once")
	addFlags(rotate.Flags(), false)
	cmd.AddCommand(list, rotate)
	return cmd
}
