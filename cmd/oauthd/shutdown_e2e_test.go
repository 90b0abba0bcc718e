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
