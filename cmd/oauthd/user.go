package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/oauthd/oauthd/accounts"
)

func (c *cli) userCommand() *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Create people who sign in (directly in the database)"}
	var in accounts.NewUser
	var fromStdin bool
	create := &cobra.Command{
		Use:   "create",
		Short: "Create a user; the password comes from a prompt or --password-stdin",
		Example: `  oauthd user create --username alice --email alice@example.com
  printf '%s' "$PASSWORD" | oauthd user create --username alice --password-stdin`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if in.Username == "" {
				return errors.New("--username is required")
			}
			cfg, st, _, err := c.open(cmd)
			if err != nil {
				return err
			}
			defer st.Close()
			pw, err := c.readPassword(fromStdin)
			if err != nil {
				return err
			}
			in.Password = pw
			acc, err := accounts.New(st, cfg.PasswordHash, 1)
			if err != nil {
				return err
			}
			u, err := acc.Create(cmd.Context(), in)
			var inv *accounts.InvalidError
			switch {
			case errors.As(err, &inv):
				return errors.New(inv.Msg)
			case errors.Is(err, accounts.ErrUsernameTaken):
				return fmt.Errorf("a user named %q already exists", displayUsername(in.Username))
			case err != nil:
				return err
			}
			fmt.Fprintf(c.stdout, "id:       %s\nusername: %s\n", u.ID, u.Username)
			return nil
		},
	}
	f := create.Flags()
	f.StringVar(&in.Username, "username", "", "username (required; compared case-insensitively)")
	f.StringVar(&in.Email, "email", "", "email address")
	f.StringVar(&in.Name, "name", "", "full name")
	f.BoolVar(&fromStdin, "password-stdin", false, "read the password from standard input (one line)")
	addFlags(f, false)
	cmd.AddCommand(create)
	return cmd
}

// displayUsername is the normalized form when there is one.
func displayUsername(s string) string {
	if n, err := accounts.NormalizeUsername(s); err == nil {
		return n
	}
	return s
}

// readPassword takes the password from stdin (--password-stdin: the first
// line, without its line ending) or from a terminal prompt, asked twice.
// It never comes from a flag, which would show in ps and shell history.
func (c *cli) readPassword(fromStdin bool) (string, error) {
	if fromStdin {
		line, err := bufio.NewReader(io.LimitReader(c.stdin, 4096)).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read the password from stdin: %w", err)
		}
		line = strings.TrimRight(line, "\r\n")
		if line == "" {
			return "", errors.New("--password-stdin: standard input holds no password")
		}
		return line, nil
	}
	f, ok := c.stdin.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return "", errors.New("standard input is not a terminal: pass the password with --password-stdin")
	}
	fmt.Fprint(c.stderr, "Password: ")
	a, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(c.stderr)
	if err != nil {
		return "", err
	}
	fmt.Fprint(c.stderr, "Repeat password: ")
	b, err := term.ReadPassword(int(f.Fd()))
	fmt.Fprintln(c.stderr)
	if err != nil {
		return "", err
	}
	if string(a) != string(b) {
		return "", errors.New("the passwords do not match")
	}
	return string(a), nil
}
