package stream

import (
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"
)

// sink is where a stream's bytes go: net/http's ResponseWriter, or the
// connection itself once the stream has taken it over (detach.go).
type sink interface {
	// room is how many bytes write wants free in front of the data.
	room() int
	// write sends buf[room():] to the client now (written and flushed).
	// It may overwrite buf[:room()] and append to buf.
	write(buf []byte) error
	// pending reports bytes an earlier write left for write to send.
	pending() bool
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

func (s *responseSink) room() int { return 0 }

func (s *responseSink) write(p []byte) error {
	if _, err := s.w.Write(p); err != nil {
		return err
	}
	return s.rc.Flush()
}

func (s *responseSink) pending() bool { return false }

func (s *responseSink) setWriteDeadline(t time.Time) error { return s.rc.SetWriteDeadline(t) }

// connSink writes an HTTP/1.x response body straight to the connection:
// one chunk per write (HTTP/1.1) or raw bytes ended by close (HTTP/1.0).
// It has no buffer of its own: the sseWriter's batch is the chunk, framed
// in the room left in front of it, so each batch is one write(2) (a
// writev of three pieces cost ~12% more in a loopback micro-benchmark).
type connSink struct {
	conn    net.Conn
	chunked bool
	head    []byte // the response head, sent with the first write
	// rest is what a tryWrite could not send; write sends it first.
	rest []byte
	raw  syscall.RawConn // for tryWrite; set by canTry
}

// chunkRoom fits a chunk-size line: up to 16 hex digits and CRLF.
const chunkRoom = 18

func (s *connSink) room() int {
	if s.chunked {
		return chunkRoom
	}
	return 0
}

func (s *connSink) pending() bool { return s.rest != nil }

// frame returns buf[room():] framed as one chunk (in place), or the raw
// bytes for HTTP/1.0; empty is true when there is nothing to send (an empty
// chunk would end the body).
func (s *connSink) frame(buf []byte) (p []byte, empty bool) {
	if !s.chunked {
		return buf, len(buf) == 0
	}
	if len(buf) == chunkRoom {
		return nil, true
	}
	var size [chunkRoom]byte
	line := append(strconv.AppendInt(size[:0], int64(len(buf)-chunkRoom), 16), '\r', '\n')
	start := chunkRoom - len(line)
	copy(buf[start:], line)
	return append(buf[start:], '\r', '\n'), false
}

func (s *connSink) write(buf []byte) error {
	if s.rest != nil {
		if _, err := s.conn.Write(s.rest); err != nil {
			return err
		}
		s.rest = nil
	}
	p, empty := s.frame(buf)
	if empty {
		return nil
	}
	var err error
	if s.head != nil {
		bufs := net.Buffers{s.head, p}
		_, err = bufs.WriteTo(s.conn)
		s.head = nil
	} else {
		_, err = s.conn.Write(p)
	}
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
