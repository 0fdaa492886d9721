package stream

import (
	"net"
	"net/http"
	"strconv"
	"time"
)

// sink is where a stream's bytes go: net/http's ResponseWriter, or the
// connection itself once the stream has taken it over (detach.go).
type sink interface {
	// write sends p to the client now (written and flushed).
	write(p []byte) error
	setWriteDeadline(t time.Time) error
}

var (
	_ sink = (*responseSink)(nil)
	_ sink = (*connSink)(nil)
)

// responseSink streams through net/http: HTTP/2, and any ResponseWriter
// that cannot be hijacked (tests' recorders, wrapping middleware).
type responseSink struct {
	w  http.ResponseWriter
	rc *http.ResponseController
}

func (s *responseSink) write(p []byte) error {
	if _, err := s.w.Write(p); err != nil {
		return err
	}
	return s.rc.Flush()
}

func (s *responseSink) setWriteDeadline(t time.Time) error { return s.rc.SetWriteDeadline(t) }

// connSink writes an HTTP/1.x response body straight to the connection:
// one chunk per write (HTTP/1.1) or raw bytes ended by close (HTTP/1.0).
// There is no buffer of its own: the sseWriter's batch is the chunk.
type connSink struct {
	conn    net.Conn
	chunked bool
	head    []byte // the response head, sent with the first write
	size    [18]byte
}

// crlf ends every chunk.
var crlf = []byte("\r\n")

func (s *connSink) write(p []byte) error {
	if len(p) == 0 {
		return nil
	}
	// One writev per batch: head (first time only), chunk size, data, CRLF.
	bufs := make(net.Buffers, 0, 4)
	if s.head != nil {
		bufs = append(bufs, s.head)
	}
	if s.chunked {
		n := strconv.AppendInt(s.size[:0], int64(len(p)), 16)
		bufs = append(bufs, append(n, '\r', '\n'), p, crlf)
	} else {
		bufs = append(bufs, p)
	}
	_, err := bufs.WriteTo(s.conn)
	s.head = nil
	return err
}

// end sends the last chunk, so the client sees a complete response rather
// than a cut one. Best effort: the connection closes next either way.
func (s *connSink) end() {
	if s.chunked && s.head == nil {
		_, _ = s.conn.Write([]byte("0\r\n\r\n"))
	}
}

func (s *connSink) setWriteDeadline(t time.Time) error { return s.conn.SetWriteDeadline(t) }
