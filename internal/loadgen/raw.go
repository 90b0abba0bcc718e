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
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
)

// The raw client speaks just enough HTTP/1.1 to drive one request over and
// over on one kept-alive connection, without what net/http costs per
// request (a goroutine pair per connection, header maps, request and
// response objects): the request bytes are built once and written with one
// Write; the response is parsed in place from a per-sender buffered reader.

// Client names the HTTP client a run drives its requests with.
type Client string

const (
	// ClientRaw is the package's own HTTP/1.1 client: one connection per
	// worker, no allocation per request. http:// only.
	ClientRaw Client = "raw"
	// ClientNetHTTP is Go's net/http client over one shared transport.
	ClientNetHTTP Client = "nethttp"
)

// ChooseClient resolves c for requests to rawURL: the empty choice means
// raw for http:// and net/http for https://; raw for https:// is an error.
func ChooseClient(c Client, rawURL string) (Client, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", fmt.Errorf("loadgen: %w", err)
	}
	switch c {
	case "":
		if u.Scheme == "http" {
			return ClientRaw, nil
		}
		return ClientNetHTTP, nil
	case ClientRaw:
		if u.Scheme != "http" {
			return "", fmt.Errorf("loadgen: the raw client speaks plain http only, not %s:// (use nethttp)", u.Scheme)
		}
		return ClientRaw, nil
	case ClientNetHTTP:
		return ClientNetHTTP, nil
	}
	return "", fmt.Errorf("loadgen: unknown client %q (want %s or %s)", c, ClientRaw, ClientNetHTTP)
}

const (
	// readBufSize is each raw sender's read buffer; no status line, header
	// field, chunk-size line or trailer field may be longer.
	readBufSize = 16 << 10
	// maxHeaderBytes bounds a response's status line and header fields
	// together (and, separately, its trailer fields).
	maxHeaderBytes = 64 << 10
	// maxInterim bounds the 1xx responses before the final one.
	maxInterim = 8
	// defaultTimeout is a raw request's deadline when none is configured.
	defaultTimeout = 10 * time.Second
)

var (
	errHeaderTooLarge = errors.New("response header too large")
	errUnsolicited    = errors.New("server sent bytes after the response")
)

// protocolError is a response that is not valid HTTP/1.1.
type protocolError struct{ msg string }

func (e *protocolError) Error() string { return "malformed response: " + e.msg }

func malformed(format string, args ...any) error {
	return &protocolError{fmt.Sprintf(format, args...)}
}

// respReader parses HTTP/1.x responses from br. Each read keeps up to
// maxBody bytes of the body in buf (which grows on demand and is then
// reused) and discards the rest.
type respReader struct {
	br  *bufio.Reader
	buf []byte

	// Results of the last read.
	status  int
	n       int  // body bytes in buf
	close   bool // the connection cannot carry another request
	started bool // some byte of the response arrived

	hdr int // header bytes read so far in the current block

	// capture names a header field to keep (nil: none); captured holds the
	// value of its first occurrence in the last final response, when
	// hasCap.
	capture  []byte
	captured []byte
	hasCap   bool
}

func newRespReader(r io.Reader) *respReader {
	return &respReader{br: bufio.NewReaderSize(r, readBufSize), buf: make([]byte, 4096)}
}

func (rr *respReader) body() []byte { return rr.buf[:rr.n] }

// read reads one whole response to a request; head says the request was
// HEAD (so the response has no body whatever its header says).
func (rr *respReader) read(head bool) error {
	rr.status, rr.n, rr.close, rr.started, rr.hasCap = 0, 0, false, false, false
	for interim := 0; ; interim++ {
		if interim > maxInterim {
			return malformed("more than %d interim (1xx) responses", maxInterim)
		}
		rr.hdr = 0
		line, err := rr.line()
		if err != nil {
			return err
		}
		minor, status, ok := parseStatusLine(line)
		if !ok {
			return malformed("status line %q", truncate(line, 60))
		}
		rr.hasCap = false // only the final response's field counts
		h, err := rr.header()
		if err != nil {
			return err
		}
		rr.status = status
		if status >= 100 && status < 200 && status != http.StatusSwitchingProtocols {
			continue // 100 Continue, 103 Early Hints: the real answer follows
		}
		rr.close = h.close || minor == 0 && !h.keepAlive
		switch {
		case status == http.StatusSwitchingProtocols:
			rr.close = true // no longer HTTP: nothing more to read on it
			return nil
		case head || status == http.StatusNoContent || status == http.StatusNotModified:
			return nil
		case h.chunked:
			return rr.chunked()
		case h.te:
			// A transfer coding other than chunked last: the body runs to
			// the end of the connection (RFC 9112 §6.3).
			rr.close = true
			return rr.untilEOF()
		case h.length >= 0:
			return rr.fixed(h.length)
		}
		rr.close = true
		return rr.untilEOF()
	}
}

// line reads one header-block line without its CRLF (or bare LF), counting
// it against maxHeaderBytes.
func (rr *respReader) line() ([]byte, error) {
	line, err := rr.br.ReadSlice('\n')
	if len(line) > 0 {
		rr.started = true
	}
	rr.hdr += len(line)
	if err == bufio.ErrBufferFull || rr.hdr > maxHeaderBytes {
		return nil, errHeaderTooLarge
	}
	if err != nil {
		if err == io.EOF && rr.started {
			err = io.ErrUnexpectedEOF
		}
		return nil, err
	}
	return trimEOL(line), nil
}

func trimEOL(line []byte) []byte {
	line = line[:len(line)-1] // '\n'
	if len(line) > 0 && line[len(line)-1] == '\r' {
		line = line[:len(line)-1]
	}
	return line
}

// parseStatusLine parses "HTTP/1.x SSS[ reason]".
func parseStatusLine(line []byte) (minor, status int, ok bool) {
	if len(line) < 12 || string(line[:7]) != "HTTP/1." || !isDigit(line[7]) || line[8] != ' ' ||
		!isDigit(line[9]) || !isDigit(line[10]) || !isDigit(line[11]) || len(line) > 12 && line[12] != ' ' {
		return 0, 0, false
	}
	status = int(line[9]-'0')*100 + int(line[10]-'0')*10 + int(line[11]-'0')
	if status < 100 {
		return 0, 0, false
	}
	return int(line[7] - '0'), status, true
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// respHeader is what the client needs from a response header.
type respHeader struct {
	length    int64 // Content-Length, -1 if absent
	te        bool  // Transfer-Encoding present
	chunked   bool  // ... with chunked as the final coding
	close     bool  // Connection: close
	keepAlive bool  // Connection: keep-alive (HTTP/1.0)
}

var (
	hContentLength    = []byte("Content-Length")
	hTransferEncoding = []byte("Transfer-Encoding")
	hConnection       = []byte("Connection")
)

// header reads header fields up to the empty line.
func (rr *respReader) header() (respHeader, error) {
	h := respHeader{length: -1}
	for {
		line, err := rr.line()
		if err != nil {
			return h, err
		}
		if len(line) == 0 {
			return h, nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			continue // obsolete line folding of a field we do not need
		}
		i := bytes.IndexByte(line, ':')
		if i <= 0 || bytes.IndexAny(line[:i], " \t") >= 0 {
			return h, malformed("header line %q", truncate(line, 60))
		}
		name, value := line[:i], bytes.Trim(line[i+1:], " \t")
		if rr.capture != nil && !rr.hasCap && bytes.EqualFold(name, rr.capture) {
			rr.captured, rr.hasCap = append(rr.captured[:0], value...), true
		}
		switch {
		case bytes.EqualFold(name, hContentLength):
			n, ok := parseLength(value)
			if !ok || h.length >= 0 && h.length != n {
				return h, malformed("Content-Length %q", truncate(value, 30))
			}
			h.length = n
		case bytes.EqualFold(name, hTransferEncoding):
			h.te = true
			last := value
			if j := bytes.LastIndexByte(value, ','); j >= 0 {
				last = value[j+1:]
			}
			h.chunked = bytes.EqualFold(bytes.Trim(last, " \t"), []byte("chunked"))
		case bytes.EqualFold(name, hConnection):
			for len(value) > 0 {
				tok := value
				if j := bytes.IndexByte(value, ','); j >= 0 {
					tok, value = value[:j], value[j+1:]
				} else {
					value = nil
				}
				tok = bytes.Trim(tok, " \t")
				h.close = h.close || bytes.EqualFold(tok, []byte("close"))
				h.keepAlive = h.keepAlive || bytes.EqualFold(tok, []byte("keep-alive"))
			}
		}
	}
}

// parseLength parses a Content-Length value: decimal digits only.
func parseLength(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if !isDigit(c) {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// keep reads the next size bytes of the body, keeping what fits under
// maxBody and discarding the rest.
func (rr *respReader) keep(size int64) error {
	k := int(min(size, int64(maxBody-rr.n)))
	if k > 0 {
		rr.grow(rr.n + k)
		if _, err := io.ReadFull(rr.br, rr.buf[rr.n:rr.n+k]); err != nil {
			return eofIsUnexpected(err)
		}
		rr.n += k
	}
	for rest := size - int64(k); rest > 0; {
		d, err := rr.br.Discard(int(min(rest, 1<<30)))
		rest -= int64(d)
		if err != nil {
			return eofIsUnexpected(err)
		}
	}
	return nil
}

// grow makes buf hold at least n bytes (n ≤ maxBody).
func (rr *respReader) grow(n int) {
	if n <= len(rr.buf) {
		return
	}
	b := make([]byte, min(max(n, 2*len(rr.buf)), maxBody))
	copy(b, rr.buf[:rr.n])
	rr.buf = b
}

func eofIsUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

func (rr *respReader) fixed(length int64) error { return rr.keep(length) }

// untilEOF reads a body delimited by the end of the connection.
func (rr *respReader) untilEOF() error {
	for {
		if rr.n == len(rr.buf) {
			if rr.n >= maxBody {
				_, err := io.Copy(io.Discard, rr.br)
				return err
			}
			rr.grow(rr.n + 1)
		}
		m, err := rr.br.Read(rr.buf[rr.n:])
		rr.n += m
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// chunked reads a chunked body (RFC 9112 §7.1): chunk-size lines in hex,
// with extensions after ';' ignored, each chunk's data followed by CRLF,
// then a zero-size chunk and trailer fields up to an empty line.
func (rr *respReader) chunked() error {
	for {
		line, err := rr.br.ReadSlice('\n')
		if err != nil {
			if err == bufio.ErrBufferFull {
				return malformed("chunk-size line too long")
			}
			return eofIsUnexpected(err)
		}
		line = trimEOL(line)
		if i := bytes.IndexByte(line, ';'); i >= 0 {
			line = line[:i]
		}
		size, ok := parseHex(bytes.Trim(line, " \t"))
		if !ok {
			return malformed("chunk size %q", truncate(line, 30))
		}
		if size == 0 {
			rr.hdr = 0
			for { // trailer fields, then the empty line
				t, err := rr.line()
				if err != nil {
					return eofIsUnexpected(err)
				}
				if len(t) == 0 {
					return nil
				}
			}
		}
		if err := rr.keep(size); err != nil {
			return err
		}
		crlf, err := rr.br.ReadSlice('\n')
		if err != nil {
			return eofIsUnexpected(err)
		}
		if len(trimEOL(crlf)) != 0 {
			return malformed("chunk data longer than its size")
		}
	}
}

func parseHex(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 15 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		n = n<<4 | int64(c)
	}
	return n, true
}

func truncate(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "…"
	}
	return string(b)
}

// rawClient sends a prepared request (req, set by its Sender before each
// request) over its own connection, which it dials on first use and again
// after the server closed it or it failed.
type rawClient struct {
	ctx     context.Context
	stop    func() bool // unregisters interrupt from ctx
	addr    string      // host:port to dial
	req     []byte      // the whole request
	head    bool        // req is a HEAD request
	timeout time.Duration
	dialer  net.Dialer
	rr      *respReader

	mu          sync.Mutex // guards conn and interrupted against interrupt
	conn        net.Conn   // nil when not connected; written by the sender's goroutine only
	interrupted bool
	reused      bool // conn has carried a whole exchange
}

// connReader reads from the client's current connection, so the bufio
// reader survives reconnections.
type connReader struct{ c *rawClient }

func (r connReader) Read(p []byte) (int, error) { return r.c.conn.Read(p) }

// rawAddr is the host:port the raw client dials for u.
func rawAddr(u *url.URL) (string, error) {
	if u.Scheme != "http" {
		return "", fmt.Errorf("the raw client speaks plain http only, not %s://", u.Scheme)
	}
	if u.Host == "" {
		return "", errors.New("URL has no host")
	}
	port := u.Port()
	if port == "" {
		port = "80"
	}
	return net.JoinHostPort(u.Hostname(), port), nil
}

// newRawClient returns a client for addr; set req before do.
func newRawClient(ctx context.Context, addr string, timeout time.Duration) (*rawClient, error) {
	if timeout <= 0 {
		timeout = defaultTimeout
	}
	c := &rawClient{
		ctx: ctx, addr: addr, timeout: timeout,
		dialer: net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second},
	}
	c.rr = newRespReader(connReader{c})
	c.stop = context.AfterFunc(ctx, c.interrupt)
	return c, nil
}

// buildHead renders the request line, Host, the spec's header fields in
// name order and User-Agent; appendFraming adds the rest.
func buildHead(spec Spec, u *url.URL) ([]byte, error) {
	var b bytes.Buffer
	target := u.RequestURI()
	if bad(spec.Method, true) || strings.ContainsAny(target, " \r\n") {
		return nil, fmt.Errorf("method %q or target %q cannot be sent", spec.Method, target)
	}
	fmt.Fprintf(&b, "%s %s HTTP/1.1\r\nHost: %s\r\n", spec.Method, target, u.Host)
	names := make([]string, 0, len(spec.Header))
	for k := range spec.Header {
		names = append(names, k)
	}
	sort.Strings(names)
	ua := false
	for _, k := range names {
		switch http.CanonicalHeaderKey(k) {
		case "Host", "Content-Length", "Transfer-Encoding", "Trailer":
			continue // as net/http: the client writes these itself
		case "User-Agent":
			ua = true
		}
		if bad(k, true) {
			return nil, fmt.Errorf("header name %q cannot be sent", k)
		}
		for _, v := range spec.Header[k] {
			if bad(v, false) {
				return nil, fmt.Errorf("header %s: value %q cannot be sent", k, v)
			}
			fmt.Fprintf(&b, "%s: %s\r\n", k, v)
		}
	}
	if !ua {
		b.WriteString("User-Agent: oauthd-bench\r\n")
	}
	return b.Bytes(), nil
}

// appendFraming appends to a request head its Content-Length (for a body,
// and 0 for a POST, PUT or PATCH without one), the empty line and body. It
// allocates only when dst must grow.
func appendFraming(dst []byte, method string, body []byte) []byte {
	switch {
	case len(body) > 0:
		dst = append(dst, "Content-Length: "...)
		dst = strconv.AppendInt(dst, int64(len(body)), 10)
		dst = append(dst, "\r\n"...)
	case method == http.MethodPost || method == http.MethodPut || method == http.MethodPatch:
		dst = append(dst, "Content-Length: 0\r\n"...)
	}
	dst = append(dst, "\r\n"...)
	return append(dst, body...)
}

// bad reports a method or header name that is not a token, or a header
// value with control characters that would break the framing.
func bad(s string, token bool) bool {
	if token && s == "" {
		return true
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c == '\r' || c == '\n' || c == 0 || token && (c <= ' ' || c >= 0x7f || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0) {
			return true
		}
	}
	return false
}

// interrupt runs when ctx is done: it unblocks a request in flight.
func (c *rawClient) interrupt() {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.interrupted = true
	if c.conn != nil {
		_ = c.conn.SetDeadline(time.Unix(1, 0))
	}
}

func (c *rawClient) dial(deadline time.Time) error {
	d := c.dialer
	d.Deadline = deadline
	conn, err := d.DialContext(c.ctx, "tcp", c.addr)
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.interrupted {
		conn.Close()
		return c.ctx.Err()
	}
	c.conn, c.reused = conn, false
	c.rr.br.Reset(connReader{c})
	return nil
}

func (c *rawClient) drop() {
	if c.conn == nil {
		return
	}
	c.mu.Lock()
	conn := c.conn
	c.conn = nil
	c.mu.Unlock()
	conn.Close()
}

func (c *rawClient) close() {
	c.stop()
	c.drop()
}

// do sends the request and reads the response into c.rr. A failure drops
// the connection (the next request dials again) and is returned, except
// one: a server may close a kept-alive connection between two requests, so
// when a request on a reused connection could not be written or got the
// connection closed before any byte of an answer, it is sent again, once,
// on a new connection. (net/http mostly sees such closes before it reuses
// a connection; this client would need a system call per request to.)
func (c *rawClient) do() error {
	deadline := time.Now().Add(c.timeout)
	for retried := false; ; retried = true {
		if c.conn == nil {
			if err := c.dial(deadline); err != nil {
				return err
			}
		}
		if err := c.conn.SetDeadline(deadline); err != nil {
			c.drop()
			return err
		}
		if err := c.ctx.Err(); err != nil { // after SetDeadline: see interrupt
			return err
		}
		n, err := c.conn.Write(c.req)
		if err == nil {
			err = c.rr.read(c.head)
		}
		if err == nil {
			switch {
			case c.rr.close:
				c.drop()
			case c.rr.br.Buffered() > 0:
				c.drop()
				return errUnsolicited
			default:
				c.reused = true
			}
			return nil
		}
		stale := c.reused && !retried && c.ctx.Err() == nil && !isTimeout(err) &&
			(n < len(c.req) || !c.rr.started && isClosed(err))
		c.drop()
		if !stale {
			return err
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// isClosed reports an error that means the peer closed the connection.
func isClosed(err error) bool {
	return err == io.EOF || errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}
