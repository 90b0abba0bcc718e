package admin

import (
	"net/url"
	"strings"
	"testing"
)

func TestCheckRedirectURI(t *testing.T) {
	tests := []struct {
		uri string
		ok  bool
	}{
		{"https://c.example/cb", true},
		{"https://c.example/cb?a=1", true},
		{"https://c.example:8443/cb", true},
		{"http://127.0.0.1/cb", true},
		{"http://127.0.0.1:51234/cb", true},
		{"http://[::1]/cb", true},
		{"http://localhost/cb", true},
		{"com.example.app:/oauth2redirect", true},
		{"https://c.example/cb#", false},
		{"https://c.example/cb#frag", false},
		{"http://c.example/cb", false},
		{"http://127.1/cb", false},
		{"http://2130706433/cb", false},
		{"http://127.0.0.2/cb", false},
		{"http://localhost.evil.example/cb", false},
		{"javascript:alert(1)//https://c.example/cb", false},
		{"JAVASCRIPT:alert(1)", false},
		{"data:text/html,x", false},
		{"vbscript:x", false},
		{"file:///etc/passwd", false},
		{"https://*.c.example/cb", false},
		{"https://c.example/*", false},
		{"https://user@c.example/cb", false},
		{"https://c.example@evil.example/cb", false},
		{"https://c.example/a/../cb", false},
		{"https://c.example/a/%2e%2e/cb", false},
		{"https://c.example/./cb", false},
		{"https://c.example/a/.%2e/cb", false},
		{"https://c.example/a/%2E./cb", false},
		{"https://c.example/a/..;/cb", false},
		{"https://c.example/a/%2e%2e%3b/cb", false},
		{"https://c.example/a..b/cb", true},
		{"https://:443/cb", false},
		{"http://[::ffff:127.0.0.1]/cb", false},
		{"http://127.0.0.1.nip.io/cb", false},
		{"/cb", false},
		{"cb", false},
		{"", false},
		{"https:///cb", false},
		{"https://c.example/c b", false},
		{"https://c.exa\tmple/cb", false},
		{"https://с.example/cb", false}, // Cyrillic с
		{"myapp:/cb", false},
		{"HTTPS://c.example/cb", false},
		{"https://c.example/" + strings.Repeat("a", 2100), false},
	}
	for _, tc := range tests {
		err := checkRedirectURI(tc.uri)
		if (err == nil) != tc.ok {
			t.Errorf("checkRedirectURI(%q) = %v, want ok=%v", tc.uri, err, tc.ok)
		}
	}
}

func FuzzCheckRedirectURI(f *testing.F) {
	for _, s := range []string{"https://c.example/cb", "http://127.0.0.1:1/cb", "javascript:x", "https://a@b/c#d", "com.example:/x"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, uri string) {
		if checkRedirectURI(uri) != nil {
			return
		}
		// Whatever is accepted has no fragment, wildcard, whitespace or user
		// info, and is https, loopback http or a dotted private-use scheme.
		if strings.ContainsAny(uri, "#* \t\r\n") {
			t.Fatalf("accepted %q", uri)
		}
		u, err := url.Parse(uri)
		if err != nil || u.User != nil {
			t.Fatalf("accepted %q (user info or unparseable)", uri)
		}
		switch {
		case u.Scheme == "https":
		case u.Scheme == "http":
			if h := u.Hostname(); h != "127.0.0.1" && h != "::1" && h != "localhost" {
				t.Fatalf("accepted http on %q", h)
			}
		case strings.Contains(u.Scheme, "."):
		default:
			t.Fatalf("accepted scheme %q", u.Scheme)
		}
	})
}

func TestNormalize(t *testing.T) {
	grants := []string{"client_credentials"}
	tests := []struct {
		name    string
		m       Metadata
		wantErr string
		check   func(t *testing.T, m Metadata)
	}{
		{name: "defaults", m: Metadata{ClientName: "a"}},
		{name: "no name", m: Metadata{}},
		{name: "scope dedupe", m: Metadata{ClientName: "a", Scope: "x y x"}},
		{name: "double space", m: Metadata{ClientName: "a", Scope: "x  y"}, wantErr: "single spaces"},
		{name: "control char in name", m: Metadata{ClientName: "a\x07"}, wantErr: "client_name"},
		{name: "long name", m: Metadata{ClientName: strings.Repeat("n", 201)}, wantErr: "client_name"},
		{name: "unsupported grant", m: Metadata{ClientName: "a", GrantTypes: []string{"authorization_code"}}, wantErr: "not supported"},
		{name: "response type without code grant", m: Metadata{ClientName: "a", ResponseTypes: []string{"code"}}, wantErr: "response type"},
		{name: "audience with space", m: Metadata{ClientName: "a", Audience: []string{"a b"}}, wantErr: "audience"},
		{name: "empty audience", m: Metadata{ClientName: "a", Audience: []string{""}}, wantErr: "audience"},
		{name: "too many redirect uris", m: Metadata{ClientName: "a", RedirectURIs: make([]string, 51)}, wantErr: "at most"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := normalize(tc.m, grants)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if c.TokenEndpointAuthMethod != "client_secret_basic" || len(c.GrantTypes) != 1 || c.GrantTypes[0] != "client_credentials" {
				t.Errorf("defaults not applied: %+v", c)
			}
			if strings.Count(c.Scope, "x") > 1 {
				t.Errorf("scope not deduplicated: %q", c.Scope)
			}
		})
	}
}

// TestNormalizeFlags: each boolean member reaches its own field of the
// stored client, and toMetadata gives it back under its own name.
func TestNormalizeFlags(t *testing.T) {
	grants := []string{"authorization_code", "client_credentials", "refresh_token"}
	base := Metadata{ClientName: "a", GrantTypes: []string{"authorization_code"}, RedirectURIs: []string{"https://c.example/cb"}}
	for _, tc := range []struct {
		name                  string
		set                   func(m *Metadata)
		skip, introspect, par bool
	}{
		{"none", func(*Metadata) {}, false, false, false},
		{"skip_consent", func(m *Metadata) { m.SkipConsent = true }, true, false, false},
		{"allow_introspection", func(m *Metadata) { m.AllowIntrospection = true }, false, true, false},
		{"require_pushed_authorization_requests", func(m *Metadata) { m.RequirePAR = true }, false, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := base
			tc.set(&m)
			c, err := normalize(m, grants)
			if err != nil {
				t.Fatal(err)
			}
			if c.SkipConsent != tc.skip || c.AllowIntrospection != tc.introspect || c.RequirePAR != tc.par {
				t.Errorf("stored skip=%v introspect=%v par=%v, want %v %v %v", c.SkipConsent, c.AllowIntrospection, c.RequirePAR, tc.skip, tc.introspect, tc.par)
			}
			out := toMetadata(&c)
			if out.SkipConsent != tc.skip || out.AllowIntrospection != tc.introspect || out.RequirePAR != tc.par {
				t.Errorf("returned %+v", out)
			}
		})
	}
}
