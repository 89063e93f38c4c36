package proxy

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// h1Client is a lean HTTP/1.1 client for plain-HTTP replicas. Unlike
// http.Transport it does its I/O on the calling goroutine (no writeLoop and
// readLoop goroutines and the channel hand-offs between them), which is most
// of a proxy's per-request cost when the upstream is fast. It pools
// keep-alive connections per host; https replicas go through http.Transport.
type h1Client struct {
	dialer   *net.Dialer
	fallback http.RoundTripper
	maxIdle  int

	mu   sync.Mutex
	idle map[string][]*h1Conn
}

type h1Conn struct {
	c  net.Conn
	br *bufio.Reader
	bw *bufio.Writer
}

func newH1Client(d *net.Dialer, fallback http.RoundTripper, maxIdle int) *h1Client {
	return &h1Client{dialer: d, fallback: fallback, maxIdle: maxIdle, idle: map[string][]*h1Conn{}}
}

func (h *h1Client) get(ctx context.Context, host string) (*h1Conn, bool, error) {
	h.mu.Lock()
	if l := h.idle[host]; len(l) > 0 {
		pc := l[len(l)-1]
		h.idle[host] = l[:len(l)-1]
		h.mu.Unlock()
		return pc, true, nil
	}
	h.mu.Unlock()
	c, err := h.dialer.DialContext(ctx, "tcp", host)
	if err != nil {
		return nil, false, err
	}
	return &h1Conn{c: c, br: bufio.NewReaderSize(c, 16<<10), bw: bufio.NewWriterSize(c, 16<<10)}, false, nil
}

func (h *h1Client) put(host string, pc *h1Conn) {
	h.mu.Lock()
	if len(h.idle[host]) < h.maxIdle {
		h.idle[host] = append(h.idle[host], pc)
		h.mu.Unlock()
		return
	}
	h.mu.Unlock()
	pc.c.Close()
}

// CloseIdleConnections closes the pooled connections.
func (h *h1Client) CloseIdleConnections() {
	h.mu.Lock()
	idle := h.idle
	h.idle = map[string][]*h1Conn{}
	h.mu.Unlock()
	for _, l := range idle {
		for _, pc := range l {
			pc.c.Close()
		}
	}
	if ci, ok := h.fallback.(interface{ CloseIdleConnections() }); ok {
		ci.CloseIdleConnections()
	}
}

// RoundTrip implements http.RoundTripper. A pooled connection the server
// has closed meanwhile fails before any answer; the request is then sent
// once more on a fresh connection, as http.Transport does, so that a stale
// keep-alive never counts against the replica.
func (h *h1Client) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme != "http" {
		return h.fallback.RoundTrip(req)
	}
	return h.do(req.Context(), req.URL.Host, outgoing{req: req})
}

// Post is RoundTrip for the proxy's own requests to an http:// replica: a
// POST of body to path (prefix+path, prefix being the replica's base path)
// with hdr, written straight to the connection. It skips building an
// http.Request (URL parsing, body wrappers) and Request.Write's transfer
// machinery and sorted header copy.
func (h *h1Client) Post(ctx context.Context, host, prefix, path string, hdr http.Header, body []byte) (*http.Response, error) {
	return h.do(ctx, host, outgoing{host: host, prefix: prefix, path: path, hdr: hdr, body: body})
}

// outgoing is a request to write: req, or the fields of a Post.
type outgoing struct {
	req                *http.Request
	host, prefix, path string
	hdr                http.Header
	body               []byte
}

func (o *outgoing) write(bw *bufio.Writer, try int) error {
	if o.req != nil {
		if try > 0 && o.req.GetBody != nil {
			b, err := o.req.GetBody()
			if err != nil {
				return err
			}
			o.req.Body = b
		}
		return o.req.Write(bw)
	}
	bw.WriteString("POST ")
	bw.WriteString(o.prefix)
	bw.WriteString(o.path)
	bw.WriteString(" HTTP/1.1\r\nHost: ")
	bw.WriteString(o.host)
	bw.WriteString("\r\n")
	if _, ok := o.hdr["User-Agent"]; !ok {
		bw.WriteString("User-Agent: Go-http-client/1.1\r\n") // what Request.Write sends
	}
	for k, vv := range o.hdr {
		if k == "Host" || k == "Content-Length" || k == "Transfer-Encoding" || k == "Connection" {
			continue
		}
		for _, v := range vv {
			bw.WriteString(k)
			bw.WriteString(": ")
			writeHeaderValue(bw, v)
			bw.WriteString("\r\n")
		}
	}
	var num [20]byte
	bw.WriteString("Content-Length: ")
	bw.Write(strconv.AppendInt(num[:0], int64(len(o.body)), 10))
	bw.WriteString("\r\n\r\n")
	_, err := bw.Write(o.body)
	return err
}

// writeHeaderValue writes v with CR and LF turned into spaces and
// surrounding blanks trimmed, as Request.Write does, so that a value can
// never end the header block.
func writeHeaderValue(bw *bufio.Writer, v string) {
	v = strings.Trim(v, " \t")
	if !strings.ContainsAny(v, "\r\n") {
		bw.WriteString(v)
		return
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == '\r' || c == '\n' {
			c = ' '
		}
		bw.WriteByte(c)
	}
}

func (h *h1Client) do(ctx context.Context, host string, out outgoing) (*http.Response, error) {
	for try := 0; ; try++ {
		pc, reused, err := h.get(ctx, host)
		if err != nil {
			return nil, err
		}
		// The caller's context governs the connection: cancelling it
		// unblocks any read or write at once.
		stop := context.AfterFunc(ctx, func() { _ = pc.c.SetDeadline(time.Unix(1, 0)) })
		err = out.write(pc.bw, try)
		if err == nil {
			err = pc.bw.Flush()
		}
		var resp *http.Response
		if err == nil {
			resp, err = http.ReadResponse(pc.br, out.req)
		}
		if err != nil {
			stop()
			pc.c.Close()
			if ctx.Err() != nil {
				return nil, context.Cause(ctx)
			}
			if reused && try == 0 && staleConnErr(err) {
				continue
			}
			return nil, err
		}
		resp.Body = &h1Body{rc: resp.Body, pc: pc, h: h, host: host, stop: stop, keep: !resp.Close}
		return resp, nil
	}
}

func staleConnErr(err error) bool {
	var ne net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &ne) && !ne.Timeout() || isReset(err)
}

// h1Body returns its connection to the pool once read to EOF.
type h1Body struct {
	rc     io.ReadCloser
	pc     *h1Conn
	h      *h1Client
	host   string
	stop   func() bool
	keep   bool
	eof    bool
	closed bool
}

func (b *h1Body) Read(p []byte) (int, error) {
	if b.closed {
		return 0, errors.New("read on closed body")
	}
	n, err := b.rc.Read(p)
	if errors.Is(err, io.EOF) {
		b.eof = true
	}
	return n, err
}

func (b *h1Body) Close() error {
	if b.closed {
		return nil
	}
	b.closed = true
	// Reusable only when the body was read to the end, the server keeps
	// the connection alive and the context did not fire.
	if b.stop() && b.eof && b.keep {
		b.h.put(b.host, b.pc)
		return nil
	}
	return b.pc.c.Close()
}
