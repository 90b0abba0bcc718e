// Package httpx holds the HTTP plumbing every listener shares: request ids,
// the access log, panic recovery, body limits, metrics, and JSON writers.
// Standard library (plus the Prometheus client and gorilla/mux for route
// names) only; it knows nothing of OAuth.
package httpx
