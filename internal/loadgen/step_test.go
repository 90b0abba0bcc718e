package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// rotator is a server whose tokens are good for one use each, like
// rotating refresh tokens: POST /token with token=T answers a new token and
// retires T; a retired or unknown token answers 400.
type rotator struct {
	mu    sync.Mutex
	live  map[string]bool
	next  int
	hits  atomic.Int64
	codes map[string]bool // authorization codes issued by GET /authorize, one use each
}

func newRotator() *rotator {
	return &rotator{live: map[string]bool{}, codes: map[string]bool{}}
}

// issue makes a new live token.
func (r *rotator) issue() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.next++
	tok := "t" + strconv.Itoa(r.next)
	r.live[tok] = true
	return tok
}

func (r *rotator) isLive(tok string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.live[tok]
}

func (r *rotator) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.hits.Add(1)
	switch req.URL.Path {
	case "/authorize": // like a sign-in with a session cookie: 303 with a one-use code
		if req.Header.Get("Cookie") != "s=1" {
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		r.mu.Lock()
		r.next++
		code := "c" + strconv.Itoa(r.next)
		r.codes[code] = true
		r.mu.Unlock()
		w.Header().Set("Location", "http://127.0.0.1:9/cb?code="+code+"&state="+req.URL.Query().Get("state"))
		w.WriteHeader(http.StatusSeeOther)
	case "/token":
		if err := req.ParseForm(); err != nil || req.Header.Get("Authorization") != "Basic abc" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		r.mu.Lock()
		ok := false
		if code := req.PostForm.Get("code"); code != "" {
			ok = r.codes[code]
			delete(r.codes, code)
		} else {
			tok := req.PostForm.Get("token")
			ok = r.live[tok]
			delete(r.live, tok)
		}
		r.next++
		next := "t" + strconv.Itoa(r.next)
		if ok {
			r.live[next] = true
		}
		r.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusBadRequest)
			io.WriteString(w, `{"error":"invalid_grant"}`)
			return
		}
		fmt.Fprintf(w, `{"access_token":"a","token":%q}`, next)
	default:
		w.WriteHeader(http.StatusNotFound)
	}
}

// tokenStep sends its current token and takes the next from the answer.
type tokenStep struct {
	tok  string
	body []byte
	n    int
}

func (s *tokenStep) Body(int) []byte {
	s.body = append(append(s.body[:0], "token="...), s.tok...)
	return s.body
}

func (s *tokenStep) Observe(_ int, a Answer) error {
	_, rest, ok := bytes.Cut(a.Body, []byte(`"token":"`))
	tok, _, ok2 := bytes.Cut(rest, []byte(`"`))
	if !ok || !ok2 || len(tok) == 0 {
		return errors.New("no token in the answer")
	}
	s.tok = string(tok)
	s.n++
	return nil
}

func rotateSpec(url string, steps []*tokenStep) Spec {
	return Spec{
		Name: "rotate", Method: http.MethodPost, URL: url + "/token",
		Header:       http.Header{"Authorization": {"Basic abc"}, "Content-Type": {"application/x-www-form-urlencoded"}},
		Body:         []byte("token=static-never-sent"),
		BodyContains: []byte(`"access_token"`),
		Stepper:      func(w int) Step { return steps[w] },
	}
}

func TestRunWithStepper(t *testing.T) {
	for _, client := range []Client{ClientRaw, ClientNetHTTP} {
		t.Run(string(client), func(t *testing.T) {
			r := newRotator()
			srv := httptest.NewServer(r)
			defer srv.Close()
			steps := make([]*tokenStep, 3)
			for i := range steps {
				steps[i] = &tokenStep{tok: r.issue()}
			}
			spec := rotateSpec(srv.URL, steps)

			// A trial request with worker 0's Step carries over into the run.
			var s *Sender
			var err error
			if client == ClientRaw {
				s, err = NewRawSender(context.Background(), spec, time.Second)
			} else {
				tr := NewTransport(1)
				defer tr.CloseIdleConnections()
				s, err = NewSender(context.Background(), spec, tr)
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := s.Do(); err != nil {
				t.Fatal(err)
			}
			s.Close()
			if steps[0].n != 1 {
				t.Fatalf("trial request: step saw %d answers", steps[0].n)
			}

			res, err := Run(context.Background(), spec, Config{Client: client, Concurrency: 3, Duration: 200 * time.Millisecond, Warmup: 20 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if res.Errors != 0 || res.Requests == 0 {
				t.Fatalf("%d requests, %d errors (%s)", res.Requests, res.Errors, res.FirstError)
			}
			total := 0
			for i, st := range steps {
				total += st.n
				// No rotation lost: each worker's last token is the live one.
				if !r.isLive(st.tok) {
					t.Errorf("worker %d: its last token %s is not live", i, st.tok)
				}
			}
			if int64(total) != res.Requests+res.WarmupRequests+1 || r.hits.Load() != int64(total) {
				t.Errorf("steps saw %d answers, run counted %d+%d (+1 trial), server %d", total, res.Requests, res.WarmupRequests, r.hits.Load())
			}
		})
	}
}

// codeStep runs an authorize-then-exchange iteration: it takes the code
// from the Location of the 303 and sends it in the exchange.
type codeStep struct {
	body       []byte
	exchanges  int
	lastHeader string
}

func (s *codeStep) Body(i int) []byte {
	if i == 0 {
		return nil // the static authorization request
	}
	return s.body
}

func (s *codeStep) Observe(i int, a Answer) error {
	if i == 1 {
		s.exchanges++
		return nil
	}
	s.lastHeader = string(a.Header)
	_, q, _ := bytes.Cut(a.Header, []byte("?"))
	for len(q) > 0 {
		var kv []byte
		kv, q, _ = bytes.Cut(q, []byte("&"))
		if k, v, _ := bytes.Cut(kv, []byte("=")); string(k) == "code" && len(v) > 0 {
			s.body = append(append(s.body[:0], "grant_type=authorization_code&code="...), v...)
			return nil
		}
	}
	return fmt.Errorf("no code in Location %q", a.Header)
}

func TestRunWithThen(t *testing.T) {
	for _, client := range []Client{ClientRaw, ClientNetHTTP} {
		t.Run(string(client), func(t *testing.T) {
			r := newRotator()
			srv := httptest.NewServer(r)
			defer srv.Close()
			steps := make([]*codeStep, 2)
			for i := range steps {
				steps[i] = &codeStep{}
			}
			spec := Spec{
				Name: "code", URL: srv.URL + "/authorize?state=abcdefgh", Header: http.Header{"Cookie": {"s=1"}},
				Status: http.StatusSeeOther, Capture: "location",
				Then: []Spec{{
					Method: http.MethodPost, URL: srv.URL + "/token",
					Header:       http.Header{"Authorization": {"Basic abc"}, "Content-Type": {"application/x-www-form-urlencoded"}},
					BodyContains: []byte(`"access_token"`),
				}},
				Stepper: func(w int) Step { return steps[w] },
			}
			res, err := Run(context.Background(), spec, Config{Client: client, Concurrency: 2, Duration: 200 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if res.Errors != 0 || res.Requests == 0 {
				t.Fatalf("%d iterations, %d errors (%s)", res.Requests, res.Errors, res.FirstError)
			}
			if got := int64(steps[0].exchanges + steps[1].exchanges); got != res.Requests || r.hits.Load() != 2*got {
				t.Errorf("%d iterations counted, %d exchanges seen, %d requests served", res.Requests, got, r.hits.Load())
			}
			if !strings.HasPrefix(steps[0].lastHeader, "http://127.0.0.1:9/cb?code=c") {
				t.Errorf("captured Location %q", steps[0].lastHeader)
			}

			// A refused answer fails the iteration as "step" and names the
			// request and the reason.
			spec.Capture = "X-Missing"
			res, err = Run(context.Background(), spec, Config{Client: client, Concurrency: 1, Duration: 100 * time.Millisecond, KeepGoing: true})
			if err != nil {
				t.Fatal(err)
			}
			if res.Requests != 0 || res.ErrorKinds["step"] == 0 || res.Errors != res.ErrorKinds["step"] ||
				!strings.Contains(res.FirstError, "GET /authorize: answer refused by the scenario: no code in Location") {
				t.Errorf("missing header: %d iterations, errors %v, first %q", res.Requests, res.ErrorKinds, res.FirstError)
			}

			// A failed second request reports that request.
			spec.Capture = "Location"
			spec.Then[0].Header = http.Header{"Authorization": {"Basic wrong"}}
			res, err = Run(context.Background(), spec, Config{Client: client, Concurrency: 1, Duration: 100 * time.Millisecond})
			if err != nil {
				t.Fatal(err)
			}
			if !res.Aborted || res.ErrorKinds["status 400"] != 1 || !strings.HasPrefix(res.FirstError, "POST /token: status 400, want 200") {
				t.Errorf("bad exchange: aborted %v, errors %v, first %q", res.Aborted, res.ErrorKinds, res.FirstError)
			}
		})
	}
}

func TestRawSenderThenNeedsOneHost(t *testing.T) {
	spec := Spec{URL: "http://127.0.0.1:1/a", Then: []Spec{{URL: "http://127.0.0.1:2/b"}}}
	if s, err := NewRawSender(context.Background(), spec, 0); err == nil {
		s.Close()
		t.Error("raw sender accepted an iteration over two hosts")
	}
	if _, err := NewRawSender(context.Background(), Spec{URL: "http://x/", Capture: "Bad Name"}, 0); err == nil {
		t.Error("raw sender accepted a Capture that is no field name")
	}
}

// fixedStep sends the same body from its own buffer and accepts any answer.
type fixedStep struct {
	body []byte
	seen int
}

func (s *fixedStep) Body(int) []byte { return s.body }
func (s *fixedStep) Observe(_ int, a Answer) error {
	if len(a.Body) == 0 {
		return errors.New("empty")
	}
	s.seen++
	return nil
}

func TestRawSenderWithStepDoesNotAllocate(t *testing.T) {
	f := newFakeServer(t, fakeToken, nil)
	st := &fixedStep{body: []byte("grant_type=refresh_token&refresh_token=0123456789abcdef")}
	spec := tokenSpec(f.url())
	spec.Capture = "Cache-Control"
	spec.Stepper = func(int) Step { return st }
	s, err := NewRawSender(context.Background(), spec, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Do(); err != nil { // dials, sizes the buffers
		t.Fatal(err)
	}
	if string(s.header()) != "no-store" {
		t.Errorf("captured %q", s.header())
	}
	want := "Content-Length: 55\r\n\r\n" + string(st.body)
	if !strings.HasSuffix(string(s.raw.req), want) || !strings.HasPrefix(string(s.raw.req), "POST /oauth2/token HTTP/1.1\r\n") {
		t.Errorf("request %q", s.raw.req)
	}
	n := testing.AllocsPerRun(1000, func() {
		if err := s.Do(); err != nil {
			t.Fatal(err)
		}
	})
	if n != 0 {
		t.Errorf("%v allocations per stateful request, client and fake server together", n)
	}
	if st.seen != 1002 {
		t.Errorf("step saw %d answers, want 1002", st.seen)
	}
}

func TestRespReaderCapture(t *testing.T) {
	in := "HTTP/1.1 103 Early Hints\r\nLocation: /early\r\n\r\n" +
		"HTTP/1.1 303 See Other\r\nlocation:  /final?code=x \r\nLocation: /second\r\nContent-Length: 0\r\n\r\n" +
		"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
	rr := newRespReader(strings.NewReader(in))
	rr.capture = []byte("Location")
	if err := rr.read(false); err != nil {
		t.Fatal(err)
	}
	if rr.status != 303 || !rr.hasCap || string(rr.captured) != "/final?code=x" {
		t.Errorf("status %d, captured %v %q", rr.status, rr.hasCap, rr.captured)
	}
	if err := rr.read(false); err != nil {
		t.Fatal(err)
	}
	if rr.hasCap {
		t.Errorf("a response without the field still has %q", rr.captured)
	}
}

// TestStepBodyOverNetHTTP checks net/http sends the Step's body with a
// matching length, and that a step returning nil sends the spec's own.
func TestStepBodyOverNetHTTP(t *testing.T) {
	var got []string
	var mu sync.Mutex
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		got = append(got, fmt.Sprintf("%d:%s", r.ContentLength, b))
		mu.Unlock()
		io.WriteString(w, "ok")
	}))
	defer srv.Close()
	st := &alternating{}
	spec := Spec{Method: http.MethodPost, URL: srv.URL, Body: []byte("static"), Stepper: func(int) Step { return st }}
	for _, client := range []Client{ClientNetHTTP, ClientRaw} {
		got, st.n = nil, 0
		var s *Sender
		var err error
		if client == ClientRaw {
			s, err = NewRawSender(context.Background(), spec, time.Second)
		} else {
			s, err = NewSender(context.Background(), spec, http.DefaultTransport)
		}
		if err != nil {
			t.Fatal(err)
		}
		for i := 0; i < 3; i++ {
			if err := s.Do(); err != nil {
				t.Fatal(err)
			}
		}
		s.Close()
		if want := []string{"7:dynamic", "6:static", "7:dynamic"}; fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s: server saw %q, want %q", client, got, want)
		}
	}
}

// alternating sends its own body every other request.
type alternating struct{ n int }

func (s *alternating) Body(int) []byte {
	s.n++
	if s.n%2 == 0 {
		return nil
	}
	return []byte("dynamic")
}
func (s *alternating) Observe(int, Answer) error { return nil }

// stockStep has k bodies to send and then is exhausted.
type stockStep struct {
	k, sent, seen int
}

func (s *stockStep) Body(int) []byte {
	s.sent++
	return nil
}
func (s *stockStep) Observe(int, Answer) error { s.seen++; return nil }
func (s *stockStep) Exhausted() bool           { return s.sent >= s.k }

func TestRunStopsExhaustedWorkers(t *testing.T) {
	for _, client := range []Client{ClientRaw, ClientNetHTTP} {
		t.Run(string(client), func(t *testing.T) {
			var hits atomic.Int64
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				hits.Add(1)
				io.WriteString(w, "ok")
			}))
			defer srv.Close()
			steps := []*stockStep{{k: 3}, {k: 5}, {k: 0}}
			spec := Spec{Name: "stock", URL: srv.URL, Stepper: func(w int) Step { return steps[w] }}
			// Long enough that only the exhaustion can have ended the run.
			cfg := Config{Client: client, Concurrency: len(steps), Duration: 20 * time.Second, Warmup: 10 * time.Millisecond}
			start := time.Now()
			res, err := Run(context.Background(), spec, cfg)
			if err != nil {
				t.Fatal(err)
			}
			if took := time.Since(start); took > cfg.Duration/2 {
				t.Errorf("the run took %v: exhausted workers did not stop", took)
			}
			for i, s := range steps {
				if s.sent != s.k || s.seen != s.k {
					t.Errorf("worker %d: sent %d, saw %d answers, want exactly %d", i, s.sent, s.seen, s.k)
				}
			}
			if res.Errors != 0 || res.Aborted || res.Requests+res.WarmupRequests != 8 || hits.Load() != 8 {
				t.Errorf("%d+%d requests, %d errors %v (first: %s), aborted %v, server saw %d; want 8 and no errors",
					res.WarmupRequests, res.Requests, res.Errors, res.ErrorKinds, res.FirstError, res.Aborted, hits.Load())
			}
			if len(res.Exhausted) != 3 || !slices.IsSorted(res.Exhausted) || res.Exhausted[0] < -cfg.Warmup || res.Exhausted[2] > time.Since(start) {
				t.Errorf("exhausted at %v, want 3 times from the warm-up on, in order", res.Exhausted)
			}
		})
	}
}
