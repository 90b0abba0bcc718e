package oauth

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/ory/fosite"

	"github.com/oauthd/oauthd/storage"
)

func TestToOAuthError(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantCode   string
	}{
		{"storage outage wrapped by fosite as invalid_client", fosite.ErrInvalidClient.WithWrap(errors.Join(errUnavailable, storage.ErrUnavailable)), 503, "temporarily_unavailable"},
		{"invalid client", fosite.ErrInvalidClient, 401, "invalid_client"},
		{"invalid scope", fosite.ErrInvalidScope.WithHint("nope"), 400, "invalid_scope"},
		{"unknown error", errors.New("pq: relation \"x\" does not exist"), 500, "server_error"},
		{"fosite server error", fosite.ErrServerError.WithDebug("secret detail"), 500, "server_error"},
		{"our own", invalidRequest("x"), 400, "invalid_request"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			oe := toOAuthError(tc.err)
			if oe.Status != tc.wantStatus || oe.Code != tc.wantCode {
				t.Errorf("got %d %s, want %d %s", oe.Status, oe.Code, tc.wantStatus, tc.wantCode)
			}
			if strings.Contains(oe.Description, "pq:") || strings.Contains(oe.Description, "secret detail") {
				t.Errorf("description leaks internals: %q", oe.Description)
			}
		})
	}
}

func TestSanitizeDescription(t *testing.T) {
	in := "a\"b\\c\nd\te\x00f é"
	out := sanitizeDescription(in)
	for _, c := range out {
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' {
			t.Fatalf("character %q survives in %q", c, out)
		}
	}
	if !strings.HasPrefix(out, "a'b/c") {
		t.Errorf("unexpected %q", out)
	}
}

func TestETagMatch(t *testing.T) {
	tag := `"abc"`
	tests := []struct {
		header string
		want   bool
	}{
		{`"abc"`, true},
		{`W/"abc"`, true},
		{`"x", "abc"`, true},
		{`"x","abc" `, true},
		{`*`, true},
		{`"abd"`, false},
		{`abc`, false},
		{``, false},
		{`,,,`, false},
	}
	for _, tc := range tests {
		if got := etagMatch(tc.header, tag); got != tc.want {
			t.Errorf("etagMatch(%q) = %v, want %v", tc.header, got, tc.want)
		}
	}
}

func TestCheckDuplicates(t *testing.T) {
	tests := []struct {
		form string
		ok   bool
	}{
		{"grant_type=a&scope=b", true},
		{"audience=a&audience=b", true},
		{"resource=a&resource=b", true},
		{"grant_type=a&grant_type=a", false},
		{"scope=a&scope=", false},
		{"client_id=a&client_id=b", false},
	}
	for _, tc := range tests {
		v, _ := url.ParseQuery(tc.form)
		if err := checkDuplicates(v); (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok=%v", tc.form, err, tc.ok)
		}
	}
}

func TestCheckSingleAuthMethod(t *testing.T) {
	mk := func(form string, user string) *http.Request {
		r, _ := http.NewRequest("POST", "/", nil)
		r.PostForm, _ = url.ParseQuery(form)
		if user != "" {
			r.SetBasicAuth(user, "pw")
		}
		return r
	}
	tests := []struct {
		name string
		r    *http.Request
		ok   bool
	}{
		{"basic only", mk("grant_type=x", "c1"), true},
		{"body only", mk("client_id=c1&client_secret=s", ""), true},
		{"basic and body secret", mk("client_secret=s", "c1"), false},
		{"basic and assertion", mk("client_assertion=x", "c1"), false},
		{"same client_id in body", mk("client_id=c%201", url.QueryEscape("c 1")), true},
		{"different client_id in body", mk("client_id=c2", "c1"), false},
	}
	for _, tc := range tests {
		if err := checkSingleAuthMethod(tc.r); (err == nil) != tc.ok {
			t.Errorf("%s: err = %v, want ok=%v", tc.name, err, tc.ok)
		}
	}
}

func TestValidateIssuer(t *testing.T) {
	for iss, ok := range map[string]bool{
		"https://id.example":        true,
		"https://id.example/":       true,
		"https://id.example/tenant": false,
		"http://localhost:8080":     true,
		"http://127.0.0.1:9000":     true,
		"http://id.example":         false,
		"https://id.example?x=1":    false,
		"https://id.example#f":      false,
		"id.example":                false,
		"ftp://id.example":          false,
		"https://u@id.example":      false,
	} {
		if err := ValidateIssuer(iss); (err == nil) != ok {
			t.Errorf("ValidateIssuer(%q) = %v, want ok=%v", iss, err, ok)
		}
	}
}

func TestWriteTokenResponse(t *testing.T) {
	tests := []struct {
		name   string
		fields map[string]interface{}
		want   string
	}{
		{"client credentials", map[string]interface{}{"access_token": "a", "token_type": "Bearer", "expires_in": int64(600), "scope": "x y"},
			`{"access_token":"a","token_type":"Bearer","expires_in":600,"scope":"x y"}`},
		{"empty scope omitted", map[string]interface{}{"access_token": "a", "token_type": "Bearer", "expires_in": int64(1), "scope": ""},
			`{"access_token":"a","token_type":"Bearer","expires_in":1}`},
		{"unknown member kept", map[string]interface{}{"access_token": "a", "token_type": "Bearer", "expires_in": int64(1), "issued_token_type": "x"},
			`{"access_token":"a","expires_in":1,"issued_token_type":"x","token_type":"Bearer"}`},
		{"unexpected type kept", map[string]interface{}{"access_token": "a", "token_type": "Bearer", "expires_in": 1.5},
			`{"access_token":"a","expires_in":1.5,"token_type":"Bearer"}`},
	}
	for _, tc := range tests {
		rec := httptest.NewRecorder()
		writeTokenResponse(rec, tc.fields)
		if got := strings.TrimSpace(rec.Body.String()); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
		if rec.Header().Get("Cache-Control") != "no-store" || rec.Header().Get("Content-Type") != "application/json" {
			t.Errorf("%s: headers %v", tc.name, rec.Header())
		}
	}
}
