package logx

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

type syncBuf struct {
	mu     sync.Mutex
	b      bytes.Buffer
	writes int
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.writes++
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestBufferedWriterBatchesAndFlushes(t *testing.T) {
	out := &syncBuf{}
	w := NewBufferedWriter(out, time.Hour) // no periodic flush during the test
	logger := slog.New(FlushingHandler{Handler: slog.NewTextHandler(w, nil), Buffer: w, Level: slog.LevelWarn})

	var wg sync.WaitGroup
	for g := 0; g < 4; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				logger.Info("request", "i", i)
			}
		}()
	}
	wg.Wait()
	if s := out.String(); s != "" {
		t.Fatalf("info lines written before a flush: %d bytes", len(s))
	}
	logger.Warn("something is off")
	s := out.String()
	if strings.Count(s, "msg=request") != 400 || !strings.HasSuffix(strings.TrimSpace(s), `msg="something is off"`) {
		t.Fatalf("after a warning, want 400 info lines then the warning; got %d lines", strings.Count(s, "\n"))
	}
	if out.writes > 5 {
		t.Errorf("%d writes for 401 lines: not batched", out.writes)
	}
	for _, line := range strings.Split(strings.TrimSpace(s), "\n") {
		if !strings.HasPrefix(line, "time=") {
			t.Fatalf("interleaved or torn line: %q", line)
		}
	}
	logger.Info("last words")
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "last words") {
		t.Error("Close did not flush")
	}
	_ = w.Close() // idempotent
}

func TestBufferedWriterFlushesPeriodically(t *testing.T) {
	out := &syncBuf{}
	w := NewBufferedWriter(out, 20*time.Millisecond)
	defer w.Close()
	slog.New(slog.NewTextHandler(w, nil)).InfoContext(context.Background(), "hello")
	deadline := time.Now().Add(2 * time.Second)
	for !strings.Contains(out.String(), "hello") {
		if time.Now().After(deadline) {
			t.Fatal("not flushed within 2s with a 20ms interval")
		}
		time.Sleep(5 * time.Millisecond)
	}
}
