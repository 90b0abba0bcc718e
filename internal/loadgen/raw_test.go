package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"
	"time"
)

// next is a response that follows another on the same connection, to show
// that the first was read to its exact end.
const next = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext"

func TestRespReader(t *testing.T) {
	big := strings.Repeat("x", maxBody+100)
	tests := []struct {
		name   string
		in     string
		head   bool
		status int
		body   string
		close  bool // also: no next response is appended
	}{
		{name: "content-length", in: "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 13\r\n\r\n{\"keys\":[1]}\n", status: 200, body: "{\"keys\":[1]}\n"},
		{name: "content-length case-insensitive", in: "HTTP/1.1 201 Created\r\ncOnTeNt-LeNgTh:   3  \r\n\r\nabc", status: 201, body: "abc"},
		{name: "content-length zero", in: "HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", status: 200},
		{name: "repeated equal content-length", in: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok", status: 200, body: "ok"},
		{name: "no reason phrase", in: "HTTP/1.1 200\r\nContent-Length: 2\r\n\r\nok", status: 200, body: "ok"},
		{name: "bare LF", in: "HTTP/1.1 200 OK\nContent-Length: 2\n\nok", status: 200, body: "ok"},
		{name: "folded header line", in: "HTTP/1.1 200 OK\r\nX-A: 1\r\n 2\r\nContent-Length: 2\r\n\r\nok", status: 200, body: "ok"},
		{name: "chunked", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n7\r\n, world\r\n0\r\n\r\n", status: 200, body: "hello, world"},
		{name: "chunked with extensions, upper-case hex and trailers",
			in:     "HTTP/1.1 200 OK\r\ntransfer-encoding: Chunked\r\nTrailer: X-Sum\r\n\r\n5;name=value\r\nhello\r\nA ; a=\"b;c\"\r\n0123456789\r\n000;last\r\nX-Sum: 1\r\nX-Other: 2\r\n\r\n",
			status: 200, body: "hello0123456789"},
		{name: "chunked after another coding", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", status: 200, body: "ok"},
		{name: "chunked wins over content-length", in: "HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n", status: 200, body: "ok"},
		{name: "connection close", in: "HTTP/1.1 200 OK\r\nConnection: close\r\nContent-Length: 2\r\n\r\nok", status: 200, body: "ok", close: true},
		{name: "connection close among tokens", in: "HTTP/1.1 200 OK\r\nconnection: Upgrade, CLOSE\r\nContent-Length: 2\r\n\r\nok", status: 200, body: "ok", close: true},
		{name: "HTTP/1.0 closes by default", in: "HTTP/1.0 200 OK\r\nContent-Length: 2\r\n\r\nok", status: 200, body: "ok", close: true},
		{name: "HTTP/1.0 keep-alive", in: "HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nContent-Length: 2\r\n\r\nok", status: 200, body: "ok"},
		{name: "body to the end of the connection", in: "HTTP/1.1 200 OK\r\n\r\nall of it", status: 200, body: "all of it", close: true},
		{name: "unknown coding: to the end", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nzzz", status: 200, body: "zzz", close: true},
		{name: "304 has no body", in: "HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\nContent-Length: 500\r\n\r\n", status: 304},
		{name: "204 has no body", in: "HTTP/1.1 204 No Content\r\nContent-Length: 3\r\n\r\n", status: 204},
		{name: "HEAD has no body", in: "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", head: true, status: 200},
		{name: "interim responses", in: "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", status: 200, body: "ok"},
		{name: "switching protocols", in: "HTTP/1.1 101 Switching Protocols\r\nUpgrade: x\r\n\r\n", status: 101, close: true},
		{name: "body over 1 MiB: kept up to 1 MiB", in: fmt.Sprintf("HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s", len(big), big), status: 200, body: big[:maxBody]},
		{name: "chunked body over 1 MiB", in: fmt.Sprintf("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n%s\r\n3\r\nend\r\n0\r\n\r\n", len(big), big), status: 200, body: big[:maxBody]},
	}
	readers := map[string]func(string) io.Reader{
		"whole":        func(s string) io.Reader { return strings.NewReader(s) },
		"byte by byte": func(s string) io.Reader { return iotest.OneByteReader(strings.NewReader(s)) },
	}
	for _, tc := range tests {
		for rname, mk := range readers {
			t.Run(tc.name+"/"+rname, func(t *testing.T) {
				in := tc.in
				if !tc.close {
					in += next
				}
				rr := newRespReader(mk(in))
				if err := rr.read(tc.head); err != nil {
					t.Fatal(err)
				}
				if rr.status != tc.status || string(rr.body()) != tc.body || rr.close != tc.close {
					t.Fatalf("status %d close %v body %q (%d bytes), want %d %v %q", rr.status, rr.close, truncate(rr.body(), 40), rr.n, tc.status, tc.close, truncate([]byte(tc.body), 40))
				}
				if tc.close {
					return
				}
				if err := rr.read(false); err != nil || rr.status != 200 || string(rr.body()) != "next" || rr.close {
					t.Fatalf("next response: %v, status %d body %q", err, rr.status, rr.body())
				}
				if _, err := rr.br.ReadByte(); err != io.EOF {
					t.Errorf("bytes left after the next response: %v", err)
				}
			})
		}
	}
}

func TestRespReaderErrors(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // in the error; "" for io.EOF (nothing arrived)
	}{
		{name: "nothing", in: "", want: ""},
		{name: "malformed status line", in: "HTTP/1.1 OK\r\n\r\n", want: "status line"},
		{name: "two-digit status", in: "HTTP/1.1 20 OK\r\n\r\n", want: "status line"},
		{name: "status 099", in: "HTTP/1.1 099 x\r\n\r\n", want: "status line"},
		{name: "status glued to reason", in: "HTTP/1.1 200OK\r\n\r\n", want: "status line"},
		{name: "not HTTP/1", in: "HTTP/2 200 OK\r\n\r\n", want: "status line"},
		{name: "garbage", in: "hello\r\n", want: "status line"},
		{name: "header without colon", in: "HTTP/1.1 200 OK\r\nContent-Length 2\r\n\r\nok", want: "header line"},
		{name: "space before colon", in: "HTTP/1.1 200 OK\r\nContent-Length : 2\r\n\r\nok", want: "header line"},
		{name: "bad content-length", in: "HTTP/1.1 200 OK\r\nContent-Length: -2\r\n\r\nok", want: "Content-Length"},
		{name: "conflicting content-length", in: "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nok", want: "Content-Length"},
		{name: "truncated header", in: "HTTP/1.1 200 OK\r\nContent-Len", want: "unexpected EOF"},
		{name: "truncated body", in: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort", want: "unexpected EOF"},
		{name: "bad chunk size", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nxyz\r\n", want: "chunk size"},
		{name: "empty chunk size", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n;ext\r\n", want: "chunk size"},
		{name: "chunk longer than its size", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nokay\r\n0\r\n\r\n", want: "longer than its size"},
		{name: "truncated chunk", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel", want: "unexpected EOF"},
		{name: "no last chunk", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n", want: "unexpected EOF"},
		{name: "truncated trailers", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX-A: 1\r\n", want: "unexpected EOF"},
		{name: "header line longer than the buffer", in: "HTTP/1.1 200 OK\r\nX-Big: " + strings.Repeat("a", readBufSize) + "\r\n\r\n", want: "too large"},
		{name: "too many header bytes", in: "HTTP/1.1 200 OK\r\n" + strings.Repeat("X-Many: "+strings.Repeat("a", 1000)+"\r\n", maxHeaderBytes/1000+1) + "\r\n", want: "too large"},
		{name: "too many trailer bytes", in: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n" + strings.Repeat("X-Many: "+strings.Repeat("a", 1000)+"\r\n", maxHeaderBytes/1000+1) + "\r\n", want: "too large"},
		{name: "endless interim responses", in: strings.Repeat("HTTP/1.1 100 Continue\r\n\r\n", maxInterim+2), want: "interim"},
	}
	for _, tc := range tests {
		for _, slow := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/slow=%v", tc.name, slow), func(t *testing.T) {
				var r io.Reader = strings.NewReader(tc.in)
				if slow {
					r = iotest.OneByteReader(r)
				}
				rr := newRespReader(r)
				err := rr.read(false)
				switch {
				case err == nil:
					t.Fatalf("accepted: status %d body %q", rr.status, rr.body())
				case tc.want == "":
					if err != io.EOF || rr.started {
						t.Errorf("error %v (started %v), want io.EOF before any byte", err, rr.started)
					}
				case !strings.Contains(err.Error(), tc.want):
					t.Errorf("error %q lacks %q", err, tc.want)
				}
			})
		}
	}
}

func TestBuildRequest(t *testing.T) {
	spec := withDefaults(tokenSpec("http://127.0.0.1:8080/oauth2/token?x=1"))
	spec.Header["If-None-Match"] = []string{`"abc"`}
	spec.Header["Host"] = []string{"ignored"}
	s, err := NewRawSender(context.Background(), spec, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	want := "POST /oauth2/token?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nAuthorization: Basic abc\r\nContent-Type: application/x-www-form-urlencoded\r\n" +
		"If-None-Match: \"abc\"\r\nUser-Agent: oauthd-bench\r\nContent-Length: 12\r\n\r\ngrant_type=x"
	if got := string(s.raw.req); got != want {
		t.Errorf("request\n%q\nwant\n%q", got, want)
	}
	if s.raw.addr != "127.0.0.1:8080" {
		t.Errorf("addr %q", s.raw.addr)
	}

	// The request parses as HTTP.
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(s.raw.req)))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(r.Body)
	if r.Method != "POST" || r.Host != "127.0.0.1:8080" || r.Header.Get("Authorization") != "Basic abc" || string(body) != "grant_type=x" {
		t.Errorf("parsed %s %s %v %q", r.Method, r.Host, r.Header, body)
	}

	g, err := NewRawSender(context.Background(), Spec{URL: "http://example.com"}, 0)
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
	if got := string(g.raw.req); got != "GET / HTTP/1.1\r\nHost: example.com\r\nUser-Agent: oauthd-bench\r\n\r\n" || g.raw.addr != "example.com:80" {
		t.Errorf("GET request %q to %s", got, g.raw.addr)
	}

	for _, bad := range []Spec{
		{URL: "https://example.com/"},
		{URL: "http://example.com/", Header: http.Header{"X-A": {"1\r\nX-B: 2"}}},
		{URL: "http://example.com/", Header: http.Header{"X A": {"1"}}},
		{URL: "http://example.com/", Method: "GET /x"},
	} {
		if s, err := NewRawSender(context.Background(), bad, 0); err == nil {
			s.Close()
			t.Errorf("%+v accepted", bad)
		}
	}
}

func TestChooseClient(t *testing.T) {
	for _, tc := range []struct {
		c    Client
		url  string
		want Client
	}{
		{"", "http://x", ClientRaw}, {"", "https://x", ClientNetHTTP},
		{ClientRaw, "http://x", ClientRaw}, {ClientNetHTTP, "http://x", ClientNetHTTP}, {ClientNetHTTP, "https://x", ClientNetHTTP},
		{ClientRaw, "https://x", ""}, {"curl", "http://x", ""},
	} {
		got, err := ChooseClient(tc.c, tc.url)
		if got != tc.want || (err != nil) != (tc.want == "") {
			t.Errorf("ChooseClient(%q, %q) = %q, %v", tc.c, tc.url, got, err)
		}
	}
	if _, err := Run(context.Background(), Spec{URL: "https://127.0.0.1:1"}, Config{Client: ClientRaw, Concurrency: 1, Duration: time.Second}); err == nil {
		t.Error("Run: raw client for https accepted")
	}
}

// TestClientsAgree drives the same server with both clients and checks
// they judge its answers alike: statuses, bodies (also long and chunked
// ones), 304s and HEAD.
func TestClientsAgree(t *testing.T) {
	long := strings.Repeat("0123456789", 1000) + `"access_token"` // past the initial 4 KiB buffer
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/ok":
			io.WriteString(w, `{"access_token":"x"}`)
		case "/503":
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `{"error":"temporarily_unavailable"}`)
		case "/long":
			w.Header().Set("Content-Length", fmt.Sprint(len(long)))
			io.WriteString(w, long)
		case "/chunked":
			for i := 0; i < len(long); i += 3000 {
				io.WriteString(w, long[i:min(i+3000, len(long))])
				w.(http.Flusher).Flush()
			}
		case "/close":
			w.Header().Set("Connection", "close")
			io.WriteString(w, `{"access_token":"x"}`)
		case "/etag":
			if r.Header.Get("If-None-Match") == `"v1"` {
				w.WriteHeader(http.StatusNotModified)
				return
			}
			io.WriteString(w, `{"keys":[]}`)
		}
	}))
	defer srv.Close()
	want := []byte(`"access_token"`)
	tests := []struct {
		spec Spec
		kind string // "" for success
	}{
		{spec: Spec{URL: srv.URL + "/ok", BodyContains: want}},
		{spec: Spec{URL: srv.URL + "/ok", BodyContains: []byte("nope")}, kind: "unexpected body"},
		{spec: Spec{URL: srv.URL + "/ok", Status: 201}, kind: "status 200"},
		{spec: Spec{URL: srv.URL + "/503", BodyContains: want}, kind: "status 503"},
		{spec: Spec{URL: srv.URL + "/long", BodyContains: want}},
		{spec: Spec{URL: srv.URL + "/chunked", BodyContains: want}},
		{spec: Spec{URL: srv.URL + "/close", BodyContains: want}},
		{spec: Spec{URL: srv.URL + "/etag", Header: http.Header{"If-None-Match": {`"v1"`}}, Status: 304}},
		{spec: Spec{URL: srv.URL + "/etag", BodyContains: []byte("keys")}},
		{spec: Spec{URL: srv.URL + "/ok", Method: http.MethodHead}},
		{spec: Spec{URL: srv.URL + "/ok", Method: http.MethodPost, BodyContains: want}},
	}
	tr := NewTransport(1)
	defer tr.CloseIdleConnections()
	for _, tc := range tests {
		for _, client := range []Client{ClientRaw, ClientNetHTTP} {
			t.Run(fmt.Sprintf("%s %s/%s", tc.spec.Method, tc.spec.URL[len(srv.URL):], client), func(t *testing.T) {
				var s *Sender
				var err error
				if client == ClientRaw {
					s, err = NewRawSender(context.Background(), tc.spec, time.Second)
				} else {
					s, err = NewSender(context.Background(), tc.spec, tr)
				}
				if err != nil {
					t.Fatal(err)
				}
				defer s.Close()
				for i := 0; i < 3; i++ { // again on the same connection (or a new one after close)
					kind, err := s.do()
					if got := kind.String(); tc.kind == "" && kind.class != kindNone || tc.kind != "" && got != tc.kind {
						t.Fatalf("request %d: %s (%v: %s), want %q", i, got, err, s.describe(kind, err), tc.kind)
					}
				}
				if tc.kind == "status 503" && !strings.Contains(s.describe(errKind{class: kindStatus, status: 503}, nil), "temporarily_unavailable") {
					t.Error("description lacks the body")
				}
			})
		}
	}
	// Whole runs agree too.
	for _, client := range []Client{ClientRaw, ClientNetHTTP} {
		var hits atomic.Int64
		srv := okServer(t, &hits, nil)
		res, err := Run(context.Background(), tokenSpec(srv.URL), Config{Client: client, Concurrency: 3, Duration: 100 * time.Millisecond, Warmup: 20 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if res.Requests == 0 || res.Errors != 0 || res.Requests+res.WarmupRequests != hits.Load() {
			t.Errorf("%s: requests %d+%d, server saw %d, errors %d (%s)", client, res.Requests, res.WarmupRequests, hits.Load(), res.Errors, res.FirstError)
		}
	}
}

// fakeServer answers every request on a connection with resp; it allocates
// nothing per request. closeAfter, if set, decides per answered request
// (counting from 1 per connection) whether to close the connection after it.
type fakeServer struct {
	ln    net.Listener
	conns atomic.Int64
	wg    sync.WaitGroup
}

func newFakeServer(t testing.TB, resp string, closeAfter func(n int) bool) *fakeServer {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeServer{ln: ln}
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.conns.Add(1)
			f.wg.Add(1)
			go func() {
				defer f.wg.Done()
				defer c.Close()
				br, out := bufio.NewReader(c), []byte(resp)
				for n := 1; ; n++ {
					if err := skipRequest(br); err != nil {
						return
					}
					if _, err := c.Write(out); err != nil {
						return
					}
					if closeAfter != nil && closeAfter(n) {
						return
					}
				}
			}()
		}
	}()
	t.Cleanup(func() { ln.Close(); f.wg.Wait() })
	return f
}

func (f *fakeServer) url() string { return "http://" + f.ln.Addr().String() + "/oauth2/token" }

// skipRequest reads one request with a Content-Length body (or none).
func skipRequest(br *bufio.Reader) error {
	length := 0
	for {
		line, err := br.ReadSlice('\n')
		if err != nil {
			return err
		}
		line = trimEOL(line)
		if len(line) == 0 {
			break
		}
		if name, value, ok := bytes.Cut(line, []byte(":")); ok && bytes.EqualFold(name, hContentLength) {
			n, ok := parseLength(bytes.TrimSpace(value))
			if !ok {
				return errors.New("bad Content-Length")
			}
			length = int(n)
		}
	}
	_, err := br.Discard(length)
	return err
}

const (
	fakeToken   = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nCache-Control: no-store\r\nContent-Length: 44\r\n\r\n{\"access_token\":\"x\",\"token_type\":\"Bearer\"}\n\n"
	fakeChunked = "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n10;x=y\r\n{\"access_token\":\r\n1a\r\n\"x\",\"token_type\":\"Bearer\"}\r\n0\r\nX-Trailer: 1\r\n\r\n"
)

func TestRawSenderDoesNotAllocate(t *testing.T) {
	for name, resp := range map[string]string{"content-length": fakeToken, "chunked": fakeChunked} {
		t.Run(name, func(t *testing.T) {
			f := newFakeServer(t, resp, nil)
			spec := tokenSpec(f.url())
			s, err := NewRawSender(context.Background(), spec, time.Second)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if err := s.Do(); err != nil { // dials
				t.Fatal(err)
			}
			n := testing.AllocsPerRun(1000, func() {
				if err := s.Do(); err != nil {
					t.Fatal(err)
				}
			})
			if n != 0 {
				t.Errorf("%v allocations per request, client and fake server together", n)
			}
			if f.conns.Load() != 1 {
				t.Errorf("%d connections, want 1 kept alive", f.conns.Load())
			}
		})
	}
}

func TestRawSenderReconnects(t *testing.T) {
	spec := tokenSpec("")

	// Connection: close: a new connection for each request, no errors.
	closing := strings.Replace(fakeToken, "Cache-Control: no-store\r\n", "Connection: close\r\n", 1)
	f := newFakeServer(t, closing, func(int) bool { return true })
	spec.URL = f.url()
	res, err := Run(context.Background(), spec, Config{Client: ClientRaw, Concurrency: 2, Duration: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors != 0 || res.Requests < 2 || f.conns.Load() != res.Requests+res.WarmupRequests {
		t.Errorf("Connection: close: %d requests, %d connections, %d errors (%s)", res.Requests, f.conns.Load(), res.Errors, res.FirstError)
	}

	// A server that closes kept-alive connections without saying so: the
	// request is sent again on a new connection, not counted as failed.
	f = newFakeServer(t, fakeToken, func(n int) bool { return n == 3 })
	spec.URL = f.url()
	s, err := NewRawSender(context.Background(), spec, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for i := 0; i < 10; i++ {
		if err := s.Do(); err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		time.Sleep(time.Millisecond) // let the close arrive first, sometimes
	}
	if c := f.conns.Load(); c != 4 {
		t.Errorf("%d connections for 10 requests, 3 a connection: want 4", c)
	}

	// A server that closes every connection without answering: one resend,
	// then a transport error; the next request dials again.
	f = newFakeServer(t, "", func(int) bool { return true })
	spec.URL = f.url()
	s2, err := NewRawSender(context.Background(), spec, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	for i := 0; i < 3; i++ {
		kind, err := s2.do()
		if kind.class != kindTransport || !errors.Is(err, io.EOF) {
			t.Fatalf("request %d: %v %v, want a transport error (EOF)", i, kind, err)
		}
	}
	if c := f.conns.Load(); c != 3 {
		t.Errorf("%d connections, want 3 (one per request: no resend on a fresh connection)", c)
	}

	// Bytes after the answer: the connection is not trusted any more.
	f = newFakeServer(t, fakeToken+"junk", nil)
	spec.URL = f.url()
	s3, err := NewRawSender(context.Background(), spec, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s3.Close()
	time.Sleep(10 * time.Millisecond)
	if kind, err := s3.do(); kind.class != kindTransport || err != errUnsolicited {
		// The junk may arrive after the response was parsed; then the next
		// answer is what is wrong.
		if kind.class == kindNone {
			kind, err = s3.do()
		}
		if kind.class != kindTransport {
			t.Errorf("junk after the answer: %v %v", kind, err)
		}
	}
}

func TestRawSenderDeadlines(t *testing.T) {
	// The server reads the request and never answers.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	}()
	spec := Spec{URL: "http://" + ln.Addr().String() + "/hang"}

	s, err := NewRawSender(context.Background(), spec, 50*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	start := time.Now()
	kind, err := s.do()
	if kind.class != kindTimeout || time.Since(start) > time.Second {
		t.Fatalf("%v %v after %v, want a timeout after 50ms", kind, err, time.Since(start))
	}
	if msg := s.describe(kind, err); !strings.Contains(msg, "no answer within 50ms") {
		t.Errorf("description %q", msg)
	}

	// Cancelling the context interrupts a request in flight.
	ctx, cancel := context.WithCancel(context.Background())
	s2, err := NewRawSender(ctx, spec, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	time.AfterFunc(50*time.Millisecond, cancel)
	start = time.Now()
	if kind, err := s2.do(); kind.class != kindTransport || time.Since(start) > 5*time.Second {
		t.Fatalf("%v %v after %v, want an interrupted request", kind, err, time.Since(start))
	}
	if kind, err := s2.do(); kind.class != kindTransport || !errors.Is(err, context.Canceled) {
		t.Errorf("after cancel: %v %v", kind, err)
	}
}

// BenchmarkSender compares the clients' cost per request against a fake
// server that allocates nothing (the figures include its half).
func BenchmarkSender(b *testing.B) {
	f := newFakeServer(b, fakeToken, nil)
	spec := tokenSpec(f.url())
	for _, client := range []Client{ClientRaw, ClientNetHTTP} {
		b.Run(string(client), func(b *testing.B) {
			tr := NewTransport(1)
			defer tr.CloseIdleConnections()
			var s *Sender
			var err error
			if client == ClientRaw {
				s, err = NewRawSender(context.Background(), spec, time.Second)
			} else {
				s, err = NewSender(context.Background(), spec, tr)
			}
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			b.ReportAllocs()
			for b.Loop() {
				if err := s.Do(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
