package hub

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/herald-dev/herald"
)

// Subscription is one client's view of the hub: the backlog after its
// cursor, then live events, each seq at most once and in order. SSE and
// long-poll both use it, so both make the same guarantees.
//
// It is registered with the feed before the backlog is read; live events
// above liveFrom queue in pending meanwhile, and everything at or below the
// last seq handed out is dropped. No gap, no duplicate.
type Subscription struct {
	hub      *Hub
	channels []string
	m        matcher
	epoch    string // the feed's epoch at registration; fixed for its life
	liveFrom int64  // feed head at registration

	// called is the hub's dispatch count when this subscription was last
	// queued for its OnReady callback; guarded by the hub's mu.
	called int64

	// Owned by the consumer goroutine.
	last        int64 // highest seq handed out, or the cursor
	backlogDone bool
	needReset   bool

	mu      sync.Mutex
	pending []*herald.Event
	// overflowTo, when set, is how far the consumer must re-read from the
	// ring or the log: pending overflowed, was dropped, and events
	// stay out of it until the consumer picks the overflow up. One that
	// has not done so within Options.StallTimeout is not reading:
	// evicted.
	overflowTo int64
	overflowAt time.Time
	onEnd      func()
	ready      func() bool // OnReady's callback, or nil
	err        error
	wake       chan struct{}
	done       chan struct{}
}

// epochWait bounds how long SubscribeAt waits for this hub to learn an
// epoch the log already has (store's follower reads on the sequencer's
// NOTIFY, and at least every store.FeedOptions.Poll).
const epochWait = 3 * time.Second

// SubscribeAt registers interest in channels after cursor (hasCursor false:
// live from now). channels must be validated and deduplicated by the caller.
//
// A cursor of another epoch than the current one gets a reset: its seqs
// belong to another history. One with no epoch (a bare decimal from an
// older client) is taken as the current epoch, and reset only if it is
// ahead of the head.
func (h *Hub) SubscribeAt(ctx context.Context, channels []string, cursor herald.Cursor, hasCursor bool) (herald.Subscription, error) {
	select {
	case <-h.ready:
	case <-ctx.Done():
		return nil, fmt.Errorf("subscribe: feed not ready: %w", ctx.Err())
	}
	if hasCursor && cursor.Epoch != "" {
		if err := h.awaitEpoch(ctx, cursor.Epoch); err != nil {
			return nil, err
		}
	}
	s := &Subscription{
		hub:      h,
		channels: channels,
		m:        newMatcher(channels),
		wake:     make(chan struct{}, 1),
		done:     make(chan struct{}),
	}
	h.mu.Lock()
	if h.stopped {
		h.mu.Unlock()
		return nil, herald.ErrStopped
	}
	s.liveFrom = h.head.Load()
	s.epoch = h.epoch
	for _, ch := range channels {
		set := h.subs[ch]
		if set == nil {
			set = make(map[*Subscription]struct{})
			h.subs[ch] = set
		}
		set[s] = struct{}{}
	}
	h.mu.Unlock()

	switch {
	case !hasCursor:
		s.last, s.backlogDone = s.liveFrom, true
	case cursor.Epoch != "" && cursor.Epoch != s.epoch:
		s.needReset = true
	case cursor.Seq > s.liveFrom:
		// Ahead of this feed: another replica may simply be a few ms ahead,
		// or the database was restored from a backup. Ask the log.
		st, err := h.log.State(ctx)
		if err != nil {
			s.Close()
			return nil, err
		}
		if cursor.Seq > st.Head || st.Epoch != s.epoch {
			s.needReset = true
		} else {
			s.last, s.backlogDone = cursor.Seq, true
		}
	default:
		s.last = cursor.Seq
		s.backlogDone = cursor.Seq == s.liveFrom
	}
	s.signal()
	return s, nil
}

// awaitEpoch returns once this feed serves epoch, or at once when the
// log's current epoch is another one (the cursor is from an old
// history: reset), or after epochWait (reset too). It spares a client that
// moved to another replica right after an epoch change a spurious reset.
func (h *Hub) awaitEpoch(ctx context.Context, epoch string) error {
	h.mu.RLock()
	cur, forked := h.epoch, h.forked
	h.mu.RUnlock()
	if cur == epoch {
		return nil
	}
	st, err := h.log.State(ctx)
	if err != nil {
		return err
	}
	if st.Epoch != epoch {
		return nil
	}
	t := time.NewTimer(epochWait)
	defer t.Stop()
	select {
	case <-forked:
	case <-t.C:
	case <-ctx.Done():
		return fmt.Errorf("subscribe: waiting for epoch %s: %w", epoch, ctx.Err())
	}
	return nil
}

// Epoch is the history the subscription's positions belong to.
func (s *Subscription) Epoch() string { return s.epoch }

// Opening is where the subscription starts: the cursor it was given, or
// the head when it came without one. ok is false when its first batch will
// be a reset (which carries the cursor to continue from).
func (s *Subscription) Opening() (c herald.Cursor, ok bool) {
	if s.needReset {
		return herald.Cursor{}, false
	}
	return herald.Cursor{Epoch: s.epoch, Seq: s.last}, true
}

// Ready receives a value when Take may have something to hand out.
func (s *Subscription) Ready() <-chan struct{} { return s.wake }

// Done is closed when the subscription ended (evicted, feed stopped,
// closed); Err says why. Pending events can still be taken.
func (s *Subscription) Done() <-chan struct{} { return s.done }

// Err is why the subscription ended, or nil.
func (s *Subscription) Err() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// Close unregisters the subscription.
func (s *Subscription) Close() {
	s.hub.mu.Lock()
	f := s.hub.dropLocked(s, herald.ErrClosed)
	s.hub.mu.Unlock()
	if f != nil {
		f()
	}
}

func (s *Subscription) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// push queues ev. A full queue is dropped (a burst: the consumer catches
// up from the ring or the log at its own pace, so memory stays
// bounded and nobody waits); alive is false when the consumer has not come
// for the overflow within StallTimeout (it is stalled: evict). call is true
// when the consumer's OnReady callback is due instead of a Ready signal.
func (s *Subscription) push(ev *herald.Event, limit int) (alive, call bool) {
	s.mu.Lock()
	if s.err != nil {
		s.mu.Unlock()
		return true, false
	}
	if s.overflowTo != 0 {
		if s.hub.now().Sub(s.overflowAt) > s.hub.opts.StallTimeout {
			s.mu.Unlock()
			return false, false
		}
		s.overflowTo = ev.Seq
		s.mu.Unlock()
		return true, false
	}
	if len(s.pending) >= limit {
		s.overflowTo, s.overflowAt = ev.Seq, s.hub.now()
		clear(s.pending)
		s.pending = s.pending[:0]
		s.mu.Unlock()
		s.signal()
		return true, false
	}
	s.pending = append(s.pending, ev)
	call = s.ready != nil
	s.mu.Unlock()
	if !call {
		s.signal()
	}
	return true, call
}

// end ends the subscription with err, if it has not ended, and returns
// its OnEnd callback for the caller to run once the hub's lock is
// released (nil if there is none to run). Setting err and closing done
// happen here, under the hub's lock, so a Take that sees the hub's next
// head also sees that this subscription no longer receives events.
func (s *Subscription) end(err error) func() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return nil
	}
	s.err = err
	close(s.done)
	f := s.onEnd
	s.onEnd = nil
	return f
}

// OnEnd registers f to run once when the subscription ends (evicted, hub
// stopped, closed), on the goroutine that ends it once the hub's lock is
// released, or at once if it has ended. f must be quick. It saves the
// stream a watcher goroutine per connection.
func (s *Subscription) OnEnd(f func()) {
	s.mu.Lock()
	if s.err == nil {
		s.onEnd = f
		s.mu.Unlock()
		return
	}
	s.mu.Unlock()
	f()
}

// Take hands out up to limit events after the last one handed out, without
// waiting: the backlog first (from the ring, else the log), then live
// events. An empty batch with a nil error means nothing right now; wait on
// Ready. Once the subscription has ended and nothing is pending, Take
// returns its Err.
func (s *Subscription) Take(ctx context.Context, limit int) (herald.Batch, error) {
	if s.needReset {
		s.needReset = false
		s.last, s.backlogDone = s.liveFrom, true
		s.signal()
		return s.reset(), nil
	}
	s.mu.Lock()
	if s.overflowTo != 0 {
		// What overflowed is read back like a backlog; pending holds only
		// events after it.
		s.liveFrom, s.backlogDone, s.overflowTo = s.overflowTo, false, 0
	}
	s.mu.Unlock()
	if !s.backlogDone {
		b, err := s.backlog(ctx, limit)
		if err != nil || len(b.Events) > 0 || b.Reset != nil {
			s.signal() // more may follow
			return b, err
		}
	}
	head := s.hub.head.Load() // before looking at pending: see dispatch
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.overflowTo != 0 {
		// Overflowed since the check above: pending lacks what was
		// dropped, so it must not be handed out (nor the head claimed)
		// before the re-read. Go round again.
		s.signal()
		return herald.Batch{Cursor: s.last}, nil
	}
	b, more := s.takePendingLocked(limit, head)
	if more {
		s.signal()
		return b, nil
	}
	if len(b.Events) == 0 && s.err != nil {
		return b, s.err
	}
	return b, nil
}

// takePendingLocked hands out up to limit pending events after the last one
// handed out; more reports that pending has more. When it has not, the
// position moves to head (read before s.mu was taken): every event up to
// it for these channels has been pushed. s.mu must be held.
func (s *Subscription) takePendingLocked(limit int, head int64) (b herald.Batch, more bool) {
	var out []*herald.Event
	i := 0
	for ; i < len(s.pending) && len(out) < limit; i++ {
		if ev := s.pending[i]; ev.Seq > s.last {
			out = append(out, ev)
			s.last = ev.Seq
		}
	}
	rest := len(s.pending) - i
	copy(s.pending, s.pending[i:])
	clear(s.pending[rest:])
	s.pending = s.pending[:rest]
	if rest > 0 {
		return herald.Batch{Events: out, Cursor: s.last}, true
	}
	if cap(s.pending) > 64 {
		s.pending = nil // give a burst's memory back
	}
	if len(out) == 0 && s.err != nil {
		// Ended: the position stays where the last event left it.
		return herald.Batch{Cursor: s.last}, false
	}
	s.last = max(s.last, head)
	return herald.Batch{Events: out, Cursor: s.last}, false
}

// backlog reads the events in (last, liveFrom].
func (s *Subscription) backlog(ctx context.Context, limit int) (herald.Batch, error) {
	h := s.hub
	h.mu.RLock()
	// Below the floor the history is gone: the log says reset, and
	// the ring must not say otherwise just because it still remembers.
	if h.ring.covers(s.last) && s.last+1 >= h.floor.Load() {
		events, _ := h.ring.collect(nil, s.last, s.liveFrom, s.m, limit)
		h.mu.RUnlock()
		if h.opts.OnReplay != nil {
			h.opts.OnReplay(true, len(events))
		}
		return s.advance(events, limit), nil
	}
	h.mu.RUnlock()
	page, err := h.log.After(ctx, s.last, s.channels, s.liveFrom, limit)
	var reset *herald.ResetError
	if err == nil || errors.As(err, &reset) {
		if page.Epoch != s.epoch {
			// History forked under this subscription; the feed is about to
			// end it too. The client reconnects and is reset.
			return herald.Batch{}, herald.ErrEpochChanged
		}
	}
	if reset != nil {
		s.last, s.backlogDone = s.liveFrom, true
		return s.reset(), nil
	}
	if err != nil {
		return herald.Batch{}, err
	}
	if h.opts.OnReplay != nil {
		h.opts.OnReplay(false, len(page.Events))
	}
	return s.advance(page.Events, limit), nil
}

// reset is the batch that tells the consumer its position cannot be
// served: it continues from liveFrom, the head at registration.
func (s *Subscription) reset() herald.Batch {
	head := herald.Cursor{Epoch: s.epoch, Seq: s.liveFrom}
	return herald.Batch{Reset: &herald.ResetError{Head: head}, Cursor: s.liveFrom}
}

// advance moves past a backlog page: a full page continues after its last
// event, a short one finishes the backlog at liveFrom.
func (s *Subscription) advance(events []*herald.Event, limit int) herald.Batch {
	if len(events) >= limit {
		s.last = events[len(events)-1].Seq
	} else {
		s.last, s.backlogDone = s.liveFrom, true
	}
	return herald.Batch{Events: events, Cursor: s.last}
}
