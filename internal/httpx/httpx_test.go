package httpx

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
)

func TestAccessLogWritesOneLineWithoutQueryOrHeaders(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(ContextHandler{slog.NewTextHandler(&buf, nil)})
	var seenID string
	h := AccessLog(logger)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seenID = RequestID(r.Context())
		logger.InfoContext(r.Context(), "inner")
		w.WriteHeader(http.StatusTeapot)
	}))
	req := httptest.NewRequest("POST", "/oauth2/token?code=SECRETCODE", strings.NewReader("client_secret=BODYSECRET"))
	req.Header.Set("Authorization", "Basic SEKRIT")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)

	out := buf.String()
	if strings.Count(out, "msg=request") != 1 || !strings.Contains(out, "status=418") || !strings.Contains(out, "path=/oauth2/token") {
		t.Errorf("access log: %s", out)
	}
	for _, secret := range []string{"SECRETCODE", "BODYSECRET", "SEKRIT"} {
		if strings.Contains(out, secret) {
			t.Errorf("log contains %s: %s", secret, out)
		}
	}
	if seenID == "" || rec.Header().Get("X-Request-Id") != seenID || strings.Count(out, "request_id="+seenID) != 2 {
		t.Errorf("request id %q not on both lines and the response: %s", seenID, out)
	}
}

func TestRequestIDFromCaller(t *testing.T) {
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	for id, keep := range map[string]bool{"abc-123_x.y": true, "": false, "has space": false, "x\nforged=1": false, strings.Repeat("a", 65): false} {
		var got string
		h := AccessLog(logger)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { got = RequestID(r.Context()) }))
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("X-Request-Id", id)
		h.ServeHTTP(httptest.NewRecorder(), req)
		if (got == id) != keep || got == "" {
			t.Errorf("X-Request-Id %q: got %q, keep=%v", id, got, keep)
		}
	}
}

func TestLimitBody(t *testing.T) {
	h := LimitBody(10)(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if _, err := io.ReadAll(r.Body); IsTooLarge(err) {
			w.WriteHeader(http.StatusRequestEntityTooLarge)
		}
	}))
	for _, tc := range []struct {
		body    string
		chunked bool
		want    int
	}{{"short", false, 200}, {"0123456789A", false, 413}, {"0123456789A", true, 413}} {
		req := httptest.NewRequest("POST", "/", strings.NewReader(tc.body))
		if tc.chunked {
			req.ContentLength = -1
		}
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != tc.want {
			t.Errorf("body %q chunked=%v: %d, want %d", tc.body, tc.chunked, rec.Code, tc.want)
		}
	}
}

func TestRecoverHidesThePanic(t *testing.T) {
	var buf bytes.Buffer
	h := Recover(slog.New(slog.NewTextHandler(&buf, nil)))(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {
		panic("database password is hunter2")
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest("GET", "/", nil))
	if rec.Code != 500 || strings.Contains(rec.Body.String(), "hunter2") || !strings.Contains(rec.Body.String(), "server_error") {
		t.Errorf("got %d %s", rec.Code, rec.Body)
	}
	if !strings.Contains(buf.String(), "panic") {
		t.Error("panic not logged")
	}
}

func TestMetricsCountByStatus(t *testing.T) {
	reg := prometheus.NewRegistry()
	m := NewMetrics(reg, "test")
	h := m.Middleware(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusCreated) }))
	for i := 0; i < 3; i++ {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("POST", "/x", nil))
	}
	if got := testutil.ToFloat64(m.requests.WithLabelValues("unmatched", "POST", "201")); got != 3 {
		t.Errorf("counted %v, want 3", got)
	}
}
