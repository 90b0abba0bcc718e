// Package logx buffers the server's log output. With one access-log line per
// request, an unbuffered writer makes one write system call per request,
// which on a busy server costs as much as a quarter of its throughput. The
// buffer is flushed at least every interval, at once for warnings and
// errors, and on Close, so a line is never more than interval late and
// nothing important waits.
package logx

import (
	"bufio"
	"context"
	"io"
	"log/slog"
	"sync"
	"time"
)

// BufferedWriter is an io.Writer that batches writes to w.
type BufferedWriter struct {
	mu   sync.Mutex
	buf  *bufio.Writer
	stop chan struct{}
	done chan struct{}
}

// NewBufferedWriter starts a writer that flushes to w every interval.
func NewBufferedWriter(w io.Writer, interval time.Duration) *BufferedWriter {
	b := &BufferedWriter{buf: bufio.NewWriterSize(w, 64<<10), stop: make(chan struct{}), done: make(chan struct{})}
	go b.loop(interval)
	return b
}

func (b *BufferedWriter) loop(interval time.Duration) {
	defer close(b.done)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-b.stop:
			return
		case <-t.C:
			_ = b.Flush()
		}
	}
}

// Write buffers p (one whole log record, as slog handlers write them).
func (b *BufferedWriter) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

// Flush writes out what is buffered.
func (b *BufferedWriter) Flush() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Flush()
}

// Close stops the periodic flush and flushes what is left. Writes after
// Close still work but are flushed only by an explicit Flush.
func (b *BufferedWriter) Close() error {
	select {
	case <-b.stop:
	default:
		close(b.stop)
		<-b.done
	}
	return b.Flush()
}

// FlushingHandler flushes the buffer right after every record at level or
// above, so warnings and errors are never held back.
type FlushingHandler struct {
	slog.Handler
	Buffer *BufferedWriter
	Level  slog.Level
}

// Handle implements slog.Handler.
func (h FlushingHandler) Handle(ctx context.Context, r slog.Record) error {
	err := h.Handler.Handle(ctx, r)
	if r.Level >= h.Level {
		_ = h.Buffer.Flush()
	}
	return err
}

// WithAttrs implements slog.Handler.
func (h FlushingHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return FlushingHandler{Handler: h.Handler.WithAttrs(as), Buffer: h.Buffer, Level: h.Level}
}

// WithGroup implements slog.Handler.
func (h FlushingHandler) WithGroup(name string) slog.Handler {
	return FlushingHandler{Handler: h.Handler.WithGroup(name), Buffer: h.Buffer, Level: h.Level}
}
