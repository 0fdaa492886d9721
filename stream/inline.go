package stream

import (
	"errors"
	"syscall"
	"time"

	"github.com/herald-dev/herald"
)

// liveTaker is what inline delivery needs from a subscription; the hub's
// subscriptions have it (hub.Subscription.OnReady, TakeLive).
type liveTaker interface {
	OnReady(f func() bool)
	TakeLive(max int) (herald.Batch, bool)
}

// errPanicked ends a stream whose inline delivery panicked.
var errPanicked = errors.New("stream: inline delivery panicked")

// inlineRounds bounds how many batches one callback writes before it hands
// the rest of a burst to the stream's goroutine.
const inlineRounds = 4

// deliverInline lets the hub's dispatching goroutine write live events
// to a detached stream's socket itself when the write does not block:
// one write(2) per event and stream, and no goroutine woken. Everything
// else (backlog and overflow re-reads, resets, the end, a socket whose
// buffer is full, a write the stream's goroutine is doing) falls back to
// the goroutine, which the hub wakes when the callback says false. Writes
// from both sides hold sw.wmu, so bytes never interleave, and a write the
// socket took only in part is finished by the goroutine before anything
// else (connSink.rest).
func (h *Handler) deliverInline(sub herald.Subscription, sw *sseWriter) {
	lt, ok := sub.(liveTaker)
	cs, isConn := sw.out.(*connSink)
	if !ok || !isConn || !cs.canTry() {
		return
	}
	lt.OnReady(func() (handled bool) {
		if !sw.wmu.TryLock() {
			return false
		}
		defer sw.wmu.Unlock()
		// A panic here would take the feed down with it: it ends this
		// stream only, as on the stream's own goroutine (the goroutine,
		// woken by the false, finds the error and closes the connection).
		defer func() {
			if v := recover(); v != nil {
				h.logPanic(v)
				sw.err = errPanicked
				handled = false
			}
		}()
		if sw.stopped || sw.err != nil || cs.rest != nil {
			return false
		}
		for range inlineRounds {
			b, ok := lt.TakeLive(takeBatch)
			if !ok {
				return false
			}
			for _, ev := range b.Events {
				sw.event(ev)
			}
			if b.Cursor > sw.covered {
				sw.covered = b.Cursor
			}
			if len(b.Events) == 0 {
				return true
			}
			if h.Hooks.Delivered != nil {
				h.Hooks.Delivered(len(b.Events), b.Events)
			}
			if sent, err := sw.tryFlush(); err != nil || !sent {
				return false
			}
		}
		return false
	})
}

// canTry reports whether the connection allows a write that does not wait.
func (s *connSink) canTry() bool {
	if s.raw != nil {
		return true
	}
	sc, ok := s.conn.(syscall.Conn)
	if !ok {
		return false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return false
	}
	s.raw = raw
	return true
}

// tryWrite is write without waiting: it sends what the socket buffer takes
// now and keeps the rest in s.rest, for write to send first. sent is true
// when all of buf went out.
func (s *connSink) tryWrite(buf []byte) (sent bool, err error) {
	if s.rest != nil || s.head != nil {
		return false, errors.New("stream: tryWrite with a write pending")
	}
	p, empty := s.frame(buf)
	if empty {
		return true, nil
	}
	var n int
	var werr error
	if err := s.raw.Write(func(fd uintptr) bool {
		n, werr = syscall.Write(int(fd), p)
		return true // never wait for the socket: that is the goroutine's job
	}); err != nil {
		return false, err
	}
	switch {
	case errors.Is(werr, syscall.EAGAIN) || errors.Is(werr, syscall.EINTR):
		n = 0
	case werr != nil:
		return false, werr
	}
	if n < len(p) {
		s.rest = append([]byte(nil), p[n:]...)
		return false, nil
	}
	return true, nil
}

// tryFlush is flush without waiting on the socket (see connSink.tryWrite).
func (s *sseWriter) tryFlush() (sent bool, err error) {
	if s.err != nil {
		return false, s.err
	}
	if len(s.buf) <= s.room {
		return true, nil
	}
	if err := s.arm(); err != nil {
		return false, err
	}
	sent, err = s.out.(*connSink).tryWrite(s.buf)
	if err != nil {
		s.err = err
		return false, err
	}
	s.buf = s.buf[:s.room]
	if sent {
		s.lastWrite.Store(time.Now().UnixNano())
	}
	return sent, nil
}
