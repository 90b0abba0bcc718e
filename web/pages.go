package web

import (
	"bytes"
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"sort"
	"time"

	"github.com/gorilla/mux"

	"github.com/oauthd/oauthd/storage"
)

//go:embed templates/*.html static/*
var files embed.FS

// contentSecurityPolicy allows our own stylesheet and images and nothing
// else: no script at all, no framing (clickjacking, RFC 9700 §4.16). It
// has no form-action on purpose: Chrome applies form-action to the
// redirect that follows the consent POST, which goes to the client.
const contentSecurityPolicy = "default-src 'none'; style-src 'self'; img-src 'self'; base-uri 'none'; frame-ancestors 'none'"

// pageNames are the templates under templates/, each rendered inside
// base.html.
var pageNames = []string{"login", "consent", "error", "logout", "signedout", "account"}

// pages maps a page name to its template set (base layout + page).
type pages map[string]*template.Template

func loadPages() (pages, error) {
	p := pages{}
	for _, name := range pageNames {
		t, err := template.New(name).Option("missingkey=error").ParseFS(files, "templates/base.html", "templates/"+name+".html")
		if err != nil {
			return nil, fmt.Errorf("web: parse template %s: %w", name, err)
		}
		p[name] = t
	}
	return p, nil
}

// layout is what base.html needs; every page's data embeds it.
type layout struct {
	Title string
	Style string
	Icon  string
	// Wide widens the card (the account page's list).
	Wide bool
	// CSRF is the token of the page's forms ("" when it has none).
	CSRF string
}

func (s *Site) layout(title string) layout {
	return layout{Title: title, Style: s.assetURL("style.css"), Icon: s.assetURL("icon.svg")}
}

// pageHeaders are on every page and redirect we answer. no-store keeps
// pages carrying codes and CSRF tokens out of caches; same-origin keeps
// query strings (return_to) out of other sites' logs (RFC 9700 §4.2.4).
// Not no-referrer: under it Chromium sends "Origin: null" on our own form
// posts, which the CSRF check must refuse.
func pageHeaders(h http.Header) {
	h.Set("Content-Security-Policy", contentSecurityPolicy)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	h.Set("Referrer-Policy", "same-origin")
	h.Set("X-Content-Type-Options", "nosniff")
}

// render writes page name with status. The template runs into a buffer
// first so a template failure becomes a clean 500, not half a page.
func (s *Site) render(w http.ResponseWriter, r *http.Request, status int, name string, data any) {
	var buf bytes.Buffer
	if err := s.pages[name].ExecuteTemplate(&buf, "base", data); err != nil {
		s.logger.ErrorContext(r.Context(), "render page", "page", name, "err", err)
		pageHeaders(w.Header())
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.WriteHeader(http.StatusInternalServerError)
		_, _ = w.Write([]byte("Something went wrong. Please try again.\n"))
		return
	}
	pageHeaders(w.Header())
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}

// redirect answers 303 See Other: the browser follows with a GET, so a
// POSTed password is never sent again (RFC 9700 §4.12, never 307/308).
func (s *Site) redirect(w http.ResponseWriter, target string) {
	pageHeaders(w.Header())
	w.Header().Set("Location", target)
	w.WriteHeader(http.StatusSeeOther)
}

type errorPage struct {
	layout
	Detail string
}

// RenderError implements oauth.Browser. title and detail are plain text.
func (s *Site) RenderError(w http.ResponseWriter, r *http.Request, status int, title, detail string) {
	if status < 400 || status > 599 {
		status = http.StatusInternalServerError
	}
	if title == "" {
		title = http.StatusText(status)
	}
	s.render(w, r, status, "error", errorPage{layout: s.layout(title), Detail: detail})
}

// fail answers a request that could not be served because of err (a
// storage failure), logging it once. The person sees no internal detail.
func (s *Site) fail(w http.ResponseWriter, r *http.Request, op string, err error) {
	if errors.Is(err, context.Canceled) {
		// The browser went away; nobody reads the answer.
		s.logger.DebugContext(r.Context(), op, "err", err)
	} else {
		s.logger.ErrorContext(r.Context(), op, "err", err)
	}
	if errors.Is(err, storage.ErrUnavailable) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		s.RenderError(w, r, http.StatusServiceUnavailable, "Temporarily unavailable",
			"We cannot complete this right now. Please try again in a moment.")
		return
	}
	s.RenderError(w, r, http.StatusInternalServerError, "Something went wrong",
		"We cannot complete this right now. Please try again later.")
}

// csrfFailed answers a form that failed CheckCSRF.
func (s *Site) csrfFailed(w http.ResponseWriter, r *http.Request) {
	s.RenderError(w, r, http.StatusForbidden, "This form has expired",
		"For your security the form could not be accepted. Go back, reload the page and try again.")
}

// field is one hidden form input.
type field struct{ Name, Value string }

// hiddenFields flattens values in a stable order. A csrf_token among them
// is dropped: the page adds its own.
func hiddenFields(values url.Values) []field {
	names := make([]string, 0, len(values))
	for n := range values {
		if n != "csrf_token" {
			names = append(names, n)
		}
	}
	sort.Strings(names)
	var out []field
	for _, n := range names {
		for _, v := range values[n] {
			out = append(out, field{n, v})
		}
	}
	return out
}

// scopeWords says what a scope lets the client do, in plain words.
var scopeWords = map[string]string{
	"openid":         "Confirm your identity",
	"profile":        "See your name and username",
	"email":          "See your email address",
	"offline_access": "Stay connected when you are not using it",
}

func describeScopes(scopes []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, sc := range scopes {
		if sc == "" || seen[sc] {
			continue
		}
		seen[sc] = true
		if w, ok := scopeWords[sc]; ok {
			out = append(out, w)
		} else {
			out = append(out, "Use “"+sc+"”")
		}
	}
	return out
}

type consentPage struct {
	layout
	ClientName string
	Scopes     []string
	Action     string
	Hidden     []field
}

// RenderConsent implements oauth.Browser.
func (s *Site) RenderConsent(w http.ResponseWriter, r *http.Request, clientName string, scopes []string, action string, hidden url.Values) {
	if clientName == "" {
		clientName = "An app"
	}
	l := s.layout("Allow " + clientName + "?")
	l.CSRF = s.csrfToken(w, r)
	s.render(w, r, http.StatusOK, "consent", consentPage{
		layout: l, ClientName: clientName, Scopes: describeScopes(scopes), Action: action, Hidden: hiddenFields(hidden),
	})
}

type logoutPage struct {
	layout
	ClientName string
	Action     string
	Hidden     []field
}

// RenderLogout implements oauth.Browser.
func (s *Site) RenderLogout(w http.ResponseWriter, r *http.Request, clientName string, action string, hidden url.Values) {
	l := s.layout("Sign out?")
	l.CSRF = s.csrfToken(w, r)
	s.render(w, r, http.StatusOK, "logout", logoutPage{layout: l, ClientName: clientName, Action: action, Hidden: hiddenFields(hidden)})
}

// RenderSignedOut implements oauth.Browser.
func (s *Site) RenderSignedOut(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, "signedout", struct {
		layout
		Login string
	}{s.layout("You are signed out"), PathLogin})
}

// staticAssets returns the version (a content hash) of each static file,
// which asset URLs carry so browsers may cache them for good.
func staticAssets() map[string]string {
	versions := map[string]string{}
	entries, _ := fs.ReadDir(files, "static")
	for _, e := range entries {
		b, err := files.ReadFile("static/" + e.Name())
		if err != nil {
			continue
		}
		sum := sha256.Sum256(b)
		versions[e.Name()] = hex.EncodeToString(sum[:6])
	}
	return versions
}

func (s *Site) assetURL(name string) string {
	return pathStatic + name + "?v=" + s.assets[name]
}

// static serves the embedded stylesheet and icon.
func (s *Site) static(w http.ResponseWriter, r *http.Request) {
	name := mux.Vars(r)["file"]
	version, ok := s.assets[name]
	if !ok {
		s.RenderError(w, r, http.StatusNotFound, "Page not found", "There is nothing here.")
		return
	}
	b, err := files.ReadFile("static/" + name)
	if err != nil {
		s.RenderError(w, r, http.StatusNotFound, "Page not found", "There is nothing here.")
		return
	}
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; frame-ancestors 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("ETag", `"`+version+`"`)
	if r.URL.Query().Get("v") == version {
		h.Set("Cache-Control", "public, max-age=31536000, immutable")
	} else {
		h.Set("Cache-Control", "public, max-age=3600")
	}
	http.ServeContent(w, r, path.Base(name), time.Time{}, bytes.NewReader(b))
}
