// Package web serves the pages people see: sign-in, consent, sign-out,
// errors and the account page listing the apps a person has signed in to.
// It owns the browser (SSO) session: the cookie that says who is signed in
// at this server, kept server-side as a hashed row in browser_sessions,
// and the CSRF protection of every form.
//
// Site implements oauth.Browser, the seam the authorization, consent and
// logout endpoints use; only standard-library types cross it, so web and
// oauth never import each other. cmd/oauthd builds the Site, passes it to
// oauth and mounts its routes. web imports storage, accounts (only for its
// bad-credentials sentinel) and gorilla/mux.
//
// Pages are html/template files embedded in the binary with one stylesheet;
// they need no JavaScript and load nothing from elsewhere, so the strict
// Content-Security-Policy every page carries holds.
package web
