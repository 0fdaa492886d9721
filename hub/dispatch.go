package hub

import "github.com/herald-dev/herald"

// Fork moves the hub to a new history: epoch with head. Every subscriber is
// ended with herald.ErrEpochChanged (their positions belong to the old
// history), the ring is emptied, and subscribers waiting for the epoch are
// woken. It returns the position it left, for the caller's log.
func (h *Hub) Fork(epoch string, head int64) (old herald.Cursor) {
	h.mu.Lock()
	old = herald.Cursor{Epoch: h.epoch, Seq: h.head.Load()}
	h.ring.clear()
	ends := h.dropAllLocked(herald.ErrEpochChanged)
	h.epoch = epoch
	h.head.Store(head)
	close(h.forked)
	h.forked = make(chan struct{})
	h.mu.Unlock()
	runAll(ends)
	return old
}

// Dispatch appends events (consecutive seqs, in the hub's epoch) to the ring
// and pushes each to the subscribers of its channel. The head moves only
// after the pushes, so a subscriber that sees head H has been given every
// event <= H.
//
// If the first event is not head+1, the log dropped events the hub never
// saw (its follower was away for longer than the retained history): nobody
// may be told "you have everything up to here", so every subscriber is
// ended with herald.ErrGap, to reconnect and be reset. gap reports it, for
// the caller's log.
func (h *Hub) Dispatch(events []*herald.Event) (gap bool) {
	if len(events) == 0 {
		return false
	}
	var (
		ends       []func()
		calls      []*Subscription
		evicted    int
		deliveries int
	)
	h.mu.Lock()
	h.dispatches++
	if events[0].Seq != h.head.Load()+1 {
		gap = true
		h.ring.clear()
		ends = h.dropAllLocked(herald.ErrGap)
	}
	for _, ev := range events {
		h.ring.add(ev)
		for s := range h.subs[ev.Channel] {
			alive, call := s.push(ev, h.opts.MaxPending)
			if !alive {
				if f := h.dropLocked(s, herald.ErrSlow); f != nil {
					ends = append(ends, f)
				}
				evicted++
				continue
			}
			if call && s.called != h.dispatches {
				s.called = h.dispatches
				calls = append(calls, s)
			}
			deliveries++
		}
	}
	h.head.Store(events[len(events)-1].Seq)
	h.mu.Unlock()

	readyCalls(calls)
	runAll(ends)
	if h.opts.OnEvict != nil {
		for range evicted {
			h.opts.OnEvict()
		}
	}
	if h.opts.OnDispatch != nil {
		h.opts.OnDispatch(events, deliveries)
	}
	return gap
}

// Stop ends every subscription with herald.ErrStopped; later subscribes
// fail with it.
func (h *Hub) Stop() {
	h.mu.Lock()
	h.stopped = true
	ends := h.dropAllLocked(herald.ErrStopped)
	h.mu.Unlock()
	runAll(ends)
}

// dropAllLocked unregisters and ends every subscription with err, and
// returns their OnEnd callbacks to run once h.mu is released.
func (h *Hub) dropAllLocked(err error) []func() {
	var ends []func()
	for _, set := range h.subs {
		for s := range set {
			if f := h.dropLocked(s, err); f != nil {
				ends = append(ends, f)
			}
		}
	}
	return ends
}

// dropLocked unregisters s and ends it with err: from now on Take hands out
// what is pending and then err. It returns s's OnEnd callback, if one is
// due, for the caller to run once h.mu is released. h.mu must be held.
func (h *Hub) dropLocked(s *Subscription, err error) func() {
	for _, ch := range s.channels {
		if set := h.subs[ch]; set != nil {
			delete(set, s)
			if len(set) == 0 {
				delete(h.subs, ch)
			}
		}
	}
	return s.end(err)
}
