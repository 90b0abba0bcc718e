package httpx

import (
	"errors"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Recover turns a panic into a 500 with a generic body, logging the stack.
// Nothing of the panic reaches the client.
func Recover(logger *slog.Logger) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			defer func() {
				if v := recover(); v != nil {
					if v == http.ErrAbortHandler {
						panic(v)
					}
					logger.ErrorContext(r.Context(), "panic while serving request", "panic", v, "stack", string(debug.Stack()))
					NoStore(w)
					WriteJSON(w, http.StatusInternalServerError, map[string]string{"error": "server_error"})
				}
			}()
			next.ServeHTTP(w, r)
		})
	}
}

// LimitBody caps request bodies at max bytes. Handlers that read past it
// get an error that IsTooLarge recognises, and answer 413.
func LimitBody(max int64) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.ContentLength > max {
				w.Header().Set("Connection", "close")
				NoStore(w)
				WriteJSON(w, http.StatusRequestEntityTooLarge, map[string]string{
					"error": "invalid_request", "error_description": "The request body is too large.",
				})
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, max)
			next.ServeHTTP(w, r)
		})
	}
}

// IsTooLarge reports whether err came from reading past the body limit.
func IsTooLarge(err error) bool {
	var mbe *http.MaxBytesError
	return errors.As(err, &mbe)
}

// Metrics counts requests and observes their latency by route template,
// method and status. Use it as a gorilla/mux middleware so the route is known.
type Metrics struct {
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
}

// NewMetrics registers the HTTP metrics of one listener.
func NewMetrics(reg prometheus.Registerer, listener string) *Metrics {
	m := &Metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name:        "oauthd_http_requests_total",
			Help:        "HTTP requests by route, method and status code.",
			ConstLabels: prometheus.Labels{"listener": listener},
		}, []string{"route", "method", "code"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:        "oauthd_http_request_duration_seconds",
			Help:        "HTTP request latency by route and status code.",
			ConstLabels: prometheus.Labels{"listener": listener},
			Buckets:     []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5},
		}, []string{"route", "code"}),
	}
	reg.MustRegister(m.requests, m.latency)
	return m
}

// Middleware instruments next.
func (m *Metrics) Middleware(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec, ok := w.(*recorder)
		if !ok {
			rec = &recorder{ResponseWriter: w}
		}
		next.ServeHTTP(rec, r)
		status := rec.status
		if status == 0 {
			status = http.StatusOK
		}
		route, code := routeName(r), strconv.Itoa(status)
		m.requests.WithLabelValues(route, methodLabel(r.Method), code).Inc()
		m.latency.WithLabelValues(route, code).Observe(time.Since(start).Seconds())
	})
}

// methodLabel keeps the method label to a fixed set: a label per made-up
// method would let anyone grow the metrics without bound.
func methodLabel(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions:
		return m
	}
	return "other"
}

// SecurityHeaders sets headers every response of ours should carry.
func SecurityHeaders(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		next.ServeHTTP(w, r)
	})
}
