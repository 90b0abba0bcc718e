package admin

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/mux"

	"github.com/oauthd/oauthd/internal/httpx"
	"github.com/oauthd/oauthd/internal/secret"
	"github.com/oauthd/oauthd/keys"
)

// keyManager is what the admin API needs from the key manager.
type keyManager interface {
	List(ctx context.Context) ([]keys.Info, error)
	Rotate(ctx context.Context, immediate bool) ([]keys.Info, error)
}

// API serves /admin/* on the admin listener.
type API struct {
	Clients *Clients
	Users   userCreator
	Keys    keyManager
	// Sessions lists and revokes users' grant sessions (*storage.Store).
	Sessions sessionStore
	// Token is the admin bearer token.
	Token  string
	Logger *slog.Logger

	// now is the clock of the session routes; nil is time.Now (tests set it).
	now func() time.Time
}

// Register mounts the admin API on r (the admin listener's router).
func (a *API) Register(r *mux.Router) {
	s := r.PathPrefix("/admin").Subrouter()
	s.Use(a.authenticate)
	s.HandleFunc("/clients", a.createClient).Methods(http.MethodPost)
	s.HandleFunc("/clients", a.listClients).Methods(http.MethodGet)
	s.HandleFunc("/clients/{id}", a.getClient).Methods(http.MethodGet)
	s.HandleFunc("/clients/{id}", a.updateClient).Methods(http.MethodPut)
	s.HandleFunc("/clients/{id}", a.deleteClient).Methods(http.MethodDelete)
	s.HandleFunc("/clients/{id}/secret", a.rotateSecret).Methods(http.MethodPost)
	s.HandleFunc("/users", a.createUser).Methods(http.MethodPost)
	s.HandleFunc("/users/{id}/sessions", a.listUserSessions).Methods(http.MethodGet)
	s.HandleFunc("/users/{id}/sessions", a.revokeUserSessions).Methods(http.MethodDelete)
	s.HandleFunc("/sessions/{sid}", a.revokeSession).Methods(http.MethodDelete)
	s.HandleFunc("/keys", a.listKeys).Methods(http.MethodGet)
	s.HandleFunc("/keys/rotate", a.rotateKeys).Methods(http.MethodPost)
	s.NotFoundHandler = a.authenticate(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		writeError(w, http.StatusNotFound, "not_found", "No such admin resource.")
	}))
	// Any other method on a known resource: 405 (registered last, so the
	// method-specific routes above win).
	for _, path := range []string{"/clients", "/clients/{id}", "/clients/{id}/secret", "/users", "/users/{id}/sessions", "/sessions/{sid}", "/keys", "/keys/rotate"} {
		s.HandleFunc(path, func(w http.ResponseWriter, _ *http.Request) {
			writeError(w, http.StatusMethodNotAllowed, "invalid_request", "Method not allowed on this admin resource.")
		})
	}
}

// authenticate requires "Authorization: Bearer <admin token>", compared in
// constant time. The admin API takes no cookies, so it has no CSRF surface.
func (a *API) authenticate(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		httpx.NoStore(w)
		h := r.Header.Get("Authorization")
		scheme, token, ok := strings.Cut(h, " ")
		if !ok || !strings.EqualFold(scheme, "Bearer") || a.Token == "" || !secret.Equal(strings.TrimSpace(token), a.Token) {
			w.Header().Set("WWW-Authenticate", `Bearer realm="oauthd-admin"`)
			writeError(w, http.StatusUnauthorized, "unauthorized", "A valid admin bearer token is required.")
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeError(w http.ResponseWriter, status int, code, desc string) {
	httpx.WriteJSON(w, status, Error{Code: code, Description: desc})
}

// fail maps a service error to its answer; unexpected errors are logged and
// answered without detail.
func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	var me *Error
	switch {
	case errors.As(err, &me):
		httpx.WriteJSON(w, http.StatusBadRequest, me)
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "not_found", "No client with that client_id.")
	case errors.Is(err, ErrExists):
		writeError(w, http.StatusConflict, "invalid_client_metadata", "A client with that client_id already exists.")
	default:
		a.Logger.ErrorContext(r.Context(), "admin request failed", "err", err)
		w.Header().Set("Retry-After", "5")
		writeError(w, http.StatusServiceUnavailable, "temporarily_unavailable", "The request could not be completed; try again later.")
	}
}

// decode reads a JSON body strictly: application/json, one object, known
// types (unknown members are ignored, as RFC 7591 §2 asks).
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if mt, _, err := mime.ParseMediaType(r.Header.Get("Content-Type")); err != nil || mt != "application/json" {
		writeError(w, http.StatusUnsupportedMediaType, "invalid_request", "The body must be application/json.")
		return false
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		if httpx.IsTooLarge(err) {
			writeError(w, http.StatusRequestEntityTooLarge, "invalid_request", "The request body is too large.")
		} else {
			writeError(w, http.StatusBadRequest, "invalid_request", "The request body could not be read.")
		}
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	if err := dec.Decode(v); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_client_metadata", "The body is not a valid client metadata JSON object: "+jsonProblem(err))
		return false
	}
	if dec.More() {
		writeError(w, http.StatusBadRequest, "invalid_client_metadata", "The body must hold exactly one JSON object.")
		return false
	}
	return true
}

// jsonProblem describes a decoding error without echoing the input.
func jsonProblem(err error) string {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		return "member " + te.Field + " must be " + te.Type.String()
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		return "syntax error"
	}
	return "malformed JSON"
}

func (a *API) createClient(w http.ResponseWriter, r *http.Request) {
	var m Metadata
	if !decode(w, r, &m) {
		return
	}
	out, err := a.Clients.Create(r.Context(), m)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusCreated, out)
}

func (a *API) listClients(w http.ResponseWriter, r *http.Request) {
	out, err := a.Clients.List(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

func (a *API) getClient(w http.ResponseWriter, r *http.Request) {
	out, err := a.Clients.Get(r.Context(), mux.Vars(r)["id"])
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

func (a *API) updateClient(w http.ResponseWriter, r *http.Request) {
	var m Metadata
	if !decode(w, r, &m) {
		return
	}
	out, err := a.Clients.Update(r.Context(), mux.Vars(r)["id"], m)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

func (a *API) deleteClient(w http.ResponseWriter, r *http.Request) {
	if err := a.Clients.Delete(r.Context(), mux.Vars(r)["id"]); err != nil {
		a.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// rotateSecret answers the new secret once. ?grace=1h keeps the old secret
// valid for that long.
func (a *API) rotateSecret(w http.ResponseWriter, r *http.Request) {
	var grace time.Duration
	if g := r.URL.Query().Get("grace"); g != "" {
		d, err := time.ParseDuration(g)
		if err != nil || d < 0 || d > 30*24*time.Hour {
			writeError(w, http.StatusBadRequest, "invalid_request", "grace must be a duration between 0s and 720h, e.g. 1h.")
			return
		}
		grace = d
	}
	out, err := a.Clients.RotateSecret(r.Context(), mux.Vars(r)["id"], grace)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

func (a *API) listKeys(w http.ResponseWriter, r *http.Request) {
	out, err := a.Keys.List(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, out)
}

// rotateKeys answers {"kid": <new access-token key>, "keys": [every new key]}.
func (a *API) rotateKeys(w http.ResponseWriter, r *http.Request) {
	immediate := false
	switch r.URL.Query().Get("immediate") {
	case "", "false", "0":
	case "true", "1":
		immediate = true
	default:
		writeError(w, http.StatusBadRequest, "invalid_request", "immediate must be true or false.")
		return
	}
	added, err := a.Keys.Rotate(r.Context(), immediate)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	httpx.WriteJSON(w, http.StatusOK, map[string]any{"kid": added[0].KID, "keys": added})
}
