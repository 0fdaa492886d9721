//go:build linux

package stream

import (
	"errors"
	"net"
	"sync"
	"syscall"
)

// closeWatcher notices clients leaving, for every detached stream of the
// process at once: one epoll set and one goroutine blocked in epoll_wait,
// instead of a goroutine per stream blocked in Read. An idle stream then
// holds one goroutine (its writer) and its stack: the per-stream watcher's
// stack was a fifth of an idle stream's memory.
//
// The epoll set is separate from the Go runtime's: a connection's socket
// is in both, which Linux allows. Entries carry an id, not the fd, so an
// fd number reused by a new connection is never mistaken for the old one.
type closeWatcher struct {
	once sync.Once
	epfd int
	err  error

	mu      sync.Mutex
	next    uint64
	streams map[uint64]*watched
}

type watched struct {
	raw  syscall.RawConn
	gone func()
}

// watcher is the process's close watcher, started by its first stream.
var watcher closeWatcher

// watchClose runs gone once, on the watcher's goroutine, when the client
// closes or resets conn. unwatch must be called before conn is closed; ok
// is false when conn cannot be watched this way (the caller then reads it
// on a goroutine of its own).
func watchClose(conn net.Conn, gone func()) (unwatch func(), ok bool) {
	return watcher.add(conn, gone)
}

func (w *closeWatcher) start() error {
	w.once.Do(func() {
		w.epfd, w.err = syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if w.err != nil {
			return
		}
		w.streams = make(map[uint64]*watched)
		go w.loop()
	})
	return w.err
}

func (w *closeWatcher) add(conn net.Conn, gone func()) (func(), bool) {
	sc, ok := conn.(syscall.Conn)
	if !ok || w.start() != nil {
		return nil, false
	}
	raw, err := sc.SyscallConn()
	if err != nil {
		return nil, false
	}
	s := &watched{raw: raw, gone: gone}
	w.mu.Lock()
	w.next++
	id := w.next
	w.streams[id] = s
	w.mu.Unlock()
	// Level-triggered: bytes a client sends are read and dropped until
	// none are left, as the per-stream watcher did.
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(uint32(id)), Pad: int32(uint32(id >> 32))}
	var cerr error
	if err := raw.Control(func(fd uintptr) { cerr = syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_ADD, int(fd), &ev) }); err != nil || cerr != nil {
		w.mu.Lock()
		delete(w.streams, id)
		w.mu.Unlock()
		return nil, false
	}
	return func() { w.remove(id) }, true
}

// remove takes id out of the set; it is idempotent.
func (w *closeWatcher) remove(id uint64) {
	w.mu.Lock()
	s := w.streams[id]
	delete(w.streams, id)
	w.mu.Unlock()
	if s != nil {
		_ = s.raw.Control(func(fd uintptr) { _ = syscall.EpollCtl(w.epfd, syscall.EPOLL_CTL_DEL, int(fd), nil) })
	}
}

func (w *closeWatcher) loop() {
	events := make([]syscall.EpollEvent, 128)
	buf := make([]byte, 512)
	for {
		n, err := syscall.EpollWait(w.epfd, events, -1)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			// Not expected on a valid epoll fd; without the watcher,
			// streams still end on their next failing write.
			return
		}
		for _, ev := range events[:n] {
			id := uint64(uint32(ev.Fd)) | uint64(uint32(ev.Pad))<<32
			w.mu.Lock()
			s := w.streams[id]
			w.mu.Unlock()
			if s == nil {
				continue
			}
			hup := ev.Events&(syscall.EPOLLRDHUP|syscall.EPOLLHUP|syscall.EPOLLERR) != 0
			if hup || s.eof(buf) {
				w.remove(id)
				s.gone()
			}
		}
	}
}

// eof reads what the client sent, without waiting, and reports whether
// the connection has ended (end of stream, an error, or closed here).
func (s *watched) eof(buf []byte) bool {
	ended := false
	err := s.raw.Read(func(fd uintptr) bool {
		for {
			n, rerr := syscall.Read(int(fd), buf)
			switch {
			case errors.Is(rerr, syscall.EINTR):
				continue
			case errors.Is(rerr, syscall.EAGAIN):
			case rerr != nil || n == 0:
				ended = true
			default:
				continue // bytes from the client: dropped
			}
			return true
		}
	})
	return ended || err != nil
}
