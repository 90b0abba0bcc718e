// Package loadgen drives HTTP requests at a fixed concurrency for a fixed
// time and summarises throughput and latency. It backs `oauthd bench`.
//
// It is built to stay out of the way of the server it measures, which
// usually shares the machine. For http:// it uses its own HTTP/1.1 client
// (ClientRaw): each worker keeps one connection, writes the request it built
// once with a single Write and parses the answer in place, with no
// allocation per request. For https:// (or on request, ClientNetHTTP) it
// uses net/http over one shared keep-alive transport, with requests prepared
// once and re-sent; there net/http itself still allocates per request. Either
// way response bodies go into a per-worker buffer, latencies into a
// per-worker histogram (no allocation), and nothing is logged per request.
//
// A Spec is static (the same request over and over) unless it has a
// Stepper: then each worker keeps its own state (a Step) that makes the
// body of each request and reads each answer, e.g. to send the refresh
// token the previous answer carried. With Then, one iteration is a short
// sequence of requests (e.g. an authorization request, then the exchange of
// the code it answered with). The raw client keeps its no-allocation path
// for static specs; for a step it renders the new body and its
// Content-Length into a reused per-worker buffer. A Step with a finite
// supply (single-use codes minted beforehand, say) can say it has run out
// (Exhaustible): its worker then stops early, without an error.
package loadgen

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Spec is one request a scenario sends over and over.
type Spec struct {
	Name   string
	Method string
	URL    string
	Header http.Header
	Body   []byte
	// Status is the expected response status (default 200).
	Status int
	// BodyContains, when set, must occur in the response body.
	BodyContains []byte
	// Capture names a response header field whose value a Step receives
	// in Answer.Header (the first field of that name), e.g. Location.
	Capture string

	// Then lists further requests of each iteration, sent in order after
	// this one, on the same connection with the raw client (so to the same
	// host and port). Each has its own Method, URL, Header, Body, Status,
	// BodyContains and Capture; their Name, Then and Stepper are ignored.
	// An iteration succeeds when all its requests do; it is what Result
	// counts, and its latency runs from the start of its first request to
	// the end of its last answer.
	Then []Spec
	// Stepper, when set, makes the requests stateful: the Sender of worker
	// w (0 ≤ w < Concurrency; NewSender and NewRawSender take worker 0's)
	// asks Stepper(w) once for its Step. Stepper must return the same Step
	// for a worker every time it is asked if the state is to carry over
	// from one Sender to another (from a trial request to a Run, say), and
	// may keep it to read the final state after a Run.
	Stepper func(worker int) Step
}

// Step is one worker's state in a stateful Spec (see Spec.Stepper). It is
// used by one goroutine at a time.
type Step interface {
	// Body returns the body of request i of the next iteration (0 is the
	// Spec itself, i ≥ 1 is Spec.Then[i-1]); nil sends that request's own
	// Body. The bytes are copied before the request is sent: the Step may
	// overwrite them afterwards.
	Body(i int) []byte
	// Observe sees the answer to request i once its status and body
	// matched the spec. The slices in a are valid only during the call.
	// An error fails the iteration (error kind "step"); the Step then
	// keeps whatever state it decides, and the next iteration starts again
	// at request 0.
	Observe(i int, a Answer) error
}

// Exhaustible is implemented by a Step whose supply of requests is finite,
// e.g. one-use authorization codes minted before the run.
type Exhaustible interface {
	// Exhausted reports that the Step has nothing left to send. Run asks
	// before each iteration; a worker whose Step is exhausted stops (not an
	// error) and Result.Exhausted records when. Sender.Do does not ask.
	Exhausted() bool
}

// Answer is a response as a Step sees it.
type Answer struct {
	Status int
	// Header is the value of the request's Capture field; nil when the
	// request captures none or the response lacks it.
	Header []byte
	// Body is the response body (its first MiB).
	Body []byte
}

// Config says how hard and how long to drive a Spec.
type Config struct {
	// Concurrency is the number of workers, each with one request in flight.
	Concurrency int
	// Duration is the measured time, after Warmup.
	Duration time.Duration
	// Warmup is driven like the rest but not measured (errors still count).
	Warmup time.Duration
	// KeepGoing counts failed requests and carries on; otherwise the first
	// failure stops the run (Result.Aborted).
	KeepGoing bool
	// Client is the HTTP client to use (see ChooseClient). The empty
	// choice means ClientNetHTTP when Transport is set, else ClientRaw for
	// http:// and ClientNetHTTP for https://.
	Client Client
	// Transport is shared by all workers of ClientNetHTTP; nil means
	// NewTransport(Concurrency).
	Transport http.RoundTripper
	// Grace is how long requests still in flight at the end may take before
	// they are cancelled and counted as timeouts (default 10s). With
	// ClientRaw it is also each request's deadline: a request without an
	// answer by then fails as a timeout, during the run as at its end.
	Grace time.Duration
}

// NewTransport returns a keep-alive HTTP/1.1 transport that keeps one idle
// connection per worker, ignores proxy variables and asks for no
// compression.
func NewTransport(concurrency int) *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        0, // no overall limit
		MaxIdleConnsPerHost: concurrency + 1,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
		ForceAttemptHTTP2:   false,
	}
}

// Result summarises one run.
type Result struct {
	Name        string
	Concurrency int
	// Requests is the number of successful requests in the measured window;
	// Latency holds their latencies.
	Requests int64
	// Errors counts failed requests over the whole run, warm-up included;
	// ErrorKinds splits them ("status 503", "transport", "unexpected body",
	// "timeout") and FirstError describes the first one.
	Errors     int64
	ErrorKinds map[string]int64
	FirstError string
	// WarmupRequests is the number of successful warm-up requests.
	WarmupRequests int64
	// Aborted is set when the run stopped at a failure (KeepGoing unset).
	Aborted bool
	// Elapsed is the measured window: from the end of the warm-up until the
	// last request finished.
	Elapsed time.Duration
	Latency *Histogram
	// Exhausted has, for each worker that stopped early because its Step
	// ran out (see Exhaustible), when it did, from the start of the
	// measured window (negative: during the warm-up); earliest first. The
	// window still runs until the last worker stops, so Throughput then
	// understates what all the workers together would have done.
	Exhausted []time.Duration
}

// Throughput is successful requests per second in the measured window.
func (r *Result) Throughput() float64 {
	if r.Elapsed <= 0 {
		return 0
	}
	return float64(r.Requests) / r.Elapsed.Seconds()
}

var (
	errAborted = errors.New("loadgen: stopped at the first failure")
	errOverrun = errors.New("loadgen: request still running after the grace period")
)

// Run drives spec with cfg.Concurrency workers until Warmup+Duration has
// passed. It returns an error only for a bad configuration or when ctx is
// cancelled; failed requests are reported in the Result.
func Run(ctx context.Context, spec Spec, cfg Config) (*Result, error) {
	if cfg.Concurrency < 1 {
		return nil, errors.New("loadgen: concurrency must be at least 1")
	}
	if cfg.Duration <= 0 || cfg.Warmup < 0 {
		return nil, errors.New("loadgen: duration must be positive and warm-up not negative")
	}
	if cfg.Grace <= 0 {
		cfg.Grace = defaultTimeout
	}
	client := cfg.Client
	if client == "" && cfg.Transport != nil {
		client = ClientNetHTTP
	}
	client, err := ChooseClient(client, spec.URL)
	if err != nil {
		return nil, err
	}
	rt := cfg.Transport
	if rt == nil && client == ClientNetHTTP {
		t := NewTransport(cfg.Concurrency)
		defer t.CloseIdleConnections()
		rt = t
	}

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	workers := make([]*worker, cfg.Concurrency)
	defer func() {
		for _, w := range workers {
			if w != nil {
				w.s.Close()
			}
		}
	}()
	for i := range workers {
		var s *Sender
		if client == ClientRaw {
			s, err = newRawSender(runCtx, spec, cfg.Grace, i)
		} else {
			s, err = newSender(runCtx, spec, rt, i)
		}
		if err != nil {
			return nil, err
		}
		workers[i] = &worker{s: s, hist: NewHistogram()}
		workers[i].supply, _ = s.step.(Exhaustible)
	}

	start := time.Now()
	measureFrom := start.Add(cfg.Warmup)
	end := measureFrom.Add(cfg.Duration)
	overrun := time.AfterFunc(time.Until(end)+cfg.Grace, func() { cancel(errOverrun) })
	defer overrun.Stop()

	var wg sync.WaitGroup
	for _, w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w.run(runCtx, measureFrom, end, cfg.KeepGoing, cancel)
		}()
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	res := &Result{Name: spec.Name, Concurrency: cfg.Concurrency, Latency: NewHistogram(), ErrorKinds: map[string]int64{}}
	var last time.Time
	var firstAt time.Time
	for _, w := range workers {
		res.Requests += w.ok
		res.WarmupRequests += w.warmOK
		res.Latency.Merge(w.hist)
		for k, n := range w.errs {
			res.ErrorKinds[k.String()] += n
			res.Errors += n
		}
		if w.firstErr != "" && (firstAt.IsZero() || w.firstErrAt.Before(firstAt)) {
			firstAt, res.FirstError = w.firstErrAt, w.firstErr
		}
		if w.finished.After(last) {
			last = w.finished
		}
		if w.exhausted {
			res.Exhausted = append(res.Exhausted, w.finished.Sub(measureFrom))
		}
	}
	slices.Sort(res.Exhausted)
	res.Aborted = context.Cause(runCtx) == errAborted
	if last.After(measureFrom) {
		res.Elapsed = last.Sub(measureFrom)
	}
	return res, nil
}

// errKind classifies a failed request without allocating.
type errKind struct {
	class  uint8
	status int
}

const (
	kindNone uint8 = iota
	kindStatus
	kindTransport
	kindBody
	kindTimeout
	kindStep
)

func (k errKind) String() string {
	switch k.class {
	case kindStatus:
		return fmt.Sprintf("status %d", k.status)
	case kindTransport:
		return "transport"
	case kindBody:
		return "unexpected body"
	case kindTimeout:
		return "timeout"
	case kindStep:
		return "step"
	}
	return "ok"
}

type worker struct {
	s          *Sender
	supply     Exhaustible // the Sender's Step, when its supply is finite
	exhausted  bool        // stopped because supply ran out
	hist       *Histogram
	ok, warmOK int64
	errs       map[errKind]int64
	firstErr   string
	firstErrAt time.Time
	finished   time.Time
}

func (w *worker) run(ctx context.Context, measureFrom, end time.Time, keepGoing bool, cancel context.CancelCauseFunc) {
	defer func() { w.finished = time.Now() }()
	for ctx.Err() == nil {
		t0 := time.Now()
		if !t0.Before(end) {
			return
		}
		if w.supply != nil && w.supply.Exhausted() {
			w.exhausted = true
			return
		}
		kind, err := w.s.do()
		lat := time.Since(t0)
		if kind.class == kindNone {
			if t0.Before(measureFrom) {
				w.warmOK++
			} else {
				w.ok++
				w.hist.Record(lat)
			}
			continue
		}
		if ctx.Err() != nil {
			if context.Cause(ctx) != errOverrun {
				return // stopped by another worker's failure or by the caller: not this request's fault
			}
			kind, err = errKind{class: kindTimeout}, errOverrun
		}
		if w.errs == nil {
			w.errs = make(map[errKind]int64, 4)
		}
		w.errs[kind]++
		if w.firstErr == "" {
			w.firstErr, w.firstErrAt = w.s.describe(kind, err), time.Now()
		}
		if !keepGoing {
			cancel(errAborted)
			return
		}
	}
}

// Sender sends one Spec's request (or iteration of requests, see
// Spec.Then) repeatedly, one at a time, with net/http (NewSender) or the raw
// client (NewRawSender). It is not safe for concurrent use: give each
// goroutine its own.
type Sender struct {
	parts []part // the iteration's requests: the Spec, then its Then
	step  Step   // nil for a static Spec
	cur   int    // the request in flight, or the one that failed

	// net/http
	rt       http.RoundTripper
	buf      []byte
	n        int    // bytes of the last response body in buf
	captured []byte // value of the last response's Capture field
	hasCap   bool

	// raw
	raw  *rawClient
	wbuf []byte // a request with a Step's body, rendered for the raw client
}

// part is one request of an iteration.
type part struct {
	spec    Spec
	path    string        // of the URL, for messages
	req     *http.Request // net/http
	getBody func() (io.ReadCloser, error)
	full    []byte // raw: the whole request, with the spec's Body
	head    []byte // raw: request line and header fields, without framing
	capture []byte // raw: the Capture field name
}

// parts returns spec and its Then, with defaults, as the requests of an
// iteration.
func parts(spec Spec) []part {
	ps := []part{{spec: withDefaults(spec)}}
	for _, t := range spec.Then {
		t.Name, t.Then, t.Stepper = spec.Name, nil, nil
		ps = append(ps, part{spec: withDefaults(t)})
	}
	return ps
}

// NewSender prepares spec's request for net/http, sent through rt.
// Requests carry ctx. A stateful spec gets worker 0's Step.
func NewSender(ctx context.Context, spec Spec, rt http.RoundTripper) (*Sender, error) {
	return newSender(ctx, spec, rt, 0)
}

func newSender(ctx context.Context, spec Spec, rt http.RoundTripper, worker int) (*Sender, error) {
	s := &Sender{parts: parts(spec), rt: rt, buf: make([]byte, 4096)}
	for i := range s.parts {
		p := &s.parts[i]
		req, err := http.NewRequestWithContext(ctx, p.spec.Method, p.spec.URL, nil)
		if err != nil {
			return nil, fmt.Errorf("loadgen: %s: %w", spec.Name, err)
		}
		if req.URL.Scheme != "http" && req.URL.Scheme != "https" {
			return nil, fmt.Errorf("loadgen: %s: URL %q is not http(s)", spec.Name, p.spec.URL)
		}
		req.Header = p.spec.Header.Clone()
		if req.Header == nil {
			req.Header = http.Header{}
		}
		p.req, p.path = req, req.URL.Path
		if body := p.spec.Body; len(body) > 0 {
			p.getBody = func() (io.ReadCloser, error) { return &bodyReader{b: body}, nil }
		}
	}
	if spec.Stepper != nil {
		s.step = spec.Stepper(worker)
	}
	return s, nil
}

// NewRawSender prepares spec's request for the raw HTTP/1.1 client (http://
// URLs only). The sender keeps one connection, dialled on first use; each
// request must be answered within timeout (0 means 10s), and ctx being done
// interrupts a request in flight. Close the sender when done. A stateful
// spec gets worker 0's Step.
func NewRawSender(ctx context.Context, spec Spec, timeout time.Duration) (*Sender, error) {
	return newRawSender(ctx, spec, timeout, 0)
}

func newRawSender(ctx context.Context, spec Spec, timeout time.Duration, worker int) (*Sender, error) {
	s := &Sender{parts: parts(spec)}
	addr := ""
	for i := range s.parts {
		p := &s.parts[i]
		u, err := url.Parse(p.spec.URL)
		if err != nil {
			return nil, fmt.Errorf("loadgen: %s: %w", spec.Name, err)
		}
		if u.Scheme != "http" && u.Scheme != "https" {
			return nil, fmt.Errorf("loadgen: %s: URL %q is not http(s)", spec.Name, p.spec.URL)
		}
		a, err := rawAddr(u)
		if err != nil {
			return nil, fmt.Errorf("loadgen: %s: %w", spec.Name, err)
		}
		if i == 0 {
			addr = a
		} else if a != addr {
			return nil, fmt.Errorf("loadgen: %s: the raw client sends an iteration over one connection, but %s is not on %s", spec.Name, p.spec.URL, addr)
		}
		if p.head, err = buildHead(p.spec, u); err != nil {
			return nil, fmt.Errorf("loadgen: %s: %w", spec.Name, err)
		}
		p.full = appendFraming(bytes.Clone(p.head), p.spec.Method, p.spec.Body)
		p.path = u.Path
		if p.spec.Capture != "" {
			if bad(p.spec.Capture, true) {
				return nil, fmt.Errorf("loadgen: %s: Capture %q is not a header field name", spec.Name, p.spec.Capture)
			}
			p.capture = []byte(p.spec.Capture)
		}
	}
	raw, err := newRawClient(ctx, addr, timeout)
	if err != nil {
		return nil, fmt.Errorf("loadgen: %s: %w", spec.Name, err)
	}
	raw.req, raw.head = s.parts[0].full, s.parts[0].spec.Method == http.MethodHead
	s.raw = raw
	if spec.Stepper != nil {
		s.step = spec.Stepper(worker)
	}
	return s, nil
}

func withDefaults(spec Spec) Spec {
	if spec.Method == "" {
		spec.Method = http.MethodGet
	}
	if spec.Status == 0 {
		spec.Status = http.StatusOK
	}
	return spec
}

// Close releases the sender's connection (raw client; with net/http the
// transport's owner closes connections).
func (s *Sender) Close() {
	if s.raw != nil {
		s.raw.close()
	}
}

// body is the kept start of the last response body.
func (s *Sender) body() []byte {
	if s.raw != nil {
		return s.raw.rr.body()
	}
	return s.buf[:s.n]
}

// header is the value of the last response's Capture field, or nil.
func (s *Sender) header() []byte {
	if s.raw != nil {
		if s.raw.rr.hasCap {
			return s.raw.rr.captured
		}
		return nil
	}
	if s.hasCap {
		return s.captured
	}
	return nil
}

// Do sends the request (every request of an iteration) once and checks the
// answers; the error says what was wrong (with the start of the body when
// the status or body was).
func (s *Sender) Do() error {
	kind, err := s.do()
	if kind.class == kindNone {
		return nil
	}
	return errors.New(s.describe(kind, err))
}

// maxBody bounds how much of a response is kept; the rest is discarded.
const maxBody = 1 << 20

// do runs one iteration: each request in turn, each answer checked and,
// for a stateful spec, shown to the Step.
func (s *Sender) do() (errKind, error) {
	for i := range s.parts {
		s.cur = i
		var body []byte
		if s.step != nil {
			body = s.step.Body(i)
		}
		var kind errKind
		var err error
		if s.raw != nil {
			kind, err = s.doRaw(&s.parts[i], body)
		} else {
			kind, err = s.doNetHTTP(&s.parts[i], body)
		}
		if kind.class != kindNone {
			return kind, err
		}
		if s.step != nil {
			a := Answer{Status: s.parts[i].spec.Status, Header: s.header(), Body: s.body()}
			if err := s.step.Observe(i, a); err != nil {
				return errKind{class: kindStep}, err
			}
		}
	}
	return errKind{}, nil
}

func (s *Sender) doNetHTTP(p *part, body []byte) (errKind, error) {
	req := p.req
	getBody := p.getBody
	if body == nil {
		body = p.spec.Body
	} else {
		// The Step may reuse its bytes once Body is called again, and the
		// transport may still be reading these then.
		body = bytes.Clone(body)
		getBody = func() (io.ReadCloser, error) { return &bodyReader{b: body}, nil }
	}
	if len(body) > 0 {
		// A fresh reader per request (one small allocation): the transport
		// may still be reading the previous body when the answer arrives.
		req.Body, req.ContentLength, req.GetBody = &bodyReader{b: body}, int64(len(body)), getBody
	} else {
		req.Body, req.ContentLength, req.GetBody = nil, 0, nil
	}
	resp, err := s.rt.RoundTrip(req)
	if err != nil {
		return errKind{class: kindTransport}, err
	}
	s.hasCap = false
	if p.spec.Capture != "" {
		if v := resp.Header.Values(p.spec.Capture); len(v) > 0 {
			s.captured, s.hasCap = append(s.captured[:0], v[0]...), true
		}
	}
	s.n = 0
	for {
		if s.n == len(s.buf) {
			if len(s.buf) >= maxBody {
				if _, err := io.Copy(io.Discard, resp.Body); err != nil {
					resp.Body.Close()
					return errKind{class: kindTransport}, err
				}
				break
			}
			s.buf = append(s.buf, make([]byte, len(s.buf))...)
		}
		m, err := resp.Body.Read(s.buf[s.n:])
		s.n += m
		if err == io.EOF {
			break
		}
		if err != nil {
			resp.Body.Close()
			return errKind{class: kindTransport}, err
		}
	}
	resp.Body.Close()
	return s.check(p, resp.StatusCode)
}

func (s *Sender) doRaw(p *part, body []byte) (errKind, error) {
	if body == nil {
		s.raw.req = p.full
	} else {
		s.wbuf = appendFraming(append(s.wbuf[:0], p.head...), p.spec.Method, body)
		s.raw.req = s.wbuf
	}
	s.raw.head = p.spec.Method == http.MethodHead
	s.raw.rr.capture = p.capture
	if err := s.raw.do(); err != nil {
		if isTimeout(err) && s.raw.ctx.Err() == nil {
			return errKind{class: kindTimeout}, err
		}
		return errKind{class: kindTransport}, err
	}
	return s.check(p, s.raw.rr.status)
}

// check judges a complete answer to p.
func (s *Sender) check(p *part, status int) (errKind, error) {
	if status != p.spec.Status {
		return errKind{class: kindStatus, status: status}, nil
	}
	if len(p.spec.BodyContains) > 0 && !bytes.Contains(s.body(), p.spec.BodyContains) {
		return errKind{class: kindBody}, nil
	}
	return errKind{}, nil
}

// describe explains a failure of the last request (allocates; failures only).
func (s *Sender) describe(kind errKind, err error) string {
	spec, path := s.parts[s.cur].spec, s.parts[s.cur].path
	switch kind.class {
	case kindStatus, kindBody:
		var msg string
		if kind.class == kindStatus {
			msg = fmt.Sprintf("%s %s: %s, want %d", spec.Method, path, kind, spec.Status)
		} else {
			msg = fmt.Sprintf("%s %s: body lacks %q", spec.Method, path, spec.BodyContains)
		}
		body := s.body()
		if body := strings.TrimSpace(string(body[:min(len(body), 300)])); body != "" {
			msg += ": " + body
		}
		return msg
	case kindTimeout:
		if err != errOverrun && s.raw != nil {
			return fmt.Sprintf("%s %s: no answer within %v", spec.Method, path, s.raw.timeout)
		}
		return fmt.Sprintf("%s %s: no answer by the end of the grace period", spec.Method, path)
	case kindStep:
		return fmt.Sprintf("%s %s: answer refused by the scenario: %v", spec.Method, path, err)
	}
	return fmt.Sprintf("%s %s: %v", spec.Method, path, err)
}

// bodyReader is a request body over shared bytes.
type bodyReader struct {
	b   []byte
	off int
}

func (r *bodyReader) Read(p []byte) (int, error) {
	if r.off >= len(r.b) {
		return 0, io.EOF
	}
	n := copy(p, r.b[r.off:])
	r.off += n
	return n, nil
}

func (r *bodyReader) Close() error { return nil }

// SortedKinds returns the error kinds of r, most frequent first.
func (r *Result) SortedKinds() []string {
	kinds := make([]string, 0, len(r.ErrorKinds))
	for k := range r.ErrorKinds {
		kinds = append(kinds, k)
	}
	sort.Slice(kinds, func(i, j int) bool {
		if r.ErrorKinds[kinds[i]] != r.ErrorKinds[kinds[j]] {
			return r.ErrorKinds[kinds[i]] > r.ErrorKinds[kinds[j]]
		}
		return kinds[i] < kinds[j]
	})
	return kinds
}
