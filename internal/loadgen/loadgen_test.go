package loadgen

import (
	"context"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestHistogramBuckets(t *testing.T) {
	prev := -1
	for v := uint64(0); v < 1<<20; v++ {
		b := bucketOf(v)
		if b < prev || b > prev+1 {
			t.Fatalf("bucketOf(%d) = %d after %d: buckets must be contiguous and monotonic", v, b, prev)
		}
		prev = b
		mid := uint64(bucketMid(b))
		if diff := float64(mid) - float64(v); diff < 0 && -diff > float64(v)/128 || diff > 0 && diff > float64(v)/128 {
			t.Fatalf("bucketMid(bucketOf(%d)) = %d: off by more than 1/128", v, mid)
		}
	}
	if got := bucketOf(1 << 62); got != numBuckets-1 {
		t.Errorf("huge value: bucket %d, want the last (%d)", got, numBuckets-1)
	}
}

func TestHistogramQuantiles(t *testing.T) {
	r := rand.New(rand.NewPCG(1, 2))
	vals := make([]time.Duration, 100000)
	h := NewHistogram()
	for i := range vals {
		// log-uniform from 50µs to 500ms, like latencies
		v := time.Duration(50e3 * math.Pow(10, 4*r.Float64()))
		vals[i] = v
		h.Record(v)
	}
	sort.Slice(vals, func(i, j int) bool { return vals[i] < vals[j] })
	for _, q := range []float64{0.01, 0.5, 0.9, 0.99, 0.999, 1} {
		want := vals[int(q*float64(len(vals)))-1]
		got := h.Quantile(q)
		if d := float64(got-want) / float64(want); d > 0.005 || d < -0.005 {
			t.Errorf("q%v = %v, want %v ± 0.5%%", q, got, want)
		}
	}
	if h.Max() != vals[len(vals)-1] || h.Min() != vals[0] || h.Count() != uint64(len(vals)) {
		t.Errorf("min/max/count = %v/%v/%d", h.Min(), h.Max(), h.Count())
	}

	// Merging is the same as recording into one.
	a, b := NewHistogram(), NewHistogram()
	for i, v := range vals {
		if i%3 == 0 {
			a.Record(v)
		} else {
			b.Record(v)
		}
	}
	a.Merge(b)
	for _, q := range []float64{0.5, 0.99} {
		if a.Quantile(q) != h.Quantile(q) {
			t.Errorf("merged q%v = %v, want %v", q, a.Quantile(q), h.Quantile(q))
		}
	}
	if NewHistogram().Quantile(0.5) != 0 {
		t.Error("empty histogram must report 0")
	}
}

func TestHistogramRecordDoesNotAllocate(t *testing.T) {
	h := NewHistogram()
	if n := testing.AllocsPerRun(1000, func() { h.Record(1234567) }); n != 0 {
		t.Errorf("Record allocates %v times", n)
	}
}

// okServer answers like the token endpoint and counts requests.
func okServer(t *testing.T, hits *atomic.Int64, fail func(n int64) int) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := hits.Add(1)
		body, _ := io.ReadAll(r.Body)
		if string(body) != "grant_type=x" || r.Header.Get("Authorization") != "Basic abc" {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		if fail != nil {
			if code := fail(n); code != 0 {
				w.WriteHeader(code)
				io.WriteString(w, `{"error":"temporarily_unavailable"}`)
				return
			}
		}
		io.WriteString(w, `{"access_token":"x","token_type":"Bearer"}`)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func tokenSpec(url string) Spec {
	return Spec{
		Name: "token", Method: http.MethodPost, URL: url,
		Header:       http.Header{"Authorization": {"Basic abc"}, "Content-Type": {"application/x-www-form-urlencoded"}},
		Body:         []byte("grant_type=x"),
		BodyContains: []byte(`"access_token"`),
	}
}

func TestRun(t *testing.T) {
	var hits atomic.Int64
	srv := okServer(t, &hits, nil)
	res, err := Run(context.Background(), tokenSpec(srv.URL), Config{Concurrency: 3, Duration: 200 * time.Millisecond, Warmup: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	if res.Requests == 0 || res.Errors != 0 || res.Aborted {
		t.Fatalf("requests %d errors %d (%v) aborted %v", res.Requests, res.Errors, res.FirstError, res.Aborted)
	}
	if res.WarmupRequests == 0 {
		t.Error("no warm-up requests counted")
	}
	if got := res.Requests + res.WarmupRequests; got != hits.Load() {
		t.Errorf("counted %d requests, server saw %d", got, hits.Load())
	}
	if uint64(res.Requests) != res.Latency.Count() {
		t.Errorf("requests %d but %d latencies", res.Requests, res.Latency.Count())
	}
	if res.Elapsed < 200*time.Millisecond || res.Elapsed > 2*time.Second {
		t.Errorf("elapsed %v", res.Elapsed)
	}
	p50, p99, max := res.Latency.Quantile(0.5), res.Latency.Quantile(0.99), res.Latency.Max()
	if !(0 < p50 && p50 <= p99 && p99 <= max) {
		t.Errorf("p50 %v p99 %v max %v", p50, p99, max)
	}
	if res.Throughput() <= 0 {
		t.Error("no throughput")
	}
}

func TestRunCountsErrorsByKind(t *testing.T) {
	var hits atomic.Int64
	srv := okServer(t, &hits, func(n int64) int {
		if n%5 == 0 {
			return http.StatusServiceUnavailable
		}
		return 0
	})
	res, err := Run(context.Background(), tokenSpec(srv.URL), Config{Concurrency: 2, Duration: 150 * time.Millisecond, KeepGoing: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors == 0 || res.ErrorKinds["status 503"] != res.Errors || res.Aborted {
		t.Fatalf("errors %d kinds %v aborted %v", res.Errors, res.ErrorKinds, res.Aborted)
	}
	if res.Requests == 0 {
		t.Error("keep-going stopped counting successes")
	}
	if !strings.Contains(res.FirstError, "status 503") || !strings.Contains(res.FirstError, "temporarily_unavailable") {
		t.Errorf("first error %q lacks the status and body", res.FirstError)
	}
}

func TestRunStopsAtFirstFailure(t *testing.T) {
	var hits atomic.Int64
	srv := okServer(t, &hits, func(n int64) int {
		if n == 20 {
			return http.StatusInternalServerError
		}
		return 0
	})
	start := time.Now()
	res, err := Run(context.Background(), tokenSpec(srv.URL), Config{Concurrency: 2, Duration: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if !res.Aborted || res.Errors != 1 || res.ErrorKinds["status 500"] != 1 {
		t.Fatalf("aborted %v errors %d kinds %v", res.Aborted, res.Errors, res.ErrorKinds)
	}
	if time.Since(start) > 2*time.Second {
		t.Error("run went on after the failure")
	}
}

func TestRunBodyAndTransportErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, `{"error":"x"}`) }))
	defer srv.Close()
	res, err := Run(context.Background(), tokenSpec(srv.URL), Config{Concurrency: 1, Duration: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if res.ErrorKinds["unexpected body"] != 1 {
		t.Errorf("kinds %v", res.ErrorKinds)
	}

	srv.Close() // nothing listens any more
	res, err = Run(context.Background(), tokenSpec(srv.URL), Config{Concurrency: 1, Duration: 100 * time.Millisecond, KeepGoing: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.Errors == 0 || res.ErrorKinds["transport"] != res.Errors || res.Requests != 0 {
		t.Errorf("errors %d kinds %v requests %d", res.Errors, res.ErrorKinds, res.Requests)
	}
}

func TestRunTimesOutHungRequests(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release }))
	defer srv.Close()
	defer close(release)
	res, err := Run(context.Background(), Spec{Name: "hang", URL: srv.URL}, Config{Concurrency: 1, Duration: 50 * time.Millisecond, Grace: 100 * time.Millisecond, KeepGoing: true})
	if err != nil {
		t.Fatal(err)
	}
	if res.ErrorKinds["timeout"] != 1 {
		t.Errorf("kinds %v, want one timeout", res.ErrorKinds)
	}
}

func TestRunRejectsBadConfig(t *testing.T) {
	for _, cfg := range []Config{{Concurrency: 0, Duration: time.Second}, {Concurrency: 1}, {Concurrency: 1, Duration: time.Second, Warmup: -1}} {
		if _, err := Run(context.Background(), Spec{URL: "http://127.0.0.1:1"}, cfg); err == nil {
			t.Errorf("%+v accepted", cfg)
		}
	}
	if _, err := Run(context.Background(), Spec{URL: "ftp://x"}, Config{Concurrency: 1, Duration: time.Second}); err == nil {
		t.Error("ftp URL accepted")
	}
}

func TestSenderAllocations(t *testing.T) {
	var hits atomic.Int64
	srv := okServer(t, &hits, nil)
	tr := NewTransport(1)
	defer tr.CloseIdleConnections()
	s, err := NewSender(context.Background(), tokenSpec(srv.URL), tr)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Do(); err != nil {
		t.Fatal(err)
	}
	// Only the client half counts here (the server runs in other
	// goroutines but AllocsPerRun counts the whole process): a generous
	// bound that catches an accidental per-request buffer or request copy.
	n := testing.AllocsPerRun(200, func() {
		if err := s.Do(); err != nil {
			t.Fatal(err)
		}
	})
	t.Logf("%.0f allocations per request, client and server together", n)
	if n > 150 {
		t.Errorf("%.0f allocations per request", n)
	}
}

func TestParseProc(t *testing.T) {
	rss, hwm, err := parseStatus([]byte("Name:\toauthd\nVmHWM:\t   61234 kB\nVmRSS:\t   51234 kB\nThreads:\t9\n"))
	if err != nil || rss != 51234*1024 || hwm != 61234*1024 {
		t.Errorf("parseStatus: %d %d %v", rss, hwm, err)
	}
	if _, _, err := parseStatus([]byte("Name:\tx\n")); err == nil {
		t.Error("missing fields accepted")
	}
	cpu, err := parseStat([]byte("4242 (oauthd (x) y) S 1 4242 4242 0 -1 4194560 1234 0 0 0 150 25 0 0 20 0 9 0 100 0 0\n"))
	if err != nil || cpu != 1750*time.Millisecond {
		t.Errorf("parseStat: %v %v", cpu, err)
	}
	if _, err := os.Stat("/proc/self/status"); err == nil {
		if rss, hwm, err := ProcMemory(os.Getpid()); err != nil || rss <= 0 || hwm < rss {
			t.Errorf("ProcMemory(self) = %d %d %v", rss, hwm, err)
		}
		if _, err := ProcCPU(os.Getpid()); err != nil {
			t.Errorf("ProcCPU(self): %v", err)
		}
	}
}
