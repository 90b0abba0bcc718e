package main

import (
	"bufio"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/oauthd/oauthd/storage/storagetest"
)

// TestGracefulShutdownFinishesInFlightRequests starts a token request, stops
// the server while the request body is still arriving, then completes the
// body: the request must be answered normally, new connections refused,
// readiness false, and the server must then stop.
func TestGracefulShutdownFinishesInFlightRequests(t *testing.T) {
	ts := startServer(t, storagetest.Backends(t)[0].NewDSN(t), nil)
	c := ts.createClient(map[string]any{"client_name": "slow", "scope": "s"})

	conn, err := net.Dial("tcp", strings.TrimPrefix(ts.PublicURL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := "grant_type=client_credentials&client_id=" + url.QueryEscape(c.ID)
	req := fmt.Sprintf("POST /oauth2/token HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\nAuthorization: Basic %s\r\n\r\n",
		len(body), basic(c.ID, c.Secret))
	if _, err := conn.Write([]byte(req + body[:10])); err != nil {
		t.Fatal(err)
	}
	time.Sleep(100 * time.Millisecond) // the server is now reading the body

	stopped := make(chan struct{})
	go func() { ts.Stop(); close(stopped) }()
	time.Sleep(200 * time.Millisecond)
	select {
	case <-stopped:
		t.Fatal("server stopped with a request in flight")
	default:
	}
	if ts.srv.ready.Load() {
		t.Error("still ready while shutting down")
	}
	if c2, err := net.DialTimeout("tcp", strings.TrimPrefix(ts.PublicURL, "http://"), time.Second); err == nil {
		c2.Close()
		t.Error("new connections still accepted during shutdown")
	}

	if _, err := conn.Write([]byte(body[10:])); err != nil {
		t.Fatal(err)
	}
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("in-flight request got no answer: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("in-flight request: %d, want 200", resp.StatusCode)
	}
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("server did not stop after the in-flight request finished")
	}
}

func basic(user, pass string) string {
	r, _ := http.NewRequest("GET", "/", nil)
	r.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	return strings.TrimPrefix(r.Header.Get("Authorization"), "Basic ")
}

// TestShutdownDelayKeepsServingWhileNotReady: with OAUTHD_SHUTDOWN_DELAY,
// readiness turns 503 at once while liveness and the endpoints keep
// answering until the delay is over.
func TestShutdownDelayKeepsServingWhileNotReady(t *testing.T) {
	ts := startServer(t, storagetest.Backends(t)[0].NewDSN(t), map[string]string{"OAUTHD_SHUTDOWN_DELAY": "1500ms"})
	c := ts.createClient(map[string]any{"client_name": "drain", "scope": "s"})
	stopped := make(chan struct{})
	go func() { ts.Stop(); close(stopped) }()
	time.Sleep(300 * time.Millisecond)
	get := func(path string) int {
		resp, err := http.Get(ts.PublicURL + path)
		if err != nil {
			t.Fatalf("%s during the drain delay: %v", path, err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if st := get("/health/ready"); st != http.StatusServiceUnavailable {
		t.Errorf("ready during drain: %d, want 503", st)
	}
	if st := get("/health/alive"); st != http.StatusOK {
		t.Errorf("alive during drain: %d, want 200", st)
	}
	resp := ts.postForm("/oauth2/token", "grant_type=client_credentials", c.ID, c.Secret)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("token during drain: %d", resp.StatusCode)
	}
	select {
	case <-stopped:
		t.Fatal("stopped before the drain delay was over")
	default:
	}
	select {
	case <-stopped:
	case <-time.After(10 * time.Second):
		t.Fatal("did not stop after the drain delay")
	}
}
