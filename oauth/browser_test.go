package oauth

import (
	"net/http"
	"net/url"
	"time"
)

// noBrowser is a Browser for tests that never reach the pages: nobody is
// signed in and every page is a plain error.
type noBrowser struct{}

func (noBrowser) SignedIn(*http.Request) (string, time.Time, bool, error) {
	return "", time.Time{}, false, nil
}
func (noBrowser) LoginURL(returnTo, _ string) string {
	return "/login?return_to=" + url.QueryEscape(returnTo)
}
func (noBrowser) CheckCSRF(*http.Request) bool { return false }
func (noBrowser) RenderConsent(w http.ResponseWriter, _ *http.Request, _ string, _ []string, _ string, _ url.Values) {
	http.Error(w, "consent", http.StatusOK)
}
func (noBrowser) RenderLogout(w http.ResponseWriter, _ *http.Request, _ string, _ string, _ url.Values) {
	http.Error(w, "logout", http.StatusOK)
}
func (noBrowser) RenderSignedOut(w http.ResponseWriter, _ *http.Request) {
	http.Error(w, "signed out", http.StatusOK)
}
func (noBrowser) RenderError(w http.ResponseWriter, _ *http.Request, status int, title, _ string) {
	http.Error(w, title, status)
}
func (noBrowser) SignOut(http.ResponseWriter, *http.Request) (string, error) { return "", nil }
