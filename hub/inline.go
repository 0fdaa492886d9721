package hub

import (
	"runtime"
	"sync"

	"github.com/herald-dev/herald"
)

// Inline delivery: a consumer may hand the hub a callback that delivers its
// live events on the dispatching goroutine (a stream writes them to its
// socket when that will not block), instead of being woken on Ready for
// each event. At hundreds of events a second to thousands of streams the
// wake-ups were most of herald's CPU after the write(2) itself.

// OnReady registers f to be called, on the dispatching goroutine and
// outside the hub's lock, after each Dispatch that queued events for the
// subscription. From then on such a Dispatch does not signal Ready: f
// takes the events itself (TakeLive) and reports true, or reports false
// and the hub signals Ready as before, for the consumer's own goroutine
// to Take. f must never wait: it runs before other subscribers' calls.
func (s *Subscription) OnReady(f func() bool) {
	s.mu.Lock()
	s.ready = f
	s.mu.Unlock()
}

// TakeLive is Take for a consumer that is live: nothing to re-read from
// the ring or the log, no reset to hand out, not ended. It returns ok
// false, having changed nothing, in every other case; the consumer then
// leaves the subscription to Take. It never does I/O, so it is safe on the
// dispatching goroutine; like Take it must not run concurrently with
// another Take or TakeLive of the same subscription.
func (s *Subscription) TakeLive(limit int) (b herald.Batch, ok bool) {
	if s.needReset || !s.backlogDone {
		return herald.Batch{}, false
	}
	head := s.hub.head.Load() // before looking at pending: see dispatch
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.overflowTo != 0 || s.err != nil {
		return herald.Batch{}, false
	}
	b, _ = s.takePendingLocked(limit, head)
	return b, true
}

// readyCalls runs the OnReady callbacks Dispatch collected, signalling
// Ready for each that declines. Many are spread over one goroutine per
// core: each is a write(2), and one goroutine writing to thousands of
// sockets would be the fan-out's latency.
func readyCalls(subs []*Subscription) {
	const alone = 256
	call := func(part []*Subscription) {
		for _, s := range part {
			if !s.ready() {
				s.signal()
			}
		}
	}
	n := runtime.GOMAXPROCS(0)
	if len(subs) <= alone || n == 1 {
		call(subs)
		return
	}
	var wg sync.WaitGroup
	size := (len(subs) + n - 1) / n
	for len(subs) > size {
		part := subs[:size]
		subs = subs[size:]
		wg.Go(func() { call(part) })
	}
	call(subs)
	wg.Wait()
}
