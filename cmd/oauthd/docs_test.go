package main

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/spf13/pflag"
)

// configurationDoc is the operator documentation of the options table.
const configurationDoc = "../../docs/configuration.md"

func readDoc(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	return string(b)
}

// docRows maps each env name in the first column of a Markdown table row
// ("| `OAUTHD_X` | ...") to the whole row.
func docRows(doc string) map[string]string {
	rows := map[string]string{}
	re := regexp.MustCompile("^\\| `(OAUTHD_[A-Z0-9_]+)` \\|")
	for _, line := range strings.Split(doc, "\n") {
		if m := re.FindStringSubmatch(line); m != nil {
			rows[m[1]] = line
		}
	}
	return rows
}

// TestDocsConfigurationListsEveryOption keeps docs/configuration.md true to
// the options table: every option has a row with its env name, flag, YAML
// key, default and serve-only mark, and no row names an option that is gone.
func TestDocsConfigurationListsEveryOption(t *testing.T) {
	doc := readDoc(t, configurationDoc)
	rows := docRows(doc)
	known := map[string]bool{"OAUTHD_CONFIG": true}
	for _, o := range options {
		known[o.env()] = true
		row, ok := rows[o.env()]
		if !ok {
			t.Errorf("%s: option %q has no row in %s", o.env(), o.name, configurationDoc)
			continue
		}
		// | env | flag | YAML key | default | meaning |
		cols := strings.Split(row, "|")
		if len(cols) < 7 {
			t.Errorf("%s: row has fewer than 5 columns:\n%s", o.env(), row)
			continue
		}
		flag, key, def := strings.TrimSpace(cols[2]), strings.TrimSpace(cols[3]), strings.TrimSpace(cols[4])
		wantFlag := "`--" + o.flag() + "`"
		if o.serveOnly {
			wantFlag += " *(serve)*"
		}
		if flag != wantFlag {
			t.Errorf("%s: flag column %q, want %q", o.env(), flag, wantFlag)
		}
		if want := "`" + o.name + "`"; key != want {
			t.Errorf("%s: YAML key column %q, want %q", o.env(), key, want)
		}
		wantDef := "`" + o.def + "`"
		if o.def == "" {
			wantDef = "generated"
		}
		if def != wantDef {
			t.Errorf("%s: default column %q, want %q", o.env(), def, wantDef)
		}
	}
	if _, ok := rows["OAUTHD_CONFIG"]; !ok {
		t.Errorf("OAUTHD_CONFIG has no row in %s", configurationDoc)
	}
	for env := range rows {
		if !known[env] {
			t.Errorf("%s documents %s, which is not in the options table", configurationDoc, env)
		}
	}
}

// TestDocsContractVariablesHaveContractDefaults checks the variables the
// external contract fixes: each is an option, a flag of `oauthd serve`, and
// has the contract's default ("" where the contract says "generated").
func TestDocsContractVariablesHaveContractDefaults(t *testing.T) {
	contract := []struct{ env, def string }{
		{"OAUTHD_ISSUER", "http://localhost:8080"},
		{"OAUTHD_ADDR", ":8080"},
		{"OAUTHD_ADMIN_ADDR", "127.0.0.1:8081"},
		{"OAUTHD_ADMIN_TOKEN", ""}, // generated on first start
		{"OAUTHD_DSN", "sqlite://./data/oauthd.db"},
		{"OAUTHD_SECRET", ""}, // generated on first start
		{"OAUTHD_ACCESS_TOKEN_TTL", "10m"},
		{"OAUTHD_REFRESH_TOKEN_TTL", "720h"},
		{"OAUTHD_REFRESH_REUSE_WINDOW", "10s"},
	}
	byEnv := map[string]option{}
	for _, o := range options {
		byEnv[o.env()] = o
	}
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	addFlags(fs, true)
	for _, c := range contract {
		o, ok := byEnv[c.env]
		if !ok {
			t.Errorf("%s: not in the options table", c.env)
			continue
		}
		if o.def != c.def {
			t.Errorf("%s: default %q, contract says %q", c.env, o.def, c.def)
		}
		f := fs.Lookup(o.flag())
		if f == nil {
			t.Errorf("%s: no --%s flag on serve", c.env, o.flag())
			continue
		}
		if f.DefValue != c.def {
			t.Errorf("%s: flag --%s default %q, contract says %q", c.env, o.flag(), f.DefValue, c.def)
		}
	}
}

// TestDocsConfigurationExampleLoads loads the example YAML file of
// docs/configuration.md, so the example never shows a key or value oauthd
// refuses.
func TestDocsConfigurationExampleLoads(t *testing.T) {
	doc := readDoc(t, configurationDoc)
	m := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindStringSubmatch(doc)
	if m == nil {
		t.Fatalf("%s has no ```yaml example", configurationDoc)
	}
	path := filepath.Join(t.TempDir(), "oauthd.yaml")
	if err := os.WriteFile(path, []byte(m[1]), 0o600); err != nil {
		t.Fatal(err)
	}
	fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
	addFlags(fs, true)
	env := map[string]string{"OAUTHD_CONFIG": path}
	if _, err := loadConfig(fs, func(k string) string { return env[k] }); err != nil {
		t.Errorf("the example configuration does not load: %v", err)
	}
}
