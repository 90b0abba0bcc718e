package main

import (
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// agent is a scripted user agent that follows the HTML contract
// (contract.md "Scripted user agents"): it follows redirects on the server,
// fills the login form (inputs username and password) and answers the
// consent form (buttons named decision), and stops at the first redirect
// that leaves the server (the client's redirect URI).
type agent struct {
	t        testing.TB
	server   string
	client   *http.Client
	Username string
	Password string
	// Decision is what the consent form is answered with ("allow" or
	// "deny"); "" fails the test if consent is asked.
	Decision string
	// Pages counts the pages seen by kind ("login", "consent").
	Pages map[string]int
}

func newAgent(t testing.TB, server, username, password string) *agent {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &agent{t: t, server: server, Username: username, Password: password, Decision: "allow", Pages: map[string]int{},
		client: &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// form is one parsed HTML form.
type form struct {
	Action string
	Fields url.Values
	Inputs []string // names of every input and button
}

var (
	formRe   = regexp.MustCompile(`(?s)<form[^>]*method="post"[^>]*>(.*?)</form>`)
	actionRe = regexp.MustCompile(`action="([^"]*)"`)
	inputRe  = regexp.MustCompile(`<(?:input|button)[^>]*>`)
	attrRe   = regexp.MustCompile(`(\w+)="([^"]*)"`)
)

// forms extracts the POST forms of a page.
func forms(page string) []form {
	var out []form
	for _, m := range formRe.FindAllStringSubmatchIndex(page, -1) {
		open := page[m[0]:m[2]]
		f := form{Fields: url.Values{}}
		if a := actionRe.FindStringSubmatch(open); a != nil {
			f.Action = html.UnescapeString(a[1])
		}
		for _, in := range inputRe.FindAllString(page[m[2]:m[3]], -1) {
			attrs := map[string]string{}
			for _, a := range attrRe.FindAllStringSubmatch(in, -1) {
				attrs[a[1]] = html.UnescapeString(a[2])
			}
			if attrs["name"] == "" {
				continue
			}
			f.Inputs = append(f.Inputs, attrs["name"])
			if attrs["type"] == "hidden" {
				f.Fields.Set(attrs["name"], attrs["value"])
			}
		}
		out = append(out, f)
	}
	return out
}

func (f form) has(name string) bool {
	for _, n := range f.Inputs {
		if n == name {
			return true
		}
	}
	return false
}

// Do runs the browser part of an authorization request starting at
// startURL and returns the URL the server finally redirected to outside
// itself, or nil with the last response when it ended on a page.
func (a *agent) Do(startURL string) (*url.URL, *http.Response, string) {
	a.t.Helper()
	req, err := http.NewRequest(http.MethodGet, startURL, nil)
	if err != nil {
		a.t.Fatal(err)
	}
	for i := 0; i < 20; i++ {
		resp, err := a.client.Do(req)
		if err != nil {
			a.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if loc := resp.Header.Get("Location"); resp.StatusCode >= 300 && resp.StatusCode < 400 && loc != "" {
			if resp.StatusCode == http.StatusTemporaryRedirect || resp.StatusCode == http.StatusPermanentRedirect {
				a.t.Errorf("%s %s answered %d: credentials must never be re-posted (RFC 9700 §4.12)", req.Method, req.URL.Path, resp.StatusCode)
			}
			next, err := req.URL.Parse(loc)
			if err != nil {
				a.t.Fatalf("bad Location %q: %v", loc, err)
			}
			if !strings.HasPrefix(next.String(), a.server+"/") {
				return next, resp, string(body)
			}
			req, _ = http.NewRequest(http.MethodGet, next.String(), nil)
			continue
		}
		page := string(body)
		var next *form
		for _, f := range forms(page) {
			switch {
			case f.has("username") && f.has("password"):
				a.Pages["login"]++
				f.Fields.Set("username", a.Username)
				f.Fields.Set("password", a.Password)
				next = &f
			case f.has("decision"):
				a.Pages["consent"]++
				if a.Decision == "" {
					a.t.Fatalf("consent asked unexpectedly at %s", req.URL)
				}
				f.Fields.Set("decision", a.Decision)
				next = &f
			}
			if next != nil {
				break
			}
		}
		if next == nil {
			return nil, resp, page
		}
		target, err := req.URL.Parse(next.Action)
		if err != nil {
			a.t.Fatal(err)
		}
		req, _ = http.NewRequest(http.MethodPost, target.String(), strings.NewReader(next.Fields.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	a.t.Fatalf("too many steps from %s", startURL)
	return nil, nil, ""
}
