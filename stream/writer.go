package stream

import (
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/herald-dev/herald"
)

// sseWriter frames SSE. Framing cannot be broken by payload content: the
// data line is compact JSON (no raw newlines), ids are "<epoch>.<seq>" of
// [a-z0-9.], and types are validated to [A-Za-z0-9_.:-] on the way in.
type sseWriter struct {
	out     sink
	timeout time.Duration
	plain   bool
	// buf is the next write. Its first room bytes are left free for the
	// sink to frame it in place (the chunk-size line), so a batch goes out
	// in one write(2) without a copy.
	buf     []byte
	room    int
	err     error
	epoch   string // the subscription's epoch: every id written is in it
	lastID  int64  // the seq of the id the client holds (in epoch)
	covered int64  // every event for the client up to here has been written

	// wmu is held by whoever writes: the stream's goroutine, or the hub's
	// dispatching goroutine delivering inline (inline.go). Every field
	// above is guarded by it.
	wmu sync.Mutex
	// stopped: the stream's goroutine has left run; no inline write may
	// start. Guarded by wmu.
	stopped bool
	// lastWrite is when bytes last went out whole (Unix ns), for the
	// heartbeat; inline writes set it too.
	lastWrite atomic.Int64

	// mu orders abort against flush's deadline: once aborted, no write
	// gets a fresh deadline, and a write under way is cut at once.
	mu       sync.Mutex
	aborted  bool
	finished bool      // Serve has returned: the writer must not be touched
	deadline time.Time // the write deadline set on the connection
}

// errAborted ends the writes of an evicted stream.
var errAborted = errors.New("stream: subscriber evicted; write abandoned")

// abort abandons the stream from another goroutine: a write blocked on a
// client that does not read returns now instead of at its deadline, and
// later writes fail at once.
func (s *sseWriter) abort() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.finished {
		return
	}
	s.aborted = true
	_ = s.out.setWriteDeadline(time.Now())
}

// finish marks the end of Serve: a later abort is a no-op.
func (s *sseWriter) finish() {
	s.mu.Lock()
	s.finished = true
	s.mu.Unlock()
}

// open returns buf, with the sink's room in front of it.
func (s *sseWriter) open() []byte {
	if len(s.buf) < s.room {
		s.buf = append(s.buf[:0], make([]byte, s.room)...)
	}
	return s.buf
}

func (s *sseWriter) event(ev *herald.Event) {
	b := append(s.open(), "id: "...)
	b = ev.Cursor().Append(b)
	if !s.plain {
		b = append(b, "\nevent: "...)
		b = append(b, ev.Type...)
	}
	b = append(b, "\ndata: "...)
	b = append(b, ev.JSON()...)
	b = append(b, "\n\n"...)
	s.buf = b
	s.lastID = ev.Seq
}

// reset tells the client its history is gone. The id moves the client's
// Last-Event-ID to the head, so a browser's automatic reconnect continues
// from there instead of asking for the lost range again.
func (s *sseWriter) reset(c herald.Cursor) {
	b := append(s.open(), "id: "...)
	b = c.Append(b)
	b = append(b, "\nevent: reset\ndata: {\"cursor\":\""...)
	b = c.Append(b)
	b = append(b, "\"}\n\n"...)
	s.buf = b
	s.lastID = c.Seq
}

// ping is the heartbeat. When the log moved past the client's last id with
// nothing for its channels, it also carries "id: <covered>": EventSource
// updates lastEventId from an event with no data without dispatching it, so
// clients of quiet channels keep a fresh cursor and are not reset when old
// history is dropped.
func (s *sseWriter) ping() {
	b := append(s.open(), ": ping\n"...)
	if s.covered > s.lastID {
		b = append(b, "id: "...)
		b = herald.Cursor{Epoch: s.epoch, Seq: s.covered}.Append(b)
		b = append(b, '\n')
		s.lastID = s.covered
	}
	s.buf = append(b, '\n')
}

func (s *sseWriter) comment(text string) {
	s.buf = append(append(append(s.open(), ": "...), text...), "\n\n"...)
}

// retryOpening is the opening block: the retry hint and, unless the first
// batch is a reset (which carries its own id), "id: <epoch>.<seq>" with the
// position the stream starts from.
func (s *sseWriter) retryOpening(d time.Duration, sub herald.Subscription) {
	b := append(s.open(), "retry: "...)
	b = strconv.AppendInt(b, d.Milliseconds(), 10)
	if c, ok := sub.Opening(); ok {
		b = append(b, "\nid: "...)
		b = c.Append(b)
		s.lastID = c.Seq
	}
	s.buf = append(b, "\n\n"...)
}

func (s *sseWriter) retry(d time.Duration) {
	b := append(s.open(), "retry: "...)
	b = strconv.AppendInt(b, d.Milliseconds(), 10)
	s.buf = append(b, "\n\n"...)
}

// flush writes the buffer with a deadline and flushes it to the client,
// after whatever an inline write left unsent.
func (s *sseWriter) flush() error {
	if s.err != nil || (len(s.buf) <= s.room && !s.out.pending()) {
		return s.err
	}
	if err := s.arm(); err != nil {
		return err
	}
	if err := s.out.write(s.buf); err != nil {
		s.err = err
		return err
	}
	s.lastWrite.Store(time.Now().UnixNano())
	if cap(s.buf) > 16<<10 {
		s.buf = nil // return a burst's memory
	} else {
		s.buf = s.buf[:s.room]
	}
	return nil
}

// arm gives the next write its deadline, or fails once the stream was
// aborted.
func (s *sseWriter) arm() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.aborted {
		s.err = errAborted
		return s.err
	}
	// Moving the deadline costs a timer update per write; at thousands of
	// writes a second that showed in profiles. Each write still gets at
	// least half the timeout and at most all of it.
	if now := time.Now(); s.deadline.Sub(now) < s.timeout/2 {
		s.deadline = now.Add(s.timeout)
		_ = s.out.setWriteDeadline(s.deadline)
	}
	return nil
}
